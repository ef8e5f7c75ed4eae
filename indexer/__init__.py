"""batch-indexer: document folders into a local semantic search store.

The public API is small::

    from indexer import Index
    with Index(".indexer") as index:
        report = index.sync(["docs"])          # SyncReport
        hits = index.search("cancel a batch")  # list[SearchHit]

Errors come from one tree, rooted at :class:`IndexerError` (see :mod:`indexer.errors`).
"""

from indexer.errors import (
    BackendError,
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

__all__ = [
    "BackendError",
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
