"""This project's run, in a process of its own (the project's virtualenv): ``run.py`` starts it.

    python ours.py index WORK RESULT.json BASE_URL   # Index.sync of WORK/corpus into WORK/state
    python ours.py chunk WORK RESULT.json            # read and chunk WORK/corpus, CPU-s only

``index`` is what ``indexer sync`` does (the library call the CLI makes), through the
OpenAI emulator at BASE_URL (its own process, not counted), at a 512-token budget, and
waits for the batches. ``chunk`` reads every file with the format readers and cuts it
with ``chunk_document``, as ``benchmarks/chunk_files.py`` does (best of
``PEERS_CHUNK_PASSES`` passes).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chunk_files import _chunk_all
from rss import hwm_mb as peak_mb

from indexer import Index
from indexer.chunking import tokens
from indexer.chunking.chunker import ChunkerSettings

BUDGET = 512


def index(work: Path, base_url: str) -> dict[str, Any]:
    state = work / "state"
    if not state.exists():
        state.mkdir()
        (state / "config.toml").write_text(
            f'[index]\nbackend = "openai"\nchunk_tokens = {BUDGET}\npoll_seconds = 0.05\n')
    os.environ.setdefault("OPENAI_API_KEY", "emulator-key")
    started, cpu = time.perf_counter(), time.process_time()
    with Index(state, base_url=base_url) as idx:
        report = idx.sync([work / "corpus"], wait=True)
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu,
            "chunks": report.embedded, "tokens": report.tokens,
            "peer_says": {"new": report.new, "changed": report.changed,
                          "unchanged": report.unchanged, "staged": report.chunks,
                          "published": report.published, "in_flight": report.in_flight}}


def chunk(work: Path) -> dict[str, Any]:
    paths = sorted(p for p in (work / "corpus").rglob("*") if p.is_file())
    tokens.encoding()  # loading the BPE file is a one-off, not chunking
    settings = ChunkerSettings(max_tokens=BUDGET)
    passes = [_chunk_all(paths, settings) for _ in range(int(
        os.environ.get("PEERS_CHUNK_PASSES", "2")))]
    best = min(passes, key=lambda p: p[0] + p[1])
    return {"cpu": best[0] + best[1], "read_cpu": best[0], "chunk_cpu": best[1],
            "chunks": len(best[3]), "over": best[4]}


def main() -> None:
    mode, work, result = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out = index(work, sys.argv[4]) if mode == "index" else chunk(work)
    out["vmhwm_mb"] = peak_mb()
    result.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
