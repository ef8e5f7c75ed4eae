"""What changed in a source since the ledger last saw it, decided without writing anything.

A file whose size and mtime match the ledger is unchanged and never read; a file
that is read but hashes the same is only *touched*. Both ``sync`` (which applies the
changes) and ``plan`` (which only counts them) walk the same survey.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from indexer.connectors.filesystem import FilesystemSource, load
from indexer.progress import Progress
from indexer.records import Document, Skip, SourceItem
from indexer.state.ledger import DocumentState


@dataclass(frozen=True)
class Change:
    """One document's fate in a sync.

    ``kind`` is ``"unchanged"``, ``"touched"`` (new fingerprint, same content),
    ``"new"``, ``"changed"``, ``"deleted"`` or ``"skipped"``; ``document`` is set for
    new and changed documents, ``skip`` for skipped ones.
    """

    kind: str
    uri: str
    item: SourceItem | None = None
    document: Document | None = None
    skip: Skip | None = None
    was_skipped: bool = False


def survey(source: FilesystemSource, known: Mapping[str, DocumentState],
           progress: Progress) -> Iterator[Change]:
    """Every document's :class:`Change`, reading only files whose fingerprint moved."""
    seen: set[str] = set()
    moved: list[SourceItem] = []
    progress.stage(f"scan {source.root}")
    for found in source.scan():
        progress.advance()
        seen.add(found.uri)
        if isinstance(found, Skip):
            state = known.get(found.uri)
            if found.withdraw and state and (state.content_hash or state.pending_hash):
                yield Change("deleted", found.uri)
            yield Change("skipped", found.uri, skip=found)
            continue
        state = known.get(found.uri)
        if state and state.fingerprint == found.fingerprint:
            yield Change("unchanged", found.uri, found, was_skipped=state.status == "skipped")
        else:
            moved.append(found)
    progress.end()
    for uri in known:
        if uri not in seen:
            yield Change("deleted", uri)
    progress.stage("read & chunk", len(moved))
    for item in moved:
        loaded = load(item)
        state = known.get(item.uri)
        if isinstance(loaded, Skip):
            yield Change("skipped", item.uri, item, skip=loaded)
        elif state and loaded.content_hash == (state.pending_hash or state.content_hash):
            yield Change("touched", item.uri, item)
        else:
            yield Change("changed" if state else "new", item.uri, item, document=loaded)
        progress.advance()
    progress.end()
