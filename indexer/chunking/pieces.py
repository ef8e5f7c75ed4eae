"""Cutting a span of text into smaller pieces: sentences, lines or words.

What the packer falls back on when a block is over the budget; a piece is a span of the
segment's text, never a copy.
"""

from __future__ import annotations

import re
import zlib

from indexer.chunking.tokens import WHITESPACE

_SENTENCE_END = re.compile("[.!?\u2026]+[\"')\\]\u201d\u2019]*(?=[ \t\n])|[\u3002\uff01\uff1f]+")
_WORD = re.compile(f"[^{WHITESPACE}]+")
_LONGEST_GROUP = 2  # a group of pieces is closed at this many times the size asked for

Span = tuple[int, int]


def pieces(text: str, start: int, end: int, level: str, group: int = 0) -> list[Span]:
    """Spans of the non-blank ``level`` pieces ("sentence", "line", "word") of a span.

    Sentences and words are trimmed; a line keeps its indentation. With ``group``,
    consecutive pieces come in groups of about ``group`` characters, closed where a
    hash of a piece says so: a boundary that depends on that piece alone.
    """
    if level == "word":
        spans = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
    elif level == "line":
        spans = []
        for line in text[start:end].split("\n"):
            kept = len(line.rstrip(WHITESPACE))
            if kept:
                spans.append((start, start + kept))
            start += len(line) + 1
    else:
        pattern = _SENTENCE_END
        spans = []
        piece = start
        for match in pattern.finditer(text, start, end):
            _keep(text, piece, match.end(), level, spans)
            piece = match.end()
        _keep(text, piece, end, level, spans)
    return _grouped(text, spans, group) if group and len(spans) > 1 else spans


def _grouped(text: str, spans: list[Span], size: int) -> list[Span]:
    groups: list[Span] = []
    first = -1
    length = 0
    for start, end in spans:
        if first < 0:
            first = start
        length += end - start
        mark = zlib.crc32(text[start:end].encode("utf-8"))
        if mark * size < (end - start) << 32 or length >= size * _LONGEST_GROUP:
            groups.append((first, end))
            first, length = -1, 0
    if first >= 0:
        groups.append((first, spans[-1][1]))
    return groups


def _keep(text: str, start: int, end: int, level: str, spans: list[Span]) -> None:
    """Append ``text[start:end]`` trimmed (a line keeps its indentation) unless it is blank."""
    piece = text[start:end]
    stop = start + len(piece.rstrip(WHITESPACE))
    if level != "line":
        start += len(piece) - len(piece.lstrip(WHITESPACE))
    if start < stop:
        spans.append((start, stop))
