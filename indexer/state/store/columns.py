"""The store table's columns and indices: its Arrow schema, and how Lance builds each index.

The schema is explicit (the model and dimensions ride in its metadata), and every
index is named here with its column and its Lance parameters, so a store built by any
release, repaired or migrated gets the same indices (:func:`build_index`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import lance
import pyarrow as pa

ESSENTIAL = ("custom_id", "vector")
"""Columns without which a row is worthless (the ledger can rebuild every other one)."""
DERIVED = {"n_places": "CAST(coalesce(array_length(places), 0) AS INT)"}
"""Columns computed from others, with the SQL that computes them (a migration adds them)."""
HIGH_DIMENSIONS = 768
"""Above this many dimensions the vector index keeps 1-bit RaBitQ codes (re-ranked 10
times over, see the reader); at or below it, 4-bit codes (re-ranked twice)."""


@dataclass(frozen=True)
class IndexSpec:
    """How one of the table's indices is built through Lance: its Lance index type
    (``BTREE``, ``BITMAP``, ``INVERTED``, ``IVF_RQ``) and parameters, each one LanceDB
    passed to Lance for the configuration the table was built with before (so indices
    built either way are the same)."""

    kind: Literal["BTREE", "BITMAP", "INVERTED", "IVF_RQ"]
    params: Mapping[str, Any]

    def build(self, dataset: lance.LanceDataset, column: str, name: str) -> None:
        """Build (or rebuild) the index ``name`` on ``column`` of ``dataset``: one commit."""
        kind = self.kind
        if kind == "IVF_RQ":
            dataset.create_index(column, kind, name=name, replace=True, **self.params)
        else:
            dataset.create_scalar_index(column, kind, name=name, replace=True, **self.params)


def vector_index(dimensions: int) -> IndexSpec:
    """The vector index: IVF-RQ by cosine, its partitions trained on 64 vectors each for at
    most 10 rounds (LanceDB's defaults, 256 and 50, cost a third more CPU and ~115 MB
    more at 1,536 dimensions for the same recall@10). Codes of 4 bits a dimension up to
    :data:`HIGH_DIMENSIONS` (384: recall@10 0.998 re-ranking 2 candidates a result, where
    1-bit codes needed 10 for 0.99), of 1 bit above (1,536 at 57k rows: 1-bit refined 10x
    0.992 in 10.8 ms built in 4.3 CPU-s; 4-bit refined 2x 0.982 in 8.0 ms built in 14.6;
    docs/architecture.md, "Search latency")."""
    bits = 4 if dimensions <= HIGH_DIMENSIONS else 1
    # the partitions are Lance's default (as LanceDB left them): one per 8,192 rows
    return IndexSpec("IVF_RQ", {"metric": "cosine", "num_bits": bits, "sample_rate": 64,
                                "max_iters": 10})


def text_index() -> IndexSpec:
    """The full-text index's tokenizer: English stemming, stop words dropped, accents
    folded (chosen by measurement, see docs/search.md); the rest LanceDB's ``FTS``
    defaults, which Lance records in the index."""
    return IndexSpec("INVERTED", {
        "base_tokenizer": "simple", "language": "English", "with_position": False,
        "max_token_length": 40, "lower_case": True, "stem": True, "remove_stop_words": True,
        "ascii_folding": True, "min_ngram_length": 3, "max_ngram_length": 3,
        "prefix_only": False, "block_size": 128})


KEY_INDEX = IndexSpec("BTREE", {})
"""The key's index, built with the table (every write looks keys up)."""
INDICES: dict[str, tuple[str, Callable[[int], IndexSpec]]] = {
    "custom_id_idx": ("custom_id", lambda _: KEY_INDEX),
    "text_idx": ("text", lambda _: text_index()),
    "n_places_idx": ("n_places", lambda _: IndexSpec("BITMAP", {})),
    "vector_idx": ("vector", vector_index)}
"""The table's indices by name: their column and how each is made (given the vectors'
dimensions)."""
PLACE = pa.struct([  # one place a passage occurs
    ("uri", pa.string()), ("heading", pa.string()), ("page", pa.int32()),
    ("line_start", pa.int32()), ("line_end", pa.int32()),
])


def schema(model: str, dimensions: int) -> pa.Schema:
    """The table's explicit Arrow schema; the model and dimensions ride in its metadata."""
    return pa.schema(
        [
            pa.field("custom_id", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dimensions)),
            pa.field("text", pa.string()),
            pa.field("context", pa.string()),
            pa.field("uri", pa.string()),
            pa.field("heading", pa.string()),
            pa.field("page", pa.int32()),
            pa.field("line_start", pa.int32()),
            pa.field("line_end", pa.int32()),
            pa.field("places", pa.list_(PLACE)),
            pa.field("n_places", pa.int32()),
        ],
        metadata={"model": model, "dimensions": str(dimensions)},
    )


PLACES_SCHEMA = pa.schema([f for f in schema("", 1) if f.name != "vector"])
"""The columns a publication sets: everything but the vector, which it keeps (the passage
and its context too, so a row whose text columns were lost is whole again)."""


def index_names(dataset: lance.LanceDataset) -> set[str]:
    """The names of ``dataset``'s indices (Lance's own system indices left out)."""
    return {d.name for d in dataset.describe_indices() if not d.name.startswith("__")}


def build_index(dataset: lance.LanceDataset, name: str, dimensions: int) -> None:
    """Build the table's index ``name`` (one of :data:`INDICES`) on ``dataset``."""
    column, spec = INDICES[name]
    spec(dimensions).build(dataset, column, name)
