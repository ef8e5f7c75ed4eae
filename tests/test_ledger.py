"""The SQLite ledger: document versions, key states, jobs, dirty rows and the writer lock."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.batchfiles.requests import Shard
from indexer.errors import LockedError
from indexer.records import Chunk
from indexer.state.ledger import Ledger


def chunk(ordinal: int, text: str) -> Chunk:
    return Chunk(ordinal, text, "Doc", 3, ("Doc",), None, ordinal + 1, ordinal + 1)


@pytest.fixture()
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "state.db")


def test_new_document_publishes_only_when_all_keys_are_embedded(ledger: Ledger,
                                                                 tmp_path: Path) -> None:
    ledger.stage("/d/a.md", "/d", "1:1", "h1", "A", [(chunk(0, "x"), "k1"), (chunk(1, "y"), "k2")])
    assert ledger.publishable() == []
    assert [r.custom_id for r in list(ledger.pending_requests())] == ["k1", "k2"]
    job = ledger.create_job("local", Shard(tmp_path / "s.jsonl", 2, 6, 100, ("k1", "k2")))
    assert list(ledger.pending_requests()) == []
    settled = ledger.finish_job(job, ["k1"], [], max_attempts=3)
    assert (settled.embedded, settled.requeued, settled.failed) == (1, 1, 0)  # k2 was missing
    assert ledger.publishable() == []
    job2 = ledger.create_job("local", Shard(tmp_path / "t.jsonl", 1, 3, 50, ("k2",)))
    ledger.finish_job(job2, ["k2"], [], max_attempts=3)
    assert ledger.publishable() == ["/d/a.md"]
    ledger.publish(["/d/a.md"])
    rows = {r.custom_id: r for r in ledger.key_rows(["k1", "k2"])}
    assert [p.uri for p in rows["k1"].places] == ["/d/a.md"]
    assert rows["k1"].pending_refs == 0


def test_keys_handed_out_are_queued_even_if_their_rows_moved(ledger: Ledger,
                                                             tmp_path: Path) -> None:
    ledger.stage("/d/a.md", "/d", "1:1", "h1", "A", [(chunk(0, "x"), "k1"), (chunk(1, "y"), "k2")])
    handed = [r.custom_id for r in ledger.pending_requests(queuing=True)]
    with sqlite3.connect(ledger.path) as other:  # as a VACUUM may renumber rows
        other.execute("UPDATE keys SET rowid = rowid + 100")
    job = ledger.create_job("local", Shard(tmp_path / "s.jsonl", 2, 6, 100, tuple(handed)))
    assert list(ledger.pending_requests()) == []
    assert sorted(ledger.job_keys(job)) == ["k1", "k2"]


def test_same_text_in_two_documents_is_one_key_with_two_places(ledger: Ledger) -> None:
    ledger.stage("/d/a.md", "/d", "1:1", "ha", "A", [(chunk(0, "licence"), "k")])
    ledger.stage("/d/b.md", "/d", "1:1", "hb", "B", [(chunk(0, "licence"), "k")])
    assert len(list(ledger.pending_requests())) == 1
    ledger.publish(["/d/a.md", "/d/b.md"])
    (row,) = ledger.key_rows(["k"])
    assert {p.uri for p in row.places} == {"/d/a.md", "/d/b.md"}
    ledger.remove(["/d/a.md"])
    (row,) = ledger.key_rows(["k"])
    assert [p.uri for p in row.places] == ["/d/b.md"]
    assert "k" in ledger.dirty_keys()


def test_failed_keys_retry_until_attempts_run_out(ledger: Ledger, tmp_path: Path) -> None:
    ledger.stage("/d/a.md", "/d", "1:1", "h", "A", [(chunk(0, "x"), "k")])
    for attempt in range(3):
        job = ledger.create_job("local", Shard(tmp_path / f"{attempt}.jsonl", 1, 1, 1, ("k",)))
        ledger.finish_job(job, [], [("k", "server_error: boom", True)], max_attempts=3)
    assert list(ledger.pending_requests()) == []
    assert ledger.counts()["chunks_failed"] == 1
    assert ledger.publishable() == ["/d/a.md"]
    ledger.publish(["/d/a.md"])
    assert "1 chunk(s) failed to embed: server_error: boom" in dict(ledger.skips())["/d/a.md"]


@pytest.mark.slow
def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        Ledger(path).close()
        db = sqlite3.connect(path)
        db.execute("INSERT INTO lock VALUES (1, ?, ?, 0, 'sync', 'other', NULL)",
                   (holder.pid, socket.gethostname()))
        db.commit()
        ledger = Ledger(path)
        with pytest.raises(LockedError, match=f"pid {holder.pid}"), ledger.lock("sync"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with ledger.lock("sync"):  # the holder is dead now: its lock is stale
        row = sqlite3.connect(path).execute("SELECT pid FROM lock").fetchone()
        assert row == (os.getpid(),)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM lock").fetchone() == (0,)


def test_a_lock_whose_pid_was_reused_by_another_process_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Ledger(path).close()
    db = sqlite3.connect(path)
    # our own pid is alive, but it did not start at tick 1: a recycled pid
    db.execute("INSERT INTO lock VALUES (1, ?, ?, 0, 'sync', 'other', '1')",
               (os.getpid(), socket.gethostname()))
    db.commit()
    ledger = Ledger(path)
    with ledger.lock("sync"):
        assert sqlite3.connect(path).execute("SELECT owner FROM lock").fetchone() != ("other",)


def test_a_rejected_job_fails_only_the_named_keys_and_failures_last_until_removed(
        ledger: Ledger, tmp_path: Path) -> None:
    ledger.stage("/d/a.md", "/d", "1:1", "ha", "A", [(chunk(0, "x"), "k1"), (chunk(1, "y"), "k2")])
    ledger.stage("/d/b.md", "/d", "1:1", "hb", "B", [(chunk(0, "z"), "k3")])
    job = ledger.create_job("openai", Shard(tmp_path / "s.jsonl", 3, 9, 100, ("k1", "k2", "k3")))
    assert ledger.reject_job(job, [("k1", "invalid_value: bad id"), ("k3", "x: y")], "refused") == 2
    assert ledger.key_states(["k1", "k2", "k3"]) == {"k1": "failed", "k2": "pending",
                                                     "k3": "failed"}
    assert [r.custom_id for r in ledger.pending_requests()] == ["k2"]  # no attempt charged
    assert ledger.jobs() == []
    assert dict(ledger.skips())["/d/a.md"] == "1 chunk(s) failed to embed: invalid_value: bad id"
    assert ledger.count_failed() == 2
    ledger.remove(["/d/b.md"])
    assert ledger.count_failed() == 1


def test_a_group_keeps_every_completed_write_and_undoes_a_failed_one_alone(
        ledger: Ledger, tmp_path: Path) -> None:
    twice = [(chunk(0, "x"), "k1"), (chunk(0, "y"), "k2")]  # one ordinal twice: refused
    with pytest.raises(KeyboardInterrupt), ledger.grouped() as commit:
        ledger.stage("/d/a.md", "/d", "1:1", "h1", "A", [(chunk(0, "a"), "ka")])
        commit()
        ledger.stage("/d/b.md", "/d", "1:1", "h2", "B", [(chunk(0, "b"), "kb")])
        with pytest.raises(sqlite3.IntegrityError):
            ledger.stage("/d/c.md", "/d", "1:1", "h3", "C", twice)
        raise KeyboardInterrupt  # a stop after both: what completed is kept
    other = Ledger(tmp_path / "state.db")  # another connection sees only what was committed
    assert set(other.documents("/d")) == {"/d/a.md", "/d/b.md"}
    assert sorted(r.custom_id for r in other.pending_requests()) == ["ka", "kb"]
    assert ledger.stage("/d/d.md", "/d", "1:1", "h4", "D", [(chunk(0, "a"), "ka")]) == 0
    other.close()


def test_a_first_publication_reads_each_key_as_its_row_shows_it(ledger: Ledger) -> None:
    ledger.stage("/d/b.md", "/d", "1:1", "hb", "B", [(chunk(0, "licence"), "k"),
                                                     (chunk(1, "only b"), "kb")])
    ledger.stage("/d/a.md", "/d", "1:1", "ha", "A", [(chunk(0, "intro"), "ka"),
                                                     (chunk(1, "licence"), "k")])
    ledger.stage("/d/c.md", "/d", "1:1", "hc", "C", [(chunk(0, "licence"), "k")])
    ledger.publish(["/d/b.md", "/d/a.md"])  # c's place is still pending: not shown
    asked = ["kb", "gone", "k", "ka"]
    with ledger.passage_lookup() as lookup:
        found = lookup(asked)
    expected = ledger.key_rows(asked)
    assert found.custom_id == asked
    assert found.text == [r.text for r in expected] and found.text[1] == ""
    assert found.context == [r.context for r in expected]
    places = iter(zip(found.uri, found.heading, found.page, found.line_start, found.line_end,
                      strict=True))
    assert [[next(places) for _ in range(n)] for n in found.counts] == [
        [(p.uri, p.heading, p.page, p.line_start, p.line_end) for p in r.places]
        for r in expected]
    assert found.counts == [1, 0, 2, 1]
    assert found.uri[1:3] == ["/d/a.md", "/d/b.md"]  # in document order, as a row shows them


def test_a_first_survey_keeps_no_key_index_and_builds_it_at_the_end(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "a.db")
    with ledger.first_staging():
        ledger.stage("/d/a.md", "/d", "1:1", "ha", "A", [(chunk(0, "x"), "k1")])
        assert not _key_index(ledger.path)
    assert _key_index(ledger.path)
    assert ledger.job_sources(["k1"]) == {"k1": "/d/a.md:1"}
    with ledger.first_staging():  # the ledger holds chunks now: the index stays
        ledger.stage("/d/b.md", "/d", "1:1", "hb", "B", [(chunk(0, "y"), "k2")])
        assert _key_index(ledger.path)


@pytest.mark.slow
def test_a_first_survey_killed_midway_leaves_the_key_index_to_the_next_open(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    killed = subprocess.run([sys.executable, "-c", f"""
import os
from pathlib import Path
from indexer.records import Chunk
from indexer.state.ledger import Ledger
ledger = Ledger(Path({str(path)!r}))
with ledger.first_staging():
    ledger.stage("/d/a.md", "/d", "1:1", "ha", "A", [(Chunk(0, "x", "", 1), "k1")])
    os._exit(9)
"""], check=False)
    assert killed.returncode == 9 and not _key_index(path)
    reopened = Ledger(path)
    assert _key_index(path)
    assert reopened.job_sources(["k1"]) == {"k1": "/d/a.md"}


def _key_index(path: Path) -> bool:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_key'"
                          ).fetchone() is not None
