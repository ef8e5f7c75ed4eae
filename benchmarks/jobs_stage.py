"""CPU-seconds of the jobs stage alone (write shards, submit, poll, download, collect).

Surveys a corpus (``benchmarks/corpus.py``, or ``--corpus DIR``) once into an index
through the OpenAI emulator without running any job, keeps that index as a snapshot
(``--snapshot DIR``, reused when it exists), then copies it and runs one sync whose
survey finds nothing new: its jobs stage embeds every staged chunk. The jobs stage is
metered with ``time.process_time`` (this process, all its threads; the emulator runs in
its own process), split into its parts; ``--profile FILE`` also writes a cProfile of it
(CPU time). Publishing is skipped (it is another stage) unless ``--keep DIR``: then the
sync publishes too, and the index is kept in DIR for ``benchmarks/store_disk.py``.

    python benchmarks/jobs_stage.py --corpus /tmp/scale_corpus --snapshot /tmp/jobs-snap
"""

from __future__ import annotations

import argparse
import cProfile
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build
from sync_profile import CALLS, SPENT, meter

from emulator.fixture import run_emulator
from indexer import Index
from indexer.backends.openai import OpenAIBackend
from indexer.batchfiles import requests
from indexer.state.ledger import Ledger
from indexer.state.store import Store
from indexer.sync import jobs
from indexer.sync.jobs import JobRunner
from indexer.sync.pipeline import Pipeline
from indexer.sync.settling import Settling

# (depth, label, owner, method): the parts, in the order they are printed
PARTS: list[tuple[int, str, Any, str]] = [
    (0, "jobs (write, submit, collect)", JobRunner, "run"),
    (1, "plan: write shards, queue keys", JobRunner, "_plan"),
    (1, "check shards before upload", requests, "check_shard"),
    (1, "upload", OpenAIBackend, "upload"),
    (1, "poll", OpenAIBackend, "status"),
    (1, "download", OpenAIBackend, "fetch"),
    (1, "collect output", Settling, "_collect"),
    (2, "store.put_vectors", Store, "put_vectors"),
    (2, "ledger.finish_job", Ledger, "finish_job"),
    (1, "delete remote files", OpenAIBackend, "cleanup"),
    (0, "publish (with --keep)", Pipeline, "publish"),
    (1, "store.set_places", Store, "set_places"),
    (1, "store.optimize", Store, "optimize"),
]
def snapshot(corpus: Path, target: Path, max_tokens: int, base_url: str) -> None:
    """An index with the corpus surveyed and staged, and no job run."""
    target.mkdir(parents=True)
    (target / "config.toml").write_text(
        f'[index]\nbackend = "openai"\nchunk_tokens = {max_tokens}\npoll_seconds = 0.05\n')
    run, publish = JobRunner.run, Pipeline.publish
    JobRunner.run = lambda self, report: None  # type: ignore[method-assign]
    Pipeline.publish = lambda self, report: None  # type: ignore[method-assign]
    try:
        with Index(target, base_url=base_url) as index:
            report = index.sync([corpus])
    finally:
        JobRunner.run, Pipeline.publish = run, publish  # type: ignore[method-assign]
    print(f"snapshot: {report.chunks} chunks staged in {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--corpus", type=Path, help="a corpus folder already built")
    parser.add_argument("--snapshot", type=Path, help="keep (or reuse) the surveyed index here")
    parser.add_argument("--profile", type=Path, help="write a cProfile (CPU time) here")
    parser.add_argument("--keep", type=Path, help="publish too, and keep the index here")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "emulator-key")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = args.corpus
        if corpus is None:
            corpus = work / "corpus"
            build(corpus, args.files)
        snap = args.snapshot or work / "snapshot"
        with run_emulator(work / "emu") as emu:
            if not snap.exists():
                snapshot(corpus.resolve(), snap, args.max_tokens, emu.base_url)
            index_dir = args.keep or work / "index"
            shutil.copytree(snap, index_dir)
            meter(PARTS, rebind=(jobs,))
            if args.keep is None:
                Pipeline.publish = lambda self, report: None  # type: ignore[method-assign]
            profile = cProfile.Profile(time.process_time) if args.profile else None
            run = JobRunner.run

            def profiled(self: JobRunner, report: Any) -> None:
                assert profile is not None
                profile.enable()
                try:
                    run(self, report)
                finally:
                    profile.disable()

            if profile is not None:
                JobRunner.run = profiled  # type: ignore[method-assign]
            with Index(index_dir, base_url=emu.base_url) as index:
                report = index.sync()
            if profile is not None:
                profile.dump_stats(str(args.profile))
    print(f"jobs stage: {report.embedded} embedded in {report.jobs} batches")
    for depth, name, _, _ in PARTS:
        if name in SPENT:
            print(f"  {'  ' * depth}{name:<{40 - 2 * depth}} {SPENT[name]:7.2f} CPU-s "
                  f"({CALLS[name]} calls)")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
