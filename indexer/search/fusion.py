"""Fusing the vector and the keyword ranking into one (the ``hybrid`` mode).

Pure: it sees two ranked lists of hits and returns one, each hit carrying how each half
ranked it. The method and weights in :data:`DEFAULT` were chosen by measurement on a
judged set (``benchmarks/ranking.py``, figures in docs/search.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

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
    depth: int = 30


DEFAULT = Fusion("minmax", 0.5, 0.5, 60, 30)
"""Scaled scores, equal weights: the best mean nDCG@10 over both query sets of
``benchmarks/ranking.py`` (0.906 with 50 candidates a half, against 0.901 for RRF with
k=60, 0.886 for vector and 0.877 for keyword alone). 30 candidates a half rank as well as
50 there (every measure at 10 within 0.001; 20 lose 0.005 mean nDCG@10) and cost ~0.5 ms
less CPU a query at 100k passages (docs/search.md, "Candidates per half")."""


_UNRANKED = (math.inf, 0.0)
"""The rank and score of a passage in a half that did not find it."""


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
    are those of a :class:`SearchHit` given, else empty). Ties go to the better rank in
    either half, then to the first found (the vector half first). Only the ``k`` kept become
    hits: a search fuses a hundred candidates per query."""
    near, match = _ranks(vector), _ranks(keyword)
    near_share = _shares(vector, near, fusion.vector_weight, fusion)
    match_share = _shares(keyword, match, fusion.keyword_weight, fusion)
    first: dict[str, Scored] = {}
    for hit in (*vector, *keyword):
        first.setdefault(hit.custom_id, hit)
    ranked = [(-(near_share.get(key, 0.0) + match_share.get(key, 0.0)),  # (-fused, best rank)
               min(near.get(key, _UNRANKED)[0], match.get(key, _UNRANKED)[0]), key)
              for key in first]
    ranked.sort(key=lambda entry: entry[:2])
    fused = []
    for negative, _, key in ranked[:k]:
        hit, found, other = first[key], near.get(key), match.get(key)
        text, places = (hit.text, hit.places) if isinstance(hit, SearchHit) else ("", ())
        fused.append(SearchHit(key, -negative, text, places, "hybrid",
                               Half(*found) if found else None, Half(*other) if other else None))
    return fused


def _ranks(ranking: Sequence[Scored]) -> dict[str, tuple[int, float]]:
    """Each key of one half's ranking with its rank and score there (a key ranked twice:
    its later place)."""
    return {hit.custom_id: (rank, hit.score) for rank, hit in enumerate(ranking, start=1)}


def _shares(ranking: Sequence[Scored], ranks: dict[str, tuple[int, float]], weight: float,
            fusion: Fusion) -> dict[str, float]:
    """What one half adds to each of its passages' fused score: ``rrf`` by its rank,
    ``minmax`` by its score scaled to 0..1 within the half (all equal: each scores 1)."""
    if fusion.method == "rrf":
        return {key: weight / (fusion.constant + rank) for key, (rank, _) in ranks.items()}
    scores = [hit.score for hit in ranking]
    low, span = (min(scores), max(scores) - min(scores)) if scores else (0.0, 0.0)
    if span <= 0:
        return {key: weight * 1.0 for key in ranks}
    return {key: weight * ((score - low) / span) for key, (_, score) in ranks.items()}


def single(hits: Sequence[SearchHit], mode: str) -> list[SearchHit]:
    """One half's ranking as the result of a mode: each hit says its rank in that half."""
    return [replace(hit, mode=mode, vector=Half(rank, hit.score) if mode == "vector" else None,
                    keyword=Half(rank, hit.score) if mode == "keyword" else None)
            for rank, hit in enumerate(hits, start=1)]
