"""Search modes: how a query becomes ranked passages.

A mode is a :class:`SearchMode` in :data:`MODES`: its name (``--mode NAME``), whether it
needs the query embedded, whether it needs the full-text index, and a function that asks
the store. ``vector`` ranks by meaning (cosine similarity), ``keyword`` by full-text
matches (BM25), ``hybrid`` fuses both (see :mod:`indexer.search.fusion`). A new mode (a
reranker) is one more entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING

from indexer.errors import ConfigError
from indexer.records import SearchHit
from indexer.search.fusion import DEFAULT, fuse, single

if TYPE_CHECKING:
    import numpy as np

    from indexer.state.store import Reader


@dataclass(frozen=True)
class Query:
    """One search: the text, how to embed it (when the mode needs its vector), how many,
    the store filter to run under (:meth:`Reader.condition`) and the user's ``where`` part
    of it."""

    text: str
    embed: Callable[[], np.ndarray] | None
    k: int
    condition: str = "n_places > 0"
    where: str | None = None

    def vector(self) -> np.ndarray:
        """The query's vector (embedded by the first call of ``embed``, see :func:`run`)."""
        assert self.embed is not None
        return self.embed()


@dataclass(frozen=True)
class SearchMode:
    """A way to rank passages for a query; ``run`` asks the store."""

    name: str
    summary: str
    embeds_query: bool
    needs_text_index: bool
    run: Callable[[Reader, Query], list[SearchHit]]


def _vector(store: Reader, query: Query) -> list[SearchHit]:
    return single(store.nearest(query.vector(), query.k, query.condition, query.where),
                  "vector")


def _keyword(store: Reader, query: Query) -> list[SearchHit]:
    return single(store.matching(query.text, query.k, query.condition, query.where),
                  "keyword")


def _hybrid(store: Reader, query: Query) -> list[SearchHit]:
    """Both halves at once: the keyword half on a helper thread while this one embeds the
    query and finds its nearest passages (both wait in native code, not on each other).
    The halves rank keys only; the text and places of the ``k`` fused winners are read
    once, afterwards (not those of every candidate)."""
    depth = max(query.k, DEFAULT.depth)
    keyword = _beside().submit(store.matching_keys, query.text, depth, query.condition,
                               query.where)
    try:
        vector = store.nearest_keys(query.vector(), depth, query.condition, query.where)
    finally:
        matched = keyword.result()
    rows = {r.custom_id: r.row for r in (*vector, *matched)}
    fused = fuse(vector, matched, query.k)
    found = store.passages([rows[hit.custom_id] for hit in fused], [h.custom_id for h in fused])
    return [replace(hit, text=passage[0], places=passage[1]) for hit in fused
            if (passage := found.get(hit.custom_id)) is not None]


@cache
def _beside() -> ThreadPoolExecutor:
    """The threads that run a hybrid search's keyword half."""
    return ThreadPoolExecutor(2, thread_name_prefix="indexer-keyword")


MODES: Mapping[str, SearchMode] = {
    mode.name: mode for mode in (
        SearchMode("hybrid", "meaning fused with full-text matches (scaled scores, equal weights)",
                   True, True, _hybrid),
        SearchMode("vector", "nearest in meaning (cosine similarity)", True, False, _vector),
        SearchMode("keyword", "full-text matches only (BM25)", False, True, _keyword),
    )
}


def mode(name: str) -> SearchMode:
    """The mode called ``name``; an unknown name lists the modes there are."""
    try:
        return MODES[name]
    except KeyError:
        raise ConfigError(f"unknown search mode {name!r}; use one of {', '.join(MODES)}") \
            from None


def default_mode(has_text_index: bool) -> SearchMode:
    """The mode a search runs when none is asked: the first one the store can run
    (``hybrid`` once the full-text index exists, else ``vector``)."""
    return next(m for m in MODES.values() if has_text_index or not m.needs_text_index)
