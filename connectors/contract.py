"""What a connector offers the pipeline: a cheap listing, optional changes, a loader.

A connector is one configured source (a folder, later a repository, a site, a bucket).
The survey lists it (:meth:`Connector.scan`: each item with a stable URI and a cheap
fingerprint, never reading content), compares fingerprints with the ledger, and loads
only the items that moved (:meth:`Connector.load`, usually through
:func:`indexer.connectors.formats.document`). A connector that can tell what changed
since a point it names (a git commit, a sitemap's ``lastmod``, an S3 listing) also
implements :class:`ReportsChanges`; the pipeline stores the cursor after a sync and asks
for the changes next time instead of listing everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from indexer.records import Document, Origin, Place, Skip, SourceItem

if TYPE_CHECKING:
    from indexer.config import Config


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector is given besides its own source settings.

    ``config`` is the index's configuration; ``skip_dirs`` are absolute paths never to
    crawl (the index's own folder); ``state_dir`` is a folder kept with the index for this
    source alone (a crawl's ETags, a clone), created by the connector when it first writes;
    ``writes`` is False for a run that must change nothing (``plan``): the connector then
    reads its state but leaves it as it was.
    """

    config: Config
    skip_dirs: tuple[Path, ...] = ()
    state_dir: Path | None = None
    writes: bool = True


class Connector(Protocol):
    """One source of documents."""

    @property
    def uri(self) -> str:
        """The source's identity: its documents are recorded under it."""
        ...

    def scan(self) -> Iterator[SourceItem | Skip]:
        """Every item the source holds now, cheaply (no content read), or why one is left out.

        Raises :class:`~indexer.errors.SourceError` when the source cannot be reached at
        all: the pipeline then deletes nothing of it.
        """
        ...

    def load(self, item: SourceItem) -> Document | Skip:
        """The document behind ``item``, or why it has none."""
        ...


@dataclass(frozen=True)
class Changes:
    """What moved in a source since a cursor: items new or changed, and URIs gone."""

    found: tuple[SourceItem | Skip, ...]
    deleted: tuple[str, ...]


@runtime_checkable
class ReportsChanges(Protocol):
    """A connector that can list only what changed since a cursor it handed out."""

    def cursor(self) -> str | None:
        """Where the source stands now (taken before listing, so nothing slips between)."""
        ...

    def changes(self, since: str) -> Changes | None:
        """What changed since the cursor ``since``; None when it cannot tell (the cursor
        is unknown or too old), and the source is listed in full."""
        ...


@runtime_checkable
class Cites(Protocol):
    """A connector that can say where a search hit's place comes from (its path and the
    revision indexed, and a web link), given the cursor the last sync stored."""

    def cite(self, place: Place, cursor: str | None) -> Origin | None:
        """The origin of ``place`` (a document of this source), or None."""
        ...
