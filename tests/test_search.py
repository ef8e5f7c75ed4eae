"""Search as users rely on it: modes and explained scores, grouping by document,
context, filters applied before ranking, the JSON view and grep-like exit codes."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from indexer import Index
from indexer.cli import cli
from indexer.config import Config
from indexer.errors import ConfigError, StateError
from indexer.records import Origin, Place, SearchHit, StoreRow
from indexer.search.fusion import DEFAULT
from indexer.search.scope import glob_regex
from indexer.search.searcher import Request, choose
from indexer.state.store import Store

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUERY = "garden gate compost"


def garden(folder: Path) -> Path:
    """40 notes that match QUERY well, and one log (6 sections) that does not."""
    for n in range(40):
        note = folder / "wide" / f"note{n}.md"
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(f"# Garden note {n}\n\nThe garden gate squeaks again; compost heap "
                        f"number {n} needs turning before the tomatoes go in.\n")
    sections = ["Harbour", "Lighthouse", "Storm", "Cargo", "Crew", "Anchor"]
    log = "# Ship log\n\n" + "\n\n".join(
        f"## {s}\n\nThe keeper wrote about the {s.lower()} on day {i}; the ship kept its "
        "course through the night and the bell rang at dawn." for i, s in enumerate(sections))
    (folder / "narrow").mkdir()
    (folder / "narrow" / "log.md").write_text(log + "\n")
    return folder


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    root = tmp_path_factory.mktemp("search")
    docs = root / "docs"
    shutil.copytree(EXAMPLES / "docs", docs)
    notes = garden(root / "notes")
    index = Index(root / "idx", backend="local")
    report = index.sync([docs, notes])
    assert report.complete and not report.errors
    return index


def test_default_is_hybrid_and_each_hit_explains_its_score(index: Index) -> None:
    hits = index.search("how do I cancel a batch?", k=5)
    assert {h.mode for h in hits} == {"hybrid"}
    assert hits[0].place.uri.endswith("guides/batches.md") and "indexer cancel" in hits[0].text
    vector = {h.custom_id: h for h in index.search("how do I cancel a batch?",
                                                   k=DEFAULT.depth, mode="vector")}
    keyword = {h.custom_id: h for h in index.search("how do I cancel a batch?",
                                                    k=DEFAULT.depth, mode="keyword")}
    def scaled(value: float, ranking: dict[str, SearchHit]) -> float:
        scores = [h.score for h in ranking.values()]
        return (value - min(scores)) / (max(scores) - min(scores))

    for hit in hits:  # equal weights on each half's scores scaled within its candidates
        assert hit.vector or hit.keyword
        assert hit.score == pytest.approx(
            0.5 * (scaled(hit.vector.score, vector) if hit.vector else 0)
            + 0.5 * (scaled(hit.keyword.score, keyword) if hit.keyword else 0))
        if hit.vector:
            assert vector[hit.custom_id].score == pytest.approx(hit.vector.score)
            assert vector[hit.custom_id].vector.rank == hit.vector.rank  # type: ignore[union-attr]
        if hit.keyword:
            assert keyword[hit.custom_id].keyword.rank == hit.keyword.rank  # type: ignore[union-attr]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    data = hits[0].to_dict()
    assert set(data) == {"custom_id", "score", "text", "places", "mode", "vector", "keyword"}
    assert data["mode"] == "hybrid" and set(data["places"][0]) == {  # type: ignore[index]
        "uri", "heading", "page", "line_start", "line_end", "origin"}
    assert set(data["vector"] or data["keyword"]) == {"rank", "score"}  # type: ignore[arg-type]
    json.dumps(data)


def test_a_places_json_view_holds_every_field_as_the_dataclass_does() -> None:
    for place in (Place("file:///a.md"), Place("file:///a.md", "Usage", 2, 3, 9, Origin(
            "docs/a.md", "0123abc", "https://example.org/blob/0123abc/docs/a.md#L3-L9"))):
        assert place.to_dict() == asdict(place)
        assert list(place.to_dict()) == list(asdict(place))


def test_single_modes_say_which_half_ranked(index: Index) -> None:
    keyword = index.search("indexer cancel", k=3, mode="keyword")
    assert keyword and all(h.mode == "keyword" and h.vector is None for h in keyword)
    assert [h.keyword.rank for h in keyword] == [1, 2, 3][:len(keyword)]  # type: ignore[union-attr]
    assert "indexer cancel" in keyword[0].text
    vector = index.search("indexer cancel", k=3, mode="vector")
    assert [h.mode for h in vector] == ["vector"] * 3 and vector[0].keyword is None
    assert index.search("zyxwvut", k=3, mode="keyword") == []


def test_a_narrow_filter_still_returns_k_hits(index: Index) -> None:
    everywhere = index.search(QUERY, k=5)
    assert all("/wide/" in h.place.uri for h in everywhere)  # the log ranks far below
    for mode in ("hybrid", "vector"):
        hits = index.search(QUERY, k=5, mode=mode, path="narrow/**")
        assert len(hits) == 5 and all(h.place.uri.endswith("narrow/log.md") for h in hits)
        by_where = index.search(QUERY, k=5, mode=mode, where="uri LIKE '%/narrow/%'")
        assert [h.custom_id for h in by_where] == [h.custom_id for h in hits]
    docs = str(Path(index.config.sources[0].path))
    sourced = index.search(QUERY, k=7, source=docs)
    assert len(sourced) == 7 and all(h.place.uri.startswith(docs + "/") for h in sourced)
    assert index.search(QUERY, k=3, path="*.rst")[0].place.uri.endswith("configuration.rst")
    assert index.search(QUERY, k=3, path="nothing/*.md") == []
    with pytest.raises(ConfigError, match="known sources"):
        index.search(QUERY, source="/no/such/source")


def test_a_hybrid_search_for_more_hits_than_its_depth_returns_k_of_them(index: Index) -> None:
    k = DEFAULT.depth + 8  # each half then gives k candidates, not its usual depth
    hits = index.search(QUERY, k=k)
    assert len(hits) == k == len({h.custom_id for h in hits})
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert max(h.vector.rank for h in hits if h.vector) > DEFAULT.depth
    narrowed = index.search(QUERY, k=k, path="wide/**")  # 40 notes, filtered before ranking
    assert len(narrowed) == k and all("/wide/" in h.place.uri for h in narrowed)
    documents = index.search(QUERY, k=k, per_doc=True, passages=1, path="wide/**")
    assert len(documents) == k == len({h.document for h in documents})


def test_per_doc_returns_each_document_once_with_its_best_passages(index: Index) -> None:
    passages = index.search(QUERY, k=20, path="narrow/**")
    docs = index.search(QUERY, k=3, per_doc=True, passages=2, path="**/narrow/*")
    assert len(docs) == 1 and docs[0].document and docs[0].document.endswith("narrow/log.md")
    assert [docs[0].custom_id, *(h.custom_id for h in docs[0].more)] == [
        h.custom_id for h in passages[:2]]
    grouped = index.search(QUERY, k=6, per_doc=True)
    uris = [h.document for h in grouped]
    assert len(grouped) == 6 and len(set(uris)) == 6
    assert all(p.uri == h.document for h in grouped for p in h.places)
    data = docs[0].to_dict()
    assert data["document"] == docs[0].document and len(data["more"]) == 1  # type: ignore[arg-type]
    assert "document" not in passages[0].to_dict()


def test_context_merges_neighbouring_passages(index: Index) -> None:
    (plain,) = index.search("cancel a running batch", k=1, path="batches.md")
    (wide,) = index.search("cancel a running batch", k=1, path="batches.md", context=1)
    assert plain.custom_id == wide.custom_id and "indexer cancel" in plain.text
    assert wide.merged == 2 and plain.text in wide.text
    assert "24 hour completion window" in wide.text and "expires" in wide.text
    assert wide.place.line_start < plain.place.line_start  # type: ignore[operator]
    assert wide.place.line_end > plain.place.line_end  # type: ignore[operator]
    assert wide.to_dict()["merged"] == 2


def test_globs_match_from_a_folder_boundary() -> None:
    def matches(glob: str, uri: str) -> bool:
        return re.search(glob_regex(glob), uri) is not None

    assert matches("*.md", "/d/guides/a.md") and not matches("*.md", "/d/a.mdx")
    assert matches("guides/*.md", "/d/guides/a.md")
    assert not matches("guides/*.md", "/d/guides/x/a.md")
    assert matches("guides/**", "/d/guides/x/a.md") and matches("guides/", "/d/guides/b.md")
    assert not matches("/d/guides/*", "/e/d/guides/a.md") and matches("/d/*/a.md", "/d/g/a.md")
    assert matches("a?.txt", "/x/ab.txt") and matches("[ab].txt", "/x/b.txt")
    assert matches("it's (1).md", "/x/it's (1).md") and not matches("a.md", "/x/abmd")
    assert "\\" not in glob_regex("we\\ird^.md")


def test_before_the_full_text_index_exists_search_falls_back_to_vector(
        tmp_path: Path) -> None:
    store = Store(tmp_path, "m", 3)
    vector = np.array([1, 0, 0], dtype=np.float32)
    store.put([StoreRow("a", "text a", "", (Place("/d/a.md"),), vector)])
    assert choose(Request("text"), store).name == "vector"
    with pytest.raises(StateError, match="full-text index"):
        choose(Request("text", mode="hybrid"), store)
    store.optimize()
    assert choose(Request("text"), store).name == "hybrid"


def test_passages_are_printed_as_written_not_read_as_markup(tmp_path: Path) -> None:
    text = ("See [the guide](guide.md) and [note] for the [/x] tag; :smile: stays text; "
            "[bold]not bold[/bold].")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "brackets.md").write_text(f"# Brackets [v2]\n\n{text}\n")
    with Index(tmp_path / "idx", backend="local") as index:
        index.sync([tmp_path / "docs"])
    runner = CliRunner()
    args = ["--index", str(tmp_path / "idx"), "search", "guide tag", "--mode", "keyword"]
    piped = runner.invoke(cli, args)
    assert piped.exit_code == 0, piped.output
    assert piped.output.splitlines()[1].endswith("brackets.md:3-3 · Brackets [v2]")
    assert piped.output.splitlines()[2] == f"   {text}"
    try:
        drawn = runner.invoke(cli, args, env={"FORCE_COLOR": "1", "COLUMNS": "400"})
    finally:  # consoles made while colour was forced would colour later tests' output
        if "indexer.terminal" in sys.modules:
            importlib.reload(sys.modules["indexer.terminal"])
    assert drawn.exit_code == 0, drawn.output
    assert "[the guide](guide.md)" in drawn.output and "[/x]" in drawn.output


def test_cli_search_exits_1_when_nothing_matched(index: Index) -> None:
    runner = CliRunner()
    base = ["--index", str(index.path), "search"]
    found = runner.invoke(cli, [*base, "cancel a batch", "-k", "2", "--json"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)
    assert len(hits) == 2 and hits[0]["mode"] == "hybrid"
    shown = runner.invoke(cli, [*base, "cancel a batch", "--per-doc", "--context", "1"])
    assert shown.exit_code == 0 and "documents, hybrid search" in shown.output
    none = runner.invoke(cli, [*base, "cancel a batch", "--path", "nothing/*", "--json"])
    assert none.exit_code == 1 and json.loads(none.output) == []
    words = runner.invoke(cli, [*base, "zyxwvut", "--mode", "keyword"])
    assert words.exit_code == 1 and "no matches" in words.output
    assert "nothing matched" in runner.invoke(cli, ["search", "--help"]).output


#: What a search never loads: LanceDB (seconds to import; it writes the store, searches
#: read it through Lance), the plugin scan, and what only other commands need.
NEVER_ON_SEARCH = {"lancedb", "lance_namespace", "importlib.metadata", "rich", "tomlkit",
                   "pydantic", "fastapi", "uvicorn", "starlette", "mcp", "openai", "pypdf",
                   "tiktoken", "boto3", "httpx", "onnx"}


@pytest.mark.slow
def test_a_search_process_never_imports_lancedb(index: Index) -> None:
    """The command line's search (JSON output) loads none of :data:`NEVER_ON_SEARCH`."""
    code = ("import contextlib, io, json, sys\n"
            "from indexer.cli import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    cli(['--index', {str(index.path)!r}, 'search', {QUERY!r}, '--json'],\n"
            "        standalone_mode=False)\n"
            "assert json.loads(out.getvalue())\n"
            "names = set(sys.modules) | {m.split('.')[0] for m in sys.modules}\n"
            f"print(sorted(names & set({sorted(NEVER_ON_SEARCH | {'lance'})!r})))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert found.stdout.strip() == "['lance']", found.stdout


@pytest.mark.slow
def test_a_search_process_prints_all_its_hits_and_exits_like_grep(index: Index) -> None:
    """``indexer search`` ends its process at once after its output: nothing is lost."""
    command = [sys.executable, "-m", "indexer", "--index", str(index.path), "search"]
    found = subprocess.run([*command, QUERY, "-k", "40", "--json"], capture_output=True,
                           text=True)
    assert found.returncode == 0, found.stderr
    expected = [hit.to_dict() for hit in index.search(QUERY, k=40)]
    assert json.loads(found.stdout) == json.loads(json.dumps(expected, default=str))
    none = subprocess.run([*command, "zyxwvut", "--mode", "keyword"], capture_output=True,
                          text=True)
    assert (none.returncode, none.stdout, none.stderr) == (1, "no matches\n", "")


def test_the_vector_index_finds_the_exact_nearest_passages(tmp_path: Path) -> None:
    """Past ``vector_index_rows`` an approximate index answers; its top 10 must still be
    (nearly) the exact top 10 of the published rows, on an index built now and on one of
    1-bit codes as earlier releases built it (refined more)."""
    import lance

    rng = np.random.default_rng(7)
    basis = rng.standard_normal((64, 48))
    mix = basis[rng.integers(0, 64, 6_000)] + 0.5 * rng.standard_normal((6_000, 48))
    mix /= np.linalg.norm(mix, axis=1, keepdims=True)
    hidden = rng.random(6_000) < 0.02
    store = Store(tmp_path / "lancedb", "m", 48)
    store.put([StoreRow(f"k{i}", f"passage {i}", "", () if hidden[i] else
                        (Place(f"/d/{i}.md"),), mix[i]) for i in range(6_000)])
    store.optimize()
    queries = basis[:20] + 0.3 * rng.standard_normal((20, 48))
    exact = [set(np.flatnonzero(~hidden)[np.argsort(-(mix[~hidden] @ q))[:10]]) for q in queries]

    def recall() -> float:
        found = []
        for q, best in zip(queries, exact, strict=True):
            hits = store.reader().nearest(q, 10, "n_places > 0")
            assert len(hits) == 10 and all(hit.places for hit in hits)
            found.append(len(best & {int(hit.custom_id[1:]) for hit in hits}) / 10)
        return float(np.mean(found))

    assert "vector_idx" in store.stats().indices
    assert recall() >= 0.95
    lance.dataset(str(tmp_path / "lancedb" / "chunks.lance")).create_index(
        "vector", "IVF_RQ", name="vector_idx", replace=True, metric="cosine", num_bits=1)
    assert recall() >= 0.95


def test_a_reader_kept_between_searches_ranks_exactly_as_a_new_one(tmp_path: Path) -> None:
    """A reader kept between searches (a server's, an ``Index`` searched again) re-ranks
    the vector index's candidates from the vectors it holds in memory: the same passages
    in the same order with the same scores as a reader just opened (the table's own
    refinement), hidden rows never shown; also while new rows wait for the index, and
    once it covers them."""
    from indexer.state.store import Reader

    rng = np.random.default_rng(11)
    basis = rng.standard_normal((64, 48))

    def rows(start: int, n: int) -> list[StoreRow]:
        mix = basis[rng.integers(0, 64, n)] + 0.5 * rng.standard_normal((n, 48))
        mix /= np.linalg.norm(mix, axis=1, keepdims=True)
        return [StoreRow(f"k{start + i}", f"passage {start + i}", "", () if rng.random() < 0.02
                         else (Place(f"/d/{start + i}.md"),), mix[i]) for i in range(n)]

    store = Store(tmp_path / "lancedb", "m", 48)
    store.put(rows(0, 6_000))
    store.optimize()
    kept = store.reader()
    kept.refresh()  # as a reader kept between searches is, before each
    queries = basis[:8] + 0.3 * rng.standard_normal((8, 48))

    def ranks_as_a_new_reader() -> None:
        new = Reader(store.directory, "m", 48, store.health.refine_factor)
        condition = new.condition()
        for query in queries:
            for k in (10, 50):
                expected = new.nearest_keys(query, k, condition)
                found = kept.nearest_keys(query, k, condition)
                assert [r.custom_id for r in found] == [r.custom_id for r in expected]
                assert [r.score for r in found] == pytest.approx(
                    [r.score for r in expected], abs=1e-5)
            narrow = new.condition("uri LIKE '/d/1%'")  # ranked under a prefilter
            assert [r.custom_id for r in kept.nearest_keys(query, 10, narrow, "uri")] == [
                r.custom_id for r in new.nearest_keys(query, 10, narrow, "uri")]
            expected_hits = new.nearest(query, 10, condition)
            assert len(expected_hits) == 10 and all(hit.places for hit in expected_hits)
            assert [(h.custom_id, h.text, h.places) for h in kept.nearest(query, 10, condition)] \
                == [(h.custom_id, h.text, h.places) for h in expected_hits]

    ranks_as_a_new_reader()
    assert kept._holds()
    store.put(rows(6_000, 300))  # a sync's new rows, not yet in the index
    kept.refresh()
    ranks_as_a_new_reader()
    assert not kept._holds()
    store.optimize()
    kept.refresh()
    ranks_as_a_new_reader()
    assert kept._holds()


def test_a_kept_reader_shows_the_passages_and_places_the_table_holds_now(
        tmp_path: Path) -> None:
    """A reader kept between searches gives its hits' text and places from memory: the
    same as a reader just opened reads from the table, for passages found in several
    places, and after a sync rewrites places (a passage moved, one more place, one
    unpublished: never shown again) or adds rows; past their budget passages are read
    from the table instead."""
    from indexer.state.store import Reader

    rng = np.random.default_rng(5)
    basis = rng.standard_normal((32, 24))

    def rows(start: int, n: int, copies: int = 1) -> list[StoreRow]:
        mix = basis[rng.integers(0, 32, n)] + 0.5 * rng.standard_normal((n, 24))
        mix /= np.linalg.norm(mix, axis=1, keepdims=True)
        return [StoreRow(f"k{start + i}", f"passage {start + i} ü", "", tuple(
            Place(f"/d/{start + i}-{c}.md", f"H {c}", c or None, 1 + c, 3 + c)
            for c in range(copies)), mix[i]) for i in range(n)]

    from dataclasses import replace

    from indexer.state.store import StoreHealth

    health = replace(StoreHealth.from_config(Config()), vector_index_rows=2_000)
    store = Store(tmp_path / "lancedb", "m", 24, health)
    first = rows(0, 3_000, copies=2)
    store.put(first)
    store.optimize()
    kept = store.reader()
    kept.refresh()
    queries = basis[:6] + 0.3 * rng.standard_normal((6, 24))

    def shows_as_a_new_reader() -> list[SearchHit]:
        new = Reader(store.directory, "m", 24, store.health.refine_factor)
        shown = []
        for query in queries:
            expected = new.nearest(query, 10, new.condition())
            found = kept.nearest(query, 10, kept.condition())
            assert [(h.custom_id, h.text, h.places) for h in found] == [
                (h.custom_id, h.text, h.places) for h in expected]
            assert [h.score for h in found] == pytest.approx([h.score for h in expected])
            rows_of = [r.row for r in kept.nearest_keys(query, 10, kept.condition())]
            assert kept.passages(rows_of) == new.passages(rows_of)
            shown += found
        return shown

    before = shows_as_a_new_reader()
    assert kept._holds() and kept._held.passages(np.asarray([], dtype=np.uint64)) == []
    assert any(len(hit.places) == 2 for hit in before)
    top = {hit.custom_id for hit in before}
    moved = [StoreRow(r.custom_id, r.text, "", () if i % 3 == 0 else
                      (*r.places, Place("/moved.md", "New", None, 7, 9)))
             for i, r in enumerate(r for r in first if r.custom_id in top)]
    store.set_places([moved], count=len(moved))
    kept.refresh()
    after = shows_as_a_new_reader()
    unpublished = {r.custom_id for r in moved if not r.places}
    assert unpublished and not unpublished & {hit.custom_id for hit in after}
    assert any(p.uri == "/moved.md" for hit in after for p in hit.places)
    store.put(rows(3_000, 200))
    store.optimize()
    kept.refresh()
    shows_as_a_new_reader()
    assert kept._held.passages(np.asarray([], dtype=np.uint64)) == []
    kept._held.passage_budget = 1_000  # passages past their budget: read from the table
    store.put(rows(3_200, 100))
    store.optimize()
    kept.refresh()
    shows_as_a_new_reader()
    assert kept._held.follow(kept._dataset)  # the vectors still held, not the passages
    assert kept._held.passages(np.asarray([], dtype=np.uint64)) is None


@pytest.mark.parametrize("hidden_nearest", [1, 30])
def test_hidden_rows_are_never_shown_however_many_of_the_best_are_hidden(
        tmp_path: Path, hidden_nearest: int) -> None:
    """Rows without places (paid for, not published) never show, and ``k`` published rows
    still do, exactly the best published ones, whether one or all of the rows ranked just
    past ``k`` are hidden (the reader ranks a few more rows unfiltered, and filters
    before ranking when that was not enough)."""
    rng = np.random.default_rng(3)
    query = rng.standard_normal(16)
    vectors = rng.standard_normal((300, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    order = np.argsort(-(vectors @ query))
    hidden = set(order[:hidden_nearest].tolist())
    store = Store(tmp_path / "lancedb", "m", 16)
    store.put([StoreRow(f"k{i}", "zebra " * (3 if i in hidden else 1) + f"row {i}", "",
                        () if i in hidden else (Place(f"/d/{i}.md"),), vectors[i])
               for i in range(300)])
    store.optimize()  # the full-text index
    reader = store.reader()
    best = [f"k{i}" for i in order if i not in hidden][:10]
    condition = reader.condition()
    assert [hit.custom_id for hit in reader.nearest(query, 10, condition)] == best
    assert [r.custom_id for r in reader.nearest_keys(query, 10, condition)] == best
    matched = reader.matching_keys("zebra", 10, condition)
    assert len(matched) == 10 and not {r.custom_id for r in matched} & {f"k{i}" for i in hidden}
    assert [hit.custom_id for hit in reader.matching("zebra", 10, condition)] == \
        [r.custom_id for r in matched]


def test_a_kept_reader_names_the_right_passages_after_the_table_changes(
        tmp_path: Path) -> None:
    """A reader kept open (a server's) ranks row ids and reads the keys of a table version
    once: after rows are deleted, added and compacted (their row ids move), a refreshed
    reader still names each hit with its own key, text and places."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((60, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def row(i: int) -> StoreRow:
        return StoreRow(f"k{i}", f"zebra passage {i}", "", (Place(f"/d/{i}.md"),), vectors[i])

    store = Store(tmp_path / "lancedb", "m", 16)
    for start in range(0, 40, 10):  # small fragments, merged by optimize below
        store.put([row(i) for i in range(start, start + 10)])
    store.optimize()
    reader = store.reader()
    condition = reader.condition()

    def consistent(query: int, present: set[int]) -> None:
        hits = reader.nearest(vectors[query], 5, condition)
        assert hits[0].custom_id == f"k{query}"
        assert all(h.text == f"zebra passage {h.custom_id[1:]}" and
                   h.places == (Place(f"/d/{h.custom_id[1:]}.md"),) and
                   int(h.custom_id[1:]) in present for h in hits)
        ranked = reader.matching_keys("zebra", 50, condition)
        assert {r.custom_id for r in ranked} == {f"k{i}" for i in present}
        found = reader.passages([r.row for r in ranked])
        assert all(found[r.custom_id][0] == f"zebra passage {r.custom_id[1:]}" for r in ranked)

    consistent(3, set(range(40)))
    store.delete([f"k{i}" for i in range(0, 20, 2)])
    store.put([row(i) for i in range(40, 60)])
    store.optimize()
    reader.refresh()
    consistent(45, {*range(1, 20, 2), *range(20, 60)})



def test_passages_withdrawn_whole_are_never_found_in_any_mode(tmp_path: Path) -> None:
    """Documents withdrawn after they were indexed take their rows' whole fragment with
    them; the full-text index may still name those rows. A search (any mode) neither
    finds them nor fails on them."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tea.md").write_text("# Tea\n\nGreen tea steeps for two minutes.\n")
    with Index(tmp_path / "idx") as index:
        index.sync([folder])
        (folder / "okapi.md").write_text("# Okapi\n\nThe okapi lives in the forest.\n")
        (folder / "soup.md").write_text("# Soup\n\nOkapi soup is not a recipe.\n")
        index.sync([folder])
        (folder / "okapi.md").unlink()
        (folder / "soup.md").unlink()
        assert index.sync([folder]).deleted == 2
    with Index(tmp_path / "idx") as index:
        for mode in ("hybrid", "keyword", "vector"):
            hits = index.search("okapi soup tea", k=10, mode=mode)
            assert {p.uri.rsplit("/", 1)[-1] for h in hits for p in h.places} == {"tea.md"}
