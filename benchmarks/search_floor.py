"""Where a warm search's time goes, stage by stage, on the tables of search_latency.py.

Runs each stage of a warm search on its own, interleaved query by query (so the load
falls on all of them alike), and prints p50 wall and CPU per call:

- the query embedding (one text, the model's query session);
- the vector ranking through Lance: index scan alone (no refine), refined 2x as searches
  run it (keys only), and with the hits' text and places (``vector`` mode's one call);
- reading 10 hits' text and places by row id (what hybrid reads after fusing);
- hybrid's halves at their depth (``fusion.DEFAULT.depth``): vector keys, keyword keys;
- ``Index.search`` in ``vector`` and ``hybrid`` mode, whole.

The serial floor of a search is then the embedding plus the store calls that depend on
it: ``vector`` = embedding + vector call with hits; ``hybrid`` = embedding + vector keys
(depth) + hits read (its keyword half runs beside them). Builds the tables like
search_latency.py when ``--keep`` holds none.

    python benchmarks/search_floor.py [--sizes 10000 100000] [--keep /tmp/latkeep]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LANCE_LOG", "error")

import lance

from indexer import Index
from indexer.search.fusion import DEFAULT
from indexer.state.layout import Layout

sys.path.insert(0, str(Path(__file__).parent))
from search_latency import QUERIES, WORDS, build


def texts(n: int) -> list[str]:
    """The queries search_latency.py times."""
    return [QUERIES[q % len(QUERIES)] + ("" if q < len(QUERIES) else f" {WORDS[q % len(WORDS)]}")
            for q in range(n)]


def stages(index: Index, queries: list[str]) -> dict[str, Callable[[int], object]]:
    """Each stage as a call on query number ``i``."""
    backend = index._open_backend()
    store = index._read_store(backend)
    condition = store.condition(None)
    vectors = [backend.embed_query([text])[0] for text in queries]
    dataset = lance.dataset(str(Layout(index.path).current / "lancedb" / "chunks.lance"))
    hits = [[r.row for r in store.nearest_keys(v, 10, condition)] for v in vectors]
    depth = DEFAULT.depth

    def scan(i: int) -> object:
        return dataset.to_table(columns=["_distance"], with_row_id=True, limit=12, nearest={
            "column": "vector", "q": vectors[i], "k": 12, "metric": "cosine",
            "minimum_nprobes": 20, "maximum_nprobes": 20})

    return {
        "query embedding": lambda i: backend.embed_query([queries[i]]),
        "vector: index scan, no refine": scan,
        "vector: refined 2x, keys (10)": lambda i: store.nearest_keys(vectors[i], 10, condition),
        "vector: with hits (10)": lambda i: store.nearest(vectors[i], 10, condition),
        "hits read by row id (10)": lambda i: store.passages(hits[i]),
        f"hybrid half: vector keys ({depth})":
            lambda i: store.nearest_keys(vectors[i], depth, condition),
        f"hybrid half: keyword keys ({depth})":
            lambda i: store.matching_keys(queries[i], depth, condition),
        "Index.search vector": lambda i: index.search(queries[i], k=10, mode="vector"),
        "Index.search hybrid": lambda i: index.search(queries[i], k=10, mode="hybrid"),
    }


def measure(index: Index, queries: list[str], rounds: int) -> dict[str, tuple[float, float]]:
    """p50 (wall, CPU) in ms of each stage."""
    calls = stages(index, queries)
    for call in calls.values():
        call(0)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in calls}
    for _ in range(rounds):
        for i in range(len(queries)):
            for name, call in calls.items():
                wall, cpu = time.perf_counter(), time.process_time()
                call(i)
                times[name][0].append(time.perf_counter() - wall)
                times[name][1].append(time.process_time() - cpu)
    return {name: (statistics.median(w) * 1000, statistics.median(c) * 1000)
            for name, (w, c) in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hidden", type=float, default=0.02)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = args.keep / f"{size}-{args.hidden}" if args.keep else Path(tmp)
            index_dir = root / "idx"
            if not index_dir.exists():
                index_dir = build(root, size, args.hidden)
            with Index(index_dir) as index:
                p50 = measure(index, texts(args.queries), args.rounds)
        print(f"{size} passages (p50 per call, ms: wall / CPU)")
        for name, (wall, cpu) in p50.items():
            print(f"  {name:<32} {wall:6.2f} / {cpu:6.2f}")
        embed = p50["query embedding"]
        for mode, parts in (("vector", ["vector: with hits (10)"]),
                            ("hybrid", [f"hybrid half: vector keys ({DEFAULT.depth})",
                                        "hits read by row id (10)"])):
            wall = embed[0] + sum(p50[p][0] for p in parts)
            cpu = embed[1] + sum(p50[p][1] for p in parts)
            print(f"  serial floor, {mode:<17} {wall:6.2f} / {cpu:6.2f}")
        print(f"  load after: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
