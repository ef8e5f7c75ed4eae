"""The SQLite ledger: the pipeline's source of truth, and the only module that touches SQLite.

It records every document (fingerprint, content hash, status), every chunk of the
live and the pending version of each document (and the retired one of a document that
was emptied, which keeps its vectors but is never shown), every content key and its state
(``pending`` → ``queued`` in a job → ``embedded`` or ``failed``), every batch job,
the keys whose store rows must be rewritten (``dirty``), and the writer lock.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from indexer.batchfile import Request, Shard
from indexer.errors import LockedError, StateError
from indexer.records import Chunk, Place

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
    uri TEXT PRIMARY KEY, source TEXT NOT NULL, fingerprint TEXT NOT NULL,
    content_hash TEXT, pending_hash TEXT, title TEXT,
    status TEXT NOT NULL, reason TEXT, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS chunks(
    uri TEXT NOT NULL, version TEXT NOT NULL, ordinal INTEGER NOT NULL,
    custom_id TEXT NOT NULL, heading TEXT NOT NULL, page INTEGER,
    line_start INTEGER, line_end INTEGER,
    PRIMARY KEY (uri, version, ordinal));
CREATE INDEX IF NOT EXISTS chunks_key ON chunks(custom_id);
CREATE TABLE IF NOT EXISTS keys(
    custom_id TEXT PRIMARY KEY, text TEXT NOT NULL, context TEXT NOT NULL,
    tokens INTEGER NOT NULL, state TEXT NOT NULL, job_id INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE INDEX IF NOT EXISTS keys_state ON keys(state, job_id);
CREATE TABLE IF NOT EXISTS jobs(
    id INTEGER PRIMARY KEY, backend TEXT NOT NULL, shard TEXT NOT NULL,
    state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, remote_id TEXT,
    input_file TEXT, output_file TEXT, error_file TEXT,
    requests INTEGER NOT NULL, tokens INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    usage_tokens INTEGER NOT NULL DEFAULT 0, remote_state TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, error TEXT);
CREATE TABLE IF NOT EXISTS dirty(custom_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS lock(
    id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL,
    since REAL NOT NULL, command TEXT NOT NULL, owner TEXT NOT NULL, started TEXT);
"""

OPEN_JOB_STATES = ("planned", "uploaded", "creating", "submitted")
_JOB_FIELDS = frozenset({"state", "attempt", "remote_id", "input_file", "output_file",
                         "error_file", "completed", "failed", "usage_tokens", "remote_state",
                         "error"})


@dataclass(frozen=True)
class DocumentState:
    """What the ledger knows of one document."""

    uri: str
    fingerprint: str
    content_hash: str | None
    pending_hash: str | None
    status: str
    reason: str | None


@dataclass(frozen=True)
class Job:
    """One batch job: a shard file and where it stands with its backend.

    ``state`` is the ledger's record of intent: ``planned`` (shard written),
    ``uploaded`` (``input_file`` known), ``creating`` (a create call may have reached
    the service), ``submitted`` (``remote_id`` known), then ``ingested`` or ``abandoned``.
    """

    id: int
    backend: str
    shard: Path
    state: str
    attempt: int
    remote_id: str | None
    input_file: str | None
    output_file: str | None
    error_file: str | None
    requests: int
    tokens: int
    completed: int
    failed: int
    usage_tokens: int
    remote_state: str | None
    created_at: float

    @property
    def label(self) -> str:
        """The name the job's batch carries in its metadata (new for each attempt)."""
        return f"job{self.id:06d}-a{self.attempt}"


@dataclass(frozen=True)
class Settled:
    """How a finished job's keys ended: embedded, back to pending, or failed for good."""

    embedded: int
    requeued: int
    failed: int


@dataclass(frozen=True)
class KeyRow:
    """What the store row of one content key shows: its passage and its live places.

    ``pending_refs`` counts the chunks that hold the key without showing it (a pending or
    a retired version): while there are any, the row is kept, hidden.
    """

    custom_id: str
    text: str
    context: str
    places: tuple[Place, ...]
    pending_refs: int


