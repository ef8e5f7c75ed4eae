"""What an index's disk holds: the store's live data, its indices, superseded versions,
and the ledger, table by table.

    python benchmarks/store_disk.py INDEX_DIR      # an index kept by sync_profile --keep

"Live" is what the table's latest version references (from its manifest); whatever else
is under the table's folder belongs to older versions kept for readers mid-query, or to
index files those versions used. Vectors are rows x dimensions x 4 bytes (float32).
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import lance


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() \
        else 0


def mb(n: float) -> str:
    return f"{n / 1e6:8.1f} MB"


def store(folder: Path) -> None:
    table = lance.dataset(str(folder / "chunks.lance"))
    versions = table.versions()
    latest = versions[-1]["metadata"]
    rows = int(latest.get("total_rows", table.count_rows()))
    dims = table.schema.field("vector").type.list_size
    data = int(latest.get("total_files_size", 0))
    files = folder / "chunks.lance"
    print(f"store {mb(size(files))}  ({rows:,} rows, {len(versions)} versions kept, "
          f"{latest.get('total_fragments')} fragments, {latest.get('total_data_files')} "
          "data files)")
    print(f"  live data files            {mb(data)}")
    print(f"    vectors (float32)        {mb(rows * dims * 4)}")
    print(f"    everything else          {mb(data - rows * dims * 4)}")
    indexed = 0
    for index in table.describe_indices():
        indexed += index.total_size_bytes or 0
        print(f"  index {index.name:<20} {mb(index.total_size_bytes or 0)}")
    other = size(files / "data") + size(files / "_deletions") - data
    print(f"  superseded data files      {mb(max(other, 0))}")
    print(f"  superseded index files     {mb(max(size(files / '_indices') - indexed, 0))}")
    logs = size(files / "_versions") + size(files / "_transactions")
    print(f"  manifests and transactions {mb(logs)}")


def ledger(path: Path) -> None:
    print(f"ledger {mb(path.stat().st_size)}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        parts = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name "
                           "ORDER BY 2 DESC LIMIT 6").fetchall()
    except sqlite3.OperationalError:
        parts = []
    for name, used in parts:
        print(f"  {name:<26} {mb(used)}")
    free = db.execute("PRAGMA freelist_count").fetchone()[0] * \
        db.execute("PRAGMA page_size").fetchone()[0]
    print(f"  free pages                 {mb(free)}")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    args = parser.parse_args()
    root = args.index
    generation = next(p for p in sorted(root.glob("g*")) if (p / "lancedb").exists()) \
        if not (root / "lancedb").exists() else root
    print(f"index {root}: {mb(size(root))}")
    store(generation / "lancedb")
    ledger(generation / "state.db")
    print(f"batches folder {mb(size(generation / 'batches'))}")


if __name__ == "__main__":
    main()
