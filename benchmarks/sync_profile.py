"""CPU-seconds per stage of one full sync through the OpenAI emulator.

Builds the corpus of ``benchmarks/corpus.py`` (``--files`` of them), starts the
emulator (``tests/emulator``, its own process: its time is not counted), and syncs the
corpus into a new index in this process with every stage metered by
``time.process_time`` (this process, all its threads, LanceDB's included). Stages nest:
each line is inclusive of the indented ones below it, and shows the highest resident
memory the process reached while in that stage (exact on Linux: VmHWM is read and reset
through ``/proc/self/clear_refs`` whenever a stage starts or ends; elsewhere, the
process's peak when the stage last ended). Then prints the process's total CPU time
(also with what a new process spends importing the indexer and the libraries a sync
loads up front, timed in a fresh interpreter: this one imported them before its clock
started) and peak RSS (and its peak outside ``Store.optimize``, whose vector-index build is the
largest single step), the store's size on disk, and the same for a re-sync after editing
``--edits`` of the Markdown files (1% by default, at least one), run in a process of its
own as a user's next sync is.

    python benchmarks/sync_profile.py [--files 300] [--max-tokens 512] [--corpus DIR]
                                      [--keep DIR] [--edits 0.01]
                                      [--snapshot DIR | --resync-from DIR]

``--snapshot DIR`` copies the synced index and its corpus to ``DIR`` before the edit;
``--resync-from DIR`` starts from such a copy and runs only the edit and the re-sync (a
10,000-file full sync costs minutes; its re-sync can then be measured again and again).
"""

from __future__ import annotations

import argparse
import os
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
from rss import hwm_mb as _hwm
from rss import proc_file

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
OUTSIDE = "store.optimize"
"""The stage left out of the second peak figure (the vector-index build is in it)."""
_ACTIVE: list[str] = []  # the stages running now, outermost first (exact peaks only)
_SEEN: dict[str, float] = {}  # "all" and "outside": highest VmHWM read before a reset


