"""Submitting batches as an operator meets it: validation failures, hard failures, hung
endpoints and outages end with the right exit code and message, and never pay twice."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from emulator.fixture import Emulator
from support import cli, open_index, paid_twice, store_rows


def report_of(result: Any) -> dict[str, Any]:
    assert result.stdout, result.stderr
    return dict(json.loads(result.stdout))


def batches(emu: Emulator) -> list[Any]:
    """Every batch the emulator holds, oldest first."""
    return list(reversed(emu.client().batches.list(limit=100).data))


def paid_once_each(emu: Emulator, keys: set[str], before: dict[str, Any] | None = None) -> None:
    """Since ``before`` (a stats snapshot), each of ``keys`` was delivered exactly once and
    nothing else was."""
    old = (before or {}).get("by_custom_id", {})
    paid = {k: n - old.get(k, 0) for k, n in emu.stats()["by_custom_id"].items()}
    paid = {k: n for k, n in paid.items() if n}
    assert set(paid) == keys
    assert set(paid.values()) == {1}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- validation failures (point 4) -------------------------------------------------------

@pytest.mark.slow
def test_too_many_tasks_reshards_under_the_service_limit(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before, known = emu.stats(), len(batches(emu))
    emu.configure(max_requests=5)  # the indexer plans shards of up to 50,000 requests
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    result = cli(index_dir, emu, "sync", str(docs), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = report_of(result)
    message = next(e for e in report["errors"] if "too_many_tasks" in e)
    assert "at most 5 requests" in message and "planned again" in message, message
    created = batches(emu)[known:]
    assert [b.status for b in created] == ["failed"] + ["completed"] * 4  # 16 chunks: 5+5+5+1
    assert all(b.request_counts.total <= 5 for b in created[1:])
    assert store_rows(index_dir) == clean
    paid_once_each(emu, set(clean), before)
    for i in range(8):
        (docs / f"extra{i}.md").write_text(f"# Extra {i}\n\nA new page, number {i}.\n")
    with open_index(index_dir, emu) as index:  # the learned limit holds for later syncs
        assert index.plan().shards == 2
        assert index.status().chunks_failed == 0


@pytest.mark.slow
def test_invalid_custom_ids_fail_for_good_and_the_file_is_never_resubmitted(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before, known = emu.stats(), len(batches(emu))
    emu.configure(custom_id_pattern="[A-Za-z0-9_]+")  # refuses keys with a '-'
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    result = cli(index_dir, emu, "sync", str(docs), "--json")
    assert result.returncode == 4, result.stdout + result.stderr
    report = report_of(result)
    bad = {k for k in clean if "-" in k}
    good = set(clean) - bad
    status = report_of(cli(index_dir, emu, "status", "--json"))
    assert report["failed"] == status["chunks_failed"] > 0
    assert good and status["passages"] == len(good)
    messages = [e for e in report["errors"] if "invalid_value" in e]
    assert messages and all("custom_id" in e and "line " in e for e in messages)
    assert any(f"{docs.resolve().as_posix()}/" in e for e in messages)  # the source file
    created = batches(emu)[known:]
    inputs = [b.input_file_id for b in created]
    assert len(inputs) == len(set(inputs)) == 2  # one failed batch, then the rest once
    assert [b.status for b in created] == ["failed", "completed"]
    paid_once_each(emu, good, before)

    shown = cli(index_dir, emu, "status")
    assert len(shown.stdout) < 4_000, shown.stdout
    problems = status["problems"]
    assert problems and all(len(p["reason"]) < 300 for p in problems)
    assert all(" chunk(s) failed to embed: invalid_value: " in p["reason"] for p in problems)

    later = cli(index_dir, emu, "sync", "--json")  # still failed: still exit 4, nothing sent
    assert later.returncode == 4, later.stdout + later.stderr
    assert len(batches(emu)) == known + 2
    emu.configure(custom_id_pattern="")
    with open_index(index_dir, emu) as index:
        assert index.retry() == len(bad)
    fixed = cli(index_dir, emu, "sync", "--json")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    paid_once_each(emu, good | bad, before)


@pytest.mark.slow
def test_a_validation_error_naming_no_line_fails_the_chunks_once(
        docs: Path, tmp_path: Path, emu: Emulator) -> None:
    emu.fault_batches(count=None, validation_error="invalid_request")
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    result = cli(index_dir, emu, "sync", str(docs), "--json")
    assert result.returncode == 4, result.stdout + result.stderr
    report = report_of(result)
    assert report["failed"] == report["chunks"] and report["embedded"] == 0
    assert any("invalid_request" in e for e in report["errors"])
    assert len(batches(emu)) == 1  # the same file is not submitted again
    with open_index(index_dir, emu) as index:
        problems = index.status().problems
    assert problems and all(len(p.reason) < 300 for p in problems)


def test_invalid_json_line_is_reported_with_its_line_and_source(
        docs: Path, tmp_path: Path, emu: Emulator) -> None:
    emu.fault_batches(validation_error="invalid_json_line", validation_line=2)
    with open_index(tmp_path / "idx", emu) as index:
        report = index.sync([docs])
        status = index.status()
    message = next(e for e in report.errors if "invalid_json_line" in e)
    assert "line 2" in message and f"{docs.resolve().as_posix()}/" in message, message
    assert report.failed == status.chunks_failed == 1
    assert status.passages == report.chunks - 1 and report.complete


def test_a_shard_changed_on_disk_before_upload_is_planned_again(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before, known = emu.stats(), len(batches(emu))
    emu.fail_route("files.create", status=500, count=50, retry_after_ms=1)
    index_dir = tmp_path / "idx"
    with open_index(index_dir, emu) as index:
        assert index.sync([docs]).exit_code == 1  # the upload failed: the shard waits
    emu.clear_faults()
    shards = list((index_dir / "g1" / "batches").glob("*.jsonl"))
    assert len(shards) == 1
    lines = shards[0].read_bytes().splitlines(keepends=True)
    tampered = lines[0].replace(b'"input":"', b'"input":"EDITED ')
    shards[0].write_bytes(b"".join([tampered, *lines[1:], b'{"custom_id": "x", "meth\n']))
    with open_index(index_dir, emu) as index:
        report = index.sync()
    assert report.exit_code == 0, report
    message = next(e for e in report.errors if "changed on disk" in e)
    assert "line 1" in message and "planned again" in message, message
    assert [b.status for b in batches(emu)[known:]] == ["completed"]  # the re-written shard
    assert store_rows(index_dir) == clean
    assert paid_twice(emu, before) == []


# -- hard failures are not work in flight (point 9) --------------------------------------

@pytest.mark.slow
def test_a_rejected_key_exits_1_with_the_cause(docs: Path, tmp_path: Path,
                                               emu: Emulator) -> None:
    emu.configure(api_key="sk-the-right-one")
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    result = cli(index_dir, emu, "sync", str(docs))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rejected the API key" in result.stderr and "OPENAI_API_KEY" in result.stderr
    assert "in flight" not in result.stdout
    assert "1 batch job(s) waiting to submit" in result.stdout


@pytest.mark.slow
def test_no_network_exits_1_with_the_cause(docs: Path, tmp_path: Path, emu: Emulator) -> None:
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    result = cli(index_dir, emu, "sync", str(docs), "--base-url", dead, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "check the network" in result.stderr
    report = report_of(result)
    assert report["in_flight"] == 0 and report["unsubmitted"] == 1
    assert "check the network" in report["stopped"]


@pytest.mark.slow
def test_a_storage_quota_refusal_exits_1_with_the_cause(docs: Path, tmp_path: Path,
                                                        emu: Emulator) -> None:
    emu.configure(storage_bytes=1_000)
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    result = cli(index_dir, emu, "sync", str(docs))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "file storage quota" in result.stderr and "indexer gc" in result.stderr
    assert "in flight" not in result.stdout


@pytest.mark.slow
def test_a_failing_batch_list_exits_1_with_the_cause(docs: Path, tmp_path: Path,
                                                     emu: Emulator) -> None:
    emu.fail_route("batches.create", status=500, count=50, retry_after_ms=1)
    emu.fail_route("batches.list", status=500, count=50, retry_after_ms=1)
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    result = cli(index_dir, emu, "sync", str(docs))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "list batches" in result.stderr
    assert "in flight" not in result.stdout
    emu.clear_faults()
    with open_index(index_dir, emu) as index:
        assert index.sync().complete
    assert len(batches(emu)) == 1


# -- hung endpoints are bounded (point 10) -----------------------------------------------

@pytest.mark.slow
def test_a_hung_create_ends_the_sync_in_bounded_time(docs: Path, tmp_path: Path,
                                                     emu: Emulator) -> None:
    emu.fail_route("batches.create", action="hang", count=50, seconds=60)
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu, timeout=1.0).close()
    started = time.monotonic()
    result = cli(index_dir, emu, "sync", str(docs))
    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stdout + result.stderr
    assert "create the batch" in result.stderr and "1 s" in result.stderr, result.stderr
    assert emu.stats()["batches_created"] == 0
    emu.clear_faults()
    with open_index(index_dir, emu) as index:
        assert index.sync().complete
    assert len(batches(emu)) == 1


@pytest.mark.slow
@pytest.mark.parametrize(("route", "bound", "says"), [
    ("batches.retrieve", 60, "check the batch"),  # a hung status call: the batch runs on
    ("files.content", 90, "download"),  # a hung download is bounded too
])
def test_a_hung_call_on_a_running_batch_exits_3_in_bounded_time(
        route: str, bound: float, says: str, docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before = emu.stats()
    emu.fail_route(route, action="hang", count=50, seconds=60)
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu, timeout=1.0).close()
    started = time.monotonic()
    result = cli(index_dir, emu, "sync", str(docs))
    assert time.monotonic() - started < bound
    assert result.returncode == 3, result.stdout + result.stderr
    assert says in result.stdout, result.stdout
    if route == "batches.retrieve":
        assert "1 batch job(s) in flight" in result.stdout
    emu.clear_faults()
    with open_index(index_dir, emu) as index:
        assert index.sync().complete
    assert store_rows(index_dir) == clean
    assert paid_twice(emu, before) == []


# -- --wait rides out a short outage (point 11) ------------------------------------------

@pytest.mark.slow
def test_wait_keeps_polling_through_a_short_outage(docs: Path, tmp_path: Path,
                                                   emu: Emulator) -> None:
    emu.configure(speed=20, validating_seconds=0.2)
    index_dir = tmp_path / "idx"
    with open_index(index_dir, emu) as index:
        assert index.sync([docs]).in_flight == 1
    emu.fail_route("batches.retrieve", status=503, count=18)  # about 8 s of SDK backoff
    started = time.monotonic()
    result = cli(index_dir, emu, "sync", "--wait", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started > 5
    assert report_of(result)["complete"]
    assert emu.stats()["calls"]["batches.retrieve"] >= 18
