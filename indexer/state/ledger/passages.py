"""What search asks the ledger: a passage's neighbours in its document, a source's
documents."""

from __future__ import annotations

from indexer.records import Place
from indexer.state.ledger.connection import LedgerBase


class PassageRecords(LedgerBase):
    """Read-only lookups for search, through the ``chunks`` primary key."""

    def neighbours(self, place: Place, custom_id: str, around: int) -> list[tuple[str, Place]]:
        """The passages of the live version of ``place``'s document from ``around`` chunks
        before the one keyed ``custom_id`` at ``place`` to ``around`` after it, in document
        order, each with its own place; empty when the ledger no longer holds it live."""
        found = self._db.execute(
            "SELECT ordinal FROM chunks WHERE uri = ? AND version = 'live' AND custom_id = ? "
            "ORDER BY line_start IS NOT ?, abs(coalesce(line_start, 0) - coalesce(?, 0)) "
            "LIMIT 1", (place.uri, custom_id, place.line_start, place.line_start)).fetchone()
        if found is None:
            return []
        rows = self._db.execute(
            "SELECT k.text, c.heading, c.page, c.line_start, c.line_end "
            "FROM chunks c JOIN keys k USING (custom_id) "
            "WHERE c.uri = ? AND c.version = 'live' AND c.ordinal BETWEEN ? AND ? "
            "ORDER BY c.ordinal", (place.uri, found[0] - around, found[0] + around))
        return [(text, Place(place.uri, heading, page, start, end))
                for text, heading, page, start, end in rows]

    def known_source(self, source: str) -> bool:
        """True when documents are recorded under ``source``."""
        return self._db.execute("SELECT 1 FROM documents WHERE source = ? LIMIT 1",
                                (source,)).fetchone() is not None

    def documents_outside(self, source: str, prefix: str) -> list[str]:
        """URIs of ``source``'s documents that do not start with ``prefix`` (a file whose
        name is not UTF-8 has a ``file://`` URI)."""
        return [r[0] for r in self._db.execute(
            "SELECT uri FROM documents WHERE source = ? AND substr(uri, 1, ?) != ?",
            (source, len(prefix), prefix))]
