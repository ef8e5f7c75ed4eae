"""Reading a segment's structure: headings, and the blocks between them.

The parser sees Markdown, reStructuredText, source code and plain text as lines. It
returns sections (the blocks under one heading path) and never copies text: a block is
a span of the segment's text from the start of its first line to the end of its last
non-blank character, so chunks can be cut as slices and located by line.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from indexer.chunking.tokens import WHITESPACE

PROSE = "prose"
"""Block kind split by sentences when it is too large: paragraphs, quotes."""
LINES = "lines"
"""Block kind split by lines when it is too large: code, lists, tables, directives."""

_RULE = re.compile(r" {0,3}([-*_])[ \t]*(?:\1[ \t]*){2,}")
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1*[ \t]*")
_LINES_LEAD = re.compile(r"[ \t]{4}|[ \t]*(?:\||(?:[-*+]|\d{1,9}[.)]|#\.)[ \t])")
"""Matches at the start of a block of kind LINES (see :func:`_kind`)."""
_SPACE = re.escape(WHITESPACE.replace("\n", ""))
_EVENT = (  # a Markdown line that is not simply part of a paragraph; the rest are
    rf"(?P<blank>[{_SPACE}]*$(?:\n[{_SPACE}]*$)*)"  # with the blank lines after it
    r"|(?P<fence> {0,3}(?P<run>`{3,}+(?=[^`\n]*$)|~{3,}+)).*"
    r"|(?P<atx> {0,3}(?P<hashes>#{1,6})(?:[ \t]+(?P<title>.*?))?(?:[ \t]+#+)?[ \t]*$)"
    rf"(?:\n[{_SPACE}]*$)*"  # and the blank lines after it, which close nothing
    r"|(?P<setext> {0,3}(?:=+|-+)[ \t]*$)"  # also a rule if it is of "-"
    r"|(?P<rule> {0,3}(?P<mark>[-*_])[ \t]*(?:(?P=mark)[ \t]*){2,}$)"
)
_FIRST_EVENT = re.compile(_EVENT, re.M).match  # at the start of the text
_NEXT_EVENT = re.compile(rf"\n(?:{_EVENT})", re.M).search  # from the newline before a line


class Block(NamedTuple):
    """A span ``text[start:end]`` of one structural unit (paragraph, code block, list, ...).

    ``boundary`` is False when a chunk should not end just before this block if it can
    help it (an indented continuation of code).
    """

    start: int
    end: int
    kind: str = PROSE
    boundary: bool = True


class Section(NamedTuple):
    """The blocks that stand under one heading path."""

    heading_path: tuple[str, ...]
    blocks: tuple[Block, ...]


@dataclass
class Outline:
    """The heading path as a document is read, carried from one segment to the next.

    A segment that names its own heading path replaces what came before; headings found
    in the text nest under it. reStructuredText levels follow the order in which
    adornment styles first appear, as docutils assigns them.
    """

    base: tuple[str, ...] = ()
    stack: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    """The open headings: their level, and the heading path they end."""
    rst_styles: list[tuple[str, bool]] = field(default_factory=list)

    def start_segment(self, heading_path: tuple[str, ...]) -> None:
        """Begin a segment; a non-empty ``heading_path`` becomes the new base."""
        if heading_path:
            self.base = heading_path
            self.stack.clear()

    def enter(self, level: int, title: str) -> None:
        """Record a heading of ``level`` (1 is the top)."""
        stack = self.stack
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, (stack[-1][1] if stack else self.base) + (title,)))

    @property
    def path(self) -> tuple[str, ...]:
        """The current heading path."""
        return self.stack[-1][1] if self.stack else self.base


def clean_heading(text: str) -> str:
    """A heading or title on one line, whitespace collapsed."""
    return " ".join(text.replace("\x00", "").split())


def sections(text: str, fmt: str, outline: Outline) -> list[Section]:
    """The sections of ``text`` read as ``fmt`` ("markdown", "rst", "code" or "text")."""
    reader = _Reader(text, outline)
    if fmt == "markdown":
        reader.markdown()
    elif fmt == "rst":
        reader.rst()
    else:
        reader.paragraphs(code=fmt == "code")
    return reader.finish()


def _is_blank(line: str) -> bool:
    return not line.strip(WHITESPACE)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


class _Reader:
    """Walks the lines of one segment, collecting blocks into sections."""

    def __init__(self, text: str, outline: Outline) -> None:
        self.text = text
        self.outline = outline
        self.done: list[Section] = []
        self.path = outline.path
        self.blocks: list[Block] = []
        self.lines: list[str] = []  # filled by the readers that walk every line
        self.starts: list[int] = []  # the offset of each line, and one past the end

    def split_lines(self) -> None:
        """Fill :attr:`lines` and :attr:`starts` (the reStructuredText and plain readers)."""
        self.lines = self.text.split("\n")
        self.starts = list(itertools.accumulate(map((1).__add__, map(len, self.lines)),
                                                initial=0))

    def end_of(self, index: int) -> int:
        """Offset just past the last non-blank character of line ``index``."""
        return self.starts[index] + len(self.lines[index].rstrip(WHITESPACE))

    def add(self, first: int, last: int, kind: str, boundary: bool = True) -> None:
        self.blocks.append(Block(self.starts[first], self.end_of(last), kind, boundary))

    def heading(self, level: int, title: str) -> None:
        title = clean_heading(title)
        if not title:
            return
        self.flush()
        self.outline.enter(level, title)
        self.path = self.outline.path

    def flush(self) -> None:
        if self.blocks:
            self.done.append(Section(self.path, tuple(self.blocks)))
            self.blocks = []

    def finish(self) -> list[Section]:
        self.flush()
        return self.done

    def paragraphs(self, code: bool) -> None:
        """Blocks separated by blank lines; code blocks prefer to start unindented."""
        self.split_lines()
        first = -1
        for index, line in enumerate(self.lines):
            if _is_blank(line):
                if first >= 0:
                    self._paragraph(first, index - 1, code)
                    first = -1
            elif first < 0:
                first = index
        if first >= 0:
            self._paragraph(first, len(self.lines) - 1, code)

    def _paragraph(self, first: int, last: int, code: bool) -> None:
        if code:
            self.add(first, last, LINES, boundary=_indent(self.lines[first]) == 0)
        else:
            self.add(first, last, _kind(self.lines[first]))

    def markdown(self) -> None:
        """ATX and setext headings, fenced code, front matter, rules, paragraphs.

        Only the lines :data:`_EVENT` matches are looked at one by one; a regular
        expression skips the lines of paragraphs.
        """
        text = self.text
        size = len(text)
        end, pos = _front_matter(text)
        if end:
            self.blocks.append(Block(0, end, LINES))
        first = -1  # start of the open paragraph's first line
        while pos <= size:  # pos: the start of a line not yet read
            found = _FIRST_EVENT(text, 0) if pos == 0 else None
            line = 0
            if found is None:
                found = _NEXT_EVENT(text, pos - 1 if pos else 0)
                if found is None:  # the rest is paragraph lines
                    first = pos if first < 0 else first
                    break
                line = found.start() + 1
            if first < 0 and line > pos:
                first = pos
            pos = found.end() + 1  # the line after the event
            kind = found.lastgroup
            if kind == "setext":
                if first >= 0 and _kind(text, first) == PROSE:
                    title = text[first : _paragraph_end(text, first, line)]
                    first = -1
                    self.heading(1 if found["setext"].lstrip(" ")[0] == "=" else 2, title)
                    continue
                if not _RULE.fullmatch(found["setext"]):
                    if first < 0:
                        first = line
                    continue
            if first >= 0:
                self.blocks.append(Block(first, _paragraph_end(text, first, line),
                                         _kind(text, first)))
                first = -1
            if kind == "fence":
                pos = self._fence(line, found.end(), found["run"])
            elif kind == "atx":
                self.heading(len(found["hashes"]), found["title"] or "")
        if first >= 0:
            self.blocks.append(Block(first, first + len(text[first:].rstrip(WHITESPACE)),
                                     _kind(text, first)))

    def _fence(self, start: int, end: int, opener: str) -> int:
        """Add the code block opened by the line ``text[start:end]``; return the start of
        the line after it."""
        text = self.text
        if end == len(text):  # the last line
            self.blocks.append(Block(start, start + len(text[start:].rstrip(WHITESPACE)),
                                     LINES))
            return end + 1
        found = _closer(opener).search(text, end)
        if found:
            self.blocks.append(Block(start, found.end(1), LINES))
            return found.end() + 1
        last = text.rfind("\n") + 1
        self.blocks.append(Block(start, last + len(text[last:].rstrip(WHITESPACE)), LINES))
        return len(text) + 1

    def rst(self) -> None:
        """Section titles (underline, optional overline), directives, literal blocks."""
        self.split_lines()
        lines = self.lines
        index = 0
        first = -1
        literal_after = -1  # indentation a literal block must exceed, after a "::" paragraph
        while index < len(lines):
            line = lines[index]
            if _is_blank(line):
                if first >= 0:
                    literal_after = self._rst_paragraph(first, index - 1)
                    first = -1
                index += 1
                continue
            if first < 0:
                indent = _indent(line)
                if literal_after >= 0 and indent > literal_after:
                    index = self._indented(index, literal_after)
                    literal_after = -1
                    continue
                literal_after = -1
                title = self._rst_title(index)
                if title:
                    index = title
                    continue
                if line.lstrip(" \t").startswith(".. ") or line.strip() == "..":
                    index = self._indented(index, indent, start=index + 1)
                    continue
                if _ADORNMENT.fullmatch(line) and len(line.rstrip()) >= 4:
                    index += 1  # a transition
                    continue
                first = index
            index += 1
        if first >= 0:
            self._rst_paragraph(first, len(lines) - 1)

    def _rst_paragraph(self, first: int, last: int) -> int:
        """Add a paragraph; return the indentation a following literal block must exceed."""
        self.add(first, last, _kind(self.lines[first]))
        if self.lines[last].rstrip(WHITESPACE).endswith("::"):
            return _indent(self.lines[first])
        return -1

    def _indented(self, index: int, indent: int, start: int | None = None) -> int:
        """Add the block of lines indented deeper than ``indent``; return the line after."""
        last = index
        scan = index if start is None else start
        while scan < len(self.lines):
            line = self.lines[scan]
            if not _is_blank(line):
                if _indent(line) <= indent:
                    break
                last = scan
            scan += 1
        self.add(index, last, LINES)
        return last + 1

    def _rst_title(self, index: int) -> int:
        """If a section title starts at line ``index``, record it and return the next line."""
        lines = self.lines
        line = lines[index]
        over = _ADORNMENT.fullmatch(line)
        if over and index + 2 < len(lines):
            title, under = lines[index + 1], lines[index + 2]
            if not _is_blank(title) and under.rstrip() == line.rstrip():
                self._rst_heading((line[0], True), title)
                return index + 3
        if index + 1 < len(lines) and _indent(line) == 0 and not over:
            under = lines[index + 1].rstrip()
            long_enough = len(under) >= 4 or len(under) >= len(line.rstrip())
            if _ADORNMENT.fullmatch(under) and long_enough:
                self._rst_heading((under[0], False), line)
                return index + 2
        return 0

    def _rst_heading(self, style: tuple[str, bool], title: str) -> None:
        styles = self.outline.rst_styles
        if style not in styles:
            styles.append(style)
        self.heading(styles.index(style) + 1, title)


@functools.lru_cache(maxsize=64)
def _closer(opener: str) -> re.Pattern[str]:
    """The newline before the line that closes a code fence opened with ``opener``, to
    the end of that line and of the blank lines after it; group 1 ends after the fence
    characters."""
    return re.compile(rf"(\n {{0,3}}{re.escape(opener[0])}{{{len(opener)},}})(?=[ \t]*$)"
                      rf"[ \t]*(?:\n[{_SPACE}]*$)*", re.M)


def _paragraph_end(text: str, first: int, line: int) -> int:
    """End of the last non-blank character of a paragraph from ``first`` to the line
    before the one starting at ``line``."""
    return first + len(text[first : line - 1].rstrip(WHITESPACE))


def _kind(text: str, start: int = 0) -> str:
    """The kind of a block whose first line starts at ``text[start]``."""
    return LINES if _LINES_LEAD.match(text, start) else PROSE


def _front_matter(text: str) -> tuple[int, int]:
    """The end of a YAML front matter block at the top and the start of the line after
    it, or ``(0, 0)``."""
    if not text.startswith("---"):
        return 0, 0
    start = 0
    for index in range(200):
        newline = text.find("\n", start)
        line = text[start:] if newline < 0 else text[start:newline]
        if index == 0 and line.rstrip() != "---":
            return 0, 0
        if index and line.rstrip() in ("---", "..."):
            after = len(text) + 1 if newline < 0 else newline + 1
            return start + len(line.rstrip(WHITESPACE)), after
        if newline < 0:
            break
        start = newline + 1
    return 0, 0
