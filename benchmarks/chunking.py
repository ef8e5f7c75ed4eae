"""How fast the chunker runs compared with tokenising the same text once.

Generates a deterministic Markdown docs tree's worth of text in memory (headings,
prose, lists, tables, fenced code), then times ``chunk_document`` over every document
against a bare ``encode_ordinary`` of the same text, and prints MB/s, tokens/s and
their ratio.

    python benchmarks/chunking.py [--mb 30] [--max-tokens 256] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from indexer.chunking import tokens
from indexer.chunking.chunker import ChunkerSettings, chunk_document
from indexer.records import Document, Segment

_SYLLABLES = [consonant + vowel for consonant in "bdklmnprstvz" for vowel in "aeiou"]
_COMMON = ["the", "a", "of", "to", "and", "in", "is", "that", "for", "with", "index", "chunk"]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words = {"".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(size)}
    return sorted(words) + _COMMON * 20


def _sentence(rng: random.Random, words: list[str]) -> str:
    chosen = rng.choices(words, k=rng.randint(5, 25))
    chosen[0] = chosen[0].capitalize()
    if rng.random() < 0.2:
        chosen.insert(rng.randrange(len(chosen)), f"`{rng.choice(words)}()`")
    return " ".join(chosen) + rng.choice(".....?!:")


def _paragraph(rng: random.Random, words: list[str]) -> str:
    return " ".join(_sentence(rng, words) for _ in range(rng.randint(1, 6)))


def _code(rng: random.Random, words: list[str]) -> str:
    lines = [f"def {rng.choice(words)}_{rng.randint(0, 99)}(value):"]
    for _ in range(rng.randint(2, 25)):
        indent = "    " * rng.randint(1, 3)
        lines.append(f"{indent}{rng.choice(words)} = {rng.choice(words)}({rng.randint(0, 9999)})")
    return "```python\n" + "\n".join(lines) + "\n```"


def _block(rng: random.Random, words: list[str]) -> str:
    roll = rng.random()
    if roll < 0.12:
        return _code(rng, words)
    if roll < 0.22:
        return "\n".join(f"- {_sentence(rng, words)}" for _ in range(rng.randint(2, 8)))
    if roll < 0.27:
        rows = [f"| {rng.choice(words)} | {rng.randint(0, 10**6)} |" for _ in range(6)]
        return "| name | value |\n|---|---|\n" + "\n".join(rows)
    return _paragraph(rng, words)


def document(rng: random.Random, words: list[str], size: int) -> str:
    """One Markdown document of about ``size`` characters."""
    parts = [f"# {_sentence(rng, words)[:-1]}"]
    length = 0
    while length < size:
        if rng.random() < 0.15:
            part = "#" * rng.randint(2, 4) + " " + " ".join(rng.choices(words, k=3))
        else:
            part = _block(rng, words)
        parts.append(part)
        length += len(part) + 2
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=30.0, help="megabytes of text to generate")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    words = _vocabulary(rng, 6000)
    texts: list[str] = []
    total = 0
    while total < args.mb * 1e6:
        texts.append(document(rng, words, rng.randint(2_000, 40_000)))
        total += len(texts[-1].encode("utf-8"))
    docs = [
        Document(f"doc{i}", f"Doc {i}", (Segment(text, "markdown"),), str(i))
        for i, text in enumerate(texts)
    ]
    settings = ChunkerSettings(max_tokens=args.max_tokens)
    encoding = tokens.encoding()

    started = time.perf_counter()
    raw_tokens = sum(len(encoding.encode_ordinary(text)) for text in texts)
    raw_seconds = time.perf_counter() - started

    started = time.perf_counter()
    chunks = [chunk for doc in docs for chunk in chunk_document(doc, settings)]
    chunk_seconds = time.perf_counter() - started

    megabytes = total / 1e6
    sizes = [chunk.tokens for chunk in chunks]
    print(f"text:            {megabytes:.1f} MB in {len(docs)} documents, {raw_tokens:,} tokens")
    print(
        f"chunks:          {len(chunks):,} (tokens mean {statistics.mean(sizes):.0f}, "
        f"max {max(sizes)}, limit {settings.limit})"
    )
    print(
        f"encode_ordinary: {raw_seconds:6.2f} s  {megabytes / raw_seconds:6.2f} MB/s  "
        f"{raw_tokens / raw_seconds:,.0f} tokens/s"
    )
    print(
        f"chunk_document:  {chunk_seconds:6.2f} s  {megabytes / chunk_seconds:6.2f} MB/s  "
        f"{raw_tokens / chunk_seconds:,.0f} tokens/s"
    )
    print(f"ratio:           chunking takes {chunk_seconds / raw_seconds:.2f}x a bare encode")


if __name__ == "__main__":
    main()
