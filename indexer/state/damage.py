"""What can be wrong with a search table, and what restoring it did.

Plain values, free of LanceDB, so that the ledger, ``doctor`` and the CLI can speak of
damage without loading the store (:mod:`indexer.state.store` finds and mends it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from indexer.errors import DamageError


@dataclass(frozen=True)
class Damage:
    """What is wrong with a search table (see :func:`inspect`).

    ``migrations`` are schema changes a sync makes in place by itself (a column a newer
    version added, ``n_places`` missing from an older one); the rest is damage that
    :func:`restore` (``indexer doctor --repair``) mends.
    """

    missing_table: bool = False
    unreadable: str = ""
    lost_fragments: tuple[int, ...] = ()
    lost_rows: int = 0
    lost_columns: tuple[str, ...] = ()
    lost_indices: tuple[str, ...] = ()
    migrations: tuple[str, ...] = ()

    @property
    def broken(self) -> bool:
        """True when rows, columns, indices or the table itself are lost."""
        return self.missing_table or bool(self.unreadable or self.lost_fragments
                                          or self.lost_columns or self.lost_indices)

    def describe(self) -> str:
        """The damage in words."""
        if self.missing_table:
            return "the search table is missing"
        if self.unreadable:
            return f"the search table cannot be read ({self.unreadable})"
        parts = []
        if self.lost_fragments:
            parts.append(f"{self.lost_rows} row(s) in {len(self.lost_fragments)} data "
                         "file(s) can no longer be read")
        if self.lost_columns:
            parts.append(f"column(s) {', '.join(self.lost_columns)} are gone")
        if self.lost_indices:
            parts.append(f"the files of index(es) {', '.join(self.lost_indices)} are gone")
        return "; ".join(parts) or "nothing"

    def error(self, directory: Path | str) -> DamageError:
        """The error every command raises for this damage."""
        return DamageError(
            f"the search store in {directory} is damaged: {self.describe()}; run "
            "`indexer doctor --repair` to restore it (chunks whose vectors are lost are "
            "embedded again by the next sync)")


@dataclass(frozen=True)
class Restoration:
    """What :func:`restore` did: re-created the table, went back to an earlier version,
    dropped unreadable rows (recovering what their intact files and earlier versions still
    hold: ``recovered_keys``, whose text and places must be rewritten from the ledger),
    re-added columns (``rewrite``: every row's text and places must be rewritten)."""

    damage: Damage
    recreated: bool = False
    restored_version: int | None = None
    dropped_rows: int = 0
    recovered_rows: int = 0
    recovered_keys: tuple[str, ...] = ()
    rewrite: bool = False
    migrations: tuple[str, ...] = ()
