"""Packing one section's units into chunks at content-decided boundaries.

See :mod:`indexer.chunking.chunker` for the method; :class:`Packer` is its engine: it
measures a section's units, finds the anchors, and cuts runs that overflow the budget.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

from indexer.chunking import tokens
from indexer.chunking.pieces import pieces
from indexer.chunking.settings import ChunkerSettings
from indexer.chunking.structure import LINES, Section
from indexer.chunking.tally import Memo

_INDENTED_RARITY = 4  # how much rarer an anchor is before an indented block of code
_SURELY_LARGE = 3  # characters per token above which a block is counted in parts first

_FIRST_WORD = re.compile(f"[^{tokens.WHITESPACE}]+")

_Cut = tuple[int, int, int]
_Level = tuple[str, bool]  # a structure.pieces level, and whether its pieces come grouped
_CODE_LEVELS: tuple[_Level, ...] = (
    ("line", True),
    ("line", False),
    ("word", True),
    ("word", False),
)
_PROSE_LEVELS: tuple[_Level, ...] = (("sentence", False), *_CODE_LEVELS)
_LONG_RUN = 8  # budgets' worth of units without an anchor (repetitive text) closes a run
_SHORT = 64  # characters up to which a counted text is memoised (gaps, tails, words)
_MEMO = 1 << 14  # memoised counts kept at most, then forgotten at once

SEPARATOR = " › "
"""What joins the parts of a heading breadcrumb."""


@functools.lru_cache(maxsize=1 << 12)
def context_tokens(context: str) -> int:
    """Tokens of ``context + "\\n\\n"`` (a breadcrumb and the blank line after it), or 0;
    memoised, as every section under one heading path has the same."""
    return tokens.tally(context + "\n\n") if context else 0


def pack(text: str, section: Section, head: int, settings: ChunkerSettings) -> list[_Cut]:
    """``(start, end, tokens of embed_text)`` of each chunk of ``section``, in order;
    ``head`` is :func:`context_tokens` of the chunks' context.

    Most sections are one block that fits the budget: that block is one chunk, counted
    once, without building the units a :class:`Packer` needs to place cuts.
    """
    if len(section.blocks) == 1:
        start, end = section.blocks[0][:2]
        budget = settings.limit - head
        if end - start <= budget * _SURELY_LARGE:
            size = tokens.counter()(text[start:end])
            if size <= budget:
                return [(start, end, head + size)]
    return Packer(text, section, head, settings).cuts()


class Packer:
    """Units of one section, their token sums, and the cuts between them.

    Unit ``i`` is ``text[starts[i]:ends[i]]``; ``bodies[i]`` counts it without its
    symbol tail ``tails[i]`` (see :func:`tokens.symbol_tail`; None when the unit is
    counted whole). ``final[i]`` counts the unit alone; ``prefix`` sums what units
    count followed by their gap (see :meth:`_join`), and ``unsafe`` counts the joins
    whose sum is not known to be exact.
    """

    def __init__(
        self, text: str, section: Section, head: int, settings: ChunkerSettings
    ) -> None:
        self.text = text
        self.limit = settings.limit
        self.head = head
        self.budget = self.limit - self.head
        target = min(settings.target, self.budget)
        self.min_run = target // 4
        self.rate = max(1, target - self.min_run)
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.bodies: list[int] = []
        self.tails: list[str | None] = []
        self.boundary: list[bool] = []
        self.strengths: list[float] = []  # see _strength; -1.0 until computed
        self.count = tokens.counter()
        self.within = tokens.counter_within()
        for start, end, kind, boundary in section.blocks:
            self._add(start, end, _CODE_LEVELS if kind == LINES else _PROSE_LEVELS, boundary)
        short = _short
        bodies, tails, starts, ends = self.bodies, self.tails, self.starts, self.ends
        self.final = [body + short[tail] if tail else body
                      for body, tail in zip(bodies, tails, strict=True)]
        self.prefix = prefix = [0]  # prefix sums of inner
        self.unsafe = unsafe = [0]  # prefix counts of joins whose sum is not exact
        inner_sum = unsafe_sum = 0
        for i in range(len(starts) - 1):
            tail = tails[i]
            gap = text[ends[i] : starts[i + 1]]
            if tail is not None and gap and not gap.strip("\n"):  # newlines only: safe
                inner_sum += bodies[i] + short[tail + gap]
            else:
                inner, safe = self._join(i)
                inner_sum += inner
                unsafe_sum += not safe
            prefix.append(inner_sum)
            unsafe.append(unsafe_sum)

    def _add(self, start: int, end: int, levels: tuple[_Level, ...], boundary: bool) -> None:
        """Add ``text[start:end]`` as one unit, or as smaller ones if it is over the budget."""
        if levels and end - start > self.budget * _SURELY_LARGE:
            # likely too large: count the parts, and merge them back if they fit after all
            found = self._level(start, end, levels)
            if found is None:
                levels = ()
            else:
                number, spans = found
                whole = self._whole(spans[0][0], spans[-1][1])
                if whole is not None:  # what merging the parts back would give
                    self._append_counted(spans[0][0], spans[-1][1], whole, boundary)
                    return
                first = len(self.starts)
                self._add_pieces(spans, levels[number + 1 :], boundary)
                self._merge(first)
                return
        unit = self.text[start:end]
        if not levels:
            for piece, size in tokens.split_counted(unit, self.budget):
                self._append_counted(start, start + len(piece), size, boundary)
                start += len(piece)
            return
        cut = tokens.symbol_tail(unit)
        body = self.count(unit if cut is None else unit[:cut])
        tail = None if cut is None else unit[cut:]
        if body + (_short[tail] if tail else 0) <= self.budget:
            self._append(start, end, body, tail, boundary)
        elif not self._split(start, end, levels, boundary):
            self._add(start, end, (), boundary)

    def _split(self, start: int, end: int, levels: tuple[_Level, ...], boundary: bool) -> bool:
        """Add the pieces of the first level that cuts the span in two or more; False if none."""
        found = self._level(start, end, levels)
        if found is None:
            return False
        number, spans = found
        self._add_pieces(spans, levels[number + 1 :], boundary)
        return True

    def _add_pieces(self, spans: list[tuple[int, int]], levels: tuple[_Level, ...],
                    boundary: bool) -> None:
        """Add each of ``spans``, cut further by ``levels`` where one is over the budget."""
        for piece_start, piece_end in spans:
            self._add(piece_start, piece_end, levels, boundary)

    def _level(self, start: int, end: int, levels: tuple[_Level, ...]
               ) -> tuple[int, list[tuple[int, int]]] | None:
        """The first of ``levels`` that cuts the span in two or more pieces, and those."""
        for number, (level, grouped) in enumerate(levels):
            spans = pieces(self.text, start, end, level, self.budget // 2 if grouped else 0)
            if len(spans) > 1:
                return number, spans
        return None

    def _whole(self, start: int, end: int) -> int | None:
        """Tokens of ``text[start:end]`` if that span fits the budget whole, else None.

        The span from a large block's first piece to its last is what :meth:`_merge`
        makes of the block's units when their sum fits: counting it whole first (rs-bpe
        stops at the budget) spares cutting, counting and summing the pieces of the
        half of such blocks that fit after all.
        """
        return self.within(self.text[start:end], self.budget)

    def _merge(self, first: int) -> None:
        """Make units ``first..`` one unit again if together they fit the budget."""
        last = len(self.starts) - 1
        total = self._final(last)
        exact = True
        for i in range(first, last):
            inner, safe = self._join(i)
            total += inner
            exact = exact and safe
        if total > self.budget * (1 if exact else 4):
            return
        start, end = self.starts[first], self.ends[last]
        unit = self.text[start:end]
        if not exact:
            total = self.count(unit)
            if total > self.budget:
                return
        boundary = self.boundary[first]
        for values in (self.starts, self.ends, self.bodies, self.tails, self.boundary):
            del values[first:]
        self._append_counted(start, end, total, boundary)

    def _append_counted(self, start: int, end: int, size: int, boundary: bool) -> None:
        """Append a unit of ``size`` tokens, finding its symbol tail."""
        unit = self.text[start:end]
        cut = tokens.symbol_tail(unit)
        tail = None if cut is None else unit[cut:]
        self._append(start, end, size - (_short[tail] if tail else 0), tail, boundary)

    def _append(self, start: int, end: int, body: int, tail: str | None, boundary: bool) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.bodies.append(body)
        self.tails.append(tail)
        self.boundary.append(boundary)

    def _final(self, i: int) -> int:
        """Tokens of unit ``i`` alone (exact)."""
        tail = self.tails[i]
        return self.bodies[i] + (_short[tail] if tail else 0)

    def _join(self, i: int) -> tuple[int, bool]:
        """Tokens of unit ``i`` and the gap after it, when unit ``i + 1`` follows; exact?

        The gap is the newlines a symbol tail glues on, then everything up to the last
        newline, then the next unit's indentation or leading space, which the tokenizer
        reads with that unit's first word.
        """
        text, count = self.text, _short.__getitem__
        tail = self.tails[i]
        gap = text[self.ends[i] : self.starts[i + 1]]
        if tail is None or not gap:
            return self.bodies[i] + count(gap), False
        glued = len(gap) - len(gap.lstrip("\n")) if tail else 0
        line = gap.rfind("\n") + 1
        inner = self.bodies[i] + count(tail + gap[:glued]) + count(gap[glued : max(line, glued)])
        lead = gap[line:]
        if not lead:
            return inner, True
        start = self.starts[i + 1]
        word = _head(text, start, self.ends[i + 1], self.tails[i + 1])
        if word is None:
            return inner + count(lead), False
        return inner + count(lead + word) - count(word), True

    def estimate(self, first: int, last: int) -> int:
        """Tokens of units ``first..last`` joined as in the text (exact if the joins are safe)."""
        return self.prefix[last] - self.prefix[first] + self.final[last]

    def cuts(self) -> list[_Cut]:
        """``(start, end, tokens of embed_text)`` of each chunk, in order."""
        out: list[_Cut] = []
        self.strengths = [-1.0] * len(self.starts)
        prefix, final, min_run = self.prefix, self.final, self.min_run
        longest = self.budget * _LONG_RUN
        first = 0
        last = len(self.starts) - 1
        for i in range(last + 1):
            run = prefix[i] - prefix[first] + final[i]  # self.estimate(first, i)
            if (i == last or (run >= min_run and self._strength(i) < 1.0)
                    or run > longest):
                self._fit(first, i, out)
                first = i + 1
        return out

    def _strength(self, i: int) -> float:
        """Below 1.0 when a chunk may end after unit ``i``; smaller means a stronger
        anchor. Computed when first asked for (most units are never asked).

        A hash of the unit's own text, scaled so that a unit is an anchor with a
        probability proportional to its tokens (rarer before an indented code block).
        """
        value = self.strengths[i]
        if value < 0:
            unit = self.text[self.starts[i] : self.ends[i]].encode("utf-8")
            mark = int.from_bytes(hashlib.blake2b(unit, digest_size=8).digest(), "big")
            rarer = i + 1 < len(self.starts) and not self.boundary[i + 1]
            value = mark / 2**64 * self.rate / self.final[i] * (_INDENTED_RARITY if rarer else 1)
            self.strengths[i] = value
        return value

    def _fit(self, first: int, last: int, out: list[_Cut]) -> None:
        """Emit units ``first..last`` as one chunk, or split them where they are strongest."""
        estimate = self.estimate(first, last)
        if estimate <= self.budget or first == last:
            exact = self.unsafe[last] == self.unsafe[first]
            start, end = self.starts[first], self.ends[last]
            total = self.head + (estimate if exact else self.count(self.text[start:end]))
            if total <= self.limit:
                out.append((start, end, total))
                return
            if first == last:
                self._hard(start, end, out)
                return
        best = min(range(first, last), key=lambda i: self._cut_key(first, i, last, estimate))
        self._fit(first, best, out)
        self._fit(best + 1, last, out)

    def _hard(self, start: int, end: int, out: list[_Cut]) -> None:
        """Emit ``text[start:end]`` in token-sized pieces (a unit the sums misjudged)."""
        for piece in tokens.split(self.text[start:end], self.budget):
            if piece.strip(tokens.WHITESPACE):
                offset = start + len(piece) - len(piece.lstrip(tokens.WHITESPACE))
                stop = start + len(piece.rstrip(tokens.WHITESPACE))
                out.append((offset, stop, self.head + tokens.tally(self.text[offset:stop])))
            start += len(piece)

    def _cut_key(self, first: int, i: int, last: int, total: int
                 ) -> tuple[bool, bool, float, int]:
        """Sort key of a cut after unit ``i``: boundaries, then balance, then anchor strength."""
        left = self.estimate(first, i)
        right = self.estimate(i + 1, last)
        lopsided = min(left, right) * 4 < total
        return (not self.boundary[i + 1], lopsided, self._strength(i), abs(left - right))


def _head(text: str, start: int, end: int, tail: str | None) -> str | None:
    """The first word of unit ``text[start:end]``, if the text splits additively after it.

    None when no such split is known (the unit is all symbols, or a character is
    unassigned in this Python's Unicode tables).
    """
    match = _FIRST_WORD.match(text, start, end)
    stop = match.end() if match else start
    if stop == start:
        return None
    if stop < end:
        last = unicodedata.category(text[stop - 1])
        if last[0] in "LN" or (last != "Cn" and text[stop] not in "\r\n"):
            return text[start:stop]
        return None
    if tail is None:
        return None
    if not tail:
        return text[start:end]
    cut = end - len(tail)
    return text[start:cut] if cut > start else None


def count_short(text: str) -> int:
    """Tokens of ``text``, memoised when it is short enough to recur (gaps, tails)."""
    return _short[text]


_short = Memo(tokens.tally, _SHORT, _MEMO)
