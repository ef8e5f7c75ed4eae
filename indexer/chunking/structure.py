"""Reading a segment's structure: headings, and the blocks between them.

The parser sees Markdown, reStructuredText, source code and plain text as lines. It
returns sections (the blocks under one heading path) and never copies text: a block is
a span of the segment's text from the start of its first line to the end of its last
non-blank character, so chunks can be cut as slices and located by line.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import zlib
from dataclasses import dataclass, field

from indexer.chunking.tokens import WHITESPACE

PROSE = "prose"
"""Block kind split by sentences when it is too large: paragraphs, quotes."""
LINES = "lines"
"""Block kind split by lines when it is too large: code, lists, tables, directives."""

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_RULE = re.compile(r" {0,3}([-*_])[ \t]*(?:\1[ \t]*){2,}")
_LIST = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)]|#\.)[ \t]")
_SENTENCE_END = re.compile("[.!?\u2026]+[\"')\\]\u201d\u2019]*(?=[ \t\n])|[\u3002\uff01\uff1f]+")
_WORD = re.compile(f"[^{WHITESPACE}]+")
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1*[ \t]*")
_MARKDOWN_SPECIAL = frozenset("#`~=-*_")
_BLANK_LEAD = frozenset(WHITESPACE)  # a line starting otherwise is not blank
_LONGEST_GROUP = 2  # a group of pieces is closed at this many times the size asked for

Span = tuple[int, int]


@dataclass(frozen=True)
class Block:
    """A span ``text[start:end]`` of one structural unit (paragraph, code block, list, ...).

    ``boundary`` is False when a chunk should not end just before this block if it can
    help it (an indented continuation of code).
    """

    start: int
    end: int
    kind: str = PROSE
    boundary: bool = True


@dataclass(frozen=True)
class Section:
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
    stack: list[tuple[int, str]] = field(default_factory=list)
    rst_styles: list[tuple[str, bool]] = field(default_factory=list)

    def start_segment(self, heading_path: tuple[str, ...]) -> None:
        """Begin a segment; a non-empty ``heading_path`` becomes the new base."""
        if heading_path:
            self.base = heading_path
            self.stack.clear()

    def enter(self, level: int, title: str) -> None:
        """Record a heading of ``level`` (1 is the top)."""
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title))

    @property
    def path(self) -> tuple[str, ...]:
        """The current heading path."""
        return self.base + tuple(title for _, title in self.stack)


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
        self.lines = text.split("\n")
        self.starts = list(itertools.accumulate(map((1).__add__, map(len, self.lines)),
                                                initial=0))
        self.outline = outline
        self.done: list[Section] = []
        self.path = outline.path
        self.blocks: list[Block] = []

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
        """ATX and setext headings, fenced code, front matter, rules, paragraphs."""
        lines = self.lines
        index = _front_matter(lines)
        if index:
            self.add(0, index - 1, LINES)
        first = -1  # first line of the open paragraph
        blank_lead = _BLANK_LEAD
        while index < len(lines):
            line = lines[index]
            lead = line[:1]
            if not lead or (lead in blank_lead and not line.strip(WHITESPACE)):
                if first >= 0:
                    self.add(first, index - 1, _kind(lines[first]))
                    first = -1
                index += 1
                continue
            indent = 0
            if lead == " ":
                stripped = line.lstrip(" ")
                lead = stripped[:1]
                indent = len(line) - len(stripped)
            if lead in _MARKDOWN_SPECIAL and indent < 4:
                # each pattern starts with its lead character after at most three spaces
                fence = _FENCE.fullmatch(line) if lead in "`~" else None
                if fence and not (fence[1][0] == "`" and "`" in fence[2]):
                    if first >= 0:
                        self.add(first, index - 1, _kind(lines[first]))
                        first = -1
                    index = self._fence(index, fence[1])
                    continue
                atx = _ATX.fullmatch(line) if lead == "#" else None
                if atx:
                    if first >= 0:
                        self.add(first, index - 1, _kind(lines[first]))
                        first = -1
                    self.heading(len(atx[1]), atx[2] or "")
                    index += 1
                    continue
                setext = _SETEXT.fullmatch(line) if lead in "=-" and first >= 0 else None
                if setext and _kind(lines[first]) == PROSE:
                    title = self.text[self.starts[first] : self.end_of(index - 1)]
                    first = -1
                    self.heading(1 if setext[1][0] == "=" else 2, title)
                    index += 1
                    continue
                if lead in "-*_" and _RULE.fullmatch(line):
                    if first >= 0:
                        self.add(first, index - 1, _kind(lines[first]))
                        first = -1
                    index += 1
                    continue
            if first < 0:
                first = index
            index += 1
        if first >= 0:
            self.add(first, len(lines) - 1, _kind(lines[first]))

    def _fence(self, index: int, opener: str) -> int:
        """Add the code block opened at line ``index``; return the line after it."""
        last = len(self.lines) - 1
        if index < last:
            found = _closer(opener).search(self.text, self.starts[index + 1])
            if found:
                last = bisect.bisect_right(self.starts, found.start()) - 1
        self.add(index, last, LINES)
        return last + 1

    def rst(self) -> None:
        """Section titles (underline, optional overline), directives, literal blocks."""
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
    """The line that closes a code fence opened with ``opener``."""
    return re.compile(rf"^ {{0,3}}{re.escape(opener[0])}{{{len(opener)},}}[ \t]*$", re.M)


def _kind(first_line: str) -> str:
    stripped = first_line.lstrip(" \t")
    if stripped.startswith("|") or _LIST.match(first_line) or _indent(first_line) >= 4:
        return LINES
    return PROSE


def _front_matter(lines: list[str]) -> int:
    """Number of lines of a YAML front matter block at the top, or 0."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    for index in range(1, min(len(lines), 200)):
        if lines[index].rstrip() in ("---", "..."):
            return index + 1
    return 0


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
