"""The small frozen values that flow between the pipeline's stages.

``connectors`` produce :class:`SourceItem` (cheap to list) and :class:`Document`
(text, loaded only when the fingerprint changed); the chunker turns a document
into :class:`Chunk` values; the store answers queries with :class:`SearchHit`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class SourceItem:
    """One document a connector found, before anything is read.

    ``uri`` identifies the document across runs and is always valid UTF-8 (for files: the
    absolute POSIX path, or a ``file://`` URI for a path that is not UTF-8, see
    :func:`indexer.connectors.filesystem.path_uri`); ``path`` is where the file is read, never
    derived from ``uri`` (a connector that fetches by URI may point it at a cache).
    ``version`` is the connector's own cheap fingerprint when it has one (a git blob id, an
    ETag); otherwise ``size`` and ``mtime_ns`` form it. Either lets a re-sync skip
    reading unchanged items.
    """

    uri: str
    path: Path
    size: int
    mtime_ns: int
    format: str
    version: str | None = None

    @property
    def fingerprint(self) -> str:
        """Cheap change detector: the connector's version, else size and modification time."""
        return self.version or f"{self.size}:{self.mtime_ns}"


@dataclass(frozen=True)
class Segment:
    """A run of document text with one location: a whole file, a PDF page, an HTML section.

    ``format`` tells the chunker how to read the structure of ``text``:
    ``"markdown"``, ``"rst"``, ``"code"`` or ``"text"``. ``heading_path`` is the
    heading context the segment starts under (HTML sections set it; Markdown and
    reStructuredText carry their headings inside ``text``). ``line_start`` is the
    1-based line of the segment's first line in the source file, and the lines of
    ``text`` follow the source's one for one unless ``lines`` says otherwise: text
    rebuilt from markup (HTML) gives, for each of its lines, the first and last source
    line it was taken from (a blank line between two blocks as the next block's first
    line and the previous block's last).
    """

    text: str
    format: str = "text"
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    line_start: int = 1
    lines: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Document:
    """A loaded document: its title and its text as ordered segments.

    ``title`` is the document's own title (Markdown or reStructuredText title, HTML
    ``<title>``, PDF metadata), or ``""`` when it has none: a file name is not a title,
    so identical untitled texts in different files share one content key.
    """

    uri: str
    title: str
    segments: tuple[Segment, ...]
    content_hash: str


@dataclass(frozen=True)
class Skip:
    """A document that could not be indexed, and why (shown to the user, kept in the ledger).

    A document that was indexed before usually stays searchable while it cannot be read
    (unreadable, too large...); ``withdraw`` means its earlier text must leave the index
    too (a link now refused). ``empty`` is set when the file was read and holds no text
    (an empty file, only whitespace, a PDF without a text layer): its indexed text no
    longer exists, so it leaves search.
    """

    uri: str
    reason: str
    withdraw: bool = False
    empty: bool = False

    @property
    def kind(self) -> str:
        """The reason without its details, to count skips by: up to its first ``:``,
        ``;`` or ``(``, without paths or numbers ("binary file", "file too large",
        "unreadable", "symbolic link to outside the source")."""
        head = re.split(r"[:;(]", self.reason, maxsplit=1)[0]
        words = [w for w in head.split() if not re.search(r"[/\\]|^\d|://", w)]
        return " ".join(words) or "skipped"


@dataclass(frozen=True)
class Chunk:
    """A token-bounded piece of a document, ready to embed.

    ``text`` is the passage as it stands in the document; ``context`` the title and
    heading breadcrumb that is embedded with it (see :attr:`embed_text`).
    ``tokens`` counts ``embed_text`` with the index's tokenizer.
    """

    ordinal: int
    text: str
    context: str
    tokens: int
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None

    @property
    def embed_text(self) -> str:
        """The exact string sent to the embedding model."""
        return f"{self.context}\n\n{self.text}" if self.context else self.text


@dataclass(frozen=True)
class Origin:
    """Where a place's text comes from in a versioned source (a git repository): its
    ``path`` there, the ``revision`` indexed (a commit), and a web permalink when the
    source has a link template. Filled in at search time, never stored."""

    path: str
    revision: str
    link: str | None = None


