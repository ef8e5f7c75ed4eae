"""This project beside its peers on one corpus, each run in a process of its own.

For each indexer (this project through the OpenAI emulator; LangChain ``index()``;
LlamaIndex ``IngestionPipeline``; simonw ``llm embed-multi``) on its own copy of the
corpus: a full index, a no-op re-sync, then a re-sync after a 1% edit (10 files of
1,000 get a paragraph inserted in their middle). For each chunker (this project,
LangChain, LlamaIndex, chonkie ``RecursiveChunker``, bare tiktoken ``encode_ordinary``):
reading and chunking the corpus, CPU time only. Chunks are cut at 512 cl100k tokens
with no overlap; the peers embed with a free hash-seeded fake of 1,536 dimensions
(``fake_embedding.py``), this project with the emulator (its own process, not counted).

CPU is user+sys of the child process and its threads (``os.wait4``), imports
included; "call" is the indexing call alone, measured inside the child. Peak RSS is the
child's VmHWM. Mtok per CPU-s divides the corpus's cl100k tokens (tiktoken's count of
the same text) by the CPU-s of reading plus chunking. Tokens re-embedded are counted
by the fake embedder (peers) or billed by the emulator (this project).

Run it with the project's virtualenv; the peers live in another one
(``requirements.txt`` beside this file)::

    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install -r benchmarks/peers/requirements.txt
    python benchmarks/peers/run.py [--corpus /tmp/scale_corpus] [--only ours llm ...]
        [--peers-python /tmp/peers-venv/bin/python] [--json OUT] [--logs DIR]

LangChain's cleanup mode is ``PEERS_LANGCHAIN_CLEANUP`` (default ``full``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "tests"))

from emulator.fixture import run_emulator

HERE = Path(__file__).resolve().parent

INDEXERS = ["ours", "langchain", "llamaindex", "llm"]
CHUNKERS = ["ours", "langchain", "llamaindex", "chonkie", "tiktoken"]
DISTRIBUTIONS = ["langchain-core", "langchain-classic", "langchain-community",
                 "langchain-text-splitters", "llama-index-core",
                 "llama-index-vector-stores-lancedb", "llm", "chonkie", "tiktoken", "lancedb",
                 "pypdf"]
EDITED = 10  # files given a new paragraph: 1% of 1,000


def child(name: str, argv: list[str], logs: Path, env: dict[str, str] | None = None
          ) -> dict[str, Any]:
    """Run ``argv`` (its last argument a result file) and wait; the child's own figures
    plus its CPU-s and wall as the parent sees them, and the load around it."""
    result = Path(argv[-1]) if not argv[-1].startswith("http") else Path(argv[-2])
    result.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with (logs / f"{name}.log").open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out: dict[str, Any] = {"process_wall": time.perf_counter() - started,
                           "process_cpu": usage.ru_utime + usage.ru_stime,
                           "ru_maxrss_mb": usage.ru_maxrss / 1024,
                           "load": (load + os.getloadavg()[0]) / 2}
    if proc.returncode or not result.exists():
        tail = (logs / f"{name}.log").read_text(errors="replace").strip().splitlines()[-3:]
        out["failed"] = f"exit {proc.returncode}: " + " | ".join(tail)
        return out
    out.update(json.loads(result.read_text()))
    if out.get("count_cpu"):  # the fake embedder's token counting is not the peer's work
        out["process_cpu"] -= out["count_cpu"]
        out["cpu"] -= out["count_cpu"]
    print(f"  {name}: {_brief(out)}", flush=True)
    return out


def _brief(out: dict[str, Any]) -> str:
    keys = ("process_cpu", "cpu", "process_wall", "wall", "vmhwm_mb", "chunks", "tokens",
            "load")
    return ", ".join(f"{k} {out[k]:.2f}" if isinstance(out[k], float) else f"{k} {out[k]}"
                     for k in keys if k in out)


def edit(corpus: Path) -> list[str]:
    """Insert a paragraph in the middle of every 100th text file (sorted): 10 of 1,000."""
    texts = sorted(p for p in corpus.rglob("*") if p.suffix in (".md", ".rst"))
    step = max(1, len(texts) // EDITED)
    chosen = texts[step // 2::step][:EDITED]
    for n, path in enumerate(chosen):
        text = path.read_text("utf-8")
        middle = text.find("\n\n", len(text) // 2)
        middle = len(text) if middle < 0 else middle
        paragraph = (f"\n\nEdited paragraph {n}: this sentence was inserted by the peer "
                     "benchmark to measure what an incremental re-sync re-embeds.")
        path.write_text(text[:middle] + paragraph + text[middle:], "utf-8")
    return [p.relative_to(corpus).as_posix() for p in chosen]


def command(peer: str, mode: str, work: Path, peers_python: str, base_url: str = ""
            ) -> list[str]:
    result = str(work / f"result-{mode}.json")
    if peer == "ours":
        argv = [sys.executable, str(HERE / "ours.py"), mode, str(work), result]
        return [*argv, base_url] if base_url else argv
    return [peers_python, str(HERE / "peers.py"), peer, mode, str(work), result]


def index_runs(peer: str, root: Path, corpus: Path, peers_python: str, logs: Path,
               base_url: str) -> dict[str, Any]:
    work = root / peer
    shutil.copytree(corpus, work / "corpus")
    env = {"PEERS_COUNT_TOKENS": "1"}
    runs = {}
    for label in ("full", "noop", "edit"):
        if label == "edit":
            edit(work / "corpus")
        runs[label] = child(f"{peer}-{label}", command(peer, "index", work, peers_python,
                                                       base_url), logs, env)
        if "failed" in runs[label]:
            break
    shutil.rmtree(work)
    return runs


def versions(peers_python: str) -> dict[str, str]:
    script = ("import importlib.metadata as m, json, sys\n"
              "out = {}\n"
              "for d in sys.argv[1:]:\n"
              "    try: out[d] = m.version(d)\n"
              "    except m.PackageNotFoundError: out[d] = 'not installed'\n"
              "print(json.dumps(out))")
    found = subprocess.run([peers_python, "-c", script, *DISTRIBUTIONS], capture_output=True,
                           text=True, check=False)
    out: dict[str, str] = json.loads(found.stdout) if found.returncode == 0 else {}
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    out["batch-indexer"] = commit or "unknown"
    return out


def _cell(run: dict[str, Any] | None, text: str) -> str:
    if run is None:
        return "-"
    return "failed" if "failed" in run else text


def table(results: dict[str, Any]) -> str:
    """The side-by-side table, Markdown."""
    corpus_tokens = results["chunkers"].get("tiktoken", {}).get("chunks")
    head = ("| | full index CPU-s (call) | peak RSS MB | chunks, tokens embedded "
            "| chunking Mtok/CPU-s incl. reading (alone) | no-op re-sync wall s (call) "
            "| no-op CPU-s "
            "| 1% edit: tokens re-embedded (chunks) | load |")
    lines = [head, "|" + "---|" * 9]
    for peer in dict.fromkeys(INDEXERS + CHUNKERS):
        runs = results["indexers"].get(peer, {})
        full, noop, edited = runs.get("full"), runs.get("noop"), runs.get("edit")
        chunked = results["chunkers"].get(peer)
        mtok = (f"{corpus_tokens / chunked['cpu'] / 1e6:.2f} "
                f"({corpus_tokens / chunked['chunk_cpu'] / 1e6:.2f})"
                if chunked and "cpu" in chunked and corpus_tokens else "")
        loads = [r["load"] for r in (full, noop, edited, chunked) if r]
        lines.append("| " + " | ".join([
            peer,
            _cell(full, f"{full['process_cpu']:.1f} ({full.get('cpu', 0):.1f})" if full else ""),
            _cell(full, f"{full.get('vmhwm_mb', 0):.0f}" if full else ""),
            _cell(full, f"{full.get('chunks', 0):,}, {full.get('tokens', 0):,}" if full else ""),
            _cell(chunked, mtok),
            _cell(noop, f"{noop['process_wall']:.2f} ({noop.get('wall', 0):.2f})"
                  if noop else ""),
            _cell(noop, f"{noop['process_cpu']:.2f}" if noop else ""),
            _cell(edited, f"{edited.get('tokens', 0):,} ({edited.get('chunks', 0):,})"
                  if edited else ""),
            f"{sum(loads) / len(loads):.1f}" if loads else "-",
        ]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/scale_corpus"),
                        help="read only: every run works on a copy")
    parser.add_argument("--peers-python", default="/tmp/peers-venv/bin/python")
    parser.add_argument("--only", nargs="+", help="run only these (ours, langchain, ...)")
    parser.add_argument("--chunk-passes", type=int, default=2, help="best of N (chunking)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--logs", type=Path, help="keep the children's output here")
    args = parser.parse_args()
    os.environ["PEERS_CHUNK_PASSES"] = str(args.chunk_passes)
    wanted = set(args.only or INDEXERS + CHUNKERS)
    results: dict[str, Any] = {"versions": versions(args.peers_python),
                               "load_start": os.getloadavg(), "indexers": {}, "chunkers": {}}
    print(f"versions: {results['versions']}\nload at start: {results['load_start']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        logs = args.logs or root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        shutil.copytree(args.corpus, root / "chunk" / "corpus")
        for peer in (p for p in CHUNKERS if p in wanted):
            results["chunkers"][peer] = child(
                f"{peer}-chunk", command(peer, "chunk", root / "chunk", args.peers_python), logs)
        for peer in (p for p in INDEXERS if p in wanted):
            if peer == "ours":
                with run_emulator(root / "emu", snapshot=False) as emu:
                    results["indexers"][peer] = index_runs(
                        peer, root, args.corpus, args.peers_python, logs, emu.base_url)
            else:
                results["indexers"][peer] = index_runs(
                    peer, root, args.corpus, args.peers_python, logs, "")
    results["load_end"] = os.getloadavg()
    for kind in ("chunkers", "indexers"):
        for peer, runs in results[kind].items():
            for run in runs.values() if kind == "indexers" else [runs]:
                if "failed" in run:
                    print(f"{peer} failed: {run['failed']}")
    print(f"load at end: {results['load_end']}\n\n{table(results)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
