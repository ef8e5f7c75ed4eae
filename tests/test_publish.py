"""Publishing is atomic: a reader sees every document either before or after a sync."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
import pytest

from emulator.fixture import Emulator
from indexer import Index
from indexer.layout import Layout
from test_openai_backend import emu, open_index, paid_twice

__all__ = ["emu"]

NOTES = 1_000
PARTS = 5


def note(i: int) -> str:
    """A note of five sections: five chunks, each with its own key."""
    parts = [f"## Part {j}\n\nPart {j} of note {i} records fact {i * PARTS + j}."
             for j in range(PARTS)]
    return f"# Note {i}\n\n" + "\n\n".join(parts) + "\n"


def published(table: Any) -> dict[str, frozenset[str]]:
    """One snapshot of what search can return: each document's keys."""
    rows = (table.search().where("n_places > 0").select(["custom_id", "places"])
            .limit(None).to_arrow().to_pylist())
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
    table = lancedb.connect(str(Layout(index_dir).current / "lancedb"),
                            read_consistency_interval=timedelta(0)).open_table("chunks")
    old = published(table)
    uris = [path.resolve().as_posix() for path in files]
    assert sorted(old) == uris and all(len(keys) == PARTS for keys in old.values())

    # Each note takes the next one's text: every key changes places, nothing is embedded.
    for i, path in enumerate(files):
        path.write_text(note((i + 1) % NOTES))
    new = {uri: old[uris[(n + 1) % NOTES]] for n, uri in enumerate(uris)}
    before = emu.stats()
    env = {**os.environ, "OPENAI_BASE_URL": emu.base_url}
    sync = subprocess.Popen([sys.executable, "-m", "indexer", "--index", str(index_dir),
                             "sync", "--wait"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    snapshots, states, mixed = 0, set(), []
    deadline = time.monotonic() + 240
    while sync.poll() is None and time.monotonic() < deadline:
        view = published(table)
        snapshots += 1
        state = {"old" if view.get(uri) == old[uri] else
                 "new" if view.get(uri) == new[uri] else "mixed" for uri in uris}
        states |= state
        if "mixed" in state:
            mixed.append(sum(view.get(uri) not in (old[uri], new[uri]) for uri in uris))
    out, err = sync.communicate(timeout=60)
    assert sync.returncode == 0, err
    assert published(table) == new
    assert mixed == [], f"{len(mixed)} of {snapshots} snapshots mixed versions: {mixed[:5]}"
    assert states == {"old", "new"} and snapshots > 5, (states, snapshots)
    assert paid_twice(emu, before) == [] and emu.stats()["inputs"] == before["inputs"]


class Killed(BaseException):
    """Stands for the process dying at that point: nothing after it runs."""


def passages(index: Index) -> set[str]:
    return {hit.text for hit in index.search("garden gate", k=50)}


def table_rows(index_dir: Path) -> list[dict[str, Any]]:
    table = lancedb.connect(str(Layout(index_dir).current / "lancedb")).open_table("chunks")
    return table.search().select(["custom_id", "n_places"]).limit(None).to_arrow().to_pylist()


@pytest.mark.parametrize("where", ["indexer.store.Store.set_places",
                                   "indexer.ledger.Ledger.settle_dirty",
                                   "indexer.store.Store.purge"])
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
