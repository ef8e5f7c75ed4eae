"""Publishing is atomic: a reader sees every document either before or after a sync."""

from __future__ import annotations

import importlib
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import lance
import numpy as np
import pytest

from emulator.fixture import Emulator
from indexer import Index, SyncReport
from indexer.records import Place, StoreRow
from indexer.state.layout import Layout
from indexer.state.store import Store
from support import open_index, paid_twice

NOTES = 250
PARTS = 20


def note(i: int, rewritten: bool = False) -> str:
    """A note of PARTS sections (as many chunks); ``rewritten`` changes its first one."""
    parts = [f"## Part {j}\n\nPart {j} of note {i} records fact {i * PARTS + j}."
             for j in range(PARTS)]
    if rewritten:
        parts[0] = f"## Part 0\n\nPart 0 of note {i} was rewritten for the second version."
    return f"# Note {i}\n\n" + "\n\n".join(parts) + "\n"


def published(table: Any) -> dict[str, frozenset[str]]:
    """One snapshot of what search can return: each document's keys."""
    table.checkout_latest()
    rows = table.to_table(columns=["custom_id", "places"], filter="n_places > 0").to_pylist()
    view: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for place in row["places"]:
            view[place["uri"]].add(row["custom_id"])
    return {uri: frozenset(keys) for uri, keys in view.items()}


def test_a_reader_never_sees_a_half_published_document(tmp_path: Path, emu: Emulator) -> None:
    folder, index_dir = tmp_path / "notes", tmp_path / "idx"
    folder.mkdir()
    files = [folder / f"note{i:04d}.md" for i in range(NOTES)]
    for i, path in enumerate(files):
        path.write_text(note(i))
    with open_index(index_dir, emu, dimensions=64) as index:
        first = index.sync([folder], wait=True)
    assert first.complete and first.embedded == NOTES * PARTS, first
    table = lance.dataset(str(Layout(index_dir).current / "lancedb" / "chunks.lance"))
    old = published(table)
    uris = [path.resolve().as_posix() for path in files]
    assert sorted(old) == uris and all(len(keys) == PARTS for keys in old.values())

    # Each note takes the next one's text with its first part rewritten: all 5,000
    # chunks change places, and one per note is new (embedded, then published with
    # the rest of its note).
    for i, path in enumerate(files):
        path.write_text(note((i + 1) % NOTES, rewritten=True))
    before = emu.stats()
    outcome: list[BaseException | SyncReport] = []

    def resync() -> None:
        try:
            with open_index(index_dir, emu) as index:
                outcome.append(index.sync(wait=True))
        except BaseException as exc:  # shown by the assertion below
            outcome.append(exc)

    writer = threading.Thread(target=resync)
    writer.start()
    views: dict[frozenset[tuple[str, frozenset[str]]], int] = defaultdict(int)
    while writer.is_alive():
        views[frozenset(published(table).items())] += 1
    writer.join()
    (report,) = outcome
    assert isinstance(report, SyncReport) and report.complete, report
    assert (report.changed, report.published, report.embedded) == (NOTES, NOTES, NOTES)
    assert paid_twice(emu, before) == [] and emu.stats()["inputs"] == before["inputs"] + NOTES

    new = published(table)
    for n, uri in enumerate(uris):
        assert len(new[uri]) == PARTS and len(new[uri] & old[uris[(n + 1) % NOTES]]) == PARTS - 1
    mixed = {}
    for items, times in views.items():
        view = dict(items)
        broken = sum(view.get(uri) not in (old[uri], new[uri]) for uri in uris)
        if broken:
            mixed[broken] = mixed.get(broken, 0) + times
    snapshots = sum(views.values())
    assert mixed == {}, f"snapshots by number of half-published notes: {mixed} of {snapshots}"
    assert snapshots > 5 and frozenset(old.items()) in views, snapshots


class Killed(BaseException):
    """Stands for the process dying at that point: nothing after it runs."""


def passages(index: Index) -> set[str]:
    return {hit.text for hit in index.search("garden gate", k=50)}


def table_rows(index_dir: Path) -> list[dict[str, Any]]:
    table = lance.dataset(str(Layout(index_dir).current / "lancedb" / "chunks.lance"))
    return table.to_table(columns=["custom_id", "n_places"]).to_pylist()


@pytest.mark.parametrize("where", ["indexer.state.store.Store.set_places",
                                   "indexer.state.ledger.Ledger.settle_dirty",
                                   "indexer.state.store.Store.purge"])
@pytest.mark.slow
def test_a_sync_killed_while_publishing_is_finished_by_the_next(
        tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, index_dir = tmp_path / "notes", tmp_path / "idx"
    folder.mkdir()
    old, new = "The garden gate is painted green.", "The garden gate is painted blue."
    (folder / "a.md").write_text(f"# Gate\n\n{old}\n\n## Hinges\n\nThe hinges are oiled.\n")
    (folder / "b.md").write_text("# Shed\n\nThe shed holds the garden tools.\n")
    with Index(index_dir) as index:
        index.sync([folder])
        assert old in passages(index)
    (folder / "a.md").write_text(f"# Gate\n\n{new}\n\n## Hinges\n\nThe hinges are oiled.\n")

    module, cls, method = where.rsplit(".", 2)

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    with monkeypatch.context() as patch, Index(index_dir) as index:
        patch.setattr(getattr(importlib.import_module(module), cls), method, die)
        with pytest.raises(Killed):
            index.sync()
    with Index(index_dir) as index:
        seen = passages(index)
        # the store commit is all or nothing: old text until it, new text after it
        assert (old in seen, new in seen) == ((True, False) if method == "set_places"
                                              else (False, True))
        report = index.sync()
        assert report.embedded == 0  # the new passage was paid for by the killed run
        seen = passages(index)
        assert new in seen and old not in seen and "The hinges are oiled." in seen
        checkup = index.doctor()
        assert checkup.healthy and checkup.findings == []
    rows = table_rows(index_dir)
    assert all(row["n_places"] > 0 for row in rows)  # the dropped passage's row is gone
    assert len(rows) == 3


def test_publishing_a_few_rows_leaves_the_rest_of_the_table_indexed(tmp_path: Path) -> None:
    store = Store(tmp_path / "lancedb", "m", 4)
    rng = np.random.default_rng(1)
    rows = [StoreRow(f"k{i}", f"passage number {i}", "", (), rng.standard_normal(4))
            for i in range(300)]
    store.put(rows)
    store.set_places([[StoreRow(r.custom_id, r.text, "", (Place(f"/d/{r.custom_id}"),))
                       for r in rows]])
    store.optimize()
    changed = [StoreRow(f"k{i}", f"passage number {i}", "", (Place("/d/moved"),))
               for i in range(5)]
    store.set_places([changed])
    table = lance.dataset(str(tmp_path / "lancedb" / "chunks.lance"))
    assert table.stats.index_stats("text_idx")["num_unindexed_rows"] <= len(changed)
    vectors = {r["custom_id"]: r["vector"] for r in table.to_table().to_pylist()}
    assert all(np.allclose(vectors[r.custom_id], r.vector) for r in rows)  # vectors kept
    hits = store.search(np.asarray(rows[2].vector), 1)
    assert hits[0].custom_id == "k2" and hits[0].places == (Place("/d/moved"),)
