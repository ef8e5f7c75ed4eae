"""The LanceDB store: keyed upserts, hidden unpublished rows, places, deletes, model check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import IndexMismatch, StateError
from indexer.records import Place, StoreRow
from indexer.store import Store


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def row(key: str, vector: np.ndarray | None, *uris: str) -> StoreRow:
    return StoreRow(key, f"text {key}", "ctx", tuple(Place(u, "H", None, 1, 2) for u in uris),
                    vector)


def test_search_ranks_by_cosine_and_hides_unpublished(tmp_path: Path) -> None:
    store = Store(tmp_path, "m", 3)
    store.put([row("a", unit(1, 0, 0), "/d/a.md"), row("b", unit(0, 1, 0), "/d/b.md"),
               row("hidden", unit(1, 0.01, 0))])
    hits = store.search(unit(1, 0.1, 0), k=5)
    assert [h.custom_id for h in hits] == ["a", "b"]
    assert hits[0].score > 0.99 and hits[0].place == Place("/d/a.md", "H", None, 1, 2)
    assert store.count() == 2


def test_put_is_idempotent_by_key(tmp_path: Path) -> None:
    store = Store(tmp_path, "m", 3)
    store.put([row("a", unit(1, 0, 0), "/x")])
    store.put([row("a", unit(1, 0, 0), "/x")])
    assert store.keys() == {"a"} and store.count() == 1


def test_set_places_hides_in_one_commit_and_purge_deletes_only_hidden_rows(
        tmp_path: Path) -> None:
    store = Store(tmp_path, "m", 3)
    store.put([row("a", unit(1, 0, 0), "/x"), row("b", unit(0, 1, 0), "/y"),
               row("c", unit(0, 0, 1), "/w")])
    version = store._table.version
    store.set_places(iter([[row("a", None, "/x", "/z")], [], [row("b", None)],
                           [row("unknown", None, "/q")]]))
    assert store._table.version == version + 1  # one commit for every group
    assert store.keys() == {"a", "b", "c"} and store.count() == 2
    assert "b" not in {h.custom_id for h in store.search(unit(0, 1, 0), k=3)}
    store.purge(["b", "c"])  # c still has places: kept
    assert store.keys() == {"a", "c"}
    hits = {h.custom_id: h for h in store.search(unit(1, 0, 0), k=3)}
    assert [p.uri for p in hits["a"].places] == ["/x", "/z"] and hits["a"].text == "text a"


def test_set_places_reraises_what_its_input_raised(tmp_path: Path) -> None:
    store = Store(tmp_path, "m", 3)
    store.put([row("a", unit(1, 0, 0), "/x")])

    def failing() -> Iterator[list[StoreRow]]:
        yield [row("a", None, "/y")]
        raise StateError("the ledger went away")

    with pytest.raises(StateError, match="went away"):
        store.set_places(failing())
    (hit,) = store.search(unit(1, 0, 0), k=1)
    assert [p.uri for p in hit.places] == ["/x"]  # nothing was committed


def test_reopen_with_another_model_is_refused(tmp_path: Path) -> None:
    Store(tmp_path, "model-a", 3)
    with pytest.raises(IndexMismatch, match="model-a"):
        Store(tmp_path, "model-b", 3)
    with pytest.raises(IndexMismatch):
        Store(tmp_path, "model-a", 4)
