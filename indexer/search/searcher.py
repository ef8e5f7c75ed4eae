"""One search from request to hits: the mode, the filter, grouping by document and
merging neighbouring passages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING

from indexer.errors import StateError
from indexer.records import Place, SearchHit
from indexer.search.modes import Query, SearchMode, default_mode, mode

if TYPE_CHECKING:
    import numpy as np

    from indexer.state.store import Reader

MAX_CANDIDATES = 2_000
"""The most passages a grouped search gathers to find ``k`` documents."""

Neighbours = Callable[[Place, str, int], list[tuple[str, Place]]]
"""``(place, custom_id, around)`` -> the passages around that one in its document."""


@dataclass(frozen=True)
class Request:
    """What to search for and how (see :meth:`indexer.index.Index.search`)."""

    text: str
    k: int = 5
    where: str | None = None
    mode: str | None = None
    per_doc: bool = False
    passages: int = 3
    context: int = 0
    narrowing: tuple[str, ...] = ()


def choose(request: Request, store: Reader) -> SearchMode:
    """The mode asked for, or the default the store can run; a mode needing the full-text
    index where there is none is refused (:class:`StateError`: the index may be damaged)."""
    has_text = store.has_text_index()
    chosen = mode(request.mode) if request.mode else default_mode(has_text)
    if chosen.needs_text_index and not has_text:
        raise StateError(f"the {chosen.name} mode needs the full-text index, which is made "
                          "by the first sync that stores passages; run `indexer sync` or use "
                          "--mode vector")
    return chosen


def run(request: Request, chosen: SearchMode, store: Reader,
        embed: Callable[[], np.ndarray] | None, neighbours: Neighbours) -> list[SearchHit]:
    """The hits for ``request`` by ``chosen``: passages, or documents with ``per_doc``;
    with ``context`` each passage merged with its neighbours. ``embed`` gives the query's
    vector when the mode needs it (called once, when the mode asks: a hybrid search
    embeds while its keyword half runs)."""
    condition = store.condition(request.where, request.narrowing)
    once = cache(embed) if embed is not None else None

    def ask(limit: int) -> list[SearchHit]:
        return chosen.run(store, Query(request.text, once, limit, condition, request.where))

    if not request.per_doc:
        hits = ask(request.k)
    else:
        limit = request.k * max(request.passages, 2)
        while True:
            found = ask(limit)
            hits = by_document(found, request.passages)
            if len(hits) >= request.k or len(found) < limit or limit >= MAX_CANDIDATES:
                break
            limit = min(limit * 4, MAX_CANDIDATES)
        hits = hits[:request.k]
    if request.context:
        hits = [widen(hit, request.context, neighbours) for hit in hits]
    return hits


def by_document(hits: Sequence[SearchHit], passages: int) -> list[SearchHit]:
    """Each document once, in the order of its best passage: that passage (its places
    narrowed to the document, ``document`` set) with up to ``passages - 1`` more in
    ``more``. A passage found in several documents counts for each."""
    groups: dict[str, list[SearchHit]] = {}
    for hit in hits:
        for uri in dict.fromkeys(p.uri for p in hit.places):
            own = tuple(p for p in hit.places if p.uri == uri)
            groups.setdefault(uri, []).append(replace(hit, places=own))
    return [replace(best, document=uri, more=tuple(rest[:max(passages - 1, 0)]))
            for uri, (best, *rest) in groups.items()]


def widen(hit: SearchHit, around: int, neighbours: Neighbours) -> SearchHit:
    """``hit`` with its text merged with ``around`` passages on each side in its (first)
    document, the place's lines widened to match; unchanged when the ledger no longer
    holds that document's version."""
    more = tuple(widen(other, around, neighbours) for other in hit.more)
    found = neighbours(hit.place, hit.custom_id, around)
    if len(found) <= 1:
        return replace(hit, more=more)
    starts = [p.line_start for _, p in found if p.line_start is not None]
    ends = [p.line_end for _, p in found if p.line_end is not None]
    place = replace(hit.place, line_start=min(starts, default=hit.place.line_start),
                    line_end=max(ends, default=hit.place.line_end))
    return replace(hit, text="\n\n".join(text for text, _ in found), merged=len(found) - 1,
                   places=(place, *hit.places[1:]), more=more)
