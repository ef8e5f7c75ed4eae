"""Collecting batches: polls that 404, lost batches that turn up again, downloads cut
short, stray output lines, unknown usage, and files a crash leaves behind. Each fault
converges to a clean run's store with every custom_id paid once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from emulator.fixture import Emulator
from indexer.state.doctor import stale_local_files
from indexer.state.layout import Layout
from indexer.state.ledger import Ledger
from support import cli, open_index, paid_twice, store_rows, sync_until_done, wait_for_call


def created(emu: Emulator, before: dict[str, Any]) -> int:
    return int(emu.stats()["batches_created"] - before["batches_created"])


def newest_batch(emu: Emulator) -> Any:
    return next(iter(emu.client().batches.list()))


# -- point 1: a batch is lost only after repeated 404s and a list lookup --------------


def test_one_404_while_polling_is_not_a_lost_batch(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before = emu.stats()
    emu.fail_route("batches.retrieve", status=404, count=1)
    with open_index(tmp_path / "idx", emu) as index:
        report = index.sync([docs], wait=True)
    assert report.complete and report.errors == [], report
    assert store_rows(tmp_path / "idx") == clean
    assert paid_twice(emu, before) == []
    assert created(emu, before) == 1


def test_a_batch_404ing_on_every_poll_is_kept_when_the_list_shows_it(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before = emu.stats()
    emu.fail_route("batches.retrieve", status=404, count=4)
    with open_index(tmp_path / "idx", emu, lost_after_seconds=0.0) as index:
        report = index.sync([docs], wait=True)
    assert report.complete, report
    assert any("still lists it" in e for e in report.errors), report.errors
    assert not any("disappeared" in e for e in report.errors)
    assert emu.stats()["calls"]["batches.list"] > before["calls"].get("batches.list", 0)
    assert store_rows(tmp_path / "idx") == clean
    assert paid_twice(emu, before) == []
    assert created(emu, before) == 1


def test_a_batch_truly_gone_is_requeued_once_after_the_bound(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before = emu.stats()
    emu.fault_batches(lost=True)
    errors: list[str] = []
    with open_index(tmp_path / "idx", emu, lost_after_seconds=0.0) as index:
        for _ in range(2):  # two misses: not yet lost, nothing requeued
            report = index.sync([docs])
            errors += report.errors
            assert report.in_flight == 1 and created(emu, before) == 1, report
        report = index.sync()  # the third miss, and the list does not show it
        errors += report.errors
        report = sync_until_done(index)
        errors += report.errors
    assert report.complete
    lost = [e for e in errors if "disappeared" in e]
    assert len(lost) == 1 and "not in the batch list" in lost[0] and "queued again" in lost[0]
    assert created(emu, before) == 2  # requeued once
    assert store_rows(tmp_path / "idx") == clean
    assert paid_twice(emu, before) == []


def test_a_lost_batch_that_turns_up_again_is_adopted_and_nothing_is_paid_twice(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before = emu.stats()
    emu.fault_batches(lost=True)
    index_dir = tmp_path / "idx"
    with open_index(index_dir, emu, lost_after_seconds=0.0) as index:
        index.sync([docs])
        index.sync()
        lost_id = index._open_ledger().jobs()[0].remote_id
        # the third miss declares it lost; the re-planned shard cannot be uploaded yet
        emu.inject({"routes": [{"route": "files.create", "status": 500, "count": 20,
                                "retry_after_ms": 1}]})
        declared = index.sync()
        assert any("disappeared" in e for e in declared.errors), declared.errors
        planned = index._open_ledger().jobs()
        assert [j.state for j in planned] == ["planned"]
        emu.clear_faults()
        emu.inject({"batches": {"batch_id": lost_id, "lost": False}})  # it turns up again
        report = index.sync()
        status = index.status()
    assert report.complete, report
    assert any("turned up again" in e for e in report.errors), report.errors
    assert report.embedded == status.passages > 0
    assert created(emu, before) == 1  # the re-planned shard was never submitted
    assert store_rows(index_dir) == clean
    assert paid_twice(emu, before) == []
    assert not Path(planned[0].shard).exists()


def test_a_batch_sent_again_for_a_lost_one_is_cancelled_when_the_lost_one_turns_up(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before = emu.stats()
    emu.inject({"batches": [{"lost": True}, {"stall_after_lines": 0}]})
    index_dir = tmp_path / "idx"
    with open_index(index_dir, emu, lost_after_seconds=0.0) as index:
        index.sync([docs])
        index.sync()
        lost_id = index._open_ledger().jobs()[0].remote_id
        declared = index.sync()  # lost: its chunks go out again in a batch the service holds
        assert any("disappeared" in e for e in declared.errors), declared.errors
        (again,) = index._open_ledger().jobs(["submitted"])
        assert again.remote_id != lost_id
        emu.inject({"batches": {"batch_id": lost_id, "lost": False}})
        report = sync_until_done(index)
    assert report.complete, report
    assert emu.stats()["batches"][again.remote_id] == "cancelled"
    assert created(emu, before) == 2
    assert store_rows(index_dir) == clean
    assert paid_twice(emu, before) == []


# -- point 3: a download cut short is never taken as complete -------------------------


@pytest.mark.slow
def test_a_download_cut_short_every_time_is_retried_by_the_next_sync(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    before = emu.stats()
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    emu.inject({"routes": [{"route": "files.content", "action": "truncate", "fraction": 0.5,
                            "count": 1000}]})
    first = cli(index_dir, emu, "sync", str(docs), "--json")
    assert first.returncode == 3, first.stderr
    report = json.loads(first.stdout)
    assert report["embedded"] == 0 and report["in_flight"] == 1
    assert any("download" in e and "next sync" in e for e in report["errors"]), report
    batch = newest_batch(emu)
    client = emu.client()
    assert client.files.retrieve(batch.output_file_id).bytes > 0  # never deleted
    assert client.files.retrieve(batch.input_file_id)
    status = json.loads(cli(index_dir, emu, "status", "--json").stdout)
    assert status["passages"] == 0 and status["jobs_open"] == 1

    emu.clear_faults()
    second = cli(index_dir, emu, "sync", "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["errors"] == []
    assert store_rows(index_dir) == clean
    assert paid_twice(emu, before) == []
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(batch.output_file_id)  # deleted once ingested


# -- point 13: stray lines, unknown usage, files left by a crash -----------------------


def test_output_lines_with_unknown_ids_are_reported_once_per_batch(
        docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    emu.fault_batches(stray_lines=5)
    with open_index(tmp_path / "idx", emu) as index:
        report = index.sync([docs], wait=True)
    assert report.complete, report
    stray = [e for e in report.errors if "not in this batch" in e]
    assert len(stray) == 1, report.errors
    assert "5 unknown to this index" in stray[0] and "stray-" in stray[0]
    assert store_rows(tmp_path / "idx") == clean  # the strays were not stored


@pytest.mark.slow
def test_billed_tokens_are_unknown_when_a_batch_reports_no_usage(
        docs: Path, tmp_path: Path, emu: Emulator) -> None:
    emu.fault_batches(no_usage=True)
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    synced = cli(index_dir, emu, "sync", str(docs / "faq.txt"), "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["batches_without_usage"] == 1
    status = json.loads(cli(index_dir, emu, "status", "--json").stdout)
    assert status["tokens_billed"] is None and status["cost"] is None
    assert status["batches_without_usage"] == 1
    shown = cli(index_dir, emu, "status").stdout
    assert "tokens billed  unknown" in shown and "1 batch" in shown

    synced = cli(index_dir, emu, "sync", str(docs), "--json")  # this batch reports usage
    assert synced.returncode == 0
    status = json.loads(cli(index_dir, emu, "status", "--json").stdout)
    assert status["tokens_billed"] is None and status["batches_without_usage"] == 1


@pytest.mark.slow
def test_files_left_by_a_crash_after_a_job_finished_are_found_and_removed(
        docs: Path, tmp_path: Path, emu: Emulator) -> None:
    index_dir = tmp_path / "idx"
    open_index(index_dir, emu).close()
    emu.inject({"routes": [{"route": "files.delete", "action": "hang", "seconds": 20}]})
    env = {**os.environ, "OPENAI_BASE_URL": emu.base_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "indexer", "--index", str(index_dir), "sync", str(docs)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_call(emu, "files.delete", 1)
        time.sleep(0.2)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    emu.clear_faults()
    batch = newest_batch(emu)
    batches = Layout(index_dir).current / "batches"
    left = sorted(p.name for p in batches.iterdir())
    assert any(name.endswith(".output.jsonl") for name in left), left

    found = cli(index_dir, emu, "doctor", "--json")
    assert found.returncode == 1, found.stderr
    counts = {f["check"]: f["count"] for f in json.loads(found.stdout)["findings"]}
    assert counts["leftover batch files"] == len(left)
    assert counts["remote files"] == 2  # the input file and the output file

    swept = cli(index_dir, emu, "gc")
    assert swept.returncode == 0 and f"deleted {len(left) + 2} file(s)" in swept.stdout
    assert list(batches.iterdir()) == []
    client = emu.client()
    for file_id in (batch.input_file_id, batch.output_file_id):
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(file_id)
    assert cli(index_dir, emu, "doctor").returncode == 0


@pytest.mark.slow
def test_doctor_repair_removes_an_output_whose_job_is_gone(
        docs: Path, tmp_path: Path, emu: Emulator) -> None:
    index_dir = tmp_path / "idx"
    with open_index(index_dir, emu) as index:
        assert index.sync([docs / "faq.txt"]).complete
    stray = Layout(index_dir).current / "batches" / "job999999-a0.output.jsonl"
    stray.write_text('{"custom_id": "x"}\n')
    found = cli(index_dir, emu, "doctor")
    assert found.returncode == 1 and "leftover batch files" in found.stdout
    repaired = cli(index_dir, emu, "doctor", "--repair", "--json")
    assert repaired.returncode == 0 and json.loads(repaired.stdout)["healthy"]
    assert not stray.exists()


def test_an_open_jobs_files_are_not_leftovers(tmp_path: Path) -> None:
    from indexer.batchfiles.requests import Shard

    batches = tmp_path / "batches"
    batches.mkdir()
    ledger = Ledger(tmp_path / "state.db")
    shard = batches / "shard-1.jsonl"
    shard.write_text("{}\n")
    job = ledger.create_job("local", Shard(shard, 1, 10, 3, ("k",)))
    ledger.set_job(job, state="submitted", remote_id="job000001-a0")
    keep = [shard, batches / "job000001-a0.output.jsonl", batches / "job000001-a0.errors.jsonl"]
    stale = [batches / "job000001-a0.output.part", batches / "job000002-a0.output.jsonl"]
    for path in keep[1:] + stale:
        path.write_text("{}\n")
    assert sorted(stale_local_files(ledger, batches)) == sorted(stale)


def test_an_existing_ledger_gains_the_new_job_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.execute(  # the jobs table as earlier versions created it
        "CREATE TABLE jobs(id INTEGER PRIMARY KEY, backend TEXT NOT NULL, shard TEXT NOT NULL,"
        " state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, remote_id TEXT,"
        " input_file TEXT, output_file TEXT, error_file TEXT, requests INTEGER NOT NULL,"
        " tokens INTEGER NOT NULL, completed INTEGER NOT NULL DEFAULT 0,"
        " failed INTEGER NOT NULL DEFAULT 0, usage_tokens INTEGER NOT NULL DEFAULT 0,"
        " remote_state TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL, error TEXT)")
    db.execute("INSERT INTO jobs (backend, shard, state, requests, tokens, usage_tokens, "
               "created_at, updated_at) VALUES ('openai', 's.jsonl', 'ingested', 3, 30, 25, 1, 1)")
    db.commit()
    db.close()
    ledger = Ledger(path)
    (job,) = ledger.jobs(["ingested"])
    assert (job.usage_tokens, job.misses, job.missing_since) == (25, 0, None)
    ledger.set_job(job.id, usage_tokens=None, misses=2, missing_since=5.0)
    (job,) = ledger.jobs(["ingested"])
    assert (job.usage_tokens, job.misses, job.missing_since) == (None, 2, 5.0)
    assert ledger.jobs_without_usage() == 1
    ledger.close()
    Ledger(path).close()  # opening again migrates nothing twice
