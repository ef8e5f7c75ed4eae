"""The SQLite ledger: the pipeline's source of truth, and the only module that touches SQLite.

It records every document (fingerprint, content hash, status), every chunk of the
live and the pending version of each document (and the retired one of a document that
was emptied, which keeps its vectors but is never shown), every content key and its state
(``pending`` → ``queued`` in a job → ``embedded`` or ``failed``), every batch job,
the keys whose store rows must be rewritten (``dirty``), and the writer lock.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.batchfiles.requests import Request, Shard, estimate_tokens
from indexer.errors import DamageError, LockedError, StateError
from indexer.records import Chunk, Place
from indexer.state.lock import Holder, refusal

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
    usage_tokens INTEGER DEFAULT 0, remote_state TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, error TEXT,
    misses INTEGER NOT NULL DEFAULT 0, missing_since REAL);
CREATE TABLE IF NOT EXISTS dirty(custom_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS lock(
    id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL,
    since REAL NOT NULL, command TEXT NOT NULL, owner TEXT NOT NULL, started TEXT);
"""

OPEN_JOB_STATES = ("planned", "uploaded", "creating", "submitted")
_JOB_FIELDS = frozenset({"state", "attempt", "remote_id", "input_file", "output_file",
                         "error_file", "completed", "failed", "usage_tokens", "remote_state",
                         "error", "misses", "missing_since"})
_ADDED_JOB_COLUMNS = (("misses", "INTEGER NOT NULL DEFAULT 0"), ("missing_since", "REAL"))
"""Job columns added after the first release, with their declarations (for migration)."""


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
    the service), ``submitted`` (``remote_id`` known), then ``ingested``, ``abandoned``
    or ``lost`` (not found for a while, nor in the batch list; adopted if it turns up).
    ``usage_tokens`` is None when the service reported no usage. ``misses`` counts the
    status checks in a row that did not find the batch, since ``missing_since``.
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
    usage_tokens: int | None
    remote_state: str | None
    created_at: float
    misses: int = 0
    missing_since: float | None = None

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


@dataclass(frozen=True)
class RestoredJob:
    """A batch the service still lists, recorded again when the ledger is rebuilt.

    ``state`` is ``submitted`` (the next sync collects it) or ``ingested`` (done before
    the ledger was lost: recorded so that new jobs never reuse its label); ``requests``
    are its keys the store lacks, queued in it.
    """

    id: int
    attempt: int
    backend: str
    shard: Path
    state: str
    remote_id: str
    input_file: str | None
    requests: tuple[Request, ...] = ()
    created_at: float = 0.0


