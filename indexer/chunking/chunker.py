"""Cutting a document into token-bounded chunks whose boundaries survive edits.

A section (the blocks under one heading path) is cut into *units*: its blocks, and for
a block over the budget its lines or sentences, then words, then token-sized pieces.
Where chunks end is decided by content: a unit closes a chunk when a hash of its own
text says so, with a probability proportional to its tokens, so a chunk holds about
``target_tokens``. An edit therefore moves only the boundaries next to it; the rest of
the document cuts as before. A run between two such anchors that overflows the budget
is split at its strongest interior anchor, recursively.

Token counts are summed rather than recounted: each unit is encoded once, and the
tokenizer's pre-token rules (see :func:`indexer.chunking.tokens.symbol_tail`) make the sum
exact where units join at a line start or a space before a word. The rare chunk
joined any other way (token-sized pieces of one long word) is counted again whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from indexer.chunking import tokens
from indexer.chunking.packing import SEPARATOR, context_tokens, count_short, pack
from indexer.chunking.settings import MIN_LIMIT, ChunkerSettings
from indexer.chunking.structure import Outline, clean_heading, sections
from indexer.records import Chunk, Document, Segment

VERSION = 1
"""Bumped whenever the same document and settings would be cut differently."""

_ELLIPSIS = "…"


def chunk_document(doc: Document, settings: ChunkerSettings) -> list[Chunk]:
    """Cut ``doc`` into chunks in document order, each within ``settings.limit`` tokens."""
    chunks: list[Chunk] = []
    outline = Outline()
    title = clean_heading(doc.title)
    most = settings.limit // 4 if settings.context else -1  # tokens a breadcrumb may take
    for segment in doc.segments:
        text = clean_text(segment.text)
        outline.start_segment(tuple(filter(None, map(clean_heading, segment.heading_path))))
        page, mapped = segment.page, segment.lines
        base = segment.line_start
        line = offset = 0  # the 0-based line of the text at offset
        for section in sections(text, segment.format, outline):
            path = section.heading_path
            context, head = _context(title, path, most) if most >= 0 else ("", 0)
            for start, end, count in pack(text, section, head, settings):
                line += text.count("\n", offset, start)
                first = line
                line += text.count("\n", start, end - 1)
                offset = end - 1
                if line < len(mapped):  # source lines of each text line
                    found = mapped[first][0], max(mapped[first][0], mapped[line][1])
                else:
                    found = base + first, base + line
                chunks.append(Chunk(len(chunks), text[start:end], context, count, path, page,
                                    *found))
    if not chunks and any(s.format != "text" for s in doc.segments):
        # Only headings, no body: index the headings themselves as plain text, so the
        # document is still findable.
        plain = tuple(dataclasses.replace(s, format="text") for s in doc.segments)
        return chunk_document(dataclasses.replace(doc, segments=plain), settings)
    return chunks


def refit(doc: Document, chunks: list[Chunk], settings: ChunkerSettings,
          measure: Callable[[list[str]], list[int]], limit: int) -> list[Chunk]:
    """Split again the chunks another tokenizer (the embedding model's) counts as over
    ``limit``, so no chunk is truncated by the model; the others stay as they are.

    Each oversized chunk is cut as a document of its own (same format, headings, page and
    lines) under a budget scaled by how far over it was, at most three rounds.
    """
    for _ in range(3):
        sizes = measure([c.embed_text for c in chunks])
        if all(size <= limit for size in sizes):
            break
        refitted: list[Chunk] = []
        for chunk, size in zip(chunks, sizes, strict=True):
            if size <= limit:
                refitted.append(chunk)
                continue
            budget = max(MIN_LIMIT, int(chunk.tokens * limit / size * 0.9))
            segment = next((s for s in doc.segments if s.page == chunk.page), doc.segments[0])
            part = Segment(chunk.text, segment.format, chunk.page, chunk.heading_path,
                           chunk.line_start or 1)
            pieces = chunk_document(dataclasses.replace(doc, segments=(part,)),
                                    dataclasses.replace(settings, max_tokens=budget,
                                                        target_tokens=None))
            if segment.lines:  # rebuilt text: its newlines are not the source's
                pieces = [dataclasses.replace(p, line_start=_within(p.line_start, chunk),
                                              line_end=_within(p.line_end, chunk))
                          for p in pieces]
            refitted.extend(pieces or [chunk])
        chunks = [dataclasses.replace(c, ordinal=n) for n, c in enumerate(refitted)]
    return chunks


def context_share(chunk: Chunk) -> int:
    """Tokens of ``chunk.tokens`` that its heading breadcrumb (and the blank line) takes."""
    return context_tokens(chunk.context)


def clean_text(text: str) -> str:
    """``text`` without NULs, with ``\\n`` line ends, and encodable as UTF-8."""
    text = text.replace("\x00", "")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def breadcrumb(title: str, heading_path: tuple[str, ...], max_tokens: int) -> str:
    """``"Title › H1 › H2"`` within ``max_tokens``, without a title equal to the first heading."""
    return _context(clean_heading(title), heading_path, max_tokens)[0]


def _context(title: str, heading_path: tuple[str, ...], max_tokens: int) -> tuple[str, int]:
    """:func:`breadcrumb` of a clean ``title``, and its :func:`context_tokens`.

    The breadcrumb whole is counted part by part, each part memoised: it splits
    additively before each separator, as a part neither starts nor ends with whitespace
    (see :func:`tokens.symbol_tail`) and the separator's symbol is a pre-token of its own.
    """
    parts = (title, *heading_path) if title else heading_path
    if len(parts) > 1 and parts[0].casefold() == parts[1].casefold():
        parts = parts[1:]
    if not parts:
        return "", 0
    context = SEPARATOR.join(parts)
    if (len(context) * 4 <= max_tokens or len(context.encode("utf-8")) <= max_tokens
            or tokens.tally(context) <= max_tokens):  # a token holds at least one byte
        if len(parts) == 1:
            return context, count_short(context + "\n\n")
        leading = _LEADING.get(parts[:-1])
        if leading is None:
            leading = _leading(parts[:-1])
        return context, leading + tokens.tally(SEPARATOR + parts[-1] + "\n\n")
    context = _shortened(list(parts), max_tokens)
    return context, context_tokens(context)


def _leading(parts: tuple[str, ...]) -> int:
    """Tokens of the breadcrumb ``parts`` when another part follows it (memoised, and
    found from the breadcrumb one part shorter: sections come in document order)."""
    size = _LEADING.get(parts)
    if size is None:
        if len(parts) == 1:
            size = count_short(parts[0])
        else:
            size = _leading(parts[:-1]) + count_short(SEPARATOR + parts[-1])
        if len(_LEADING) >= 1 << 14:
            _LEADING.clear()
        _LEADING[parts] = size
    return size


_LEADING: dict[tuple[str, ...], int] = {}


def _shortened(parts: list[str], max_tokens: int) -> str:
    """The breadcrumb of ``parts`` that is too long, shortened to ``max_tokens``."""
    context = SEPARATOR.join(parts)
    if len(parts) > 2:
        context = SEPARATOR.join((parts[0], _ELLIPSIS, parts[-1]))
        if tokens.tally(context) <= max_tokens:
            return context
    budget = max_tokens - tokens.tally(_ELLIPSIS)
    while budget > 0:
        head = tokens.split(context, max(budget, 4))[0].rstrip(tokens.WHITESPACE)
        shortened = head + _ELLIPSIS
        if tokens.tally(shortened) <= max_tokens:
            return shortened
        budget -= 1
    return ""


def _within(line: int | None, chunk: Chunk) -> int | None:
    """``line`` kept inside the lines of ``chunk``."""
    if line is None or chunk.line_start is None or chunk.line_end is None:
        return line
    return min(max(line, chunk.line_start), chunk.line_end)
