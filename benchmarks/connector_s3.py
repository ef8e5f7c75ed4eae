"""Re-sync an S3 prefix of N objects (default 1,000) on a local S3 emulator.

Starts moto's S3 in server mode on 127.0.0.1 (the emulator the tests use, counting the
requests it serves), fills a bucket with N small Markdown objects (texts drawn from a
small pool, so the first sync's embedding stays short), syncs it once with the local
backend, then prints for a no-op re-sync and for a re-sync after 1% of the objects
changed: wall time, CPU seconds of the syncing thread (the emulator serves requests in
threads of its own, counted apart as the process's total) and the requests made.

    python benchmarks/connector_s3.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from indexer import Index, SyncReport
from s3server import FAKE_CREDENTIALS, S3Server

POOL = 40
BUCKET = "bench"


def text(i: int, edition: int = 1) -> bytes:
    return (f"# Page {i % POOL}\n\nEdition {edition}: this page explains topic number "
            f"{i % POOL} of the manual.\n").encode()


def timed(s3: S3Server, index_dir: Path) -> tuple[SyncReport, float, float, float, int]:
    """One sync: its report, wall seconds, thread CPU seconds, process CPU seconds,
    and the requests the emulator served."""
    s3.reset()
    wall, cpu, total = time.perf_counter(), time.thread_time(), time.process_time()
    with Index(index_dir) as index:
        report = index.sync()
    return (report, time.perf_counter() - wall, time.thread_time() - cpu,
            time.process_time() - total, s3.count())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    os.environ.update(FAKE_CREDENTIALS)
    with S3Server() as s3, tempfile.TemporaryDirectory() as tmp:
        os.environ["AWS_ENDPOINT_URL"] = s3.endpoint
        s3.client.create_bucket(Bucket=BUCKET)
        s3.fill(BUCKET, ((f"docs/s{i % 50:02d}/page{i:05d}.md", text(i)) for i in range(n)))
        index_dir = Path(tmp) / "idx"
        started = time.perf_counter()
        with Index(index_dir, backend="local") as index:
            first = index.sync([f"s3://{BUCKET}/docs/"])
        print(f"first sync of {n} objects: {time.perf_counter() - started:.2f}s wall "
              f"({first.new} new, {first.embedded} chunks embedded)")
        runs = [timed(s3, index_dir) for _ in range(3)]
        assert all(r[0].unchanged == n and r[0].embedded == 0 for r in runs)
        best = min(runs, key=lambda r: r[1])
        print(f"no-op re-sync of {n} objects: best {best[1]:.3f}s wall, {best[2]:.3f} CPU-s "
              f"(syncing thread; {best[3]:.3f} CPU-s with the emulator), {best[4]} requests; "
              f"walls {', '.join(f'{r[1]:.3f}' for r in runs)}s")
        changed = max(1, n // 100)
        for i in range(0, n, n // changed):
            s3.client.put_object(Bucket=BUCKET, Key=f"docs/s{i % 50:02d}/page{i:05d}.md",
                                 Body=text(i, edition=2) + f"Revised page {i}.\n".encode())
        report, wall, cpu, total, requests = timed(s3, index_dir)
        assert report.changed == changed and report.unchanged == n - changed
        print(f"re-sync after {changed} of {n} objects changed: {wall:.3f}s wall, {cpu:.3f} "
              f"CPU-s (syncing thread; {total:.3f} CPU-s with the emulator), {requests} "
              f"requests, {report.embedded} chunks embedded")


if __name__ == "__main__":
    main()
