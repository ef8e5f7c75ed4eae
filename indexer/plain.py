"""Search hits as plain text: what ``indexer search`` prints when its output is not a
terminal (a pipe, a file), and the words the terminal's table shows.

Text is written as it is, never read as rich markup (a passage holding ``[/x]`` or a
Markdown link's ``[text]`` is shown whole), and printing it does not load rich, which
would cost a piped search about a tenth of a second of CPU.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from indexer.records import Place, SearchHit


def piped(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: stdout) is surely not a terminal: not a tty, and the
    environment asks for none (``TTY_COMPATIBLE=1`` or ``FORCE_COLOR``, as rich reads
    them; with either, rich draws the table)."""
    environ = os.environ
    if environ.get("TTY_COMPATIBLE") in ("0", "1"):
        return environ["TTY_COMPATIBLE"] == "0"
    if environ.get("FORCE_COLOR"):
        return False
    try:
        return not (stream or sys.stdout).isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream: not a terminal
        return True


def hits_text(hits: Sequence[SearchHit]) -> str:
    """The hits as lines: how many and the mode that ranked them, then for each its rank,
    score and places, and its passages indented (a document hit shows several)."""
    if not hits:
        return "no matches\n"
    unit = "documents" if hits[0].document is not None else "passages"
    lines = [f"{len(hits)} {unit}, {hits[0].mode} search"]
    for rank, hit in enumerate(hits, start=1):
        places = "; ".join(place_text(p).replace("\n", " · ") for p in hit.places)
        lines.append(f"{rank}. {hit.score:.3f}  {places}")
        lines += [f"   {passage_text(passage)}\n" for passage in (hit, *hit.more)]
    return "\n".join(lines) + "\n"


def place_text(place: Place) -> str:
    """Where a passage is: its path (relative when near), page or lines, heading, link."""
    text = short_path(place.uri)
    if place.page is not None:
        text += f" p.{place.page}"
    elif place.line_start is not None:
        text += f":{place.line_start}-{place.line_end}"
    if place.heading:
        text += f"\n{place.heading}"
    if place.origin is not None and place.origin.link:
        text += f"\n{place.origin.link}"
    return text


def short_path(uri: str) -> str:
    """A file's path relative to the current folder when that is shorter to read."""
    if not uri.startswith("/"):
        return uri  # a file:// URI (a path that is not UTF-8) is shown whole
    try:
        relative = os.path.relpath(uri)
    except ValueError:
        return uri
    return uri if relative.startswith("../..") else relative


def passage_text(hit: SearchHit) -> str:
    """A hit's passage, flattened; longer when neighbours were merged into it."""
    return snippet(hit.text, 300 * (1 + hit.merged))


def snippet(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
