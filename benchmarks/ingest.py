"""Ingest throughput of Batch API output files, base64 against float, and peak memory.

Writes a synthetic output file of N lines (default 50,000) of D-dimensional vectors
(default 1,536, text-embedding-3-small) in each encoding, then measures parsing alone
(``read_groups``) and parsing plus writing to the LanceDB store as a job's output is
collected (groups of 2,000 decoded into one array each, streamed into one append), each
in a fresh subprocess so peak RSS belongs to that run alone.

    python benchmarks/ingest.py [--lines N] [--dims D]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def write_output(path: Path, lines: int, dims: int, encoding: str) -> None:
    from indexer.batchfiles.output import encode_vector

    rng = np.random.default_rng(0)
    with path.open("w") as out:
        for n in range(lines):
            vector = rng.standard_normal(dims).astype(np.float32)
            vector /= np.linalg.norm(vector)
            embedding = encode_vector(vector) if encoding == "base64" else vector.tolist()
            out.write(json.dumps({
                "id": f"batch_req_{n}", "custom_id": f"key-{n:07d}", "error": None,
                "response": {"status_code": 200, "request_id": f"req_{n}", "body": {
                    "object": "list", "model": "text-embedding-3-small",
                    "data": [{"object": "embedding", "index": 0, "embedding": embedding}],
                    "usage": {"prompt_tokens": 200, "total_tokens": 200}}}}) + "\n")


def measure(path: Path, dims: int, store_dir: Path | None) -> dict[str, float]:
    from indexer.batchfiles.output import read_groups
    from indexer.state.store import Store

    store = Store(store_dir, "bench", dims) if store_dir else None
    started = time.perf_counter()
    cpu = time.process_time()
    count = 0

    def groups() -> Iterator[tuple[list[str], np.ndarray]]:
        nonlocal count
        for group in read_groups(path, dims, 2_000):  # the pipeline's group size
            count += len(group.keys)
            yield group.keys, group.vectors

    if store is not None:  # as a job is collected: one streamed write of its vectors
        store.put_vectors(groups(), fresh=True)
    else:
        for _ in groups():
            pass
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"vectors": count, "seconds": seconds, "cpu": time.process_time() - cpu,
            "per_second": count / seconds, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, store_dir = Path(args.child[0]), args.child[2]
        print(json.dumps(measure(path, args.dims, Path(store_dir) if store_dir != "-" else None)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for encoding in ("base64", "float"):
            path = Path(tmp) / f"{encoding}.jsonl"
            write_output(path, args.lines, args.dims, encoding)
            size = path.stat().st_size / 1e6
            for mode in ("parse", "parse+store"):
                store = str(Path(tmp) / f"store-{encoding}") if mode == "parse+store" else "-"
                child = subprocess.run(
                    [sys.executable, __file__, "--dims", str(args.dims), "--child", str(path),
                     mode, store], capture_output=True, text=True, check=True)
                r = json.loads(child.stdout.strip().splitlines()[-1])
                print(f"{encoding:6} {size:7.0f} MB  {mode:11}  {r['vectors']} vectors in "
                      f"{r['seconds']:.1f}s ({r['cpu']:.1f} CPU-s) = "
                      f"{r['per_second']:,.0f} vectors/s, peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
