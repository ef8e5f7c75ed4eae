"""The OpenAI path as a user drives it: waves under a budget, --wait, exit codes, cancel, gc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.fixture import Emulator
from support import cli, open_index, paid_twice, store_rows


def big_docs(folder: Path, files: int = 100) -> Path:
    folder.mkdir()
    for i in range(files):
        paragraphs = [f"Paragraph {j} of page {i} explains feature {i * 7 + j} in detail, "
                      "with enough words to make a chunk of a few dozen tokens long."
                      for j in range(6)]
        (folder / f"page{i:03d}.md").write_text(f"# Page {i}\n\n" + "\n\n".join(paragraphs))
    return folder


def failed_batches(emu: Emulator) -> list[str]:
    return [b for b, state in emu.stats()["batches"].items() if state == "failed"]


def test_waves_never_exceed_the_budget(tmp_path: Path, emu: Emulator) -> None:
    docs = big_docs(tmp_path / "docs")
    emu.configure(token_budget=12_000)
    with open_index(tmp_path / "idx", emu, token_budget=12_000) as index:
        report = index.sync([docs], wait=True)
    assert report.complete and report.jobs >= 2, report
    assert failed_batches(emu) == []  # the service never saw more than its budget enqueued


def test_token_limit_exceeded_lowers_the_budget_and_reshards(tmp_path: Path,
                                                              emu: Emulator) -> None:
    docs = big_docs(tmp_path / "docs")
    emu.configure(token_budget=12_000)
    before = emu.stats()
    with open_index(tmp_path / "idx", emu) as index:  # default budget: far above 12,000
        report = index.sync([docs], wait=True)
        status = index.status()
    assert report.complete and status.chunks_failed == 0, report
    assert len(failed_batches(emu)) == 1  # one token_limit_exceeded, then smaller waves
    assert paid_twice(emu, before) == []


@pytest.mark.slow
def test_in_flight_exit_code_then_wait(docs: Path, tmp_path: Path, emu: Emulator,
                                       clean: dict[str, tuple[object, ...]]) -> None:
    emu.configure(speed=8, validating_seconds=0.3, finalizing_seconds=0.1)
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    first = cli(index_dir, emu, "sync", str(docs), "--json")
    assert first.returncode == 3, first.stderr
    assert json.loads(first.stdout)["in_flight"] == 1
    status = json.loads(cli(index_dir, emu, "status", "--json").stdout)
    assert len(status["jobs"]) == 1 and status["jobs"][0]["remote_id"]
    done = cli(index_dir, emu, "sync", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    assert store_rows(index_dir) == clean
    assert json.loads(cli(index_dir, emu, "status", "--json").stdout)["tokens_billed"] > 0


@pytest.mark.slow
def test_cancel_keeps_partial_results_and_the_rest_is_requeued(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    emu.configure(speed=50, validating_seconds=0.1)
    emu.fault_batches(stall_after_lines=5)
    before = emu.stats()
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    assert cli(index_dir, emu, "sync", str(docs)).returncode == 3
    cancelled = cli(index_dir, emu, "cancel")
    assert cancelled.returncode == 0 and "asked 1 batch" in cancelled.stdout
    done = cli(index_dir, emu, "sync", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["embedded"] >= 5
    assert store_rows(index_dir) == clean
    assert paid_twice(emu, before) == []


@pytest.mark.slow
def test_gc_deletes_remote_files_left_behind(docs: Path, tmp_path: Path, emu: Emulator) -> None:
    emu.inject({"routes": [{"route": "files.delete", "status": 500, "count": 100,
                            "retry_after_ms": 1}]})
    index_dir = tmp_path / "idx"
    with open_index(index_dir, emu) as index:
        assert index.sync([docs]).complete
    emu.clear_faults()
    client = emu.client()
    assert [f for f in client.files.list(purpose="batch")]
    result = cli(index_dir, emu, "gc")
    assert result.returncode == 0 and "deleted" in result.stdout
    assert [f.id for f in client.files.list(purpose="batch")] == []


@pytest.mark.slow
@pytest.mark.parametrize("command", ["cancel", "gc", "status"])
def test_commands_on_a_missing_index_fail_clearly(tmp_path: Path, emu: Emulator,
                                                  command: str) -> None:
    result = cli(tmp_path / "nothing", emu, command)
    assert result.returncode == 1 and "indexer sync" in result.stderr


def test_plan_numbers_equal_what_sync_submits(tmp_path: Path, emu: Emulator) -> None:
    docs = big_docs(tmp_path / "docs", files=30)
    (docs / "copy.md").write_text((docs / "page000.md").read_text())  # deduplicated
    before = emu.stats()
    with open_index(tmp_path / "idx", emu, token_budget=5_000) as index:
        plan = index.plan([docs])
        assert not (tmp_path / "idx" / "g1").exists()  # planning wrote nothing
        report = index.sync([docs], wait=True)
    after = emu.stats()
    assert plan.new == 31 and plan.chunks == report.chunks
    assert plan.chunks_to_embed == report.embedded == after["inputs"] - before["inputs"]
    assert plan.shards == after["batches_created"] - before["batches_created"] >= 2
    assert plan.waves >= 2
    assert plan.tokens >= after["tokens"] - before["tokens"]
    assert plan.sync_cost == pytest.approx(2 * plan.batch_cost)


@pytest.mark.slow
def test_cost_cap_refuses_to_submit(docs: Path, tmp_path: Path, emu: Emulator) -> None:
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu, price_per_million=1000.0).close()
    before = emu.stats()["batches_created"]
    refused = cli(index_dir, emu, "sync", str(docs), "--max-cost", "0.01", "--json")
    assert refused.returncode == 5, refused.stderr
    report = json.loads(refused.stdout)
    assert report["refused_cost"] > 0.01 and "--max-cost" in report["errors"][0]
    assert emu.stats()["batches_created"] == before
    plan = json.loads(cli(index_dir, emu, "plan", "--json").stdout)
    assert plan["batch_cost"] == pytest.approx(report["refused_cost"], rel=1e-3)
    allowed = cli(index_dir, emu, "sync", "--max-cost", "100", "--json")
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.slow
def test_dimension_change_is_refused_then_rebuilt_beside_and_swapped(
        docs: Path, tmp_path: Path, emu: Emulator) -> None:
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    assert cli(index_dir, emu, "sync", str(docs)).returncode == 0
    config = index_dir / "config.toml"
    config.write_text(config.read_text().replace("[index]\n", "[index]\ndimensions = 256\n"))

    refused = cli(index_dir, emu, "sync")
    assert refused.returncode == 1
    assert "1536" in refused.stderr and "256" in refused.stderr and "--rebuild" in refused.stderr

    emu.configure(speed=20, validating_seconds=0.2)
    started = cli(index_dir, emu, "sync", "--rebuild", "--json")
    assert started.returncode == 3 and not json.loads(started.stdout)["swapped"]
    during = cli(index_dir, emu, "search", "cancel a batch", "--json")
    assert during.returncode == 0, during.stderr
    assert json.loads(during.stdout), "search keeps answering from the old table"
    assert json.loads(cli(index_dir, emu, "status", "--json").stdout)["dimensions"] == 1536

    finished = cli(index_dir, emu, "sync", "--rebuild", "--wait", "--json")
    assert finished.returncode == 0 and json.loads(finished.stdout)["swapped"]
    status = json.loads(cli(index_dir, emu, "status", "--json").stdout)
    assert status["dimensions"] == 256 and status["documents"] == 7
    hits = json.loads(cli(index_dir, emu, "search", "cancel a batch", "--json").stdout)
    assert hits and cli(index_dir, emu, "sync").returncode == 0
    assert "deleted" in cli(index_dir, emu, "gc").stdout
    assert sorted(p.name for p in index_dir.glob("g*")) == ["g2"]


@pytest.mark.slow
def test_backend_switch_from_local_is_refused_and_rebuilt(docs: Path, tmp_path: Path,
                                                          emu: Emulator) -> None:
    index_dir = tmp_path / "idx"
    env_less = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    local = subprocess.run([sys.executable, "-m", "indexer", "--index", str(index_dir), "sync",
                            str(docs / "faq.txt")], env=env_less, capture_output=True, text=True)
    assert local.returncode == 0, local.stderr
    switched = cli(index_dir, emu, "sync", "--backend", "openai")
    assert switched.returncode == 1 and "local" in switched.stderr
    rebuilt = cli(index_dir, emu, "sync", "--rebuild", "--backend", "openai", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    status = json.loads(cli(index_dir, emu, "status", "--json").stdout)
    assert (status["backend"], status["model"]) == ("openai", "text-embedding-3-small")


@pytest.mark.slow
def test_a_validation_error_names_the_source_behind_the_line_and_retry_recovers(
        docs: Path, tmp_path: Path, emu: Emulator) -> None:
    emu.fault_batches(validation_error="duplicate_custom_id", validation_line=2)
    index_dir = tmp_path / "idx"
    with open_index(index_dir, emu) as index:
        report = index.sync([docs])
    assert report.failed == 1 and report.complete
    message = next(e for e in report.errors if "duplicate_custom_id" in e)
    assert f"{docs.resolve().as_posix()}/" in message  # the file behind the offending line

    assert cli(index_dir, emu, "retry").stdout.startswith("queued 1")
    with open_index(index_dir, emu) as index:
        again = index.sync()
        assert again.embedded == 1 and again.failed == 0
        assert index.status().chunks_failed == 0


def test_a_learned_budget_recovers_after_batches_go_through(docs: Path, tmp_path: Path,
                                                            emu: Emulator) -> None:
    with open_index(tmp_path / "idx", emu, token_budget=12_500) as index:
        index.sync([docs / "faq.txt"])
        ledger = index._open_ledger()
        ledger.set_meta({"learned_token_budget": "10000"})
        (docs / "faq.txt").write_text("A new question and a new answer.\n")
        assert index.sync().complete
        assert "learned_token_budget" not in ledger.meta()  # 10,000 x 1.25 >= 12,500
