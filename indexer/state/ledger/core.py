"""The :class:`Ledger`: its file, schema and migrations, meta settings and the writer
lock, with its document and key records mixed in."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.errors import LockedError, StateError
from indexer.state.ledger.connection import (
    _Guarded,
    closed_as_left,
    closed_mark,
    damaged,
    mark_closed,
    set_aside,
    stamp,
)
from indexer.state.ledger.documents import DocumentRecords
from indexer.state.ledger.keys import KeyRecords
from indexer.state.ledger.passages import PassageRecords
from indexer.state.ledger.records import _ADDED_JOB_COLUMNS
from indexer.state.ledger.sources import SourceRecords
from indexer.state.lock import Holder, refusal

_CHUNKS_KEY = "CREATE INDEX IF NOT EXISTS chunks_key ON chunks(custom_id)"
_SCHEMA = f"""
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
{_CHUNKS_KEY};
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
CREATE TABLE IF NOT EXISTS sources(
    uri TEXT PRIMARY KEY, synced_at REAL, error TEXT, failed_at REAL);
CREATE TABLE IF NOT EXISTS lock(
    id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL,
    since REAL NOT NULL, command TEXT NOT NULL, owner TEXT NOT NULL, started TEXT);
"""


class Ledger(DocumentRecords, KeyRecords, SourceRecords, PassageRecords):
    """The SQLite ledger of one index. Every write method commits its own transaction.

    Opening checks the file (``PRAGMA quick_check``), unless it is exactly as a clean
    close left it (its stamp, see :func:`~indexer.state.ledger.connection.mark_closed`;
    ``verify`` checks it whatever): the check reads the whole file, which would make
    every command's cost grow with the index. A damaged ledger, on open or later, raises
    :class:`DamageError` (``indexer doctor --repair`` sets it aside and rebuilds it), and
    any other SQLite failure a :class:`StateError` naming the file.
    """

    def __init__(self, path: Path | None, readonly: bool = False, verify: bool = False
                 ) -> None:
        self.path = path if path is not None else Path(":memory:")
        self.readonly = readonly
        self._handed = {}
        self._checked = path is None or (not verify and closed_as_left(path, stamp(path)))
        try:
            database, uri = _address(path, readonly)
            connection = sqlite3.connect(database, timeout=30, isolation_level=None, uri=uri)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the ledger {path}: {exc}") from exc
        self._db = _Guarded(connection, self.path)
        try:
            if path is not None and readonly:
                self._db.execute("PRAGMA query_only=ON")
                self._check()
                return
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._check()
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._free_pending()
        except StateError:
            connection.close()
            raise

    def _check(self) -> None:
        """Refuse a damaged file (``PRAGMA quick_check``), unless known to be whole."""
        if self._checked:
            return
        problems = [r[0] for r in self._db.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            detail = " ".join(" ".join(problems).replace("*** in database main ***", "")
                              .split())
            raise damaged(self.path, detail[:200])

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

    def _free_pending(self) -> None:
        """A pending key belongs to no job (every writer clears ``job_id`` when a key goes
        back to pending); a ledger an earlier version left otherwise is put right, since
        pending keys are read through that index range."""
        stray = "FROM keys WHERE state = 'pending' AND job_id IS NOT NULL"
        if self._db.execute(f"SELECT 1 {stray} LIMIT 1").fetchone() is not None:
            with self._tx() as db:
                db.execute(f"UPDATE keys SET job_id = NULL WHERE rowid IN (SELECT rowid {stray})")

    def _outdated(self) -> bool:
        columns = {row[1]: bool(row[3]) for row in self._db.execute("PRAGMA table_info(jobs)")}
        return columns.get("usage_tokens", False) or any(
            name not in columns for name, _ in _ADDED_JOB_COLUMNS)

    def close(self) -> None:
        """Close the database connection; a writer that met no damage records the file's
        stamp, so the next open need not read it all to check it."""
        self._db.close()
        if not self.readonly and self.path.name != ":memory:" and not self._db.damage_met:
            mark_closed(self.path)

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
    def first_staging(self) -> Iterator[None]:
        """Stage into a ledger that holds no chunk yet (a first sync) without keeping the
        chunks' key index up to date chunk by chunk: it is dropped meanwhile and built
        again at the end, by one sort (an insert at a random place of it per chunk cost
        far more). Nothing staging does reads chunks by key; a run killed meanwhile
        leaves it missing until the ledger is next opened for writing (the schema)."""
        if self._db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is not None:
            yield
            return
        with self._tx() as db:
            db.execute("DROP INDEX IF EXISTS chunks_key")
        try:
            yield
        finally:
            with self._tx() as db:
                db.execute(_CHUNKS_KEY)

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


def _address(path: Path | None, readonly: bool) -> tuple[str, bool]:
    """What ``sqlite3.connect`` is given, and whether it is a URI: an empty database in
    memory (no path), a file, or a file opened read-only: ``mode=ro``, or ``immutable``
    where its folder cannot be written (read-only media, where WAL's shared-memory file
    cannot be made; a snapshot's ledger was closed by its writer, so nothing waits in
    its WAL)."""
    if path is None:
        return ":memory:", False
    if not readonly:
        return str(path), False
    uri = path.resolve().as_uri()
    return uri + ("?mode=ro" if os.access(path.parent, os.W_OK) else "?immutable=1"), True


def install(built: Ledger, path: Path) -> None:
    """Close a ledger rebuilt in a scratch file and move it to ``path`` (where no ledger is)."""
    built._db.execute("PRAGMA journal_mode=DELETE")  # folds the WAL into the file
    built.close()
    set_aside(path)  # a stale -wal or -shm would be replayed into the new file
    os.replace(built.path, path)
    closed_mark(built.path).unlink(missing_ok=True)  # the file is checked on its next open


