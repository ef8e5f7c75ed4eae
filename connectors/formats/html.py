"""HTML to text sections: the one module that talks to BeautifulSoup.

Boilerplate goes first: scripts, styles, forms, ``<nav>``, ARIA navigation, banner and
footer landmarks, ``<header>``/``<footer>``/``<aside>`` outside the article, blocks that
documentation generators use for navigation (``class="header"`` or ``nav-panel`` in
Texinfo, ``navheader`` in DocBook, ``sphinxsidebar``...), and short link bars: a small
block of two or more ``rel="next|prev|up|index…"`` links, or three or more links that
make up most of its text. When the page has a ``<main>`` element only that is read. What
remains becomes one section per heading (``h1``-``h6``), with the stack of enclosing
headings as its ``heading_path``; blocks are separated by blank lines (list items and
table rows by a single newline) and ``<pre>`` is kept verbatim. Every line of a
section's text knows the source lines it came from
(:attr:`~indexer.records.Segment.lines`), so a passage is cited where it stands in the
file.

Malformed pages are read the way a reader sees them. ``html.parser`` nests whatever
follows an unclosed tag inside it (``<h1>Title<p>one`` puts the paragraph inside the
heading), so a heading's text is only its leading inline text: it ends at the first
block, cell or heading that follows some text, and what comes after is body text under
that heading. Likewise the page title is only the leading text of ``<title>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bs4 import BeautifulSoup
from bs4.dammit import EncodingDetector
from bs4.element import (
    CData,
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    PageElement,
    ProcessingInstruction,
    Tag,
)

from indexer.connectors.formats.text import normalise
from indexer.records import Segment

_DROPPED = frozenset(
    {
        "script", "style", "noscript", "template", "nav", "form", "button", "select", "iframe",
        "svg", "canvas", "head",
    }
)
_DROPPED_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "menu", "menubar"})
_PAGE_CHROME = frozenset({"header", "footer", "aside"})
_CONTENT = ["article", "main"]
_DROPPED_CLASSES = frozenset({"headerlink"})
_NAV_NAMES = frozenset(
    {
        "header", "footer", "nav", "navbar", "navigation", "nav-panel", "navheader",
        "navfooter", "sphinxsidebar", "related", "breadcrumb", "breadcrumbs", "pagination",
        "pager", "skip-link", "skiplink", "prev-next", "topnav", "subnav", "bottomnav",
        "navpath", "site-header", "site-footer", "masthead",
    }
)
"""``class`` or ``id`` values of page chrome (Texinfo, DocBook, Sphinx, Javadoc...)."""
_NAV_RELS = frozenset({"next", "prev", "previous", "up", "start", "first", "last", "contents",
                       "index", "home"})
_LINK_BAR_CHARS = 300
"""A link bar is at most this long; longer blocks are text that happens to have links."""
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "header", "hr", "html",
        "li", "main", "ol", "p", "section", "summary", "table", "tbody", "tfoot",
        "thead", "tr", "ul",
    }
)
_WHOLE = frozenset({"html", "body", "main", "article"})
_CELLS = frozenset({"td", "th"})
_ENDS_HEADING = _BLOCKS | _CELLS | {"pre"} | set(_HEADINGS)
"""Tags that end a heading's text once it has some (its tag may be unclosed)."""
_ITEMS = frozenset({"li", "tr", "dt", "dd"})
_LISTS = frozenset({"ul", "ol", "dl", "table"})
_NOT_TEXT = (Comment, CData, ProcessingInstruction, Declaration, Doctype)
_SPACES = re.compile(r"\s+")
_TITLE_CHARS = 200


@dataclass(frozen=True)
class HtmlText:
    """The text of an HTML page: its title (``None`` when it has none) and its sections."""

    title: str | None
    sections: tuple[Segment, ...]


def declared_encoding(data: bytes) -> str | None:
    """The charset a page declares in a ``<meta>`` tag or XML declaration, if any."""
    return EncodingDetector.find_declared_encoding(data, is_html=True)


