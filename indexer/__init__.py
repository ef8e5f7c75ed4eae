"""batch-indexer: document folders into a local semantic search store.

The public API is small::

    from indexer import Index
    with Index(".indexer") as index:
        report = index.sync(["docs"])          # SyncReport
        hits = index.search("cancel a batch")  # list[SearchHit]

Errors come from one tree, rooted at :class:`IndexerError` (see :mod:`indexer.errors`).

The names below load on first use, so importing a part of the package (a connector,
the chunker) does not load the ledger, SQLite, LanceDB or the config machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from indexer.errors import (
        BackendError,
        BackendUnavailable,
        ConfigError,
        DamageError,
        IndexerError,
        IndexMismatch,
        LockedError,
        SourceError,
        StateError,
    )
    from indexer.index import Index
    from indexer.records import Chunk, Document, Place, SearchHit, Segment, Skip, SourceItem
    from indexer.report import IndexStatus, SyncReport

_EXPORTS = {
    "BackendError": "indexer.errors",
    "BackendUnavailable": "indexer.errors",
    "ConfigError": "indexer.errors",
    "DamageError": "indexer.errors",
    "IndexerError": "indexer.errors",
    "IndexMismatch": "indexer.errors",
    "LockedError": "indexer.errors",
    "SourceError": "indexer.errors",
    "StateError": "indexer.errors",
    "Index": "indexer.index",
    "Chunk": "indexer.records",
    "Document": "indexer.records",
    "Place": "indexer.records",
    "SearchHit": "indexer.records",
    "Segment": "indexer.records",
    "Skip": "indexer.records",
    "SourceItem": "indexer.records",
    "IndexStatus": "indexer.report",
    "SyncReport": "indexer.report",
}

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "Chunk",
    "ConfigError",
    "DamageError",
    "Document",
    "Index",
    "IndexMismatch",
    "IndexStatus",
    "IndexerError",
    "LockedError",
    "Place",
    "SearchHit",
    "Segment",
    "Skip",
    "SourceError",
    "SourceItem",
    "StateError",
    "SyncReport",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'indexer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
