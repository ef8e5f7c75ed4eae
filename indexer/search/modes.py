"""Search modes: how a query becomes ranked passages.

A mode is a :class:`SearchMode` in :data:`MODES`: its name (``--mode NAME``), whether it
needs the query embedded, and a function that asks the store. ``vector`` ranks by
meaning (cosine similarity); ``hybrid`` fuses meaning with full-text matches
(reciprocal rank fusion). A new mode (keyword only, a reranker) is one more entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from indexer.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from indexer.records import SearchHit
    from indexer.state.store import Store


@dataclass(frozen=True)
class Query:
    """One search: the text, its vector (when the mode needs one), how many, a filter."""

    text: str
    vector: np.ndarray | None
    k: int
    where: str | None = None


@dataclass(frozen=True)
class SearchMode:
    """A way to rank passages for a query; ``run`` asks the store."""

    name: str
    summary: str
    embeds_query: bool
    run: Callable[[Store, Query], list[SearchHit]]


def _vector(store: Store, query: Query) -> list[SearchHit]:
    assert query.vector is not None
    return store.search(query.vector, query.k, query.where)


def _hybrid(store: Store, query: Query) -> list[SearchHit]:
    assert query.vector is not None
    return store.search(query.vector, query.k, query.where, text=query.text)


MODES: Mapping[str, SearchMode] = {
    mode.name: mode for mode in (
        SearchMode("vector", "nearest in meaning (cosine similarity)", True, _vector),
        SearchMode("hybrid", "meaning fused with full-text matches (reciprocal rank fusion)",
                   True, _hybrid),
    )
}


def mode(name: str) -> SearchMode:
    """The mode called ``name``; an unknown name lists the modes there are."""
    try:
        return MODES[name]
    except KeyError:
        raise ConfigError(f"unknown search mode {name!r}; use one of {', '.join(MODES)}") \
            from None
