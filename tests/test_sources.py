"""Several sources in one index: one that cannot be reached fails alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer import Index, config
from indexer.batchfiles.requests import Shard
from indexer.cli import cli
from indexer.errors import SourceError
from indexer.records import Chunk, SearchHit
from indexer.state.layout import Layout
from indexer.state.ledger import Ledger
from support import store_rows


def folder(path: Path, topic: str) -> Path:
    path.mkdir()
    (path / f"{topic}.md").write_text(f"# {topic.title()}\n\nAll about {topic} here.\n")
    return path


def test_an_unreachable_source_deletes_nothing_and_the_others_still_sync(
        tmp_path: Path) -> None:
    tea, bread = folder(tmp_path / "tea", "tea"), folder(tmp_path / "bread", "bread")
    with Index(tmp_path / "idx", backend="local") as index:
        assert index.sync([tea, bread]).exit_code == 0
    shutil.move(bread, tmp_path / "away")  # an unmounted share, a deleted checkout
    (tea / "green.md").write_text("# Green tea\n\nSteep at eighty degrees.\n")
    with Index(tmp_path / "idx") as index:
        report = index.sync()
        status = index.status()
        hits = index.search("bread", k=5)
    assert report.exit_code == 1 and report.new == 1 and report.deleted == 0
    assert len(report.unreachable) == 1 and str(bread) in report.unreachable[0]
    assert status.documents == 3
    assert any(p.uri.endswith("bread.md") for h in hits for p in h.places)


def comments_config(index_dir: Path, *folders: Path) -> None:
    """A hand-written config.toml with comments around each source."""
    entries = "".join(f'\n# the {f.name} folder\n[[sources]]\npath = "{f.resolve().as_posix()}"'
                      f'  # {f.name} notes\n' for f in folders)
    index_dir.mkdir()
    (index_dir / "config.toml").write_text(
        f'# my index\n[index]\nbackend = "local"  # offline\n{entries}\n# the end\n')


def uris(hits: list[SearchHit]) -> set[str]:
    return {Path(p.uri).name for h in hits for p in h.places}


def test_sources_lists_each_source_and_the_last_error_until_it_is_reached(
        tmp_path: Path) -> None:
    tea, bread = folder(tmp_path / "tea", "tea"), folder(tmp_path / "bread", "bread")
    (tea / "blank.md").write_text("   \n")
    with Index(tmp_path / "idx", backend="local") as index:
        assert [s.synced_at for s in index.add([tea, bread]) and index.sources()] == [None, None]
        before = time.time()
        index.sync()
        shutil.move(bread, tmp_path / "away")
        index.sync()
        listed = {Path(s.source).name: s for s in index.sources()}
    assert [s.kind for s in listed.values()] == ["filesystem", "filesystem"]
    assert (listed["tea"].documents, listed["tea"].skipped, listed["tea"].error) == (1, 1, None)
    assert listed["tea"].synced_at is not None and listed["tea"].synced_at >= before
    assert listed["bread"].documents == 1 and "bread" in (listed["bread"].error or "")
    assert listed["bread"].configured and listed["bread"].synced_at < listed["tea"].synced_at

    shown = CliRunner().invoke(cli, ["--index", str(tmp_path / "idx"), "sources", "--json"])
    assert shown.exit_code == 0, shown.output
    assert [(s["kind"], s["documents"], bool(s["error"])) for s in json.loads(shown.output)] == [
        ("filesystem", 1, False), ("filesystem", 1, True)]
    table = CliRunner().invoke(cli, ["--index", str(tmp_path / "idx"), "sources"])
    flat = " ".join(table.output.split())
    assert "│ error │" in flat and "bread: not reached (at" in flat and "cannot be read" in flat

    shutil.move(tmp_path / "away", bread)
    with Index(tmp_path / "idx") as index:
        assert index.sync().exit_code == 0
        assert [s.error for s in index.sources()] == [None, None]


def test_remove_takes_a_source_out_of_search_at_once_and_keeps_config_comments(
        tmp_path: Path) -> None:
    tea, bread = folder(tmp_path / "tea", "tea"), folder(tmp_path / "bread", "bread")
    shared = "Both folders keep this very same line about water."
    (bread / "water.md").write_text(shared + "\n")
    (tea / "water.md").write_text(shared + "\n")
    comments_config(tmp_path / "idx", tea, bread)
    state = Layout.source_state(tmp_path / "idx", bread.resolve().as_posix())
    with Index(tmp_path / "idx") as index:
        assert index.sync().exit_code == 0
        state.mkdir(parents=True)  # what a crawl keeps (ETags, a clone)
        (state / "etags.json").write_text("{}")
        before = store_rows(tmp_path / "idx")
        result = CliRunner().invoke(cli, ["--index", str(tmp_path / "idx"), "remove",
                                          str(bread), "--json"])
        assert result.exit_code == 0, result.output
        removed = json.loads(result.output)
        hits = index.search("bread", k=10)
    with Index(tmp_path / "idx") as index:
        listed = index.sources()
    assert removed["configured"] and removed["documents"] == 2 and removed["state_deleted"]
    assert not state.exists()
    assert uris(hits) == {"tea.md", "water.md"}
    assert all(str(bread) not in p.uri for h in hits for p in h.places)
    after = store_rows(tmp_path / "idx")
    assert len(after) == len(before) - 1  # bread.md's row; the shared line keeps its row
    assert [Path(s.source).name for s in listed] == ["tea"]
    config = (tmp_path / "idx" / "config.toml").read_text()
    assert "bread" not in config.replace("# the bread folder", "")
    for comment in ("# my index", "# offline", "# the tea folder", "# tea notes", "# the end"):
        assert comment in config
    assert str(tea.resolve()) in config
    with Index(tmp_path / "idx") as index, pytest.raises(SourceError, match="tea"):
        index.remove(tmp_path / "nowhere")


def test_a_source_deleted_from_config_by_hand_leaves_search_and_comes_back_free(
        tmp_path: Path) -> None:
    tea, bread = folder(tmp_path / "tea", "tea"), folder(tmp_path / "bread", "bread")
    comments_config(tmp_path / "idx", tea, bread)
    config = tmp_path / "idx" / "config.toml"
    original = config.read_text()
    with Index(tmp_path / "idx") as index:
        assert index.sync().exit_code == 0
    config.write_text(original.replace(f'path = "{bread.resolve().as_posix()}"', "# gone"
                                       ).replace("[[sources]]\n# gone", "# gone"))
    with Index(tmp_path / "idx") as index:
        plan = index.plan()
        report = index.sync()
        hits = index.search("bread", k=5)
        orphan = index.sources()[-1]
        status = index.status()
    assert plan.orphaned == [f"{bread.resolve().as_posix()}: 1 document(s)"]
    assert report.exit_code == 0 and report.deleted == 0
    assert len(report.orphaned) == 1 and str(bread.resolve()) in report.orphaned[0]
    assert uris(hits) == {"tea.md"} and status.documents == 1
    assert (orphan.configured, orphan.documents, orphan.withdrawn) == (False, 0, 1)
    assert f"indexer remove {bread.resolve().as_posix()}" in orphan.advice

    config.write_text(original)  # a typo fixed, or an edit undone: nothing is paid again
    with Index(tmp_path / "idx") as index:
        report = index.sync()
        hits = index.search("bread", k=5)
    assert (report.changed, report.embedded, report.reused, report.orphaned) == (1, 0, 1, [])
    assert "bread.md" in uris(hits)

    config.write_text(original.replace(f'path = "{bread.resolve().as_posix()}"', "# gone"
                                       ).replace("[[sources]]\n# gone", "# gone"))
    with Index(tmp_path / "idx") as index:
        removed = index.remove(bread.resolve().as_posix())  # an orphan: by its URI
        assert (removed.configured, removed.documents) == (False, 1)
        assert [Path(s.source).name for s in index.sources()] == ["tea"]
        assert index.sync().orphaned == []


def test_a_withdrawn_source_keeps_its_vectors_and_pays_for_nothing_it_was_waiting_for(
        tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "state.db")
    part = Chunk(0, "Paid for.", "Doc", 3, ("Doc",), None, 1, 1)
    wait = Chunk(1, "Not yet sent.", "Doc", 3, ("Doc",), None, 2, 2)
    ledger.stage("/gone/a.md", "/gone", "1:1", "h1", "A", [(part, "paid"), (wait, "waiting")])
    ledger.stage("/kept/b.md", "/kept", "1:1", "h2", "B", [(wait, "waiting")])
    ledger.stage("/gone/c.md", "/gone", "1:1", "h3", "C", [(part, "alone")])
    job = ledger.create_job("local", Shard(tmp_path / "s.jsonl", 2, 6, 100, ("paid", "alone")))
    ledger.finish_job(job, ["paid", "alone"], [], max_attempts=3)
    ledger.stage("/gone/d.md", "/gone", "1:1", "h4", "D", [(wait, "only-d")])

    assert ledger.withdraw_sources(["/gone"]) == {"/gone": 3}
    assert [r.custom_id for r in ledger.pending_requests()] == ["waiting"]  # /kept needs it
    assert ledger.key_states(["paid", "alone"]) == {"paid": "embedded", "alone": "embedded"}
    assert ledger.withdraw_source("/gone") == 0  # once is enough
    assert ledger.source_records()["/gone"].counts == {"orphaned": 3}
    assert ledger.forget_source("/gone") == 3 and "/gone" not in ledger.source_records()


def test_forgetting_a_source_edits_only_its_entry(tmp_path: Path) -> None:
    tables = ('# mine\n[index]\nbackend = "local"\n\n[[sources]]\npath = "/a"  # first\n'
              'exclude = [\n  "drafts/",  # not yet\n]\n\n# b is the handbook\n'
              '[[sources]]\npath = "/b"\n')
    inline = '# mine\nsources = [{path = "/a"}, {path = "/b"}]  # both\n[index]\n'
    for text, left in ((tables, '# mine\n[index]\nbackend = "local"\n\n\n# b is the handbook\n'
                                '[[sources]]\npath = "/b"\n'),
                       (inline, '# mine\nsources = [{path = "/b"}]  # both\n[index]\n')):
        (tmp_path / "config.toml").write_text(text)
        assert config.forget_source(tmp_path, "/a") and not config.forget_source(tmp_path, "/a")
        assert (tmp_path / "config.toml").read_text() == left


@pytest.mark.slow
def test_a_search_loads_no_connector_that_cannot_cite(tmp_path: Path) -> None:
    tea = folder(tmp_path / "tea", "tea")
    with Index(tmp_path / "idx", backend="local") as index:
        assert index.sync([tea]).exit_code == 0
    settings = tmp_path / "idx" / "config.toml"
    settings.write_text(settings.read_text() + '\n[[sources]]\npath = "s3://team-docs/handbook/"\n')
    code = ("import sys; from indexer import Index; "
            f"hits = Index({str(tmp_path / 'idx')!r}).search('tea'); "
            "print(len(hits), 'boto3' in sys.modules, 'indexer.connectors.s3' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.split() == ["1", "False", "False"], result.stderr
