"""A sync holds a bounded group at a time, whatever the corpus: it surveys, reads pending
keys into shards, publishes and flushes dirty store rows ``group_size`` at a time, and
queues each shard's keys as soon as the shard is written (the memory figures themselves
come from ``benchmarks/sync_profile.py``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import indexer.index
import indexer.state.store
from indexer import Index
from indexer.batchfiles.requests import Shard
from indexer.records import StoreRow
from indexer.state.ledger import Ledger
from indexer.state.ledger.records import DocumentState, KeyRow
from indexer.state.store import Store
from support import store_rows

GROUP = 3
NOTES = 8
SHARD = 5  # requests a shard holds at most

HELD: dict[str, list[int]] = defaultdict(list)
"""The size of every group handed on, by what it was handed to."""
ORDER: list[str] = []
"""Pending keys read ("read") and shards queued ("queue"), in the order they happened."""


class CountingLedger(Ledger):
    """The real ledger, noting the size of each group the sync hands it or reads from it."""

    def stage(self, *args: Any, **kwargs: Any) -> int:
        if "learned_max_requests" not in self.meta():  # as if the service had taught it
            self.set_meta({"learned_max_requests": str(SHARD)})
        return super().stage(*args, **kwargs)

    def _pending_pages(self, group: int, columns: str, rowid: bool = False
                       ) -> Iterator[list[Any]]:
        for rows in super()._pending_pages(group, columns, rowid):
            HELD["pending read"].append(len(rows))
            ORDER.append("read")
            yield rows

    def create_job(self, backend: str, shard: Shard) -> int:
        HELD["shard queued"].append(shard.requests)
        ORDER.append("queue")
        return super().create_job(backend, shard)

    def document_states(self, source: str, uris: Sequence[str]) -> dict[str, DocumentState]:
        HELD["survey lookup"].append(len(uris))
        return super().document_states(source, uris)

    def publish(self, uris: Sequence[str]) -> None:
        HELD["ledger.publish"].append(len(uris))
        super().publish(uris)

    def dirty_rows(self, group: int = 2_000, through: int | None = None
                   ) -> Iterator[list[KeyRow]]:
        for rows in super().dirty_rows(group, through):
            HELD["dirty rows read"].append(len(rows))
            yield rows


class CountingStore(Store):
    """The real store, noting the size of each group it is handed to write."""

    def set_places(self, groups: Iterable[Sequence[StoreRow]], count: int | None = None,
                   rows_for: Callable[[Sequence[str]], Sequence[StoreRow]] | None = None,
                   group: int = 2_000) -> None:
        def counted(rows: Sequence[StoreRow]) -> Sequence[StoreRow]:
            HELD["set_places group"].append(len(rows))
            return rows

        def looked_up(keys: Sequence[str]) -> Sequence[StoreRow]:
            HELD["rewrite batch"].append(len(keys))
            assert rows_for is not None
            return rows_for(keys)

        super().set_places((counted(rows) for rows in groups), count,
                           looked_up if rows_for else None, group)

    def purge(self, keys: Sequence[str]) -> None:
        HELD["store.purge"].append(len(keys))
        super().purge(keys)


def note(i: int, version: int = 1) -> str:
    return "".join(f"## Section {j}\n\nNote {i} section {j} of version {version} says the "
                   f"lantern number {i * 10 + j} is lit.\n\n" for j in range(4))


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    monkeypatch.setattr(indexer.index, "Ledger", CountingLedger)
    monkeypatch.setattr(indexer.state.store, "Store", CountingStore)
    HELD.clear()
    ORDER.clear()
    return HELD


def test_a_sync_surveys_publishes_and_flushes_in_bounded_groups(
        tmp_path: Path, counted: dict[str, list[int]]) -> None:
    folder, index_dir = tmp_path / "notes", tmp_path / "idx"
    folder.mkdir()
    index_dir.mkdir()
    (index_dir / "config.toml").write_text(f"[index]\ngroup_size = {GROUP}\n")
    for i in range(NOTES):
        (folder / f"note{i}.md").write_text(note(i))

    with Index(index_dir) as index:
        first = index.sync([folder])
    assert first.complete and first.published == NOTES
    rows = len(store_rows(index_dir))
    assert rows == first.embedded >= NOTES * 4
    # a first sync: the table is rewritten once, a bounded batch at a time, instead of
    # merged with itself; every row passes through exactly once
    assert sum(counted["rewrite batch"]) == rows and max(counted["rewrite batch"]) <= GROUP
    assert "set_places group" not in counted
    assert sum(counted["survey lookup"]) == 2 * NOTES  # listed, then read
    assert sum(counted["ledger.publish"]) == NOTES
    for name in ("survey lookup", "ledger.publish", "pending read"):
        assert max(counted[name]) <= GROUP, (name, counted[name])
    # every key goes into exactly one shard, and each shard is queued as soon as it is
    # written, before the rest of the pending keys are read: one shard's keys held at once
    assert sum(counted["shard queued"]) == rows and max(counted["shard queued"]) <= SHARD
    assert len(counted["shard queued"]) > 2
    assert ORDER.index("queue") < len(ORDER) - 1 - ORDER[::-1].index("read")

    # a re-sync: two notes edited, one deleted (its passages are dropped from the store)
    counted.clear()
    (folder / "note0.md").write_text(note(0, version=2))
    (folder / "note1.md").write_text(note(1, version=2))
    (folder / "note2.md").unlink()
    with Index(index_dir) as index:
        second = index.sync([folder])
        assert second.complete and (second.changed, second.deleted) == (2, 1)
        found = {hit.text for hit in index.search("lantern lit", k=50)}
        assert any("Note 0 section 1 of version 2" in text for text in found)
        assert not any("Note 2 " in text or "Note 0 section 1 of version 1" in text
                       for text in found)
        assert index.doctor().healthy
    flushed = sum(counted["set_places group"])
    assert flushed == sum(counted["dirty rows read"]) == 3 * 4 + 2 * 4  # old, new and dropped
    assert sum(counted["store.purge"]) == 3 * 4  # the deleted note's and the old versions'
    assert len(store_rows(index_dir)) == rows + 2 * 4 - 3 * 4
    for name in ("survey lookup", "ledger.publish", "dirty rows read", "set_places group",
                 "store.purge", "pending read"):
        assert counted[name] and max(counted[name]) <= GROUP, (name, counted[name])
    assert sum(counted["shard queued"]) == 2 * 4 and max(counted["shard queued"]) <= SHARD
