"""Exact cl100k token counts, faster than tiktoken's encoder, for the chunker.

tiktoken spends most of its time in its pre-tokenizer regex (``fancy_regex``), and the
BPE of each pre-token (piece) depends on that piece alone. :class:`Tally` cuts text into
the same pieces with Python's ``re`` (the pattern rewritten with explicit Unicode
classes, which ``re`` matches faster) and sums memoised counts per piece: pieces recur
(about 100,000 distinct ones in 6.6 million tokens of documentation), and each new one
is BPE-encoded once.

Exact where Python's Unicode tables agree with the tokenizer's; text with characters
this Python leaves unassigned, surrogates or characters beyond the Basic Multilingual
Plane is counted by tiktoken itself.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable

CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
"""The pre-tokenizer pattern of cl100k_base that :class:`Tally` reproduces."""

_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)  # Unicode White_Space, the tokenizer's \s
_MEMO = 1 << 18  # memoised pieces kept at most, then forgotten at once
_LONG = 64  # characters above which a piece is counted without memoising


def _ranges(*categories: str) -> str:
    """A regex class body of the Basic Multilingual Plane characters whose general
    category is, or starts with, one of ``categories`` (unassigned ones are "Cn")."""
    body: list[str] = []
    start = -1
    for code in range(0x10001):
        category = unicodedata.category(chr(code)) if code <= 0xFFFF else "end"
        inside = category in categories or category[0] in categories
        if inside and start < 0:
            start = code
        elif not inside and start >= 0:
            body.append(f"\\u{start:04x}-\\u{code - 1:04x}")
            start = -1
    return "".join(body)


class Tally:
    """Counts cl100k tokens of text; ``exact`` is tiktoken's count (the fallback), and
    ``piece`` the tokens of one pre-token."""

    def __init__(self, exact: Callable[[str], int], piece: Callable[[str], int]) -> None:
        letters, digits = _ranges("L"), _ranges("N")
        space = re.escape(_WHITESPACE)
        self.pieces = re.compile(
            rf"'(?i:[sdmt]|ll|ve|re)|[^\r\n{letters}{digits}]?+[{letters}]++|[{digits}]{{1,3}}+"
            rf"| ?[^{space}{letters}{digits}]++[\r\n]*+|[{space}]++\Z|[{space}]*[\r\n]"
            rf"|[{space}]+(?![^{space}])|[{space}]"
        ).findall
        """The pre-tokens of a text (exact unless :attr:`foreign` finds a character)."""
        unknown = _ranges("Cn", "Cs")
        self.foreign = re.compile(rf"[{unknown}\U00010000-\U0010ffff]").search
        """Finds a character whose category this Python may not know as the tokenizer does."""
        self._exact = exact
        self._counted = Memo(piece).__getitem__

    def __call__(self, text: str) -> int:
        """Tokens of ``text``, as many as ``len(encode_ordinary(text))``."""
        if not text.isascii() and self.foreign(text):
            return self._exact(text)
        return sum(map(self._counted, self.pieces(text)))


class Memo(dict[str, int]):
    """Counts by text, computed by ``count`` on first use; kept for texts of at most
    ``longest`` characters, at most ``most`` of them, then all forgotten at once (a hit
    costs one dict lookup, no Python call)."""

    def __init__(self, count: Callable[[str], int], longest: int = _LONG,
                 most: int = _MEMO) -> None:
        super().__init__()
        self.count, self.longest, self.most = count, longest, most

    def __missing__(self, text: str) -> int:
        size = self.count(text)
        if len(text) <= self.longest:
            if len(self) >= self.most:
                self.clear()
            self[text] = size
        return size


def supported(pattern: str) -> bool:
    """Whether ``pattern`` is the pre-tokenizer :class:`Tally` reproduces."""
    return pattern == CL100K_PATTERN and sys.maxunicode > 0xFFFF
