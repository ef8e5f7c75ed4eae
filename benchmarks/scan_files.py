"""Speed of the filesystem connector's stat-only walk, and of loading files, on small files.

Creates ``--files`` small Markdown files (50 to a folder, a ``.gitignore`` in every
tenth folder) in a temporary directory, then times ``FilesystemSource.scan()`` and,
for comparison, ``load()`` of every item. Prints files/s (best of ``--repeat`` runs).

    python benchmarks/scan_files.py [--files 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.connectors.filesystem import FilesystemSource, load
from indexer.records import Document, SourceItem

PER_FOLDER = 50


def populate(root: Path, files: int) -> None:
    for number in range(files):
        part = number // PER_FOLDER
        folder = root / f"section-{part // 10:03d}" / f"part-{part:04d}"
        if number % PER_FOLDER == 0:
            folder.mkdir(parents=True)
            if part % 10 == 0:
                (folder / ".gitignore").write_text("*.tmp\n/build/\n!keep.tmp\n")
        (folder / f"note-{number:06d}.md").write_text(
            f"# Note {number}\n\nA short paragraph about item {number}.\n"
        )


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - start)
    return min(times), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        populate(root, args.files)
        source = FilesystemSource(root)
        items = [r for r in source.scan() if isinstance(r, SourceItem)]

        scan_seconds, found = best_of(args.repeat, lambda: sum(1 for _ in source.scan()))
        def load_all() -> int:
            return sum(isinstance(load(item), Document) for item in items)

        load_seconds, loaded = best_of(max(1, args.repeat // 2), load_all)
    print(f"files created      {args.files}")
    print(f"scan (stat only)   {found} results in {scan_seconds * 1000:.1f} ms"
          f"  -> {found / scan_seconds:,.0f} files/s")
    print(f"load (read+decode) {loaded} documents in {load_seconds * 1000:.1f} ms"
          f"  -> {loaded / load_seconds:,.0f} files/s")


if __name__ == "__main__":
    main()
