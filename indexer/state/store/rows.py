"""The rows of one table version as a search needs them: row id -> key, and which rows are
published. A search ranks row ids only (selecting another column costs Lance a random
read per fragment) and names its rows from here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from indexer.errors import StateError


@dataclass(frozen=True)
class RowKeys:
    """The rows of one table version: their ids (ascending), each one's key and whether
    it is published (has places)."""

    version: int
    ids: np.ndarray
    keys: pa.Array
    published: np.ndarray

    @classmethod
    def of_table(cls, version: int, table: pa.Table) -> RowKeys:
        """From a scan of ``custom_id`` and ``n_places`` with row ids."""
        ids = table["_rowid"].to_numpy()
        order = np.argsort(ids, kind="stable")
        places = table["n_places"].fill_null(0).to_numpy()
        return cls(version, ids[order], table["custom_id"].combine_chunks().take(order),
                   places[order] > 0)

    @property
    def hidden_share(self) -> float:
        """The share of rows without places."""
        return 1.0 - float(self.published.mean()) if len(self.ids) else 0.0

    def of(self, rows: Sequence[int]) -> list[str]:
        """The keys of ``rows``."""
        return self.keys.take(self._positions(rows)).to_pylist()

    def shown(self, found: pa.Table, limit: int) -> tuple[pa.Table, list[str]]:
        """The first ``limit`` published rows of a ranking ``found`` (with row ids), in
        its order, and their keys. A row this version no longer holds counts as hidden:
        an index may still name the rows of a fragment deleted whole, and a ranking that
        reads no column of its own is not checked against the deletions."""
        if not len(self.ids):
            return found.slice(0, 0), []
        wanted = found["_rowid"].to_numpy().astype(np.uint64)
        positions = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        kept = np.flatnonzero((self.ids[positions] == wanted) & self.published[positions])
        kept = kept[:limit]
        if len(kept) and kept[-1] == len(kept) - 1:  # no hidden row among them: a slice
            return found.slice(0, len(kept)), self.keys.take(positions[:len(kept)]).to_pylist()
        return found.take(kept), self.keys.take(positions[kept]).to_pylist()

    def _positions(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        wanted = np.asarray(rows, dtype=np.uint64)
        positions = np.searchsorted(self.ids, wanted)
        if len(wanted) and (positions.max() >= len(self.ids)
                            or not np.array_equal(self.ids[positions], wanted)):
            raise StateError("search failed: a ranked row is not in the table version read")
        return positions