class Ledger:
    """The SQLite ledger of one index. Every write method commits its own transaction."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot open the ledger {path}: {exc}") from exc

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- meta and lock -------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        """All recorded index settings (model, dimensions, chunker)."""
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, values: dict[str, str]) -> None:
        """Record index settings."""
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def clear_meta(self, key: str) -> None:
        """Forget one recorded setting."""
        with self._tx() as db:
            db.execute("DELETE FROM meta WHERE key = ?", (key,))

    @contextmanager
    def lock(self, command: str, wait: bool = False) -> Iterator[None]:
        """Hold the index's single-writer lock; a lock left by a dead process is taken over.

        Raises :class:`LockedError` naming the holder, or with ``wait`` polls until free.
        """
        host, pid, owner = socket.gethostname(), os.getpid(), uuid.uuid4().hex
        while True:
            try:
                self._acquire(command, host, pid, owner)
                break
            except LockedError:
                if not wait:
                    raise
                time.sleep(0.5)
        try:
            yield
        finally:
            self._db.execute("DELETE FROM lock WHERE owner = ?", (owner,))

    def _acquire(self, command: str, host: str, pid: int, owner: str) -> None:
        with self._tx() as db:
            row = db.execute("SELECT pid, host, since, command, started FROM lock").fetchone()
            if row and row[1] == host and _alive(row[0], row[4]):
                raise LockedError(
                    f"another run holds the index ({row[3]!r}, pid {row[0]} on {row[1]}, "
                    f"since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(row[2]))}); "
                    "wait for it to finish, or pass --wait-lock"
                )
            if row and row[1] != host:
                raise LockedError(
                    f"a run on host {row[1]} (pid {row[0]}) holds the index; "
                    "wait for it, or remove the lock if that host is gone"
                )
            db.execute("INSERT OR REPLACE INTO lock VALUES (1, ?, ?, ?, ?, ?, ?)",
                       (pid, host, time.time(), command, owner, _started(pid)))

    # -- documents -----------------------------------------------------------------

    def documents(self, source: str) -> dict[str, DocumentState]:
        """Every document recorded under ``source``, by URI."""
        rows = self._db.execute(
            "SELECT uri, fingerprint, content_hash, pending_hash, status, reason "
            "FROM documents WHERE source = ?", (source,))
        return {row[0]: DocumentState(*row) for row in rows}

    def stage(self, uri: str, source: str, fingerprint: str, content_hash: str, title: str,
              chunks: Sequence[tuple[Chunk, str]]) -> None:
        """Record a new version of a document as pending, with its chunks and their keys."""
        now = time.time()
        with self._tx() as db:
            old = [r[0] for r in db.execute(
                "SELECT custom_id FROM chunks WHERE uri = ? AND version = 'pending'", (uri,))]
            db.execute("DELETE FROM chunks WHERE uri = ? AND version = 'pending'", (uri,))
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, NULL, ?, ?, 'pending', NULL, ?) "
                "ON CONFLICT(uri) DO UPDATE SET fingerprint = excluded.fingerprint, "
                "pending_hash = excluded.pending_hash, title = excluded.title, "
                "status = 'pending', reason = NULL, updated_at = excluded.updated_at",
                (uri, source, fingerprint, content_hash, title, now))
            db.executemany(
                "INSERT INTO chunks VALUES (?, 'pending', ?, ?, ?, ?, ?, ?)",
                [(uri, c.ordinal, key, " › ".join(c.heading_path), c.page, c.line_start,
                  c.line_end) for c, key in chunks])
            db.executemany(
                "INSERT OR IGNORE INTO keys (custom_id, text, context, tokens, state) "
                "VALUES (?, ?, ?, ?, 'pending')",
                [(key, c.text, c.context, c.tokens) for c, key in chunks])
            db.executemany("INSERT OR IGNORE INTO dirty VALUES (?)", [(k,) for k in old])

    def touch(self, uri: str, fingerprint: str) -> None:
        """Record a new fingerprint for a document whose content did not change."""
        with self._tx() as db:
            db.execute("UPDATE documents SET fingerprint = ?, reason = NULL WHERE uri = ?",
                       (fingerprint, uri))

    def record_skip(self, uri: str, source: str, fingerprint: str, reason: str) -> None:
        """Record why a document could not be read; a live version of it stays searchable."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, NULL, NULL, NULL, 'skipped', ?, ?) "
                "ON CONFLICT(uri) DO UPDATE SET fingerprint = excluded.fingerprint, "
                "reason = excluded.reason, updated_at = excluded.updated_at, "
                "status = CASE WHEN documents.content_hash IS NULL THEN 'skipped' "
                "ELSE documents.status END",
                (uri, source, fingerprint, reason, time.time()))

    def withdraw(self, uri: str, source: str, fingerprint: str, reason: str) -> None:
        """Record that a document holds no text any more: it leaves search on the next
        publish and is kept as skipped with ``reason``.

        Its chunks whose keys have a vector (or one on the way) are kept as a *retired*
        version, which search never shows but which keeps those store rows, so the same
        text coming back is published again without being paid for again.
        """
        worthless = ("custom_id NOT IN (SELECT custom_id FROM keys "
                     "WHERE state IN ('embedded', 'queued'))")
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO dirty SELECT custom_id FROM chunks "
                       f"WHERE uri = ? AND (version != 'retired' OR {worthless})", (uri,))
            db.execute(f"DELETE FROM chunks WHERE uri = ? AND {worthless}", (uri,))
            # ordinals of both versions may collide: a retired chunk takes a unique one
            db.execute("UPDATE chunks SET version = 'retired', ordinal = -rowid "
                       "WHERE uri = ? AND version != 'retired'", (uri,))
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, NULL, NULL, NULL, 'skipped', ?, ?) "
                "ON CONFLICT(uri) DO UPDATE SET fingerprint = excluded.fingerprint, "
                "content_hash = NULL, pending_hash = NULL, title = NULL, status = 'skipped', "
                "reason = excluded.reason, updated_at = excluded.updated_at",
                (uri, source, fingerprint, reason, time.time()))

    def remove(self, uris: Iterable[str]) -> None:
        """Forget deleted documents; their keys are rewritten (or dropped) on the next flush."""
        with self._tx() as db:
            for uri in uris:
                db.execute("INSERT OR IGNORE INTO dirty SELECT custom_id FROM chunks "
                           "WHERE uri = ?", (uri,))
                db.execute("DELETE FROM chunks WHERE uri = ?", (uri,))
                db.execute("DELETE FROM documents WHERE uri = ?", (uri,))

    def publishable(self) -> list[str]:
        """Pending documents whose every chunk key is embedded or has failed for good."""
        rows = self._db.execute(
            "SELECT d.uri FROM documents d WHERE d.status = 'pending' AND NOT EXISTS ("
            " SELECT 1 FROM chunks c JOIN keys k ON k.custom_id = c.custom_id"
            " WHERE c.uri = d.uri AND c.version = 'pending'"
            " AND k.state IN ('pending', 'queued'))")
        return [r[0] for r in rows]

    def publish(self, uris: Sequence[str]) -> None:
        """Swap each document's pending version in for its live (or retired) one,
        atomically per call."""
        with self._tx() as db:
            for uri in uris:
                db.execute("INSERT OR IGNORE INTO dirty SELECT custom_id FROM chunks "
                           "WHERE uri = ?", (uri,))
                db.execute("DELETE FROM chunks WHERE uri = ? AND version != 'pending'", (uri,))
                db.execute("UPDATE chunks SET version = 'live' WHERE uri = ?", (uri,))
                db.execute("UPDATE documents SET status = 'indexed', content_hash = pending_hash,"
                           " pending_hash = NULL, reason = NULL WHERE uri = ?", (uri,))

    # -- keys and jobs -------------------------------------------------------------

    def has_pending(self) -> bool:
        """True when some key waits for a job."""
        return self._db.execute(
            "SELECT 1 FROM keys WHERE state = 'pending' LIMIT 1").fetchone() is not None

    def count_pending(self) -> int:
        """How many keys wait for a job."""
        return int(self._db.execute(
            "SELECT count(*) FROM keys WHERE state = 'pending'").fetchone()[0])

    def pending_requests(self) -> Iterator[Request]:
        """Keys waiting for a job, in a stable order, streamed (memory stays flat)."""
        rows = self._db.execute(
            "SELECT custom_id, text, context, tokens FROM keys WHERE state = 'pending' "
            "ORDER BY rowid")
        for key, text, ctx, tokens in rows:
            yield Request(key, f"{ctx}\n\n{text}" if ctx else text, tokens)

    def create_job(self, backend: str, shard: Shard) -> int:
        """Record a shard as a planned job and queue its keys in it (before any remote call)."""
        now = time.time()
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO jobs (backend, shard, state, requests, tokens, created_at, "
                "updated_at) VALUES (?, ?, 'planned', ?, ?, ?, ?)",
                (backend, str(shard.path), shard.requests, shard.tokens, now, now))
            job_id = int(cursor.lastrowid or 0)
            db.executemany("UPDATE keys SET state = 'queued', job_id = ? WHERE custom_id = ?",
                           [(job_id, key) for key in shard.custom_ids])
        return job_id

    def set_job(self, job_id: int, **fields: object) -> None:
        """Record what is now known of a job (state, remote ids, counts, error)."""
        unknown = set(fields) - _JOB_FIELDS
        if unknown:
            raise ValueError(f"not job fields: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ?",
                       (*fields.values(), time.time(), job_id))

    def jobs(self, states: Sequence[str] = OPEN_JOB_STATES) -> list[Job]:
        """Jobs in ``states`` (by default the open ones), oldest first."""
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            "SELECT id, backend, shard, state, attempt, remote_id, input_file, output_file, "
            "error_file, requests, tokens, completed, failed, usage_tokens, remote_state, "
            f"created_at FROM jobs WHERE state IN ({marks}) ORDER BY id", tuple(states))
        return [Job(r[0], r[1], Path(r[2]), *r[3:]) for r in rows]

    def open_jobs(self) -> list[Job]:
        """Jobs not yet ingested, oldest first."""
        return self.jobs()

    def job_sources(self, keys: Sequence[str]) -> dict[str, str]:
        """For error messages: a document (and location) each key comes from."""
        found: dict[str, str] = {}
        for part in _slices(keys):
            marks = ",".join("?" * len(part))
            for key, uri, start in self._db.execute(
                    f"SELECT custom_id, uri, line_start FROM chunks WHERE custom_id IN ({marks})",
                    part):
                found.setdefault(key, f"{uri}:{start}" if start else uri)
        return found

    def finish_job(self, job_id: int, embedded: Sequence[str],
                   failed: Sequence[tuple[str, str, bool]], max_attempts: int) -> Settled:
        """Settle every key of a job: embedded; failed (a retryable failure goes back to
        pending while attempts remain); or missing from both files (likewise)."""
        with self._tx() as db:
            db.executemany("UPDATE keys SET state = 'embedded', error = NULL "
                           "WHERE custom_id = ? AND job_id = ?", [(k, job_id) for k in embedded])
            db.executemany(
                "UPDATE keys SET attempts = attempts + 1, error = ?, "
                "state = CASE WHEN ? AND attempts + 1 < ? THEN 'pending' ELSE 'failed' END "
                "WHERE custom_id = ? AND job_id = ? AND state = 'queued'",
                [(error, retryable, max_attempts, key, job_id)
                 for key, error, retryable in failed])
            db.execute(
                "UPDATE keys SET attempts = attempts + 1, error = 'missing from the batch output',"
                " state = CASE WHEN attempts + 1 < ? THEN 'pending' ELSE 'failed' END "
                "WHERE job_id = ? AND state = 'queued'", (max_attempts, job_id))
            outcome = dict(db.execute(
                "SELECT state, count(*) FROM keys WHERE job_id = ? GROUP BY state", (job_id,)))
            db.execute("UPDATE keys SET job_id = NULL WHERE job_id = ?", (job_id,))
            db.execute("UPDATE jobs SET state = 'ingested', updated_at = ? WHERE id = ?",
                       (time.time(), job_id))
            db.executemany("INSERT OR IGNORE INTO dirty VALUES (?)", [(k,) for k in embedded])
        return Settled(outcome.get("embedded", 0), outcome.get("pending", 0),
                       outcome.get("failed", 0))

    def abandon_job(self, job_id: int, reason: str) -> None:
        """Give a job up without charging its keys an attempt: they go back to pending."""
        with self._tx() as db:
            db.execute("UPDATE keys SET state = 'pending', job_id = NULL "
                       "WHERE job_id = ? AND state = 'queued'", (job_id,))
            db.execute("UPDATE jobs SET state = 'abandoned', error = ?, updated_at = ? "
                       "WHERE id = ?", (reason, time.time(), job_id))

    def job_keys(self, job_id: int) -> list[str]:
        """The keys still queued in a job."""
        return [r[0] for r in self._db.execute(
            "SELECT custom_id FROM keys WHERE job_id = ? AND state = 'queued'", (job_id,))]

    # -- store rows ----------------------------------------------------------------

    def dirty_keys(self) -> list[str]:
        """Keys whose store rows must be rewritten."""
        return [r[0] for r in self._db.execute("SELECT custom_id FROM dirty")]

    def has_dirty(self) -> bool:
        """True when some store row must be rewritten."""
        return self._db.execute("SELECT 1 FROM dirty LIMIT 1").fetchone() is not None

    def dirty_rows(self, group: int = 2_000) -> Iterator[list[KeyRow]]:
        """Every dirty key's :class:`KeyRow`, ``group`` at a time (memory stays flat).

        It reads one snapshot (later writes are not seen) through a connection of its own,
        so it may be consumed on another thread: LanceDB pulls a streamed input from its
        own threads.
        """
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("BEGIN")
            after = 0
            while True:
                batch = db.execute("SELECT rowid, custom_id FROM dirty WHERE rowid > ? "
                                   "ORDER BY rowid LIMIT ?", (after, group)).fetchall()
                if not batch:
                    break
                after = batch[-1][0]
                yield _key_rows(db, [key for _, key in batch])
            db.execute("COMMIT")
        finally:
            db.close()

    def key_rows(self, keys: Sequence[str]) -> list[KeyRow]:
        """Each key's passage, live places and count of other (pending, retired) references."""
        return _key_rows(self._db, keys)

    def embedded(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that have a vector in the store."""
        return {k for k, state in self.key_states(keys).items() if state == "embedded"}

    def key_states(self, keys: Sequence[str]) -> dict[str, str]:
        """The state of each of ``keys`` the ledger knows."""
        found: dict[str, str] = {}
        for part in _slices(keys):
            marks = ",".join("?" * len(part))
            found.update(self._db.execute(
                f"SELECT custom_id, state FROM keys WHERE custom_id IN ({marks})", part))
        return found

    def keys_in_state(self, state: str) -> set[str]:
        """Every key in ``state``."""
        return {r[0] for r in self._db.execute(
            "SELECT custom_id FROM keys WHERE state = ?", (state,))}

    def requeue(self, keys: Sequence[str]) -> None:
        """Send keys back to pending (their vectors are lost); the next sync embeds them."""
        with self._tx() as db:
            db.executemany("UPDATE keys SET state = 'pending', job_id = NULL, attempts = 0 "
                           "WHERE custom_id = ?", [(k,) for k in keys])

    def mark_dirty(self, keys: Sequence[str]) -> None:
        """Have the next sync rewrite these keys' store rows."""
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO dirty VALUES (?)", [(k,) for k in keys])

    def settle_dirty(self, keys: Sequence[str], dropped: Sequence[str]) -> None:
        """Clear ``keys`` from the dirty list and forget ``dropped`` keys; those stay dirty
        until :meth:`clear_dirty`, so a run killed before their store rows are deleted
        has the next one delete them."""
        gone = set(dropped)
        with self._tx() as db:
            db.executemany("DELETE FROM dirty WHERE custom_id = ?",
                           [(k,) for k in keys if k not in gone])
            db.executemany("DELETE FROM keys WHERE custom_id = ? AND state != 'queued'",
                           [(k,) for k in dropped])

    def clear_dirty(self, keys: Sequence[str]) -> None:
        """Clear ``keys`` from the dirty list."""
        with self._tx() as db:
            db.executemany("DELETE FROM dirty WHERE custom_id = ?", [(k,) for k in keys])

    # -- reporting -----------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Totals for ``status``: documents by status, keys by state, open jobs."""
        out: dict[str, int] = {}
        for status, n in self._db.execute("SELECT status, count(*) FROM documents GROUP BY 1"):
            out[f"documents_{status}"] = n
        for state, n in self._db.execute("SELECT state, count(*) FROM keys GROUP BY 1"):
            out[f"chunks_{state}"] = n
        out["chunks_live"] = self._db.execute(
            "SELECT count(*) FROM chunks WHERE version = 'live'").fetchone()[0]
        out["jobs_open"] = self._db.execute(
            f"SELECT count(*) FROM jobs WHERE state IN {OPEN_JOB_STATES}").fetchone()[0]
        return out

    def billed_tokens(self) -> int:
        """Tokens of every ingested job, as the backend reported its usage."""
        return int(self._db.execute(
            "SELECT coalesce(sum(usage_tokens), 0) FROM jobs").fetchone()[0])

    def skips(self) -> list[tuple[str, str]]:
        """Documents with a problem and the reason: unreadable, or chunks failed for good."""
        return list(self._db.execute(
            "SELECT uri, reason FROM documents WHERE reason IS NOT NULL "
            "UNION ALL "
            "SELECT c.uri, count(*) || ' chunk(s) failed to embed: ' || min(k.error) "
            "FROM chunks c JOIN keys k USING (custom_id) "
            "WHERE k.state = 'failed' GROUP BY c.uri ORDER BY 1"))


def _key_rows(db: sqlite3.Connection, keys: Sequence[str]) -> list[KeyRow]:
    places: dict[str, list[Place]] = {k: [] for k in keys}
    pending = dict.fromkeys(keys, 0)
    texts: dict[str, tuple[str, str]] = {}
    for part in _slices(keys):
        marks = ",".join("?" * len(part))
        for key, text, ctx in db.execute(
                f"SELECT custom_id, text, context FROM keys WHERE custom_id IN ({marks})", part):
            texts[key] = (text, ctx)
        for key, version, uri, heading, page, start, end in db.execute(
                "SELECT custom_id, version, uri, heading, page, line_start, line_end "
                f"FROM chunks WHERE custom_id IN ({marks}) ORDER BY uri, ordinal", part):
            if version == "live":
                places[key].append(Place(uri, heading, page, start, end))
            else:
                pending[key] += 1
    return [KeyRow(k, *texts.get(k, ("", "")), tuple(places[k]), pending[k]) for k in keys]


def _slices(keys: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


def _alive(pid: int, started: str | None) -> bool:
    """Whether the lock holder still runs: its pid exists and, where the system tells
    (Linux), it is the same process that took the lock, not a later one given its pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _started(pid)
    return started is None or now is None or now == started


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]
