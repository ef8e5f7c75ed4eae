"""Time a sync where nothing changed, over N files (default 5,000).

It builds a folder of N small Markdown files (texts drawn from a small pool, so the
first sync's embedding stays short), syncs it once, then times repeated no-op syncs.
A no-op sync reads no file contents and loads no model.

    python benchmarks/noop_resync.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from indexer import Index

POOL = 40


def build(folder: Path, n: int) -> None:
    for i in range(n):
        sub = folder / f"section{i % 50:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"page{i:05d}.md").write_text(
            f"# Page {i % POOL}\n\nThis page explains topic number {i % POOL} of the manual.\n")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        build(folder, n)
        with Index(Path(tmp) / "idx") as index:
            started = time.perf_counter()
            first = index.sync([folder])
            print(f"first sync of {n} files: {time.perf_counter() - started:.2f}s "
                  f"({first.new} new, {first.embedded} chunks embedded)")
        timings = []
        for _ in range(3):
            with Index(Path(tmp) / "idx") as index:
                started = time.perf_counter()
                report = index.sync([folder])
                timings.append(time.perf_counter() - started)
                assert report.unchanged == n and report.embedded == 0
        print(f"no-op re-sync of {n} files: best {min(timings):.3f}s, "
              f"runs {', '.join(f'{t:.3f}' for t in timings)}s")


if __name__ == "__main__":
    main()