class Ledger:
    """The SQLite ledger of one index. Every write method commits its own transaction.

    Opening checks the file (``PRAGMA quick_check``); a damaged ledger, on open or later,
    raises :class:`DamageError` (``indexer doctor --repair`` sets it aside and rebuilds
    it), and any other SQLite failure a :class:`StateError` naming the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the ledger {path}: {exc}") from exc
        self._db = _Guarded(connection, path)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            problems = [r[0] for r in self._db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                detail = " ".join(" ".join(problems).replace("*** in database main ***", "")
                                  .split())
                raise damaged(path, detail[:200])
            self._db.executescript(_SCHEMA)
            self._migrate()
        except StateError:
            connection.close()
            raise

    def _migrate(self) -> None:
        """Bring a ledger an earlier version wrote up to this schema, in place."""
        if not self._outdated():
            return
        with self._tx() as db:
            columns = {row[1]: bool(row[3]) for row in db.execute("PRAGMA table_info(jobs)")}
            for name, declaration in _ADDED_JOB_COLUMNS:
                if name not in columns:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")
            if columns.get("usage_tokens"):  # NOT NULL: unknown usage could not be recorded
                sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' "
                                 "AND name = 'jobs'").fetchone()[0]
                db.execute("ALTER TABLE jobs RENAME TO jobs_before_migration")
                db.execute(sql.replace("usage_tokens INTEGER NOT NULL", "usage_tokens INTEGER"))
                db.execute("INSERT INTO jobs SELECT * FROM jobs_before_migration")
                db.execute("DROP TABLE jobs_before_migration")

    def _outdated(self) -> bool:
        columns = {row[1]: bool(row[3]) for row in self._db.execute("PRAGMA table_info(jobs)")}
        return columns.get("usage_tokens", False) or any(
            name not in columns for name, _ in _ADDED_JOB_COLUMNS)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[_Guarded]:
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
        me = Holder.me(command)
        while True:
            try:
                self._acquire(me)
                break
            except LockedError:
                if not wait:
                    raise
                time.sleep(0.5)
        try:
            yield
        finally:
            self._db.execute("DELETE FROM lock WHERE owner = ?", (me.owner,))

    def _acquire(self, me: Holder) -> None:
        with self._tx() as db:
            row = db.execute(
                "SELECT pid, host, since, command, owner, started FROM lock").fetchone()
            refused = refusal(Holder(*row) if row else None, me.host)
            if refused is not None:
                raise refused
            db.execute("INSERT OR REPLACE INTO lock VALUES (1, ?, ?, ?, ?, ?, ?)",
                       (me.pid, me.host, time.time(), me.command, me.owner, me.started))

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
            db.executemany(  # a key rebuilt from a batch file knows only its embed text
                "INSERT INTO keys (custom_id, text, context, tokens, state) "
                "VALUES (?, ?, ?, ?, 'pending') ON CONFLICT(custom_id) DO UPDATE SET "
                "text = excluded.text, context = excluded.context, tokens = excluded.tokens "
                "WHERE keys.text != excluded.text OR keys.context != excluded.context",
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

    def pending_keys(self) -> list[str]:
        """Every key waiting for a job."""
        return [r[0] for r in self._db.execute(
            "SELECT custom_id FROM keys WHERE state = 'pending' ORDER BY rowid")]

    def holds_vectors(self) -> bool:
        """True when some key is embedded (so the store must have its table)."""
        return self._db.execute(
            "SELECT 1 FROM keys WHERE state = 'embedded' LIMIT 1").fetchone() is not None

    def adopt_stored(self, keys: Sequence[str]) -> None:
        """Record pending keys whose vector the store already holds as embedded: they are
        never submitted again, and their rows are rewritten on the next flush."""
        with self._tx() as db:
            db.executemany("UPDATE keys SET state = 'embedded', job_id = NULL, error = NULL "
                           "WHERE custom_id = ? AND state = 'pending'", [(k,) for k in keys])
            db.executemany("INSERT OR IGNORE INTO dirty VALUES (?)", [(k,) for k in keys])

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
            f"created_at, misses, missing_since FROM jobs WHERE state IN ({marks}) ORDER BY id",
            tuple(states))
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

    def lose_job(self, job_id: int, reason: str, max_attempts: int) -> Settled:
        """Record a batch as lost: its queued keys are charged an attempt and go back to
        pending (failed once attempts run out). The job keeps its label, so a batch that
        turns up again under it is recognised and adopted."""
        with self._tx() as db:
            db.execute(
                "UPDATE keys SET attempts = attempts + 1, error = ?, "
                "state = CASE WHEN attempts + 1 < ? THEN 'pending' ELSE 'failed' END "
                "WHERE job_id = ? AND state = 'queued'", (reason, max_attempts, job_id))
            outcome = dict(db.execute(
                "SELECT state, count(*) FROM keys WHERE job_id = ? GROUP BY state", (job_id,)))
            db.execute("UPDATE keys SET job_id = NULL WHERE job_id = ?", (job_id,))
            db.execute("UPDATE jobs SET state = 'lost', error = ?, updated_at = ? WHERE id = ?",
                       (reason, time.time(), job_id))
        return Settled(0, outcome.get("pending", 0), outcome.get("failed", 0))

    def adopt(self, keys: Sequence[str]) -> tuple[int, set[int]]:
        """Mark keys embedded whose vectors came from a batch they were no longer queued in
        (one that turned up again after it was given up): whatever job, pending or failed
        state they were in, they are settled now. Returns how many changed, and the jobs
        they were taken out of."""
        with self._tx() as db:
            changed, taken_from = 0, set()
            for key in keys:
                row = db.execute("SELECT job_id FROM keys WHERE custom_id = ? "
                                 "AND state != 'embedded'", (key,)).fetchone()
                if row is None:
                    continue
                db.execute("UPDATE keys SET state = 'embedded', error = NULL, job_id = NULL "
                           "WHERE custom_id = ?", (key,))
                changed += 1
                if row[0] is not None:
                    taken_from.add(int(row[0]))
            db.executemany("INSERT OR IGNORE INTO dirty VALUES (?)", [(k,) for k in keys])
        return changed, taken_from

    def queued_counts(self) -> dict[int, int]:
        """How many keys each job still holds queued."""
        return dict(self._db.execute(
            "SELECT job_id, count(*) FROM keys WHERE state = 'queued' GROUP BY job_id"))

    def result_files(self) -> set[str]:
        """Remote output and error file ids of jobs no longer open (their lines are in)."""
        marks = ",".join("?" * len(OPEN_JOB_STATES))
        rows = self._db.execute(
            f"SELECT output_file, error_file FROM jobs WHERE state NOT IN ({marks})",
            OPEN_JOB_STATES)
        return {file_id for row in rows for file_id in row if file_id}

    def abandon_job(self, job_id: int, reason: str) -> None:
        """Give a job up without charging its keys an attempt: they go back to pending."""
        with self._tx() as db:
            db.execute("UPDATE keys SET state = 'pending', job_id = NULL "
                       "WHERE job_id = ? AND state = 'queued'", (job_id,))
            db.execute("UPDATE jobs SET state = 'abandoned', error = ?, updated_at = ? "
                       "WHERE id = ?", (reason, time.time(), job_id))

    def reject_job(self, job_id: int, failed: Sequence[tuple[str, str]], reason: str) -> int:
        """Close a job the service refused: the ``failed`` keys fail for good, each with its
        own error; the job's other keys go back to pending without an attempt charged.
        Returns how many keys failed."""
        with self._tx() as db:
            cursor = db.executemany(
                "UPDATE keys SET state = 'failed', attempts = attempts + 1, error = ?, "
                "job_id = NULL WHERE custom_id = ? AND job_id = ? AND state = 'queued'",
                [(error, key, job_id) for key, error in failed])
            count = max(cursor.rowcount, 0)
            db.execute("UPDATE keys SET state = 'pending', job_id = NULL "
                       "WHERE job_id = ? AND state = 'queued'", (job_id,))
            db.execute("UPDATE jobs SET state = 'abandoned', error = ?, updated_at = ? "
                       "WHERE id = ?", (reason, time.time(), job_id))
        return count

    def count_failed(self) -> int:
        """Keys failed for good that a live or pending document still holds."""
        return int(self._db.execute(
            "SELECT count(DISTINCT k.custom_id) FROM keys k JOIN chunks c USING (custom_id) "
            "WHERE k.state = 'failed'").fetchone()[0])

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
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
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

    # -- rebuilding ----------------------------------------------------------------

    def restore_keys(self, keys: Iterable[tuple[str, str, str]]) -> None:
        """Record keys whose vector the store holds, ``(custom_id, text, context)``, as
        embedded."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO keys (custom_id, text, context, tokens, state) "
                "VALUES (?, ?, ?, ?, 'embedded')",
                ((key, text, ctx, estimate_tokens(text, 0)) for key, text, ctx in keys))

    def restore_documents(self, documents: Mapping[str, tuple[str, Sequence[tuple[str, Place]]]]
                          ) -> None:
        """Record documents (URI → source, live chunks as ``(key, place)`` in order) as
        indexed with an empty fingerprint, so the next sync reads each file again."""
        now = time.time()
        with self._tx() as db:
            for uri, (source, chunks) in documents.items():
                db.execute("INSERT OR REPLACE INTO documents VALUES "
                           "(?, ?, '', NULL, NULL, NULL, 'indexed', NULL, ?)", (uri, source, now))
                db.executemany(
                    "INSERT OR REPLACE INTO chunks VALUES (?, 'live', ?, ?, ?, ?, ?, ?)",
                    [(uri, n, key, p.heading, p.page, p.line_start, p.line_end)
                     for n, (key, p) in enumerate(chunks)])

    def restore_job(self, job: RestoredJob) -> None:
        """Record a batch found on the service, with its keys the store lacks queued in it."""
        tokens = sum(estimate_tokens(r.text, r.tokens) for r in job.requests)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO jobs (id, backend, shard, state, attempt, remote_id, "
                "input_file, requests, tokens, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.backend, str(job.shard), job.state, job.attempt, job.remote_id,
                 job.input_file, len(job.requests), tokens, job.created_at, time.time()))
            db.executemany(
                "INSERT OR IGNORE INTO keys (custom_id, text, context, tokens, state, job_id) "
                "VALUES (?, ?, '', ?, 'queued', ?)",
                [(r.custom_id, r.text, r.tokens, job.id) for r in job.requests])

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
        """Tokens of every ingested job whose usage the backend reported."""
        return int(self._db.execute(
            "SELECT coalesce(sum(usage_tokens), 0) FROM jobs").fetchone()[0])

    def jobs_without_usage(self) -> int:
        """Ingested jobs whose batch reported no token usage (their cost is unknown)."""
        return int(self._db.execute(
            "SELECT count(*) FROM jobs WHERE state = 'ingested' AND usage_tokens IS NULL"
        ).fetchone()[0])

    def skips(self) -> list[tuple[str, str]]:
        """Documents with a problem and the reason: unreadable, or chunks failed for good."""
        return list(self._db.execute(
            "SELECT uri, reason FROM documents WHERE reason IS NOT NULL "
            "UNION ALL "
            "SELECT c.uri, count(*) || ' chunk(s) failed to embed: ' || "
            "substr(min(k.error), 1, 200) "
            "FROM chunks c JOIN keys k USING (custom_id) "
            "WHERE k.state = 'failed' GROUP BY c.uri ORDER BY 1"))


