"""Choose the full-text tokenizer and the hybrid fusion by measurement.

Builds a judged corpus offline from this Python's standard library (one Markdown
document per module, ``ranking/corpus.py``), indexes it with the embedded model, and
measures nDCG@10, Recall@10, Recall@100 and MRR@10 (``indexer.search.metrics``) on two
query sets:

- ``written``: 90 questions written by hand with graded module judgments
  (``ranking/queries.tsv``), phrased as a user would ask, mostly not in the docs' words;
- ``derived``: one known-item query per module, the first line of a member's docstring
  with the member's name removed (lexical overlap by construction).

It prints the single modes, each tokenizer setting (keyword mode), and each fusion
(hybrid, on the chosen tokenizer). Nothing here is the example shipped for tests.

    python benchmarks/ranking.py [--index /tmp/ranking-index] [--depth 50]
        [--depths 20,50,100] [--only-depths]

``--only-depths`` prints the depth sweep of the chosen fusion alone (``--depths``), every
measure for each set and the mean of each measure over the sets, without rebuilding the
full-text index for the other tokenizers.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from indexer import Index
from indexer.records import SearchHit
from indexer.search import metrics
from indexer.search.fusion import DEFAULT, Fusion, fuse
from indexer.search.searcher import by_document
from indexer.state.store.columns import IndexSpec, text_index

sys.path.insert(0, str(Path(__file__).parent / "ranking"))
import corpus

TOKENIZERS = {
    "stem+stop+fold (LanceDB default)": {"stem": True, "remove_stop_words": True,
                                         "ascii_folding": True},
    "no stemming": {"stem": False, "remove_stop_words": True, "ascii_folding": True},
    "stop words kept": {"stem": True, "remove_stop_words": False, "ascii_folding": True},
    "no ascii folding": {"stem": True, "remove_stop_words": True, "ascii_folding": False},
    "plain (lowercase only)": {"stem": False, "remove_stop_words": False,
                               "ascii_folding": False},
}
FUSIONS = {
    "rrf c=60 1:1": Fusion("rrf", 1, 1, 60),
    "rrf c=60 v2:k1": Fusion("rrf", 2, 1, 60),
    "rrf c=60 v1:k2": Fusion("rrf", 1, 2, 60),
    "rrf c=20 1:1": Fusion("rrf", 1, 1, 20),
    "rrf c=5 1:1": Fusion("rrf", 1, 1, 5),
    "minmax 0.5:0.5": Fusion("minmax", 0.5, 0.5),
    "minmax v0.7:k0.3": Fusion("minmax", 0.7, 0.3),
    "minmax v0.3:k0.7": Fusion("minmax", 0.3, 0.7),
}
Judged = list[tuple[str, dict[str, int]]]


def written(stems: set[str]) -> Judged:
    judged = []
    for line in (Path(__file__).parent / "ranking" / "queries.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        _, text, relevant = line.split("\t")
        grades = {m: int(g) for m, g in (r.rsplit(":", 1) for r in relevant.split())}
        judged.append((text, {m: g for m, g in grades.items() if m in stems}))
    return judged


def derived(folder: Path, stems: Sequence[str]) -> Judged:
    judged = []
    for stem in stems:
        text = (folder / f"{stem}.md").read_text()
        for member, doc in re.findall(r"^## \S+\.(\w+)\n\n(.+)$", text, re.M):
            words = [w for w in re.findall(r"[A-Za-z][\w-]*", doc)
                     if w.lower() not in {member.lower(), *stem.lower().split(".")}]
            if len(words) >= 6 and not doc.startswith(member + "("):
                judged.append((" ".join(words[:12]), {stem: 2}))
                break
    return judged


def measure(judged: Judged, rank: Callable[[str], list[SearchHit]]) -> dict[str, float]:
    per_query = []
    for text, grades in judged:
        docs = [Path(h.document or "").stem for h in by_document(rank(text), 1)]
        per_query.append(metrics.measure(docs, grades))
    return metrics.mean(per_query)


def hybrid(near: dict[str, list[SearchHit]], found: dict[str, list[SearchHit]], depth: int,
           pool: int, fusion: Fusion) -> Callable[[str], list[SearchHit]]:
    """The hybrid ranking of a query from each half's top ``depth`` candidates."""
    return lambda text: fuse(near[text][:depth], found[text][:depth], pool, fusion)


def row(name: str, figures: dict[str, dict[str, float]]) -> str:
    """A table row: every measure of each set, then nDCG@10 averaged over the sets."""
    cells = [f"{figures[s][m]:.3f}" for s in figures for m in metrics.MEASURES]
    both = sum(f["ndcg@10"] for f in figures.values()) / len(figures)
    return f"| {name} | " + " | ".join(cells) + f" | {both:.3f} |"


