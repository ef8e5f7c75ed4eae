"""The already-paid check against the store: ``Store.held`` per key as the table grows.

Before submitting anything, a sync asks the store which pending keys already have a
vector (``JobRunner._adopt_stored``), so nothing is paid for twice whatever the ledger
says. This builds a store of N rows (keys only need be real; vectors of 8 dimensions,
no vector index) for each size, then times ``held`` for a few pending keys and for
many (half of them held), in CPU-seconds of this process: the first call of a process
(which loads the index) apart from warm ones.

    python benchmarks/store_held.py [--rows 100000 300000 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from indexer.config import Config
from indexer.state.store import Store, StoreHealth

DIMENSIONS = 8


def key(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:43]


def groups(rows: int) -> Iterator[tuple[list[str], np.ndarray]]:
    for start in range(0, rows, 20_000):
        keys = [key(n) for n in range(start, min(rows, start + 20_000))]
        yield keys, np.ones((len(keys), DIMENSIONS), np.float32)


def timed(store: Store, keys: list[str]) -> tuple[float, int]:
    started = time.process_time()
    found = store.held(keys)
    return time.process_time() - started, len(found)


def measure(folder: Path, rows: int) -> None:
    health = replace(StoreHealth.from_config(Config()), vector_index_rows=10**12)
    store = Store(folder, "m", DIMENSIONS, health)
    store.put_vectors(groups(rows), fresh=True)
    store.optimize()  # every row in the custom_id index, as after a sync
    store = Store(folder, "m", DIMENSIONS, health)  # a new process's first lookup
    absent = [key(-n) for n in range(1, 50_001)]
    present = [key(n * 7 % rows) for n in range(50_000)]
    cold, _ = timed(store, absent[:11])
    print(f"{rows:>9,} rows: first lookup (11 keys, loads the index) {cold * 1e3:6.1f} ms CPU",
          flush=True)
    for count in (11, 2_000, 20_000, 100_000):
        keys = absent[:count // 2] + present[:count - count // 2]
        spent, found = min(timed(store, keys) for _ in range(3))
        print(f"{rows:>9,} rows: {count:>7,} keys ({found:,} held) {spent * 1e3:7.1f} ms CPU "
              f"= {spent / count * 1e6:5.1f} µs/key", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    args = parser.parse_args()
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            measure(Path(tmp) / "lancedb", rows)


if __name__ == "__main__":
    main()
