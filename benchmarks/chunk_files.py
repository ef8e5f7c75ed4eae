"""Chunking speed including reading the files: cl100k tokens per CPU-second.

Reads every file of a folder (by default the corpus of ``benchmarks/corpus.py``, built
on first use) the way a sync does: bytes from disk, text extracted by the format
readers, then cut by ``chunk_document``. Counts the CPU time of this process
(``time.process_time``, all threads) for reading and extracting, and for chunking, and
divides the tokens of the extracted text (counted apart) by it. The CPU time of one bare
``encode_ordinary`` of the same text is printed for scale: it tells how fast this
machine tokenises. Checks that
every chunk is within its limit.

    python benchmarks/chunk_files.py [FOLDER] [--max-tokens 512] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build

from indexer.chunking import tokens
from indexer.chunking.chunker import ChunkerSettings, chunk_document
from indexer.connectors.formats import document, format_of
from indexer.records import Document


def run(folder: Path, settings: ChunkerSettings, limit: int | None) -> None:
    paths = sorted(p for p in folder.rglob("*") if p.is_file())[:limit]
    tokens.encoding()  # loading the BPE file is a one-off, not chunking
    read = chunk = 0.0
    docs: list[Document] = []
    chunks = 0
    over = 0
    for path in paths:
        fmt = format_of(path.name)
        if fmt is None:
            continue
        started = time.process_time()
        doc = document(path.as_posix(), path.read_bytes(), fmt)
        middle = time.process_time()
        if isinstance(doc, Document):
            cut = chunk_document(doc, settings)
            chunks += len(cut)
            over += sum(c.tokens > settings.limit for c in cut)
            docs.append(doc)
        chunk += time.process_time() - middle
        read += middle - started
    started = time.process_time()
    count = sum(tokens.count(s.text) for d in docs for s in d.segments)
    raw = time.process_time() - started
    size = sum(len(s.text.encode("utf-8")) for d in docs for s in d.segments)
    print(f"corpus:   {len(docs)} documents, {size / 1e6:.1f} MB of text, {count:,} tokens, "
          f"{chunks:,} chunks at max_tokens {settings.max_tokens}, {over} over the limit")
    print(f"encoding: {raw:6.2f} CPU-s  {count / raw / 1e6:.2f} Mtok/CPU-s "
          "(the text once, for scale)")
    print(f"reading:  {read:6.2f} CPU-s")
    print(f"chunking: {chunk:6.2f} CPU-s  {count / chunk / 1e6:.2f} Mtok/CPU-s")
    print(f"both:     {read + chunk:6.2f} CPU-s  {count / (read + chunk) / 1e6:.2f} Mtok/CPU-s")
    if over:
        raise SystemExit(f"{over} chunks over the limit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", help="default: build the corpus")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--limit", type=int, help="read only the first N files")
    args = parser.parse_args()
    settings = ChunkerSettings(max_tokens=args.max_tokens)
    if args.folder:
        run(args.folder, settings, args.limit)
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp) / "corpus")
        run(Path(tmp) / "corpus", settings, args.limit)


if __name__ == "__main__":
    main()
