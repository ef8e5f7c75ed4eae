"""The LanceDB store: keyed upserts, hidden unpublished rows, places, deletes, model check."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import IndexMismatch, StateError
from indexer.records import Place, StoreRow
from indexer.state.store import Store, StoreHealth


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


def test_rewriting_some_rows_twice_keeps_one_row_per_key_with_its_vector(
        tmp_path: Path) -> None:
    store = Store(tmp_path, "m", 3)
    vectors = {"a": unit(1, 0, 0), "b": unit(0, 1, 0), "c": unit(0, 0, 1), "d": unit(1, 1, 0)}
    store.put([row(k, v, f"/{k}.md") for k, v in vectors.items()])
    store.optimize()  # the key and text indices cover the first fragment
    store.set_places(iter([[row("a", None, "/a.md", "/z.md")], [row("b", None)]]), count=2)
    store.put_vectors([(["e"], unit(1, 0, 1)[None, :])], fresh=True)  # an unindexed fragment
    version = store._table.version
    store.set_places(iter([[row("a", None, "/y.md")], [row("c", None, "/c.md"),
                                                       row("e", None, "/e.md")]]), count=3)
    assert store._table.version == version + 1
    assert sorted(key for key, _ in store.places()) == list("abcde")  # no key twice
    assert store.count() == 4  # b has no place
    for key, vector in {**vectors, "e": unit(1, 0, 1)}.items():
        found = [h.custom_id for h in store.search(vector, k=5)]
        assert "b" not in found and (key == "b" or found[0] == key)
    assert [p.uri for p in store.search(vectors["a"], k=1)[0].places] == ["/y.md"]
    assert [h.custom_id for h in store.matching("text d", 5, store.condition())][:1] == ["d"]


def test_a_large_publication_writes_places_beside_the_vectors_in_one_commit(
        tmp_path: Path) -> None:
    store = Store(tmp_path, "m", 3)
    vectors = {"a": unit(1, 0, 0), "b": unit(0, 1, 0), "c": unit(0, 0, 1), "d": unit(1, 1, 0)}
    store.put_vectors([(["a", "b", "c"], np.stack([vectors[k] for k in "abc"]))], fresh=True)
    store.put_vectors([(["d"], vectors["d"][None, :])], fresh=True)
    store.optimize()  # the text and n_places indices exist, over unpublished rows
    vector_files = {f.path for frag in store._table.get_fragments()
                    for f in frag.metadata.files if 1 in f.fields}
    words = {"a": "apple", "b": "banana", "d": "durian"}
    published = {k: StoreRow(k, f"{w} passage", "ctx", (Place(f"/{k}.md", "H", None, 1, 2),))
                 for k, w in words.items()}  # c stays unpublished
    asked: list[list[str]] = []

    def rows_for(keys: Sequence[str]) -> list[StoreRow]:
        asked.append(list(keys))
        return [published[k] for k in keys if k in published]

    version = store._table.version
    store.set_places(iter([]), count=3, rows_for=rows_for, group=2)
    assert store._table.version == version + 1  # readers see all of it or none
    assert max(len(keys) for keys in asked) == 2
    assert store.count() == 3 and store.keys() == set("abcd")
    for key, vector in vectors.items():
        hits = store.search(vector, k=1)
        assert (hits[0].custom_id, hits[0].places) == (key, published[key].places) \
            if key != "c" else hits[0].custom_id != "c"
    assert [h.custom_id for h in store.matching("durian", 3, store.condition())] == ["d"]
    assert vector_files <= {f.path for frag in store._table.get_fragments()
                            for f in frag.metadata.files}  # the vectors were not rewritten
    store.optimize()
    assert [h.custom_id for h in store.matching("banana", 3, store.condition())] == ["b"]
    assert store.count() == 3


def test_reopen_with_another_model_is_refused(tmp_path: Path) -> None:
    Store(tmp_path, "model-a", 3)
    with pytest.raises(IndexMismatch, match="model-a"):
        Store(tmp_path, "model-b", 3)
    with pytest.raises(IndexMismatch):
        Store(tmp_path, "model-a", 4)


@pytest.fixture(scope="module")
def hidden_row_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of two notes plus one row embedded but not published (``n_places = 0``),
    with the same vector as a published passage so that only the filter keeps it out."""
    from indexer import Index
    from indexer.state.layout import Layout

    root = tmp_path_factory.mktemp("where")
    folder = root / "notes"
    folder.mkdir()
    (folder / "gate.md").write_text("# Gate\n\nThe garden gate is painted green.\n")
    (folder / "shed.md").write_text("# Shed\n\nThe shed holds the garden tools.\n")
    with Index(root / "idx") as index:
        index.sync([folder])
        status = index.status()
    store = Store(Layout(root / "idx").current / "lancedb", status.model, status.dimensions)
    (published,) = [r for r in store._table.to_table().to_pylist() if "gate" in r["text"]]
    store.put([StoreRow("hidden-key", "UNPUBLISHED draft text", "", (),
                        np.asarray(published["vector"], dtype=np.float32))])
    assert store.count() == 2 and {"hidden-key"} <= store.keys()
    return root / "idx"


