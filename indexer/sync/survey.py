"""What changed in a source since the ledger last saw it, decided without writing anything.

An item whose fingerprint (a file's size and mtime) matches the ledger is unchanged
and never read; an item that is read but hashes the same is only *touched*. A source
that reports changes since a cursor (:class:`~indexer.connectors.contract.ReportsChanges`)
is asked for those instead of being listed in full. Both ``sync`` (which applies the
changes) and ``plan`` (which only counts them) walk the same survey.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from indexer.connectors.contract import Connector, ReportsChanges
from indexer.progress import Progress
from indexer.records import Document, Skip, SourceItem
from indexer.state.ledger import DocumentState


@dataclass(frozen=True)
class Change:
    """One document's fate in a sync.

    ``kind`` is ``"unchanged"``, ``"touched"`` (new fingerprint, same content),
    ``"new"``, ``"changed"``, ``"deleted"`` or ``"skipped"``; ``document`` is set for
    new and changed documents, ``skip`` for skipped ones. ``was_skipped``: the document
    is unchanged since a sync that skipped it for ``skip.reason`` (counted once, as
    skipped; nothing to record again).
    """

    kind: str
    uri: str
    item: SourceItem | None = None
    document: Document | None = None
    skip: Skip | None = None
    was_skipped: bool = False


class Known(Protocol):
    """What the survey asks the ledger about a source's documents, a group at a time."""

    def document_states(self, source: str, uris: Sequence[str]) -> dict[str, DocumentState]:
        """The recorded state of those of ``uris`` the ledger knows under ``source``."""
        ...

    def document_uris(self, source: str, group: int) -> Iterator[list[str]]:
        """Every document URI recorded under ``source``, ``group`` at a time."""
        ...


def survey(source: Connector, known: Known, progress: Progress, since: str | None = None,
           group: int = 2_000) -> Iterator[Change]:
    """Every document's :class:`Change`, reading only items whose fingerprint moved;
    with ``since`` (a cursor the source handed out), only what changed after it.

    The ledger's records are looked up ``group`` items at a time, and each moved item is
    read, chunked and handed on before the next, so what the survey holds at once is the
    URIs seen and the moved items, not the documents or their records.
    """
    seen: set[str] = set()
    moved: list[SourceItem] = []
    changes = (source.changes(since) if since is not None
               and isinstance(source, ReportsChanges) else None)
    progress.stage(f"scan {source.uri}")
    found = iter(changes.found if changes is not None else source.scan())
    while items := list(islice(found, group)):
        states = known.document_states(source.uri, [item.uri for item in items])
        for item in items:
            progress.advance()
            seen.add(item.uri)
            yield from _scanned(item, states.get(item.uri), moved)
    progress.end()
    if changes is not None:
        gone = sorted(uri for uri in changes.deleted if uri not in seen)
        gone = [uri for start in range(0, len(gone), group)
                for uri in known.document_states(source.uri, gone[start:start + group])]
    else:
        gone = [uri for uris in known.document_uris(source.uri, group)
                for uri in uris if uri not in seen]
    seen.clear()
    for uri in gone:
        yield Change("deleted", uri)
    progress.stage("read & chunk", len(moved))
    for start in range(0, len(moved), group):
        part = moved[start:start + group]
        states = known.document_states(source.uri, [item.uri for item in part])
        for item in part:
            yield _loaded(source, item, states.get(item.uri))
            progress.advance()
    progress.end()


def _scanned(found: SourceItem | Skip, state: DocumentState | None,
             moved: list[SourceItem]) -> Iterator[Change]:
    """The change a listed item makes by itself; an item whose fingerprint moved is
    put in ``moved`` to be read."""
    if isinstance(found, Skip):
        if found.withdraw and state and (state.content_hash or state.pending_hash):
            yield Change("deleted", found.uri)
        yield Change("skipped", found.uri, skip=found)
    elif state and state.fingerprint == found.fingerprint and state.status == "skipped":
        yield Change("skipped", found.uri, found, skip=Skip(found.uri, state.reason or
                                                            "skipped"), was_skipped=True)
    elif state and state.fingerprint == found.fingerprint:
        yield Change("unchanged", found.uri, found)
    else:
        moved.append(found)


def _loaded(source: Connector, item: SourceItem, state: DocumentState | None) -> Change:
    """The change a moved item makes once read."""
    loaded = source.load(item)
    if isinstance(loaded, Skip):
        return Change("skipped", item.uri, item, skip=loaded)
    if state and loaded.content_hash == (state.pending_hash or state.content_hash):
        return Change("touched", item.uri, item)
    return Change("changed" if state else "new", item.uri, item, document=loaded)
