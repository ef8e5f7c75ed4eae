"""The search store in a folder and in object storage, side by side.

Starts moto's S3 in server mode on 127.0.0.1 (the emulator the tests use, counting the
requests it serves), and indexes the same N small Markdown files (default 300) twice
with the local backend: once with the table in the index folder, once with
``store_uri = "s3://bench-store/team"``. For each it prints the first sync, a no-op
re-sync and a re-sync after 1% of the files changed (wall, CPU seconds of this thread
and of the whole process, which includes the model's threads and the emulator, requests
served), then warm searches on one ``Index`` (CPU ms per query p50, requests
per query) and on a reader given only the URI (``Index(store=URI)``).

    python benchmarks/store_s3.py [N]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from indexer import Index
from s3server import FAKE_CREDENTIALS, S3Server

URI = "s3://bench-store/team"
QUERIES = ["how do tides work", "sourdough starter", "ferry timetable", "lighthouse keeper",
           "garden compost", "storm warning", "harbour fees", "bread crust"]


def page(i: int, edition: int = 1) -> str:
    topic = QUERIES[i % len(QUERIES)]
    return (f"# Page {i}\n\nEdition {edition}. Notes on {topic}, entry {i}: what the "
            f"handbook says about {topic} and where to read more.\n")


def measure(s3: S3Server, work: Callable[[], object]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds of this thread and of the process (LanceDB's and the
    model's threads, and the emulator serving requests), requests served."""
    s3.reset()
    wall, cpu, total = time.perf_counter(), time.thread_time(), time.process_time()
    work()
    return (time.perf_counter() - wall, time.thread_time() - cpu, time.process_time() - total,
            s3.count())


def searches(s3: S3Server, index: Index) -> tuple[float, float]:
    index.search("warm up", k=5)
    times, requests = [], []
    for query in QUERIES * 3:
        _, cpu, _, served = measure(s3, lambda q=query: index.search(q, k=5))
        times.append(cpu * 1000)
        requests.append(served)
    return statistics.median(times), statistics.mean(requests)


def run(s3: S3Server, root: Path, docs: Path, remote: bool, n: int) -> None:
    label = "s3" if remote else "folder"
    index_dir = root / label
    index_dir.mkdir()
    extra = f'store_uri = "{URI}"\n' if remote else ""
    (index_dir / "config.toml").write_text(f'[index]\nbackend = "local"\n{extra}')
    for name, step in (("first sync", None), ("no-op re-sync", None),
                       ("1% edited re-sync", "edit")):
        if step:
            for i in range(0, n, 100):
                (docs / f"p{i}.md").write_text(page(i, edition=2 if remote else 3))

        def sync() -> None:
            with Index(index_dir) as index:
                index.sync([docs])

        wall, cpu, total, served = measure(s3, sync)
        print(f"{label:7} {name:18} wall {wall:6.2f} s  cpu {cpu:6.2f} s (process "
              f"{total:6.2f} s)  requests {served}")
    with Index(index_dir) as index:
        p50, per_query = searches(s3, index)
    print(f"{label:7} warm search        cpu p50 {p50:5.1f} ms  requests/query {per_query:.1f}")
    if remote:
        with Index(root / "nowhere", store=URI) as reader:
            p50, per_query = searches(s3, reader)
        print(f"{label:7} --store reader     cpu p50 {p50:5.1f} ms  requests/query "
              f"{per_query:.1f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    root = Path(tempfile.mkdtemp(prefix="store-s3-"))
    docs = root / "docs"
    docs.mkdir()
    for i in range(n):
        (docs / f"p{i}.md").write_text(page(i))
    with S3Server() as s3:
        os.environ.update({**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": s3.endpoint})
        s3.client.create_bucket(Bucket="bench-store")
        warm = root / "warm-docs"
        warm.mkdir()
        (warm / "a.md").write_text(page(0))
        with Index(root / "warm", backend="local") as index:  # model cache and imports
            index.sync([warm])
        for remote in (False, True):
            run(s3, root, docs, remote, n)


if __name__ == "__main__":
    main()
