"""Fusing the vector and the keyword ranking into one (the ``hybrid`` mode).

Pure: it sees two ranked lists of hits and returns one, each hit carrying how each half
ranked it. The method and weights in :data:`DEFAULT` were chosen by measurement on a
judged set (``benchmarks/ranking.py``, figures in docs/search.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from indexer.records import Half, SearchHit


@dataclass(frozen=True)
class Fusion:
    """How two rankings become one.

    ``rrf``: reciprocal rank fusion, ``w / (constant + rank)`` summed over the halves
    that found a passage. ``minmax``: each half's scores scaled to 0..1 within its own
    list (a passage a half did not find scores 0 there), then a weighted sum.
    ``depth`` is how many candidates each half contributes (at least ``k``).
    """

    method: str = "rrf"
    vector_weight: float = 1.0
    keyword_weight: float = 1.0
    constant: int = 60
    depth: int = 50


DEFAULT = Fusion("minmax", 0.5, 0.5, 60, 50)
"""Scaled scores, equal weights, 50 candidates a half: the best mean nDCG@10 over both
query sets of ``benchmarks/ranking.py`` (0.906, against 0.901 for RRF with k=60, 0.886
for vector and 0.877 for keyword alone)."""


class Scored(Protocol):
    """A ranked passage as a half gives it: a :class:`SearchHit` or a store's
    :class:`~indexer.state.store.reader.Ranked` (key and score only)."""

    @property
    def custom_id(self) -> str: ...

    @property
    def score(self) -> float: ...


def fuse(vector: Sequence[Scored], keyword: Sequence[Scored], k: int,
         fusion: Fusion = DEFAULT) -> list[SearchHit]:
    """The ``k`` best passages of both rankings by ``fusion``, best first, each marked
    ``hybrid`` with its fused score and both halves' ranks and scores (text and places
    are those of a :class:`SearchHit` given, else empty). Only the ``k`` kept become
    hits: a search fuses a hundred candidates per query."""
    found: dict[str, list[Any]] = {}  # key -> [first hit, (rank, score) in each half]
    for half, ranking in enumerate((vector, keyword), start=1):
        for rank, hit in enumerate(ranking, start=1):
            entry = found.get(hit.custom_id)
            if entry is None:
                entry = found[hit.custom_id] = [hit, None, None]
            entry[half] = (rank, hit.score)
    weights = (fusion.vector_weight, fusion.keyword_weight)
    scales = (_scale(vector), _scale(keyword))

    def score(entry: list[Any]) -> float:
        total = 0.0
        for half in (1, 2):
            if entry[half] is not None:
                rank, value = entry[half]
                total += (weights[half - 1] / (fusion.constant + rank) if fusion.method == "rrf"
                          else weights[half - 1] * scales[half - 1](value))
        return total

    ranked = sorted(((score(entry), min(e[0] for e in entry[1:] if e), key)
                     for key, entry in found.items()), key=lambda s: (-s[0], s[1]))
    fused = []
    for value, _, key in ranked[:k]:
        hit, near, match = found[key]
        text, places = (hit.text, hit.places) if isinstance(hit, SearchHit) else ("", ())
        fused.append(SearchHit(key, value, text, places, "hybrid",
                               Half(*near) if near else None, Half(*match) if match else None))
    return fused


def _scale(ranking: Sequence[Scored]) -> Callable[[float], float]:
    """Min-max scaling of one half's scores (all equal: each scores 1)."""
    scores = [hit.score for hit in ranking]
    low, high = (min(scores), max(scores)) if scores else (0.0, 0.0)
    span = high - low
    return lambda value: (value - low) / span if span > 0 else 1.0


def single(hits: Sequence[SearchHit], mode: str) -> list[SearchHit]:
    """One half's ranking as the result of a mode: each hit says its rank in that half."""
    return [replace(hit, mode=mode, vector=Half(rank, hit.score) if mode == "vector" else None,
                    keyword=Half(rank, hit.score) if mode == "keyword" else None)
            for rank, hit in enumerate(hits, start=1)]