def search_cli(index_dir: Path, where: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "indexer", "--index", str(index_dir), "search",
                           "garden gate", "-k", "10", "--json", "--where", where],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("where", ["1=1 OR n_places = 0", "(1=1) OR (n_places = 0)",
                                   "n_places >= 0", "NOT (n_places > 0)",
                                   "uri LIKE '%' OR custom_id = 'hidden-key'"])
def test_a_filter_never_reveals_unpublished_rows(hidden_row_index: Path, where: str) -> None:
    result = search_cli(hidden_row_index, where)
    hits = json.loads(result.stdout)
    assert result.returncode == (0 if hits else 1), result.stderr  # 1: nothing matched
    assert "hidden-key" not in {hit["custom_id"] for hit in hits}


@pytest.mark.parametrize(("where", "problem"), [
    ("1=1) OR (n_places = 0", "closes nothing"),
    ("(uri = 'a'", "'(' is never closed"),
    ("uri = '/gate", "quote is never closed"),
    ("uri = 'x' -- ) OR (n_places = 0", "comments"),
    ("1=1 /* ( */ ) OR ( n_places = 0 /* ) */", "comments"),
    ("uri = 'a'; DELETE", "';'"),
    ("uri = N'a'", "prefixed"),  # a string prefix or a placeholder makes LanceDB panic
    ("uri = $1", "placeholder"),
    ("uri = ?", "placeholder"),
    ("text = 'a\\' OR n_places = 0 OR text = '", "backslash"),
    ("uri = ", "--where filter"),  # LanceDB's own parse error
    ("cast(uri AS int) > 1", "--where filter"),  # fails while running
])
def test_a_bad_filter_is_one_clean_line_and_exit_1(hidden_row_index: Path, where: str,
                                                   problem: str) -> None:
    result = search_cli(hidden_row_index, where)
    assert "hidden-key" not in result.stdout
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and problem in line and repr(where) in line, line


def test_a_panic_inside_lancedb_becomes_a_state_error(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path, "m", 3)
    store.put([row("a", unit(1, 0, 0), "/x")])
    # past the filter check (which refuses these), LanceDB panics on a prefixed string
    monkeypatch.setattr("indexer.state.store.reader.check_filter", lambda where: where)
    with pytest.raises(StateError, match="internal error"):
        store.search(unit(1, 0, 0), k=1, where="uri = N'a'")
    assert [h.custom_id for h in store.search(unit(1, 0, 0), k=1)] == ["a"]  # still usable


def test_lancedb_opens_the_store_as_it_is_with_its_indices(tmp_path: Path) -> None:
    """The indexer writes the table through Lance alone (no LanceDB import), but users open
    it with LanceDB: its rows, its vector index and its full-text index all read there."""
    import lancedb

    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    store = Store(tmp_path, "m", 8, StoreHealth(60, 10, vector_index_rows=200,
                                                refine_factor=2))
    store.put([StoreRow(f"k{i}", f"passage {i} on {'apples' if i % 10 == 0 else 'pears'}",
                        "ctx", (Place(f"/d/{i}.md", "H", None, 1, 2),), vectors[i])
               for i in range(300)])
    store.optimize()
    table = lancedb.connect(tmp_path).open_table("chunks")
    assert table.count_rows() == 300
    assert {"vector_idx", "text_idx", "custom_id_idx"} <= {i.name for i in table.list_indices()}
    nearest = table.search(vectors[42]).distance_type("cosine").limit(3).to_list()
    assert nearest[0]["custom_id"] == "k42" == store.search(vectors[42], k=1)[0].custom_id
    apples = table.search("apples", query_type="fts").limit(100).to_list()
    assert {r["custom_id"] for r in apples} == {f"k{i}" for i in range(0, 300, 10)}