@dataclass(frozen=True)
class Place:
    """Where a stored passage occurs: one document and its location in it (``origin``
    is set on search hits from sources that can cite one, see :class:`Origin`)."""

    uri: str
    heading: str = ""
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    origin: Origin | None = None

    def to_dict(self) -> dict[str, object]:
        """The place as ``dataclasses.asdict`` gives it, without its generic recursion
        (the JSON view of 10 hits: 0.31 -> 0.07 ms)."""
        data: dict[str, object] = {name: getattr(self, name) for name in _PLACE_FIELDS}
        if self.origin is not None:
            data["origin"] = asdict(self.origin)
        return data


_PLACE_FIELDS = tuple(f.name for f in fields(Place))


@dataclass(frozen=True)
class Half:
    """How one half of a search ranked a passage: its 1-based rank and its own score
    (cosine similarity for ``vector``, BM25 for ``keyword``)."""

    rank: int
    score: float


@dataclass(frozen=True)
class SearchHit:
    """One search result: the passage, its score (higher is better) and every place it occurs.

    ``mode`` is the search mode that ranked it and ``score`` that mode's score (for
    ``hybrid`` the fused one); ``vector`` and ``keyword`` say how each half ranked it
    (None: that half did not find it or did not run). With ``--context`` the text is the
    passage merged with its neighbours (``merged`` chunks added, the place's lines
    widened); with ``--per-doc`` a hit is one document (``document``) and ``more`` its
    other best passages.
    """

    custom_id: str
    score: float
    text: str
    places: tuple[Place, ...] = field(default_factory=tuple)
    mode: str = ""
    vector: Half | None = None
    keyword: Half | None = None
    merged: int = 0
    document: str | None = None
    more: tuple[SearchHit, ...] = ()

    @property
    def place(self) -> Place:
        """The first place the passage occurs."""
        return self.places[0]

    def to_dict(self) -> dict[str, object]:
        """The JSON view every interface shares (``search --json``, the server, MCP)."""
        data: dict[str, object] = {
            "custom_id": self.custom_id, "score": round(self.score, 4), "text": self.text,
            "places": [p.to_dict() for p in self.places], "mode": self.mode,
            "vector": _half(self.vector), "keyword": _half(self.keyword)}
        if self.merged:
            data["merged"] = self.merged
        if self.document is not None:
            data["document"] = self.document
            data["more"] = [hit.to_dict() for hit in self.more]
        return data


def _half(half: Half | None) -> dict[str, object] | None:
    return None if half is None else {"rank": half.rank, "score": round(half.score, 4)}


class Passage(Protocol):
    """What publishing writes to one content key's store row: its passage, context and
    places (a :class:`StoreRow`, or the ledger's row of a key, as it is)."""

    @property
    def custom_id(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def context(self) -> str: ...
    @property
    def places(self) -> tuple[Place, ...]: ...


@dataclass(frozen=True)
class Passages:
    """Several keys' :class:`Passage` column by column, as a first publication reads them
    from the ledger (no object per row or place): ``counts[n]`` places belong to key
    ``n``, in order, in the flat place columns (``uri`` ... ``line_end``)."""

    custom_id: list[str]
    text: list[str]
    context: list[str]
    counts: list[int]
    uri: list[str]
    heading: list[str]
    page: list[int | None]
    line_start: list[int | None]
    line_end: list[int | None]

    @classmethod
    def of(cls, rows: Sequence[Passage]) -> Passages:
        """``rows`` column by column."""
        places = [place for row in rows for place in row.places]
        return cls([r.custom_id for r in rows], [r.text for r in rows],
                   [r.context for r in rows], [len(r.places) for r in rows],
                   [p.uri for p in places], [p.heading for p in places],
                   [p.page for p in places], [p.line_start for p in places],
                   [p.line_end for p in places])

    def __len__(self) -> int:
        return len(self.custom_id)


@dataclass(frozen=True)
class StoreRow:
    """What the store keeps for one content key (the vector is optional on place updates)."""

    custom_id: str
    text: str
    context: str
    places: tuple[Place, ...]
    vector: np.ndarray | None = None
