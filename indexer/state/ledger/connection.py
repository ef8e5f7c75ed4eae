"""The ledger's SQLite connection: every failure surfaces as an error naming the file, a
corrupt file as :class:`~indexer.errors.DamageError`; transactions for the ledger's parts."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from indexer.errors import DamageError, StateError
from indexer.records import Passages, Place
from indexer.state.ledger.records import KeyRow

_GROUP_CACHE_KIB = 16_384
"""The ledger connection's page cache while a group is open, in KiB (its memory bound)."""


class LedgerBase:
    """What the ledger's parts share: the guarded connection and its transactions."""

    path: Path
    _db: _Guarded

    @contextmanager
    def _tx(self) -> Iterator[_Guarded]:
        """One write, all or nothing: a transaction of its own, or inside :meth:`grouped`
        a savepoint (undone alone if it fails; committed with the group)."""
        if self._db.in_transaction:
            self._db.execute("SAVEPOINT step")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK TO step")
                self._db.execute("RELEASE step")
                raise
            self._db.execute("RELEASE step")
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def grouped(self) -> Iterator[Callable[[], None]]:
        """Commit the writes made inside together, not one by one: each commit writes every
        page it changed, so many small ones (a document staged at a time) cost far more
        than a few large ones. Hands over a function that commits what is written so far
        (other writers wait for the ledger while a group is open: keep it short). Every
        write that completed is committed on the way out, even on an error; one that
        failed was undone alone. A run killed meanwhile loses the open group's writes."""
        def commit() -> None:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN IMMEDIATE")

        if self._db.in_transaction:  # already in a group: it commits
            yield lambda: None
            return
        # SQLite's default 2 MB page cache would spill a group's dirty pages to the WAL
        # before it commits (then write them again): the custom_id indices outgrow it
        cache = int(self._db.execute("PRAGMA cache_size").fetchone()[0])
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(f"PRAGMA cache_size=-{_GROUP_CACHE_KIB}")
            yield commit
        finally:  # what completed is kept, even on an error
            try:
                if self._db.in_transaction:
                    self._db.execute("COMMIT")
            finally:
                self._db.execute(f"PRAGMA cache_size={cache}")  # its memory back


def reader(path: Path) -> sqlite3.Connection:
    """A connection of its own to the ledger at ``path``, usable from any thread (a
    streamed read that another library pulls from its own threads)."""
    return sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)


def damaged(path: Path, detail: str) -> DamageError:
    """The error for a ledger whose file is corrupt."""
    return DamageError(f"the ledger {path} is damaged ({detail}); run `indexer doctor --repair` "
                       "to set it aside and rebuild it from the search store")


def set_aside(path: Path) -> Path | None:
    """Move a ledger file (and its ``-wal`` and ``-shm``) to ``<name>.corrupt-<time>``;
    returns the new name of the main file, if it existed."""
    closed_mark(path).unlink(missing_ok=True)
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, target.with_name(target.name + suffix))
    return target if target.exists() else None


def stamp(path: Path) -> str:
    """What identifies the bytes of the ledger at ``path`` and its WAL: device, inode, size,
    modification and change times (any write to either file moves the change time)."""
    parts = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(path.with_name(path.name + suffix))
        except FileNotFoundError:
            parts.append("-")
            continue
        parts.append(f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
    return " ".join(parts)


def closed_mark(path: Path) -> Path:
    """Where the stamp of the ledger at ``path`` is kept while it is closed."""
    return path.with_name(path.name + "-closed")


def closed_as_left(path: Path, current: str) -> bool:
    """True when the ledger at ``path`` is, by its :func:`stamp` ``current``, exactly as
    this program left it when it last closed it cleanly (see :func:`mark_closed`)."""
    try:
        return closed_mark(path).read_text() == current
    except OSError:
        return False


def mark_closed(path: Path) -> None:
    """Record the :func:`stamp` of a ledger just closed cleanly (no damage met, every
    connection closed): until either file changes, opening it need not check it again."""
    mark = closed_mark(path)
    try:
        scratch = mark.with_name(f"{mark.name}.{os.getpid()}")
        scratch.write_text(stamp(path))
        os.replace(scratch, mark)
    except OSError:
        pass  # an unwritable folder: the next open checks the file again


class _Guarded:
    """The ledger's connection: a SQLite failure surfaces as an error naming the file."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._connection, self._path = db, path
        self.damage_met = False

    @contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise  # a bug, not a damaged file
        except sqlite3.DatabaseError as exc:
            name = getattr(exc, "sqlite_errorname", "") or ""
            if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
                self.damage_met = True
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

_PASSAGES = (
    "SELECT j.key, j.value, k.text, k.context, c.uri, c.heading, c.page, c.line_start, "
    "c.line_end FROM json_each(?) j LEFT JOIN keys k ON k.custom_id = j.value "
    "LEFT JOIN chunks c ON c.custom_id = j.value AND c.version = 'live' "
    "ORDER BY j.key, c.uri, c.ordinal")
"""Each key asked for (in that order) with its passage and live places, one row a place."""


def _passages(db: sqlite3.Connection | _Guarded, keys: Sequence[str]) -> Passages:
    """The :class:`Passages` of ``keys`` (a key the ledger lacks: no text, no places), in
    one query and without an object per row: what a :class:`KeyRow` each cost twice."""
    ids: list[str] = []
    texts: list[str] = []
    contexts: list[str] = []
    counts: list[int] = []
    uris: list[str] = []
    headings: list[str] = []
    pages: list[int | None] = []
    starts: list[int | None] = []
    ends: list[int | None] = []
    last = -1
    for at, key, text, ctx, uri, heading, page, start, end in db.execute(
            _PASSAGES, (json.dumps(list(keys), separators=(",", ":")),)):
        if at != last:
            last = at
            ids.append(key)
            texts.append(text or "")
            contexts.append(ctx or "")
            counts.append(0)
        if uri is not None:
            counts[-1] += 1
            uris.append(uri)
            headings.append(heading)
            pages.append(page)
            starts.append(start)
            ends.append(end)
    return Passages(ids, texts, contexts, counts, uris, headings, pages, starts, ends)


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
