"""A table's vectors held in memory by a reader kept between searches, to re-rank a vector
index's candidates exactly without reading them back from the table, and its passages
(text and places), to give the hits without reading them back either.

Lance refines an approximate search by reading each candidate's full vector (a random
read per candidate: 2.5-5 ms for 24-100 candidates however small the table); from
memory the same exact distances take microseconds. Vectors are held per fragment (its
data files never change, so a new table version loads only its new fragments) and only
while the whole table fits in :data:`HELD_BYTES`.

Reading 10 hits' text and places back by row id costs Lance 1.4 ms at 10k rows and 3.5
ms at 100k (a random read per row, ``places`` being nested); taken from memory they cost
~0.1 ms. Passages are held beside the vectors while they fit in :data:`PASSAGE_BYTES`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from indexer.state.store.heap import release_freed, return_freed_buffers

HELD_BYTES = 256 * 2**20
"""The most memory held vectors take (100k rows of 384 dimensions take 154 MB; above
this the table's own refinement runs, as in a one-off search)."""
PASSAGE_BYTES = 128 * 2**20
"""The most memory held passages (text and places) take: 100k passages of ~30 words take
~30 MB; a table of longer passages past this has its hits read from the table."""
_PASSAGE_COLUMNS = ["text", "places"]
_FRAGMENT_SHIFT = np.uint64(32)
"""A row id's fragment is its upper 32 bits."""


@dataclass(frozen=True)
class _Fragment:
    ids: np.ndarray  # ascending row ids
    matrix: np.ndarray  # float32, one row per id
    norms: np.ndarray
    passages: tuple[pa.Array, pa.Array] | None  # text and places, one row per id


class HeldVectors:
    """The vectors of one table version, loaded by :meth:`follow`."""

    def __init__(self, budget: int = HELD_BYTES, passage_budget: int = PASSAGE_BYTES) -> None:
        self.budget = budget
        self.passage_budget = passage_budget
        self._version = -1
        self._held = False
        self._passages = False
        self._fragments: dict[tuple[int, tuple[str, ...]], _Fragment] = {}
        self._by_id: dict[int, _Fragment] = {}
        self.rows = 0
        """The rows the fragments of the version followed hold, deleted ones included."""

    def follow(self, dataset: Any) -> bool:
        """Hold the vectors of ``dataset``'s version (loading only the fragments not held
        yet); False when they would take more than the budget, or the table's row ids are
        not row addresses (nothing is held then)."""
        if dataset.version == self._version:
            return self._held
        fragments = dataset.get_fragments()
        self.rows = sum(f.physical_rows for f in fragments)
        dimensions = dataset.schema.field("vector").type.list_size
        held: dict[tuple[int, tuple[str, ...]], _Fragment] = {}
        room = self.passage_budget if {"text", "places"} <= set(dataset.schema.names) else -1
        if self.rows * dimensions * 4 <= self.budget:
            return_freed_buffers()  # the reading's large buffers go back to the system
            for fragment in fragments:
                key = (fragment.fragment_id, tuple(d.path for d in fragment.data_files()))
                part = self._fragments.get(key)
                if part is None or (part.passages is None and len(part.ids) and room >= 0):
                    part = _load(fragment, dimensions, room >= 0)
                if part is None:
                    held.clear()
                    break
                held[key] = part
                if part.passages is not None:
                    room -= sum(array.nbytes for array in part.passages)
                elif len(part.ids):
                    room = -1  # read without its passages: past the budget
            release_freed()
        if room < 0:  # passages past their budget (or missing somewhere): none held
            held = {key: replace(part, passages=None) for key, part in held.items()}
        self._fragments = held
        self._by_id = {key[0]: part for key, part in held.items()}
        self._version, self._held = dataset.version, bool(held)
        self._passages = self._held and room >= 0
        return self._held

    def passages(self, rows: np.ndarray) -> list[dict[str, Any]] | None:
        """The text and places of ``rows`` (row ids of the version followed) as Lance
        reads them (``{"text": …, "places": […]}``, in the order of ``rows``); None when
        passages are not held or a row is not."""
        if not self._passages:
            return None
        found = []
        for row in rows.astype(np.uint64):  # an Arrow call per row: a take costs ~0.15 ms
            part = self._by_id.get(int(row >> _FRAGMENT_SHIFT))
            if part is None or part.passages is None:
                return None
            at = int(part.ids.searchsorted(row))  # a NumPy integer: no conversion of ids
            if at >= len(part.ids) or part.ids[at] != row:
                return None
            text, places = part.passages
            found.append({"text": text[at].as_py(), "places": places[at].as_py()})
        return found

    def distances(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray | None:
        """Cosine distances of ``query`` to the vectors of ``rows`` (row ids), as the table
        computes them; None when a row is not held."""
        out = np.empty(len(rows), dtype=np.float32)
        query = np.asarray(query, dtype=np.float32)
        scale = np.float32(np.linalg.norm(query)) or np.float32(1.0)
        fragments = rows >> np.uint64(32)
        for fragment_id in np.unique(fragments):
            part = self._by_id.get(int(fragment_id))
            chosen = fragments == fragment_id
            wanted = rows[chosen]
            if part is None:
                return None
            positions = np.minimum(np.searchsorted(part.ids, wanted), len(part.ids) - 1)
            if not np.array_equal(part.ids[positions], wanted):
                return None
            out[chosen] = 1.0 - (part.matrix[positions] @ query) / (part.norms[positions] * scale)
        return out


    def best(self, found: pa.Table, n: int, query: np.ndarray) -> pa.Table | None:
        """The ``n`` rows of a ranking ``found`` (row ids) nearest ``query`` by exact
        distance, as the table's refinement orders them (distance, then row id), with
        ``_distance``; None when a row is not held."""
        rows = found["_rowid"].to_numpy()
        distances = self.distances(rows, query)
        if distances is None:
            return None
        kept = np.lexsort((rows, distances))[:n]
        return pa.table({"_distance": pa.array(distances[kept], pa.float32()),
                         "_rowid": pa.array(rows[kept], pa.uint64())})

def _load(fragment: Any, dimensions: int, with_passages: bool) -> _Fragment | None:
    """One fragment's vectors (and with ``with_passages`` its text and places), read in
    small batches into one array (so the reading holds little beside it); None when its
    row ids are not its row addresses or a vector is missing."""
    size = fragment.physical_rows
    matrix = np.empty((size, dimensions), dtype=np.float32)
    ids = np.empty(size, dtype=np.uint64)
    columns = ["vector", *_PASSAGE_COLUMNS] if with_passages else ["vector"]
    texts: list[pa.RecordBatch] = []
    at = 0
    for batch in fragment.to_batches(columns=columns, with_row_id=True, batch_size=1024,
                                     batch_readahead=2, io_buffer_size=8 << 20):
        column, n = batch["vector"], batch.num_rows
        if column.null_count or at + n > size:
            return None
        matrix[at:at + n] = column.flatten().to_numpy().reshape(n, dimensions)
        ids[at:at + n] = batch["_rowid"].to_numpy()
        if with_passages:
            texts.append(batch.select(_PASSAGE_COLUMNS))
        at += n
    matrix, ids = matrix[:at], ids[:at]
    if at and not np.all(ids >> _FRAGMENT_SHIFT == fragment.fragment_id):
        return None
    order = np.argsort(ids, kind="stable")
    # taken, so the passages are copied out of the reading's buffers, in row id order
    table = pa.Table.from_batches(texts).take(order).combine_chunks() if texts else None
    passages = (table["text"].chunk(0), table["places"].chunk(0)) \
        if table is not None and table.num_rows else None
    if not np.array_equal(order, np.arange(at)):
        ids, matrix = ids[order], matrix[order]
    norms = np.linalg.norm(matrix, axis=1).astype(np.float32)
    norms[norms == 0] = 1.0
    return _Fragment(ids, matrix, norms, passages)
