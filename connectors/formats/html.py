"""HTML to text sections: the one module that talks to BeautifulSoup.

Boilerplate goes first: scripts, styles, forms, ``<nav>``, ARIA navigation, banner
and footer landmarks, and ``<header>``/``<footer>``/``<aside>`` outside the article.
When the page has a ``<main>`` element only that is read. What remains becomes one
section per heading (``h1``-``h6``), with the stack of enclosing headings as its
``heading_path``; blocks are separated by blank lines (list items and table rows by a
single newline) and ``<pre>`` is kept verbatim.

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
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "header", "hr", "html",
        "li", "main", "ol", "p", "section", "summary", "table", "tbody", "tfoot",
        "thead", "tr", "ul",
    }
)
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
    if not _DROPPED_CLASSES.isdisjoint(tag.get_attribute_list("class")):
        return True
    return tag.name in _PAGE_CHROME and tag.find_parent(_CONTENT) is None


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


@dataclass
class _Section:
    heading_path: tuple[str, ...]
    blocks: list[tuple[str, int | None]] = field(default_factory=list)

    def text(self) -> str:
        """The blocks joined: a blank line between paragraphs, a newline between items of a list."""
        parts: list[str] = []
        previous: int | None = None
        for block, group in self.blocks:
            if parts:
                parts.append("\n" if group is not None and group == previous else "\n\n")
            parts.append(block)
            previous = group
        return "".join(parts)


class _Sections:
    """Walks the tree in document order: inline text into blocks, blocks into sections."""

    def __init__(self) -> None:
        self.headings: list[tuple[int, str]] = []
        self.sections = [_Section(heading_path=())]
        self.inline: list[str] = []
        self.item_depth = 0
        self.group = 0
        self.capturing: int | None = None  # level of the heading whose text is being read
        self.first_h1 = ""

    def walk(self, root: Tag) -> None:
        """Visit ``root``'s descendants with an explicit stack: deeply nested pages are common."""
        stack: list[PageElement | _End] = list(reversed(root.contents))
        while stack:
            node = stack.pop()
            if isinstance(node, _End):
                self.close(node.name)
            elif isinstance(node, NavigableString):
                if not isinstance(node, _NOT_TEXT) and not _in_title(node):
                    self.inline.append(_SPACES.sub(" ", str(node)))
            elif isinstance(node, Tag) and self.open(node):
                stack.append(_End(node.name))
                stack.extend(reversed(node.contents))

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
            text = normalise(tag.get_text()).removeprefix("\n").rstrip()
            if text.strip():
                self.sections[-1].blocks.append((text, None))
            return False
        if name == "br":
            self.inline.append("\n")
        elif name in _CELLS:
            if "".join(self.inline).strip():
                self.inline.append(" | ")
        elif name in _BLOCKS:
            self.flush()
            self.item_depth += name in _ITEMS
            if name == "li":
                self.inline.append("- ")
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
        text = _inline("".join(self.inline))
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
        lines = (" ".join(line.split()) for line in "".join(self.inline).split("\n"))
        text = "\n".join(line for line in lines if line)
        self.inline.clear()
        if text and text != "-":
            self.sections[-1].blocks.append((text, self.group if self.item_depth else None))

    def finish(self) -> tuple[Segment, ...]:
        self.end_heading(force=True)
        self.flush()
        return tuple(
            Segment(
                text=section.text(), format="text", heading_path=section.heading_path
            )
            for section in self.sections
            if section.blocks
        )
