"""A million chunks on one machine: full sync, re-syncs and search, with the cost per chunk.

Builds a corpus of about ``--chunks`` chunks at the default 200-token budget with
``benchmarks/corpus.py`` (real standard-library pages, then real sections recombined),
starts the OpenAI emulator (``tests/emulator``) in its own process, without its state
snapshot (which it would rewrite, billing counters and all, on every call), and syncs
the corpus into a new index in this process. Vectors are ``text-embedding-3-small`` cut
to ``--dimensions`` (256) and sent base64, so a million of them stay about 1 GB.

Prints, for the full sync, a no-op re-sync and a re-sync after editing 0.1% of the
files: CPU-s of this process (all its threads, LanceDB's included), wall, peak RSS of
the phase (``VmHWM``, reset between phases), and the emulator's CPU-s (read from
``/proc``), each also per chunk, so runs at 10k, 100k and 1M show anything superlinear;
the full sync's stage profile (``benchmarks/sync_profile.py``'s meter); the store's
size on disk (table, ledger and batch files apart); then warm ``Index.search`` latency
(the query's embedding through the emulator included) for vector and hybrid search
with the vector index in place.

    python benchmarks/million.py [--chunks 1000000] [--queries 50] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync_profile
from search_latency import QUERIES, percentiles, timed

from emulator.fixture import run_emulator
from indexer import Index
from indexer.report import SyncReport
from indexer.state.layout import Layout
from indexer.state.store import Store

BYTES_PER_CHUNK = 350
"""Corpus bytes per chunk at the 200-token budget (measured on this corpus)."""
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """User and system CPU-seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def reset_peak() -> None:
    """Start a new peak-RSS measurement for this process (Linux ``clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


@dataclass
class Phase:
    """What one phase cost: this process, the emulator, wall time and peak RSS."""

    cpu: float = 0.0
    emulator: float = 0.0
    wall: float = 0.0
    peak: float = 0.0


@contextmanager
def measured(emulator_pid: int) -> Iterator[Phase]:
    """Meter the ``with`` block into the yielded :class:`Phase`."""
    phase = Phase()
    reset_peak()
    cpu, emu, wall = time.process_time(), cpu_of(emulator_pid), time.perf_counter()
    yield phase
    phase.cpu = time.process_time() - cpu
    phase.emulator = cpu_of(emulator_pid) - emu
    phase.wall = time.perf_counter() - wall
    phase.peak = sync_profile.peak_mb()  # VmHWM: since reset_peak


def line(label: str, phase: Phase, chunks: int, extra: str = "") -> None:
    per = f" = {phase.cpu / chunks * 1e6:.0f} CPU-µs/chunk" if chunks else ""
    emu = f" = {phase.emulator / chunks * 1e6:.0f} µs/chunk" if chunks else ""
    print(f"{label}: {phase.cpu:.1f} CPU-s{per}; wall {phase.wall:.1f} s; peak RSS "
          f"{phase.peak:.0f} MB; emulator {phase.emulator:.1f} CPU-s{emu}{extra}", flush=True)


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def edit(corpus: Path, share: float) -> int:
    """Insert a paragraph in the middle of ``share`` of the Markdown files; how many."""
    files = sorted(corpus.rglob("*.md"))
    count = max(1, round(len(files) * share))
    chosen = [files[(2 * i + 1) * len(files) // (2 * count)] for i in range(count)]
    for number, path in enumerate(chosen):
        text = path.read_text("utf-8")
        cut = text.find("\n\n", len(text) // 2)
        cut = len(text) if cut < 0 else cut
        path.write_text(f"{text[:cut]}\n\nAn edited paragraph, number {number}.{text[cut:]}",
                        "utf-8")
    return len(chosen)


def stage_profile() -> None:
    for depth, name, _, _ in sync_profile.STAGES:
        if name in sync_profile.SPENT:
            print(f"  {'  ' * depth}{name:<{44 - 2 * depth}} "
                  f"{sync_profile.SPENT[name]:8.1f} CPU-s ({sync_profile.CALLS[name]} calls)")
    sync_profile.SPENT.clear()
    sync_profile.CALLS.clear()


def beat(emulator_pid: int, seconds: float) -> None:
    """Every ``seconds``, print the CPU spent so far, by stage: partial figures of a long run."""
    started = time.perf_counter()
    while True:
        time.sleep(seconds)
        spent = ", ".join(f"{name.split(' (')[0]} {cpu:.0f}"
                          for name, cpu in sync_profile.SPENT.items())
        print(f"  [{(time.perf_counter() - started) / 60:.0f} min] {time.process_time():.0f} "
              f"CPU-s, emulator {cpu_of(emulator_pid):.0f} CPU-s, "
              f"peak RSS {sync_profile.peak_mb():.0f} MB;"
              f" finished stages: {spent}", flush=True)


def run(work: Path, chunks: int, dimensions: int, queries: int, heartbeat: float) -> None:
    corpus, index_dir = work / "corpus", work / "index"
    started = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).with_name("corpus.py")), str(corpus),
                    "--files", str(10**7), "--max-bytes", str(chunks * BYTES_PER_CHUNK)],
                   check=True)  # its own process: its memory is not the sync's
    print(f"  (built in {time.perf_counter() - started:.0f} s wall)", flush=True)
    index_dir.mkdir()
    (index_dir / "config.toml").write_text(
        f'[index]\nbackend = "openai"\nmodel = "text-embedding-3-small"\n'
        f'dimensions = {dimensions}\nencoding_format = "base64"\npoll_seconds = 0.05\n')
    print(f"vectors: text-embedding-3-small at {dimensions} dimensions, base64; "
          "chunk_tokens 200 (default)", flush=True)
    os.environ.setdefault("OPENAI_API_KEY", "emulator-key")
    try:
        sync_profile.meter()
    except AttributeError as missing:  # a stage was renamed: profile the others
        print(f"(stage meter incomplete: {missing})")
    with run_emulator(work / "emu", snapshot=False) as emu:
        assert emu._process is not None
        pid = emu._process.pid
        if heartbeat:
            threading.Thread(target=beat, args=(pid, heartbeat), daemon=True).start()

        def sync() -> SyncReport:
            with Index(index_dir, base_url=emu.base_url) as index:
                return index.sync([corpus])

        with measured(pid) as full:
            report = sync()
        total = report.chunks
        line("full sync", full, total,
             f"; {total} chunks, {report.embedded} embedded, {report.tokens} tokens")
        stage_profile()
        generation = Layout(index_dir).current
        table, ledger = size(Layout.store(generation)), size(generation) - size(
            Layout.store(generation)) - size(Layout.batches(generation))
        store = Store(Layout.store(generation), "text-embedding-3-small", dimensions)
        print(f"store on disk: table {table / 1e6:.0f} MB ({table / max(total, 1):.0f} B/chunk), "
              f"ledger {ledger / 1e6:.0f} MB ({ledger / max(total, 1):.0f} B/chunk), batch "
              f"files {size(Layout.batches(generation)) / 1e6:.0f} MB; {store.stats()}",
              flush=True)

        with measured(pid) as noop:
            report = sync()
        line("no-op re-sync", noop, total, f"; {report.embedded} embedded")
        stage_profile()

        edited = edit(corpus, 0.001)
        with measured(pid) as changed:
            report = sync()
        line(f"0.1% edit re-sync ({edited} files)", changed, total,
             f"; {report.embedded} chunks embedded")
        stage_profile()

        with Index(index_dir, base_url=emu.base_url) as index:
            for mode in ("vector", "hybrid"):
                index.search("warm up", k=10, mode=mode)

                def search(text: str, mode: str = mode) -> object:
                    return index.search(text, k=10, mode=mode)

                walls, cpus = timed(search, queries)
                print(f"search {mode:<6} (k=10, {queries} queries, {len(QUERIES)} texts): wall "
                      f"{percentiles(walls)}; cpu {percentiles(cpus)}", flush=True)
        store.refresh()
        print(f"store after the re-syncs: {store.stats()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--dimensions", type=int, default=256)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep it")
    parser.add_argument("--heartbeat", type=float, default=0,
                        help="print the CPU spent so far every this many seconds")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    if args.keep:
        args.keep.mkdir(parents=True)
        run(args.keep, args.chunks, args.dimensions, args.queries, args.heartbeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args.chunks, args.dimensions, args.queries, args.heartbeat)


if __name__ == "__main__":
    main()
