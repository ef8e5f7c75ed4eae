"""The text an SVG image carries: its ``<title>``, ``<desc>`` and visible ``<text>``.

An SVG file is XML, not a binary: a diagram's labels and its accessible title and
description are text worth finding ("the architecture diagram with the ledger"). Its
drawing (paths, styles, scripts, embedded images) is not. The file is read with expat,
which resolves no external entity; a document that declares entities is refused, so a
crafted file cannot expand itself ("billion laughs").
"""

from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass

from indexer.connectors.formats.text import ExtractionError, NoText

_TEXT_ELEMENTS = frozenset({"title", "desc", "text"})
NO_TEXT = "SVG image: no text to index (no <title>, <desc> or <text>)"


@dataclass(frozen=True)
class SvgText:
    """An SVG's title (its first ``<title>``), its text lines and the first one's line."""

    title: str
    lines: tuple[str, ...]
    line_start: int


class _Reader:
    def __init__(self) -> None:
        self.parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.parser.CharacterDataHandler = self.data
        self.parser.EntityDeclHandler = self.entity
        self.depth = 0  # inside how many text elements
        self.parts: list[str] = []
        self.lines: list[str] = []
        self.title = ""
        self.first_line = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        if local in _TEXT_ELEMENTS and not self.depth:
            self.parts = []
            if not self.first_line:
                self.first_line = self.parser.CurrentLineNumber
        if local in _TEXT_ELEMENTS or self.depth:
            self.depth += 1
        if local == "tspan" and self.parts and not self.parts[-1].endswith(" "):
            self.parts.append(" ")

    def end(self, name: str) -> None:
        if not self.depth:
            return
        self.depth -= 1
        if self.depth:
            return
        line = " ".join("".join(self.parts).split())
        if line:
            if name.rpartition(" ")[2] == "title" and not self.title:
                self.title = line
            self.lines.append(line)

    def data(self, text: str) -> None:
        if self.depth:
            self.parts.append(text)

    def entity(self, *args: object) -> None:
        raise ExtractionError("SVG image declares XML entities: not read")


def extract(text: str) -> SvgText:
    """The text of an SVG document; raises :class:`NoText` when it has none and
    :class:`ExtractionError` when it is not well-formed XML."""
    reader = _Reader()
    try:
        reader.parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as exc:
        raise ExtractionError(f"SVG image that is not well-formed XML ({exc})") from None
    if not reader.lines:
        raise NoText(NO_TEXT)
    return SvgText(reader.title, tuple(reader.lines), reader.first_line or 1)