def extract(markup: str) -> HtmlText:
    """Split decoded HTML into heading sections of readable text (see the module docstring)."""
    soup = BeautifulSoup(markup, "html.parser")
    title_tag = soup.find("title")
    title = _leading_text(title_tag) if isinstance(title_tag, Tag) else ""
    for tag in soup.find_all(_is_boilerplate):
        tag.decompose()
    main = soup.find("main") or soup.find(True, {"role": "main"})
    root = main if isinstance(main, Tag) else soup
    sections = _Sections()
    sections.walk(root)
    segments = sections.finish()
    title = title or sections.first_h1
    return HtmlText(title=title[:_TITLE_CHARS] or None, sections=segments)


def _is_boilerplate(tag: Tag) -> bool:
    if tag.name in _DROPPED:
        return True
    role = tag.get("role")
    if isinstance(role, str) and role.strip().lower() in _DROPPED_ROLES:
        return True
    classes = [str(c).lower() for c in tag.get_attribute_list("class") if c]
    if not _DROPPED_CLASSES.isdisjoint(classes):
        return True
    if tag.name in _HEADINGS or tag.name == "pre":
        return False
    ident = tag.get("id")
    if not _NAV_NAMES.isdisjoint(classes) or (
        isinstance(ident, str) and ident.lower() in _NAV_NAMES
    ):
        return True
    if tag.name in _PAGE_CHROME and tag.find_parent(_CONTENT) is None:
        return True
    return tag.name in _BLOCKS and tag.name not in _WHOLE and _is_link_bar(tag)


def _is_link_bar(tag: Tag) -> bool:
    """A short block of navigation links ("Next: … Up: … [Index]", "Home | Docs | Blog")."""
    size = 0
    for text in tag.strings:  # the cheap test first: most blocks are long
        if not isinstance(text, _NOT_TEXT):
            size += len(text.strip())
            if size > _LINK_BAR_CHARS:
                return False
    links = tag.find_all("a", href=True, limit=16)
    if len(links) < 2 or tag.find(list(_HEADINGS)) is not None:
        return False
    rels = sum(1 for link in links
               if not _NAV_RELS.isdisjoint(r.lower() for r in link.get_attribute_list("rel") if r))
    if rels >= 2:
        return True
    linked = sum(len(link.get_text().strip()) for link in links)
    return len(links) >= 3 and size > 0 and linked / size >= 0.8


def _inline(text: str) -> str:
    return " ".join(text.split())


def _leading_text(tag: Tag) -> str:
    """The text directly inside ``tag`` before its first child element (an unclosed
    ``<title>`` holds the whole page)."""
    text: list[str] = []
    for child in tag.contents:
        if isinstance(child, Tag):
            break
        if isinstance(child, NavigableString) and not isinstance(child, _NOT_TEXT):
            text.append(child)
    return _inline("".join(text))


def _in_title(node: NavigableString) -> bool:
    return node.parent is not None and node.parent.name == "title"


@dataclass(frozen=True)
class _End:
    """Marks where a tag's children end on the walk's stack."""

    name: str


_Lines = list[tuple[int, int]]
"""For each line of a text, the first and last source line it comes from."""


@dataclass
class _Block:
    text: str
    group: int | None
    lines: _Lines


@dataclass
class _Section:
    heading_path: tuple[str, ...]
    blocks: list[_Block] = field(default_factory=list)

    def segment(self) -> Segment:
        """The blocks joined: a blank line between paragraphs, a newline between items of a
        list; each line of the text with its source lines."""
        parts: list[str] = []
        lines: _Lines = []
        previous: _Block | None = None
        for block in self.blocks:
            if previous is not None:
                if block.group is None or block.group != previous.group:
                    parts.append("\n")
                    lines.append((block.lines[0][0], previous.lines[-1][1]))
                parts.append("\n")
            parts.append(block.text)
            lines.extend(block.lines)
            previous = block
        return Segment(text="".join(parts), format="text", heading_path=self.heading_path,
                       line_start=lines[0][0], lines=tuple(lines))


