"""Fusing the vector and the keyword ranking into one (the ``hybrid`` mode).

Pure: it sees two ranked lists of hits and returns one, each hit carrying how each half
ranked it. The method and weights in :data:`DEFAULT` were chosen by measurement on a
judged set (``benchmarks/ranking.py``, figures in docs/search.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

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


def fuse(vector: Sequence[SearchHit], keyword: Sequence[SearchHit], k: int,
         fusion: Fusion = DEFAULT) -> list[SearchHit]:
    """The ``k`` best passages of both rankings by ``fusion``, best first, each marked
    ``hybrid`` with its fused score and both halves' ranks and scores."""
    halves: dict[str, dict[str, Half]] = {}
    hits: dict[str, SearchHit] = {}
    for name, ranking in (("vector", vector), ("keyword", keyword)):
        for rank, hit in enumerate(ranking, start=1):
            halves.setdefault(hit.custom_id, {})[name] = Half(rank, hit.score)
            hits.setdefault(hit.custom_id, hit)
    scale = {"vector": _scale(vector), "keyword": _scale(keyword)}
    weight = {"vector": fusion.vector_weight, "keyword": fusion.keyword_weight}

    def score(found: dict[str, Half]) -> float:
        if fusion.method == "rrf":
            return sum(weight[n] / (fusion.constant + h.rank) for n, h in found.items())
        return sum(weight[n] * scale[n](h.score) for n, h in found.items())

    fused = [replace(hits[key], score=score(found), mode="hybrid",
                     vector=found.get("vector"), keyword=found.get("keyword"))
             for key, found in halves.items()]
    fused.sort(key=lambda h: (-h.score, min(x.rank for x in (h.vector, h.keyword) if x)))
    return fused[:k]


def _scale(ranking: Sequence[SearchHit]) -> Callable[[float], float]:
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
