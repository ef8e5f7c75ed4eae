"""Many small incremental syncs: fragments, versions and search latency stay flat.

Indexes N documents (default 2,000 passages), then runs S small syncs (default 200), each
editing one document, and prints the store's fragments and versions and the median
search latency before, midway and after.

    python benchmarks/store_health.py [--docs N] [--syncs S]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from indexer import Index
from indexer.state.layout import Layout
from indexer.state.store import Store

WORDS = (
    "batch", "index", "vector", "search", "model", "token", "chunk", "ledger", "store",
    "shard", "budget", "cost", "retry", "expire", "cancel", "upload", "download", "parse",
    "ingest", "publish", "flush", "compact",
)


def text(i: int, edit: int = 0) -> str:
    words = " ".join(WORDS[(i * 7 + k * 3 + edit) % len(WORDS)] for k in range(40))
    return f"# Page {i}\n\nPage {i}, edit {edit}: {words}.\n"


def shape(index_dir: Path) -> str:
    with Index(index_dir) as index:
        status = index.status()
    stats = Store(Layout(index_dir).current / "lancedb", status.model, status.dimensions).stats()
    return f"{stats.rows} rows, {stats.fragments} fragments, {stats.versions} versions"


def latency(index: Index, queries: int = 20) -> float:
    timings = []
    for q in range(queries):
        started = time.perf_counter()
        index.search(f"{WORDS[q % len(WORDS)]} {WORDS[(q * 5) % len(WORDS)]}", k=10)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=2_000)
    parser.add_argument("--syncs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, index_dir = Path(tmp) / "docs", Path(tmp) / "idx"
        folder.mkdir()
        for i in range(args.docs):
            (folder / f"page{i:05d}.md").write_text(text(i))
        with Index(index_dir) as index:
            started = time.perf_counter()
            index.sync([folder])
            print(f"initial sync of {args.docs} docs: {time.perf_counter() - started:.1f}s")
            index.search("warm up", k=1)
            print(f"before: {shape(index_dir)}; search median {latency(index):.1f} ms")
            started = time.perf_counter()
            for n in range(1, args.syncs + 1):
                (folder / f"page{n % args.docs:05d}.md").write_text(text(n % args.docs, n))
                index.sync([folder])
                if n == args.syncs // 2:
                    print(f"after {n} syncs: {shape(index_dir)}; "
                          f"search median {latency(index):.1f} ms")
            each = (time.perf_counter() - started) / args.syncs
            print(f"after {args.syncs} syncs: {shape(index_dir)}; "
                  f"search median {latency(index):.1f} ms; {each * 1000:.0f} ms per sync")


if __name__ == "__main__":
    main()
