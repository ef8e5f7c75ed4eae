"""SHA-256 of every chunk of a folder, at several budgets: proof that a change cuts the same.

Reads every file the way a sync does (format readers, then ``chunk_document``) and hashes
each chunk's ordinal, text, breadcrumb, token count, heading path, page and lines, per
budget. Run it before and after a change to the chunker or its tokenizer: equal digests
mean no user re-embeds anything. ``--tokenizer`` picks the counting backend (see
:mod:`indexer.chunking.tokens`), so both backends can be compared on the same text.

    python benchmarks/chunk_digest.py FOLDER [--budgets 64,200,512,1000] [--tokenizer NAME]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

from indexer.chunking import tokens
from indexer.chunking.chunker import ChunkerSettings, chunk_document
from indexer.connectors.formats import document, format_of
from indexer.records import Document


def digests(folder: Path, budgets: list[int]) -> None:
    """Print, per budget: chunks, chunks over the limit, SHA-256, CPU-s."""
    docs: list[Document] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        fmt = format_of(path.name)
        doc = document(path.as_posix(), path.read_bytes(), fmt) if fmt else None
        if isinstance(doc, Document):
            docs.append(doc)
    for budget in budgets:
        settings = ChunkerSettings(max_tokens=budget)
        digest = hashlib.sha256()
        chunks = over = 0
        started = time.process_time()
        for doc in docs:
            for c in chunk_document(doc, settings):
                chunks += 1
                over += c.tokens > settings.limit
                digest.update(repr((c.ordinal, c.text, c.context, c.tokens, c.heading_path,
                                    c.page, c.line_start, c.line_end)).encode())
        seconds = time.process_time() - started
        print(f"max_tokens {budget:5d}: {chunks:7,} chunks, {over} over, "
              f"sha256 {digest.hexdigest()}  {seconds:.1f} CPU-s  load {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--budgets", default="64,200,512,1000")
    parser.add_argument("--tokenizer", help="counting backend (default: the fastest present)")
    args = parser.parse_args()
    if args.tokenizer:
        tokens.use(args.tokenizer)
    print(f"tokenizer: {tokens.backend_name()}")
    digests(args.folder, [int(b) for b in args.budgets.split(",")])


if __name__ == "__main__":
    main()
