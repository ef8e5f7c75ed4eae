"""The ledger's documents: their versions (live, pending, retired), publication, and
the store rows each key's places make."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from indexer.records import Chunk, Passages, Place
from indexer.state.ledger.connection import LedgerBase, _key_rows, _passages, _slices, reader
from indexer.state.ledger.records import OPEN_JOB_STATES, DocumentState, KeyRow


class DocumentRecords(LedgerBase):
    """Documents, their chunk versions, and the dirty store rows they leave."""

    def documents(self, source: str) -> dict[str, DocumentState]:
        """Every document recorded under ``source``, by URI."""
        rows = self._db.execute(
            "SELECT uri, fingerprint, content_hash, pending_hash, status, reason "
            "FROM documents WHERE source = ?", (source,))
        return {row[0]: DocumentState(*row) for row in rows}

    def document_states(self, source: str, uris: Sequence[str]) -> dict[str, DocumentState]:
        """The recorded state of those of ``uris`` recorded under ``source``, by URI."""
        found: dict[str, DocumentState] = {}
        for part in _slices(uris):
            marks = ",".join("?" * len(part))
            for row in self._db.execute(
                    "SELECT uri, fingerprint, content_hash, pending_hash, status, reason "
                    f"FROM documents WHERE source = ? AND uri IN ({marks})", (source, *part)):
                found[row[0]] = DocumentState(*row)
        return found

    def document_uris(self, source: str, group: int = 2_000) -> Iterator[list[str]]:
        """Every document URI recorded under ``source``, in order, ``group`` at a time."""
        after = ""
        while uris := [r[0] for r in self._db.execute(
                "SELECT uri FROM documents WHERE source = ? AND uri > ? ORDER BY uri LIMIT ?",
                (source, after, group))]:
            yield uris
            after = uris[-1]

    def stage(self, uri: str, source: str, fingerprint: str, content_hash: str, title: str,
              chunks: Sequence[tuple[Chunk, str]]) -> int:
        """Record a new version of a document as pending, with its chunks and their keys;
        returns how many of its keys already have a vector (they cost nothing)."""
        now = time.time()
        listed = json.dumps([key for _, key in chunks], separators=(",", ":"))
        with self._tx() as db:
            # before the keys are written: their pages are then read once for both; the
            # `+` keeps SQLite from walking every embedded key through keys_state instead
            reused = db.execute("SELECT count(*) FROM keys WHERE +state = 'embedded' AND "
                                "custom_id IN (SELECT value FROM json_each(?))",
                                (listed,)).fetchone()[0]
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
        return int(reused)

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

    def publishable(self, limit: int | None = None, after: str = "") -> list[str]:
        """Pending documents whose every chunk key is embedded or has failed for good, in
        URI order: with ``limit``, at most that many whose URI sorts after ``after``."""
        rows = self._db.execute(
            "SELECT d.uri FROM documents d WHERE d.uri > ? AND d.status = 'pending' "
            "AND NOT EXISTS ("
            " SELECT 1 FROM chunks c JOIN keys k ON k.custom_id = c.custom_id"
            " WHERE c.uri = d.uri AND c.version = 'pending'"
            " AND k.state IN ('pending', 'queued')) ORDER BY d.uri LIMIT ?",
            (after, -1 if limit is None else limit))
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

    def dirty_keys(self) -> list[str]:
        """Keys whose store rows must be rewritten."""
        return [r[0] for r in self._db.execute("SELECT custom_id FROM dirty")]

    def dirty_count(self) -> int:
        """How many store rows must be rewritten."""
        return int(self._db.execute("SELECT COUNT(*) FROM dirty").fetchone()[0])

    def has_dirty(self) -> bool:
        """True when some store row must be rewritten."""
        return self._db.execute("SELECT 1 FROM dirty LIMIT 1").fetchone() is not None

    def dirty_mark(self) -> int:
        """The newest dirty entry's position: what :meth:`dirty_rows`, :meth:`settle_dirty`
        and :meth:`dropped_keys` are given to deal with the keys dirty until now."""
        return int(self._db.execute("SELECT coalesce(max(rowid), 0) FROM dirty").fetchone()[0])

    def dirty_rows(self, group: int = 2_000, through: int | None = None
                   ) -> Iterator[list[KeyRow]]:
        """Every dirty key's :class:`KeyRow` (up to the mark ``through``), ``group`` at a
        time: memory stays flat whatever the number of dirty keys.

        It reads one snapshot (later writes are not seen) through a connection of its own,
        so it may be consumed on another thread: LanceDB pulls a streamed input from its
        own threads.
        """
        db = reader(self.path)
        last = through if through is not None else 2**63 - 1
        try:
            db.execute("BEGIN")
            after = 0
            while True:
                batch = db.execute("SELECT rowid, custom_id FROM dirty WHERE rowid > ? "
                                   "AND rowid <= ? ORDER BY rowid LIMIT ?",
                                   (after, last, group)).fetchall()
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

    def mark_dirty(self, keys: Sequence[str]) -> None:
        """Have the next sync rewrite these keys' store rows."""
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO dirty VALUES (?)", [(k,) for k in keys])

    @contextmanager
    def passage_lookup(self) -> Iterator[Callable[[Sequence[str]], Passages]]:
        """A function giving the :class:`Passages` of some keys (each key's passage and live
        places, as a store row shows them), reading one snapshot through a connection of
        its own (so it may be called on another thread) while the context is open."""
        db = reader(self.path)
        try:
            db.execute("BEGIN")
            yield lambda keys: _passages(db, keys)
        finally:
            db.close()

    def settle_dirty(self, through: int) -> None:
        """Once the store holds the dirty rows up to the mark ``through``: clear those
        that some chunk still holds, and forget the keys no chunk holds any more (their
        passages are not needed again). Those stay dirty until :meth:`clear_dirty`, so a
        run killed before their store rows are deleted has the next one delete them."""
        held = "EXISTS (SELECT 1 FROM chunks c WHERE c.custom_id = dirty.custom_id)"
        with self._tx() as db:
            db.execute("DELETE FROM keys WHERE state != 'queued' AND custom_id IN ("
                       f"SELECT custom_id FROM dirty WHERE rowid <= ? AND NOT {held})",
                       (through,))
            db.execute(f"DELETE FROM dirty WHERE rowid <= ? AND {held}", (through,))

    def dropped_keys(self, group: int, through: int) -> Iterator[list[str]]:
        """The keys still dirty up to the mark ``through`` (after :meth:`settle_dirty`:
        the dropped ones), ``group`` at a time; each group may be cleared before the
        next is asked for."""
        after = 0
        while True:
            batch = self._db.execute("SELECT rowid, custom_id FROM dirty WHERE rowid > ? "
                                     "AND rowid <= ? ORDER BY rowid LIMIT ?",
                                     (after, through, group)).fetchall()
            if not batch:
                return
            after = batch[-1][0]
            yield [key for _, key in batch]

    def clear_dirty(self, keys: Sequence[str]) -> None:
        """Clear ``keys`` from the dirty list."""
        with self._tx() as db:
            db.executemany("DELETE FROM dirty WHERE custom_id = ?", [(k,) for k in keys])

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

    def skips(self) -> list[tuple[str, str]]:
        """Documents with a problem and the reason: unreadable, or chunks failed for good."""
        return list(self._db.execute(
            "SELECT uri, reason FROM documents WHERE reason IS NOT NULL "
            "UNION ALL "
            "SELECT c.uri, count(*) || ' chunk(s) failed to embed: ' || "
            "substr(min(k.error), 1, 200) "
            "FROM chunks c JOIN keys k USING (custom_id) "
            "WHERE k.state = 'failed' GROUP BY c.uri ORDER BY 1"))