def damaged(path: Path, detail: str) -> DamageError:
    """The error for a ledger whose file is corrupt."""
    return DamageError(f"the ledger {path} is damaged ({detail}); run `indexer doctor --repair` "
                       "to set it aside and rebuild it from the search store")


def set_aside(path: Path) -> Path | None:
    """Move a ledger file (and its ``-wal`` and ``-shm``) to ``<name>.corrupt-<time>``;
    returns the new name of the main file, if it existed."""
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, target.with_name(target.name + suffix))
    return target if target.exists() else None


def install(built: Ledger, path: Path) -> None:
    """Close a ledger rebuilt in a scratch file and move it to ``path`` (where no ledger is)."""
    built._db.execute("PRAGMA journal_mode=DELETE")  # folds the WAL into the file
    built.close()
    set_aside(path)  # a stale -wal or -shm would be replayed into the new file
    os.replace(built.path, path)


class _Guarded:
    """The ledger's connection: a SQLite failure surfaces as an error naming the file."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._connection, self._path = db, path

    @contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise  # a bug, not a damaged file
        except sqlite3.DatabaseError as exc:
            name = getattr(exc, "sqlite_errorname", "") or ""
            if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
                raise damaged(self._path, str(exc)) from exc
            raise StateError(f"the ledger {self._path} cannot be used: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        with self.guard():
            return _Rows(self._connection.execute(sql, params), self)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> _Rows:
        with self.guard():
            return _Rows(self._connection.executemany(sql, params), self)

    def executescript(self, sql: str) -> None:
        with self.guard():
            self._connection.executescript(sql)

    def close(self) -> None:
        self._connection.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _Rows:
    """A cursor whose reads are guarded like its connection's."""

    def __init__(self, cursor: sqlite3.Cursor, guarded: _Guarded) -> None:
        self._cursor, self._guarded = cursor, guarded

    def fetchone(self) -> Any:
        with self._guarded.guard():
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with self._guarded.guard():
            return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        while True:
            with self._guarded.guard():
                rows = self._cursor.fetchmany(500)
            if not rows:
                return
            yield from rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

def _key_rows(db: sqlite3.Connection | _Guarded, keys: Sequence[str]) -> list[KeyRow]:
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