def sweep(sets: dict[str, Judged], near: dict[str, list[SearchHit]],
          found: dict[str, list[SearchHit]], depths: Sequence[int], pool: int) -> None:
    """The chosen fusion (:data:`DEFAULT`) at each depth: every measure of each set, each
    measure's mean over the sets, and how many of the 10 best passages are those at
    ``DEFAULT.depth`` (mean over all queries, and the share of queries whose top 10
    passages are the same, in the same order)."""
    names = list(metrics.MEASURES)
    texts = [t for judged in sets.values() for t, _ in judged]
    base = {t: [h.custom_id for h in fuse(near[t][:DEFAULT.depth], found[t][:DEFAULT.depth],
                                          10)] for t in texts}
    print("\n| depth | " + " | ".join(f"{s} {m}" for s in sets for m in names) + " | "
          + " | ".join(f"mean {m}" for m in names) + f" | top 10 shared with {DEFAULT.depth}"
          " | same top 10 |\n|" + "---|" * (3 + (len(sets) + 1) * len(names)))
    for depth in depths:
        figures = {s: measure(j, hybrid(near, found, depth, pool, DEFAULT))
                   for s, j in sets.items()}
        means = [sum(f[m] for f in figures.values()) / len(figures) for m in names]
        tops = {t: [h.custom_id for h in fuse(near[t][:depth], found[t][:depth], 10)]
                for t in texts}
        shared = sum(len(set(tops[t]) & set(base[t])) for t in texts) / len(texts)
        same = sum(tops[t] == base[t] for t in texts) / len(texts)
        print(f"| {depth} | " + " | ".join(f"{figures[s][m]:.3f}" for s in sets for m in names)
              + " | " + " | ".join(f"{v:.3f}" for v in means)
              + f" | {shared:.2f} | {same:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--depth", type=int, default=50,
                        help="candidates each half gives the fusion")
    parser.add_argument("--pool", type=int, default=300,
                        help="passages ranked for Recall@100 in single modes")
    parser.add_argument("--depths", default="20,50,100",
                        help="comma-separated candidate depths a half to compare")
    parser.add_argument("--only-depths", action="store_true",
                        help="only the depth sweep of the chosen fusion (DEFAULT)")
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    root = args.index or Path(tempfile.mkdtemp(prefix="ranking-"))
    folder = root / "corpus"
    stems = corpus.write(folder)
    index = Index(root / "index", backend="local")
    report = index.sync([folder])
    backend = index._open_backend()
    store = index._store(backend)
    print(f"corpus: {len(stems)} modules, {store.count()} passages (sync embedded "
          f"{report.embedded})")
    sets = {"written": written(set(stems)), "derived": derived(folder, stems)}
    texts = {t for judged in sets.values() for t, _ in judged}
    vectors = {t: backend.embed_query([t])[0] for t in texts}
    condition = store.condition()
    near = {t: store.nearest(vectors[t], args.pool, condition) for t in texts}
    head = " | ".join(f"{s} {m}" for s in sets for m in metrics.MEASURES)
    print(f"\n| setting | {head} | mean ndcg@10 |\n|" + "---|" * (2 + len(sets) * 4))
    print(row("vector", {s: measure(j, lambda t: near[t]) for s, j in sets.items()}))
    if args.only_depths:
        found = {t: store.matching(t, args.pool, condition) for t in texts}
        print(row("keyword", {s: measure(j, found.__getitem__) for s, j in sets.items()}))
        sweep(sets, near, found, depths, args.pool)
        return
    keyword: dict[str, dict[str, list[SearchHit]]] = {}
    for name, settings in TOKENIZERS.items():
        IndexSpec("INVERTED", {**text_index().params, **settings}).build(
            store._table, "text", "text_idx")
        keyword[name] = {t: store.matching(t, args.pool, condition) for t in texts}
        print(row(f"keyword, {name}", {s: measure(j, keyword[name].__getitem__)
                                        for s, j in sets.items()}))
    for name, found in keyword.items():
        for fusion_name in ("rrf c=60 1:1", "minmax 0.5:0.5"):
            print(row(f"hybrid {fusion_name}, {name}", {s: measure(j, hybrid(
                near, found, args.depth, args.pool, FUSIONS[fusion_name]))
                for s, j in sets.items()}))
    chosen = next(iter(TOKENIZERS))
    for name, fusion in FUSIONS.items():
        for depth in sorted({*depths, args.depth}):
            print(row(f"hybrid {name} depth {depth}", {s: measure(j, hybrid(
                near, keyword[chosen], depth, args.pool, fusion))
                for s, j in sets.items()}))
    print(f"\n{len(sets['written'])} written and {len(sets['derived'])} derived queries; "
          f"single modes rank {args.pool} passages, hybrid fuses each half's top depth")


if __name__ == "__main__":
    main()