class _Sections:
    """Walks the tree in document order: inline text into blocks, blocks into sections.

    ``line`` follows the walk through the source: each tag resets it to the line it
    starts on, and text moves it on by its newlines.
    """

    def __init__(self) -> None:
        self.headings: list[tuple[int, str]] = []
        self.sections = [_Section(heading_path=())]
        self.inline: list[tuple[str, int, int]] = []  # text, first and last source line
        self.item_depth = 0
        self.group = 0
        self.capturing: int | None = None  # level of the heading whose text is being read
        self.first_h1 = ""
        self.line = 1

    def walk(self, root: Tag) -> None:
        """Visit ``root``'s descendants with an explicit stack: deeply nested pages are common."""
        stack: list[PageElement | _End] = list(reversed(root.contents))
        while stack:
            node = stack.pop()
            if isinstance(node, _End):
                self.close(node.name)
            elif isinstance(node, NavigableString):
                self.text(node)
            elif isinstance(node, Tag):
                if node.sourceline is not None:
                    self.line = node.sourceline
                if self.open(node):
                    stack.append(_End(node.name))
                    stack.extend(reversed(node.contents))

    def text(self, node: NavigableString) -> None:
        raw = str(node)
        if not isinstance(node, _NOT_TEXT) and not _in_title(node):
            body = raw.lstrip()
            first = self.line + raw.count("\n", 0, len(raw) - len(body))
            last = first + body.rstrip().count("\n")
            self.add(_SPACES.sub(" ", raw), first, last)
        self.line += raw.count("\n")

    def add(self, text: str, first: int | None = None, last: int | None = None) -> None:
        """Inline text from the given source lines (markup of ours: the current line)."""
        self.inline.append((text, self.line if first is None else first,
                            self.line if last is None else last))

    def inline_text(self) -> str:
        return "".join(text for text, _, _ in self.inline)

    def open(self, tag: Tag) -> bool:
        """Handle a start tag; True when its children are to be walked."""
        name = tag.name
        if name in _ENDS_HEADING:
            self.end_heading(force=name in _HEADINGS)
        if name in _HEADINGS:
            self.flush()
            self.capturing = _HEADINGS[name]
            return True
        if name == "pre":
            self.flush()
            raw = normalise(tag.get_text())
            first = self.line + raw.startswith("\n")
            text = raw.removeprefix("\n").rstrip()
            self.line += raw.count("\n")
            if text.strip():
                count = text.count("\n") + 1
                self.sections[-1].blocks.append(
                    _Block(text, None, [(first + n, first + n) for n in range(count)]))
            return False
        if name == "br":
            self.add("\n")
        elif name in _CELLS:
            if self.inline_text().strip():
                self.add(" | ")
        elif name in _BLOCKS:
            self.flush()
            self.item_depth += name in _ITEMS
            if name == "li":
                self.add("- ")
        return True

    def close(self, name: str) -> None:
        """Handle an end tag whose children have been walked."""
        if name in _ENDS_HEADING:
            self.end_heading(force=name in _HEADINGS)
        if name in _BLOCKS:
            self.flush()
            self.item_depth -= name in _ITEMS
            if name in _LISTS and not self.item_depth:
                self.group += 1

    def end_heading(self, force: bool) -> None:
        """Close the heading being read when its text is complete: at a block boundary
        after some text (``force``: at any heading tag)."""
        if self.capturing is None:
            return
        text = _inline(self.inline_text())
        if text or force:
            self.inline.clear()
            self.heading(self.capturing, text)
            self.capturing = None

    def heading(self, level: int, text: str) -> None:
        if not text:
            return
        if level == 1 and not self.first_h1:
            self.first_h1 = text
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))
        self.sections.append(_Section(heading_path=tuple(title for _, title in self.headings)))

    def flush(self) -> None:
        """Close the block being read: its lines (split at ``<br>``) with their sources."""
        lines: list[str] = []
        sources: _Lines = []
        pieces: list[tuple[str, int, int]] = []
        for piece in [*self.inline, ("\n", 0, 0)]:
            if piece[0] != "\n":
                pieces.append(piece)
                continue
            line = " ".join("".join(text for text, _, _ in pieces).split())
            spans = [(first, last) for text, first, last in pieces if text.strip()]
            if line and spans:
                lines.append(line)
                sources.append((min(f for f, _ in spans), max(last for _, last in spans)))
            pieces = []
        self.inline.clear()
        text = "\n".join(lines)
        if text and text != "-":
            self.sections[-1].blocks.append(
                _Block(text, self.group if self.item_depth else None, sources))

    def finish(self) -> tuple[Segment, ...]:
        self.end_heading(force=True)
        self.flush()
        return tuple(section.segment() for section in self.sections if section.blocks)