def meter(stages: list[tuple[int, str, Any, str]] | None = None,
          rebind: tuple[Any, ...] = (), exact_peaks: bool = False) -> None:
    """Wrap every stage's method (default: :data:`STAGES`) so that its CPU time adds up in
    SPENT; a module in ``rebind`` that imported a wrapped function by name gets the
    wrapper too. With ``exact_peaks`` (where VmHWM can be reset), PEAK holds the highest
    RSS reached while each stage ran; otherwise the process's peak when it last ended."""
    exact = exact_peaks and _resettable()
    for _, label, owner, name in stages or STAGES:
        method = getattr(owner, name)

        def wrapper(*args: Any, _method: Callable[..., Any] = method, _label: str = label,
                    **kwargs: Any) -> Any:
            if exact:
                _fold()
                _ACTIVE.append(_label)
            started = time.process_time()
            try:
                return _method(*args, **kwargs)
            finally:
                SPENT[_label] = SPENT.get(_label, 0.0) + time.process_time() - started
                CALLS[_label] = CALLS.get(_label, 0) + 1
                if exact:
                    _fold()
                    _ACTIVE.pop()
                else:
                    PEAK[_label] = peak_mb()

        setattr(owner, name, wrapper)
        for module in rebind:
            if getattr(module, name, None) is method:
                setattr(module, name, wrapper)


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB: VmHWM where there is /proc
    (``ru_maxrss`` keeps the parent's peak across fork and exec), and the peaks read
    before the exact meter reset it."""
    return max(_SEEN.get("all", 0.0), _hwm())


def peak_outside_mb() -> float:
    """The peak resident memory, in MB, reached while :data:`OUTSIDE` was not running
    (only with exact peaks; otherwise the whole peak)."""
    if not _SEEN:
        return peak_mb()
    return max(_SEEN.get("outside", 0.0), 0.0 if OUTSIDE in _ACTIVE else _hwm())


def _resettable() -> bool:
    try:
        _reset()
    except OSError:
        return False
    return True


def _reset() -> None:
    """Reset VmHWM to the current RSS (through a descriptor kept open: opening the file
    for each of the thousands of stage calls was most of the meter's cost)."""
    os.write(proc_file("clear_refs"), b"5")


def _fold() -> None:
    """Credit the peak since the last reset to every running stage, then reset it."""
    now = _hwm()
    for label in _ACTIVE:
        PEAK[label] = max(PEAK.get(label, 0.0), now)
    _SEEN["all"] = max(_SEEN.get("all", 0.0), now)
    if OUTSIDE not in _ACTIVE:
        _SEEN["outside"] = max(_SEEN.get("outside", 0.0), now)
    _reset()


def disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def synced(label: str, index_dir: Path, corpus: Path, base_url: str) -> None:
    SPENT.clear()
    CALLS.clear()
    PEAK.clear()
    _SEEN.clear()
    started = time.process_time()
    with Index(index_dir, base_url=base_url) as index:
        report = index.sync([corpus])
    total = time.process_time() - started
    print(f"{label}: {total:.2f} CPU-s in this process; {report.new} new, {report.changed} "
          f"changed, {report.chunks} chunks staged, {report.embedded} embedded, "
          f"{report.published} published")
    imports = import_cost()
    print(f"  with the imports a sync process pays first ({imports:.2f} CPU-s): "
          f"{total + imports:.2f} CPU-s")
    for depth, name, _, _ in STAGES:
        if name in SPENT:
            print(f"  {'  ' * depth}{name:<{44 - 2 * depth}} {SPENT[name]:7.2f} CPU-s "
                  f"({CALLS[name]} calls; peak RSS {PEAK[name]:.0f} MB)")
    print(f"  peak RSS {peak_mb():.0f} MB ({peak_outside_mb():.0f} MB outside {OUTSIDE}), "
          f"index on disk {disk(index_dir) / 1e6:.0f} MB", flush=True)


_IMPORTS = ("from indexer.cli import main; from indexer.state.store import Store; "
            "from indexer.sync.pipeline import Pipeline; from indexer.sync.jobs import JobRunner")


def import_cost() -> float:
    """CPU-s a new process spends importing what a sync loads before its work starts (this
    process imported it before its clock started): measured in a fresh interpreter."""
    code = f"import time; t = time.process_time(); {_IMPORTS}; print(time.process_time() - t)"
    out = subprocess.run([sys.executable, "-P", "-c", code],  # -P: not the working folder's
                         capture_output=True, text=True, check=True)  # copy, the one in use
    return float(out.stdout.strip())


def edit(corpus: Path, share: float) -> int:
    """Append a paragraph to as many Markdown files as ``share`` of all the files (at
    least one, spread evenly through them); how many."""
    files = sorted(corpus.rglob("*.md"))
    count = min(len(files), max(1, round(share * sum(1 for p in corpus.rglob("*")
                                                          if p.is_file()))))
    for path in files[len(files) // (2 * count)::max(1, len(files) // count)][:count]:
        path.write_text(path.read_text("utf-8") + "\n\nOne more paragraph.\n", "utf-8")
    return count


def run(corpus: Path, work: Path, max_tokens: int, share: float = 0.01,
        snapshot: Path | None = None, resync_only: bool = False) -> None:
    index_dir = work / "index"
    if not resync_only:
        index_dir.mkdir()
        (index_dir / "config.toml").write_text(
            f'[index]\nbackend = "openai"\nchunk_tokens = {max_tokens}\npoll_seconds = 0.05\n')
    os.environ.setdefault("OPENAI_API_KEY", "emulator-key")
    with run_emulator(work / "emu", snapshot=False) as emu:  # a snapshot per call: slow
        if not resync_only:
            meter(exact_peaks=True)
            synced("full sync", index_dir, corpus, emu.base_url)
        if snapshot is not None:
            import shutil

            shutil.copytree(index_dir, snapshot / "index")
            shutil.copytree(corpus, snapshot / "corpus")
            (snapshot / "corpus_path").write_text(str(corpus))  # documents' URIs hold it
        edited = edit(corpus, share)
        subprocess.run([sys.executable, __file__, "--resync", str(index_dir), str(corpus),
                        emu.base_url, f"{edited} file(s) edited"], check=True)


def main() -> None:
    if sys.argv[1:2] == ["--resync"]:  # the re-sync's own process (see run)
        meter(exact_peaks=True)
        synced(f"re-sync, {sys.argv[5]}", Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--corpus", type=Path, help="a corpus folder already built (copied)")
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep it")
    parser.add_argument("--edits", type=float, default=0.01,
                        help="share of the Markdown files edited before the re-sync")
    parser.add_argument("--snapshot", type=Path,
                        help="copy the synced index and corpus to this new folder")
    parser.add_argument("--resync-from", type=Path,
                        help="a --snapshot folder: run only the edit and the re-sync")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True)
            work = args.keep
        corpus = work / "corpus"
        if args.resync_from:  # the corpus goes back where it was synced from
            import shutil

            corpus = Path((args.resync_from / "corpus_path").read_text())
            shutil.copytree(args.resync_from / "index", work / "index")
            shutil.copytree(args.resync_from / "corpus", corpus)
            try:
                run(corpus, work, args.max_tokens, args.edits, resync_only=True)
            finally:
                shutil.rmtree(corpus)
            return
        if args.corpus:
            import shutil

            shutil.copytree(args.corpus, corpus)
        else:
            build(corpus, args.files)
        files = sum(1 for p in corpus.rglob("*") if p.is_file())
        print(f"corpus: {files} files, {disk(corpus) / 1e6:.1f} MB; max_tokens {args.max_tokens}")
        run(corpus, work, args.max_tokens, args.edits, args.snapshot)


if __name__ == "__main__":
    main()
