"""Chunking speed including reading the files: cl100k tokens per CPU-second.

Reads every file of a folder (by default the corpus of ``benchmarks/corpus.py``, built
on first use) the way a sync does: bytes from disk, text extracted by the format
readers, then cut by ``chunk_document``. Counts the CPU time of this process
(``time.process_time``, all threads) for reading and extracting, and for chunking, and
divides the tokens of the extracted text (counted apart) by it, for each of ``--repeat``
passes (each starts with nothing memoised: the counter, the short-text counts, the
breadcrumbs'), printing the best, the median and the first (what a sync's one pass
pays; it is not systematically slower than the others). The CPU
time of one bare tiktoken ``encode_ordinary`` of the same text (and of
``encode_ordinary_batch`` on all threads) is printed for scale: it tells how fast this
machine tokenises, and the ratio compares the chunker with it. The floor is reading plus
one cold count of the whole text with the chunker's exact counter (``tokens.tally``):
every chunk's count is exact, so no chunker of this text can cost less. Also prints the CPU
of the chunks' content keys (``content_key``), which a sync's "chunk and key" stage pays
besides chunking (with the embedding backend's creation, ~1 CPU-s for the OpenAI
SDK's import). Checks that every chunk
is within its limit. With ``--chonkie PYTHON`` it also runs chonkie's RecursiveChunker
(``benchmarks/chonkie_chunks.py``, under that Python: chonkie is not a dependency) on the
same extracted text, same tokenizer and budget, and prints it beside ours, its chunking
alone and with our reading time added.

The chunker counts with the fastest backend present (``--tokenizer`` picks one, see
:func:`indexer.chunking.tokens.use`).

    python benchmarks/chunk_files.py [FOLDER] [--max-tokens 512] [--limit N] [--repeat 3]
                                     [--tokenizer rs-bpe|tally]
                                     [--chonkie /tmp/chonkie-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build

from indexer.batchfiles.requests import content_key
from indexer.chunking import chunker, packing, tokens
from indexer.chunking.chunker import ChunkerSettings, chunk_document
from indexer.connectors.formats import document, format_of
from indexer.records import Chunk, Document


def run(folder: Path, settings: ChunkerSettings, limit: int | None, repeat: int,
        chonkie: str | None = None) -> None:
    paths = sorted(p for p in folder.rglob("*") if p.is_file())[:limit]
    tokens.encoding()  # loading the BPE file is a one-off, not chunking
    passes = [_chunk_all(paths, settings) for _ in range(repeat)]
    docs, cut, over = passes[-1][2:]
    chunks = len(cut)
    texts = [s.text for d in docs for s in d.segments]
    enc = tokens.encoding()
    started = time.process_time()
    count = sum(len(enc.encode_ordinary(text)) for text in texts)
    raw = time.process_time() - started
    started = time.process_time()
    batch_count = sum(map(len, enc.encode_ordinary_batch(texts)))
    batch = time.process_time() - started
    assert batch_count == count
    tokens._tally.cache_clear()
    started = time.process_time()
    tally_count = sum(map(tokens.tally, texts))
    tally = time.process_time() - started
    assert tally_count == count
    size = sum(len(text.encode("utf-8")) for text in texts)
    print(f"counter:  {tokens.backend_name()}  (load average {os.getloadavg()[0]:.1f})")
    print(f"corpus:   {len(docs)} documents, {size / 1e6:.1f} MB of text, {count:,} tokens, "
          f"{chunks:,} chunks at max_tokens {settings.max_tokens}, {over} over the limit")
    print(f"encoding: {raw:6.2f} CPU-s  {count / raw / 1e6:.2f} Mtok/CPU-s "
          "(tiktoken encode_ordinary, the text once, for scale)")
    print(f"          {batch:6.2f} CPU-s  {count / batch / 1e6:.2f} Mtok/CPU-s "
          "(encode_ordinary_batch, all threads)")
    for name, seconds in (("reading", [p[0] for p in passes]),
                          ("chunking", [p[1] for p in passes]),
                          ("both", [p[0] + p[1] for p in passes])):
        best, median = min(seconds), statistics.median(seconds)
        print(f"{name + ':':9s} best {best:6.2f} CPU-s  {count / best / 1e6:.2f} Mtok/CPU-s"
              f"   median {median:6.2f} CPU-s  {count / median / 1e6:.2f} Mtok/CPU-s"
              f"   first {seconds[0]:6.2f} CPU-s  {count / seconds[0] / 1e6:.2f} Mtok/CPU-s"
              f"   ({len(seconds)} runs)")
    both = min(p[0] + p[1] for p in passes)
    floor = min(p[0] for p in passes) + tally
    print(f"floor:    {floor:6.2f} CPU-s  {count / floor / 1e6:.2f} Mtok/CPU-s (best reading plus "
          f"one cold exact count of the text, {tally:.2f} CPU-s: no chunker can be faster)")
    started = time.process_time()
    for c in cut:
        content_key("text-embedding-3-small", 1536, c.embed_text)
    keys = time.process_time() - started
    print(f"keys:     {keys:6.2f} CPU-s  (content_key of every chunk's embed_text: what a "
          "sync's \"chunk and key\" adds, with the backend's creation)")
    print(f"ratio:    {raw / both:.2f} of bare tiktoken encoding (best run, reading included)")
    if chonkie:
        peer = _chonkie(chonkie, texts, settings.max_tokens, repeat)
        reading = min(p[0] for p in passes)
        print(f"chonkie:  best {peer['cpu']:6.2f} CPU-s  {count / peer['cpu'] / 1e6:.2f} Mtok/CPU-s"
              f"   with our reading {count / (peer['cpu'] + reading) / 1e6:.2f} Mtok/CPU-s"
              f"   (RecursiveChunker {peer['version']}, chunk_size {settings.max_tokens}: "
              f"{peer['chunks']:,} chunks, {peer['over']} over)")
    if over:
        raise SystemExit(f"{over} chunks over the limit")


def _chonkie(python: str, texts: list[str], size: int, repeat: int) -> dict[str, float]:
    """chonkie's figures on ``texts`` (see ``benchmarks/chonkie_chunks.py``)."""
    script = Path(__file__).resolve().parent / "chonkie_chunks.py"
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as file:
        file.writelines(json.dumps(text) + "\n" for text in texts)
        file.flush()
        out = subprocess.run([python, str(script), file.name, "--chunk-size", str(size),
                              "--repeat", str(repeat)],
                             check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def _chunk_all(paths: list[Path], settings: ChunkerSettings
               ) -> tuple[float, float, list[Document], list[Chunk], int]:
    """One cold pass: read and chunk every file; CPU-s reading, CPU-s chunking, ..."""
    _forget()  # start every pass with nothing memoised
    read = chunk = 0.0
    docs: list[Document] = []
    chunks: list[Chunk] = []
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
            chunks += cut
            over += sum(c.tokens > settings.limit for c in cut)
            docs.append(doc)
        chunk += time.process_time() - middle
        read += middle - started
    return read, chunk, docs, chunks, over


def _forget() -> None:
    """Clear every count the chunker memoises, as a new process starts."""
    tokens._tally.cache_clear()
    packing._short.clear()
    packing.context_tokens.cache_clear()
    chunker._LEADING.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", help="default: build the corpus")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--limit", type=int, help="read only the first N files")
    parser.add_argument("--repeat", type=int, default=3, help="passes; best and median shown")
    parser.add_argument("--tokenizer", choices=tokens.BACKENDS,
                        help="the chunker's counting backend (default: the fastest present)")
    parser.add_argument("--chonkie", metavar="PYTHON",
                        help="a Python with chonkie and tiktoken: measure it beside ours")
    args = parser.parse_args()
    settings = ChunkerSettings(max_tokens=args.max_tokens)
    if args.tokenizer:
        tokens.use(args.tokenizer)
    if args.folder:
        run(args.folder, settings, args.limit, args.repeat, args.chonkie)
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp) / "corpus")
        run(Path(tmp) / "corpus", settings, args.limit, args.repeat, args.chonkie)


if __name__ == "__main__":
    main()
