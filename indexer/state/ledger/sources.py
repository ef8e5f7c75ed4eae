"""The ledger's sources: when each was last reached or failed, what it holds, and how a
source is withdrawn (no longer configured) or forgotten (removed)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from indexer.state.ledger.connection import LedgerBase, _Guarded
from indexer.state.ledger.records import SourceRecord

ORPHANED = "orphaned"
"""The status of a document whose source is no longer configured: out of search, its
vectors kept (as a retired version) so that the source coming back costs no embedding."""

# Chunks whose key has no vector, nor one on the way: nothing worth keeping retired.
_WORTHLESS = ("custom_id NOT IN (SELECT custom_id FROM keys "
              "WHERE state IN ('embedded', 'queued'))")
_OF_SOURCE = "uri IN (SELECT uri FROM documents WHERE source = ?)"


class SourceRecords(LedgerBase):
    """Per-source records: reached, failed, counted, withdrawn, forgotten."""

    def source_reached(self, source: str) -> None:
        """Record that ``source`` was listed now; its last failure is cleared."""
        with self._tx() as db:
            db.execute("INSERT INTO sources VALUES (?, ?, NULL, NULL) ON CONFLICT(uri) DO "
                       "UPDATE SET synced_at = excluded.synced_at, error = NULL, "
                       "failed_at = NULL", (source, time.time()))

    def source_failed(self, source: str, error: str) -> None:
        """Record why ``source`` could not be reached now (kept until it is reached)."""
        with self._tx() as db:
            db.execute("INSERT INTO sources VALUES (?, NULL, ?, ?) ON CONFLICT(uri) DO "
                       "UPDATE SET error = excluded.error, failed_at = excluded.failed_at",
                       (source, error, time.time()))

    def source_records(self) -> dict[str, SourceRecord]:
        """Every source the ledger knows (reached, failed, or holding documents), by URI,
        with its documents counted by status."""
        reached: dict[str, tuple[float | None, str | None, float | None]] = {
            uri: (synced, error, failed) for uri, synced, error, failed in self._db.execute(
                "SELECT uri, synced_at, error, failed_at FROM sources")}
        counts: dict[str, dict[str, int]] = {}
        for uri, status, n in self._db.execute(
                "SELECT source, status, count(*) FROM documents GROUP BY 1, 2"):
            counts.setdefault(uri, {})[status] = n
        return {uri: SourceRecord(uri, *reached.get(uri, (None, None, None)),
                                  counts=counts.get(uri, {}))
                for uri in sorted(reached.keys() | counts.keys())}

    def withdraw_source(self, source: str) -> int:
        """Take every document of ``source`` out of search (on the next publish) as
        :data:`ORPHANED`, keeping the chunks that have vectors as a retired version.

        The fingerprints are emptied, so if the source comes back each document is read
        again and finds its keys embedded. Returns how many documents left search now
        (0 when all were withdrawn before)."""
        with self._tx() as db:
            count = db.execute("SELECT count(*) FROM documents WHERE source = ? AND "
                               "status != ?", (source, ORPHANED)).fetchone()[0]
            if not count:
                return 0
            db.execute("INSERT OR IGNORE INTO dirty SELECT custom_id FROM chunks "
                       f"WHERE {_OF_SOURCE} AND (version != 'retired' OR {_WORTHLESS})",
                       (source,))
            stale = [row[0] for row in db.execute(
                f"SELECT DISTINCT custom_id FROM chunks WHERE {_OF_SOURCE} AND {_WORTHLESS}",
                (source,))]
            db.execute(f"DELETE FROM chunks WHERE {_OF_SOURCE} AND {_WORTHLESS}", (source,))
            _unwanted(db, stale)
            # ordinals of both versions may collide: a retired chunk takes a unique one
            db.execute("UPDATE chunks SET version = 'retired', ordinal = -rowid "
                       f"WHERE {_OF_SOURCE} AND version != 'retired'", (source,))
            db.execute("UPDATE documents SET fingerprint = '', content_hash = NULL, "
                       "pending_hash = NULL, title = NULL, status = ?, reason = NULL, "
                       "updated_at = ? WHERE source = ?", (ORPHANED, time.time(), source))
            return int(count)

    def forget_source(self, source: str) -> int:
        """Forget ``source``: its documents (every version), its record and its cursor.
        Their keys are rewritten or dropped by the next publish. Returns how many
        documents were forgotten."""
        with self._tx() as db:
            count = db.execute("SELECT count(*) FROM documents WHERE source = ?",
                               (source,)).fetchone()[0]
            db.execute(f"INSERT OR IGNORE INTO dirty SELECT custom_id FROM chunks "
                       f"WHERE {_OF_SOURCE}", (source,))
            stale = [row[0] for row in db.execute(
                f"SELECT DISTINCT custom_id FROM chunks WHERE {_OF_SOURCE}", (source,))]
            db.execute(f"DELETE FROM chunks WHERE {_OF_SOURCE}", (source,))
            _unwanted(db, stale)
            db.execute("DELETE FROM documents WHERE source = ?", (source,))
            db.execute("DELETE FROM sources WHERE uri = ?", (source,))
            db.execute("DELETE FROM meta WHERE key = ?", (f"cursor {source}",))
            return int(count)

    def roots(self) -> set[str]:
        """Every source that has documents in the ledger."""
        return {row[0] for row in self._db.execute("SELECT DISTINCT source FROM documents")}

    def withdraw_sources(self, sources: Iterable[str]) -> dict[str, int]:
        """:meth:`withdraw_source` for each of ``sources``: those that had documents in
        search, and how many."""
        left = {source: self.withdraw_source(source) for source in sources}
        return {source: n for source, n in left.items() if n}


def _unwanted(db: _Guarded, keys: list[str]) -> None:
    """Forget the keys among ``keys`` still waiting for a job that no chunk holds any more,
    so the jobs of the same run do not pay for them."""
    db.executemany("DELETE FROM keys WHERE custom_id = ? AND state = 'pending' AND NOT EXISTS "
                   "(SELECT 1 FROM chunks WHERE chunks.custom_id = keys.custom_id)",
                   [(key,) for key in keys])
