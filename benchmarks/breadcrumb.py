"""Does the heading breadcrumb earn its tokens? Retrieval with and without it.

Each chunk is embedded with its "Title › Section" breadcrumb unless ``chunk_context =
false``. This builds the judged standard-library corpus of ``benchmarks/ranking.py``
(offline), writes its two query sets as BEIR files (``queries.jsonl``, ``qrels.tsv``),
and for each setting plans (tokens to embed, the breadcrumbs' share), syncs with the
embedded model and runs ``indexer eval`` (:meth:`Index.evaluate`) in every mode.

    python benchmarks/breadcrumb.py [--root /tmp/breadcrumb]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from indexer import Index
from indexer.search import metrics

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "ranking"))
import corpus
from ranking import Judged, derived, written


def write_judged(folder: Path, name: str, judged: Judged) -> tuple[Path, Path]:
    """``judged`` as BEIR ``queries.jsonl`` and ``qrels.tsv`` under ``folder/name``."""
    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    queries, qrels = out / "queries.jsonl", out / "qrels.tsv"
    with queries.open("w") as q, qrels.open("w") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for number, (text, grades) in enumerate(judged):
            q.write(json.dumps({"_id": f"q{number}", "text": text}) + "\n")
            for doc, grade in grades.items():
                r.write(f"q{number}\t{doc}\t{grade}\n")
    return queries, qrels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="breadcrumb-"))
    folder = root / "corpus"
    stems = corpus.write(folder)
    sets = {"written": written(set(stems)), "derived": derived(folder, stems)}
    files = {name: write_judged(root / "judged", name, judged)
             for name, judged in sets.items()}
    print(f"corpus: {len(stems)} modules; "
          + ", ".join(f"{len(j)} {n} queries" for n, j in sets.items()))
    head = " | ".join(f"{s} {m}" for s in sets for m in ("ndcg@10", "recall@10", "mrr@10"))
    rows = []
    for context in (True, False):
        path = root / f"index-{'with' if context else 'without'}"
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.toml").write_text(
            f'[index]\nbackend = "local"\nchunk_context = {str(context).lower()}\n')
        index = Index(path)
        plan = index.plan([folder])
        started = time.process_time()
        index.sync([folder])
        spent = time.process_time() - started
        share = plan.context_tokens / plan.tokens if plan.tokens else 0.0
        print(f"\nchunk_context = {str(context).lower()}: {plan.chunks_to_embed} chunks, "
              f"{plan.tokens:,} tokens to embed ({plan.context_tokens:,} breadcrumb, "
              f"{share:.1%}); sync {spent:.1f} CPU-s")
        figures = {name: index.evaluate(*files[name]) for name in sets}
        for mode in figures["written"]:
            cells = [f"{figures[s][mode][m]:.3f}" for s in sets
                     for m in ("ndcg@10", "recall@10", "mrr@10")]
            rows.append(f"| {'with' if context else 'without'} | {mode} | {plan.tokens:,} | "
                        + " | ".join(cells) + " |")
    print(f"\n| breadcrumb | mode | tokens | {head} |\n|" + "---|" * (3 + len(sets) * 3))
    print("\n".join(rows))
    print(f"\nmeasures: {', '.join(metrics.MEASURES)} (three shown); documents ranked by "
          "their best passage")


if __name__ == "__main__":
    main()
