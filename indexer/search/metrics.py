"""Ranking quality measures over judged queries (as BEIR and trec_eval compute them).

Pure: a ranking is a list of document ids, best first; judgments map a document id to
its graded relevance (0 = judged not relevant). Gains are linear (the relevance grade)
and discounted by ``log2(rank + 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

MEASURES = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def ndcg(ranking: Sequence[str], judged: Mapping[str, int], cutoff: int) -> float:
    """Normalised discounted cumulative gain of the first ``cutoff`` documents."""
    gains = [judged.get(doc, 0) for doc in ranking[:cutoff]]
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:cutoff]
    best = _dcg(ideal)
    return _dcg(gains) / best if best > 0 else 0.0


def recall(ranking: Sequence[str], judged: Mapping[str, int], cutoff: int) -> float:
    """The share of relevant documents found in the first ``cutoff``."""
    relevant = {doc for doc, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:cutoff])) / len(relevant)


def reciprocal_rank(ranking: Sequence[str], judged: Mapping[str, int], cutoff: int) -> float:
    """1 / the rank of the first relevant document in the first ``cutoff`` (0 if none)."""
    for rank, doc in enumerate(ranking[:cutoff], start=1):
        if judged.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def measure(ranking: Sequence[str], judged: Mapping[str, int]) -> dict[str, float]:
    """Every measure of :data:`MEASURES` for one query."""
    return {"ndcg@10": ndcg(ranking, judged, 10), "recall@10": recall(ranking, judged, 10),
            "recall@100": recall(ranking, judged, 100),
            "mrr@10": reciprocal_rank(ranking, judged, 10)}


def mean(per_query: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each measure averaged over queries (0 for none)."""
    count = len(per_query)
    return {name: (sum(q[name] for q in per_query) / count if count else 0.0)
            for name in MEASURES}


def _dcg(gains: Sequence[int]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))
