"""What changed in a source since the ledger last saw it, decided without writing anything.

An item whose fingerprint (a file's size and mtime) matches the ledger is unchanged
and never read; an item that is read but hashes the same is only *touched*. A source
that reports changes since a cursor (:class:`~indexer.connectors.contract.ReportsChanges`)
is asked for those instead of being listed in full. Both ``sync`` (which applies the
changes) and ``plan`` (which only counts them) walk the same survey.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

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


def survey(source: Connector, known: Mapping[str, DocumentState], progress: Progress,
           since: str | None = None) -> Iterator[Change]:
    """Every document's :class:`Change`, reading only items whose fingerprint moved;
    with ``since`` (a cursor the source handed out), only what changed after it."""
    seen: set[str] = set()
    moved: list[SourceItem] = []
    changes = (source.changes(since) if since is not None
               and isinstance(source, ReportsChanges) else None)
    progress.stage(f"scan {source.uri}")
    for found in changes.found if changes is not None else source.scan():
        progress.advance()
        seen.add(found.uri)
        if isinstance(found, Skip):
            state = known.get(found.uri)
            if found.withdraw and state and (state.content_hash or state.pending_hash):
                yield Change("deleted", found.uri)
            yield Change("skipped", found.uri, skip=found)
            continue
        state = known.get(found.uri)
        if state and state.fingerprint == found.fingerprint and state.status == "skipped":
            yield Change("skipped", found.uri, found, skip=Skip(found.uri, state.reason or
                                                                "skipped"), was_skipped=True)
        elif state and state.fingerprint == found.fingerprint:
            yield Change("unchanged", found.uri, found)
        else:
            moved.append(found)
    progress.end()
    gone = ([uri for uri in changes.deleted if uri in known and uri not in seen]
            if changes is not None else [uri for uri in known if uri not in seen])
    for uri in gone:
        yield Change("deleted", uri)
    progress.stage("read & chunk", len(moved))
    for item in moved:
        loaded = source.load(item)
        state = known.get(item.uri)
        if isinstance(loaded, Skip):
            yield Change("skipped", item.uri, item, skip=loaded)
        elif state and loaded.content_hash == (state.pending_hash or state.content_hash):
            yield Change("touched", item.uri, item)
        else:
            yield Change("changed" if state else "new", item.uri, item, document=loaded)
        progress.advance()
    progress.end()
