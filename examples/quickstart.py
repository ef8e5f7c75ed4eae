"""Index the example docs folder and ask it a question, from Python.

Run from the repository root:  python examples/quickstart.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from indexer import Index

HERE = Path(__file__).resolve().parent


def main() -> int:
    question = " ".join(sys.argv[1:]) or "how do I cancel a batch?"
    with Index(HERE / ".indexer") as index:
        report = index.sync([HERE / "docs"])
        print(f"indexed {report.new + report.changed} new or changed files, "
              f"embedded {report.embedded} chunks in {report.seconds:.1f}s")
        for skip in report.skips:
            print(f"skipped {skip.uri}: {skip.reason}")
        print(f"\n{question}")
        for hit in index.search(question, k=3):
            where = hit.place.heading or Path(hit.place.uri).name
            print(f"  {hit.score:.3f}  {Path(hit.place.uri).name} · {where}")
            print(f"         {' '.join(hit.text.split())[:100]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
