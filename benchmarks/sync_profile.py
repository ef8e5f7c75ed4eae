"""CPU-seconds per stage of one full sync through the OpenAI emulator.

Builds the corpus of ``benchmarks/corpus.py`` (``--files`` of them), starts the
emulator (``tests/emulator``, its own process: its time is not counted), and syncs the
corpus into a new index in this process with every stage metered by
``time.process_time`` (this process, all its threads, LanceDB's included). Stages nest:
each line is inclusive of the indented ones below it, and shows the process's peak RSS
when the stage last ended (so the stage where it jumps is the one that needed it). Then
prints the process's total CPU time and peak RSS, the store's size on disk, and the same
for a one-file-edit re-sync run in a process of its own (as a user's next sync is).

    python benchmarks/sync_profile.py [--files 300] [--max-tokens 512] [--corpus DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build

from emulator.fixture import run_emulator
from indexer import Index
from indexer.connectors.filesystem import FilesystemSource
from indexer.state.ledger import Ledger
from indexer.state.store import Store
from indexer.sync.jobs import JobRunner
from indexer.sync.pipeline import Pipeline
from indexer.sync.settling import Settling

# (depth, label, owner, method): the stages, in the order they are printed
STAGES: list[tuple[int, str, Any, str]] = [
    (0, "survey (scan, read, chunk, key, stage)", Pipeline, "_survey"),
    (1, "read files", FilesystemSource, "load"),
    (1, "chunk and key", Pipeline, "keyed_chunks"),
    (1, "ledger.stage", Ledger, "stage"),
    (0, "jobs (write, submit, collect)", JobRunner, "run"),
    (1, "collect output", Settling, "_collect"),
    (2, "store.put_vectors", Store, "put_vectors"),
    (0, "publish", Pipeline, "publish"),
    (1, "ledger.publish", Ledger, "publish"),
    (1, "store.set_places (reads the ledger)", Store, "set_places"),
    (1, "ledger.settle_dirty", Ledger, "settle_dirty"),
    (1, "store.purge", Store, "purge"),
    (1, "store.optimize", Store, "optimize"),
]
SPENT: dict[str, float] = {}
CALLS: dict[str, int] = {}
PEAK: dict[str, float] = {}


def meter(stages: list[tuple[int, str, Any, str]] | None = None,
          rebind: tuple[Any, ...] = ()) -> None:
    """Wrap every stage's method (default: :data:`STAGES`) so that its CPU time adds up in
    SPENT; a module in ``rebind`` that imported a wrapped function by name gets the
    wrapper too."""
    for _, label, owner, name in stages or STAGES:
        method = getattr(owner, name)

        def wrapper(*args: Any, _method: Callable[..., Any] = method, _label: str = label,
                    **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return _method(*args, **kwargs)
            finally:
                SPENT[_label] = SPENT.get(_label, 0.0) + time.process_time() - started
                CALLS[_label] = CALLS.get(_label, 0) + 1
                PEAK[_label] = peak_mb()

        setattr(owner, name, wrapper)
        for module in rebind:
            if getattr(module, name, None) is method:
                setattr(module, name, wrapper)


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB: VmHWM where there is /proc
    (``ru_maxrss`` keeps the parent's peak across fork and exec)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def synced(label: str, index_dir: Path, corpus: Path, base_url: str) -> None:
    SPENT.clear()
    CALLS.clear()
    PEAK.clear()
    started = time.process_time()
    with Index(index_dir, base_url=base_url) as index:
        report = index.sync([corpus])
    total = time.process_time() - started
    print(f"{label}: {total:.2f} CPU-s in this process; {report.new} new, {report.changed} "
          f"changed, {report.chunks} chunks staged, {report.embedded} embedded, "
          f"{report.published} published")
    for depth, name, _, _ in STAGES:
        if name in SPENT:
            print(f"  {'  ' * depth}{name:<{44 - 2 * depth}} {SPENT[name]:7.2f} CPU-s "
                  f"({CALLS[name]} calls; peak RSS {PEAK[name]:.0f} MB)")
    print(f"  peak RSS {peak_mb():.0f} MB, index on disk {disk(index_dir) / 1e6:.0f} MB",
          flush=True)


def run(corpus: Path, work: Path, max_tokens: int) -> None:
    index_dir = work / "index"
    index_dir.mkdir()
    (index_dir / "config.toml").write_text(
        f'[index]\nbackend = "openai"\nchunk_tokens = {max_tokens}\npoll_seconds = 0.05\n')
    os.environ.setdefault("OPENAI_API_KEY", "emulator-key")
    with run_emulator(work / "emu") as emu:
        meter()
        synced("full sync", index_dir, corpus, emu.base_url)
        edited = sorted(corpus.rglob("*.md"))[len(list(corpus.rglob("*.md"))) // 2]
        edited.write_text(edited.read_text("utf-8") + "\n\nOne more paragraph.\n", "utf-8")
        subprocess.run([sys.executable, __file__, "--resync", str(index_dir), str(corpus),
                        emu.base_url], check=True)


def main() -> None:
    if sys.argv[1:2] == ["--resync"]:  # the re-sync's own process (see run)
        meter()
        synced("one-file edit", Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--corpus", type=Path, help="a corpus folder already built (copied)")
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True)
            work = args.keep
        corpus = work / "corpus"
        if args.corpus:
            import shutil

            shutil.copytree(args.corpus, corpus)
        else:
            build(corpus, args.files)
        files = sum(1 for p in corpus.rglob("*") if p.is_file())
        print(f"corpus: {files} files, {disk(corpus) / 1e6:.1f} MB; max_tokens {args.max_tokens}")
        run(corpus, work, args.max_tokens)


if __name__ == "__main__":
    main()
