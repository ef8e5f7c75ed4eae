"""CPU time of publishing: N dirty keys rewritten into a table of M rows.

Builds a ledger and a store directly (random vectors, no model), publishes the first
version of every document, then re-stages documents so that N keys change places (the
chunk sets of neighbouring documents are swapped, so every key is reused and nothing
is embedded) and a tenth of them lose their last place (they are dropped), and
publishes again. Prints CPU seconds (all threads) and wall seconds of each publish, with
the store's calls apart (``set_places`` includes reading the ledger, which it streams).

    python benchmarks/publish.py [--rows M] [--dirty N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from indexer.batchfiles.requests import Shard
from indexer.chunking.chunker import ChunkerSettings
from indexer.errors import BackendError
from indexer.progress import Silent
from indexer.records import Chunk, StoreRow
from indexer.report import SyncReport
from indexer.state.ledger import Ledger
from indexer.state.store import Store
from indexer.sync.pipeline import Pipeline, SyncOptions

DIMS = 384
PER_DOC = 5


def chunks(doc: int) -> list[tuple[Chunk, str]]:
    return [(Chunk(n, f"passage {n} of document {doc}", "", 8, ("H",), None, n + 1, n + 1),
             f"key-{doc:07d}-{n}") for n in range(PER_DOC)]


def no_backend() -> object:
    raise BackendError("publishing needs no backend")


SPENT: dict[str, float] = {}


def metered(store: Store) -> None:
    """Count the CPU time of the store's publishing calls apart."""
    for name in ("set_places", "purge", "optimize"):
        if hasattr(store, name):
            method = getattr(store, name)

            def wrapper(*args: object, _method: Any = method, _name: str = name) -> None:
                started = time.process_time()
                try:
                    _method(*args)
                finally:
                    SPENT[_name] = SPENT.get(_name, 0.0) + time.process_time() - started

            setattr(store, name, wrapper)


def timed(label: str, pipeline: Pipeline) -> None:
    SPENT.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    report = SyncReport()
    pipeline.publish(report)
    spent = time.process_time() - cpu
    parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in SPENT.items())
    print(f"{label}: {spent:.2f} CPU-s ({parts}; ledger and the rest "
          f"{spent - sum(SPENT.values()):.2f}), {time.perf_counter() - wall:.2f} s wall")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000, help="table rows (M)")
    parser.add_argument("--dirty", type=int, default=5_000, help="keys re-published (N)")
    args = parser.parse_args()
    docs = args.rows // PER_DOC
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "state.db")
        store = Store(Path(tmp) / "lancedb", "bench", DIMS)
        metered(store)
        pipeline = Pipeline(ledger, no_backend, lambda _: store,  # type: ignore[arg-type]
                            Path(tmp), SyncOptions(ChunkerSettings()), Silent())
        pipeline.__dict__["store"] = store  # skip opening a backend
        keys: list[str] = []
        for doc in range(docs):
            keyed = chunks(doc)
            ledger.stage(f"/docs/{doc:07d}.md", "/docs", "1:1", f"h{doc}", "", keyed)
            keys += [key for _, key in keyed]
        job = ledger.create_job("bench", Shard(Path(tmp) / "s", len(keys), 0, 0, tuple(keys)))
        ledger.finish_job(job, keys, [], 1)
        rng = np.random.default_rng(0)
        for start in range(0, len(keys), 5_000):
            part = keys[start:start + 5_000]
            store.put([StoreRow(k, f"text {k}", "", (), rng.standard_normal(DIMS))
                       for k in part])
        timed(f"first publish of {len(keys)} keys", pipeline)

        changed = min(args.dirty // PER_DOC, docs) // 2 * 2
        for doc in range(0, changed, 2):  # swap chunk sets of documents doc and doc + 1
            for mine, theirs in ((doc, doc + 1), (doc + 1, doc)):
                keyed = chunks(theirs)
                if mine % 10 == 0:
                    keyed = keyed[:-1]  # that key is now held by no document: dropped
                ledger.stage(f"/docs/{mine:07d}.md", "/docs", "2:2", f"h{mine}-2", "", keyed)
        print(f"re-publish: {changed * PER_DOC} keys change places in a table of "
              f"{store.stats().rows} rows")
        timed(f"re-publish of {changed} documents", pipeline)
        print(f"table now {store.stats().rows} rows, {store.count()} searchable")
        ledger.close()


if __name__ == "__main__":
    main()
