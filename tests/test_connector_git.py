"""Git sources: a real repository built with ``git``, synced through the Index API with
the embedded model. A re-sync reads and embeds only what the commits changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from indexer import Index
from indexer.config import Config, SourceConfig
from indexer.connectors.contract import ConnectorContext
from indexer.connectors.git import GitSource
from indexer.connectors.gitaddress import split_uri
from indexer.connectors.registry import connector_for
from indexer.errors import ConfigError, SourceError
from indexer.records import Document, Skip, SourceItem
from indexer.state.layout import Layout

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")

LINK = "https://git.example.com/docs/blob/{commit}/{path}#L{line_start}-L{line_end}"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str | bytes | None], message: str = "docs") -> str:
    """Write (or with None delete) ``files`` and commit them all; returns the commit."""
    for rel, content in files.items():
        path = repo / rel
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def page(topic: str) -> str:
    return f"# {topic.title()}\n\nEverything about {topic} lives on this page.\n"


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "handbook"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main")
    commit(repo, {"tea.md": page("tea"), "bread.md": page("bread"),
                  "guide/cheese.md": page("cheese"), "guide/wine.md": page("wine"),
                  "logo.png": b"\x89PNG\r\n", ".env": "TOKEN=secret\n",
                  "drafts/soup.md": page("soup")})
    return repo


@pytest.fixture()
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every document path a git source reads, in order (the real load runs)."""
    seen: list[str] = []
    real: Callable[[GitSource, SourceItem], Document | Skip] = GitSource.load

    def counted(self: GitSource, item: SourceItem) -> Document | Skip:
        seen.append(item.path.as_posix())
        return real(self, item)

    monkeypatch.setattr(GitSource, "load", counted)
    return seen


def configure(index_dir: Path, uri: str, **options: object) -> None:
    index_dir.mkdir(parents=True, exist_ok=True)
    lines = [f'path = "{uri}"', 'exclude = ["drafts/"]']
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    (index_dir / "config.toml").write_text("[index]\n\n[[sources]]\n" + "\n".join(lines) + "\n")


def drained(seen: list[str]) -> list[str]:
    taken = sorted(seen)
    seen.clear()
    return taken


def test_resync_reads_and_embeds_only_what_the_commits_changed(
        repo: Path, tmp_path: Path, loads: list[str]) -> None:
    uri = f"git+file://{repo}@main"
    configure(tmp_path / "idx", uri, link=LINK)
    with Index(tmp_path / "idx", backend="local") as index:
        first = index.sync()
        assert first.exit_code == 0 and first.new == 4 and first.embedded == 4
        assert drained(loads) == ["bread.md", "guide/cheese.md", "guide/wine.md", "tea.md"]
        assert [s.reason for s in first.skips] == ["binary file"]  # no .env, no drafts/

        commit(repo, {"tea.md": page("green tea")})
        edit = index.sync()
        assert (edit.changed, edit.new, edit.deleted, edit.embedded) == (1, 0, 0, 1)
        assert drained(loads) == ["tea.md"]

        git(repo, "mv", "bread.md", "guide/bread.md")
        git(repo, "commit", "--quiet", "-m", "move")
        rename = index.sync()
        assert (rename.new, rename.deleted, rename.embedded) == (1, 1, 0)  # free: same text
        assert drained(loads) == ["guide/bread.md"]

        commit(repo, {"guide/wine.md": None})
        delete = index.sync()
        assert (delete.deleted, delete.embedded, drained(loads)) == (1, 0, [])

        git(repo, "checkout", "--quiet", "-b", "elsewhere")  # the source follows main only
        commit(repo, {"jam.md": page("jam")})
        git(repo, "checkout", "--quiet", "main")
        head = commit(repo, {"honey.md": page("honey")})
        added = index.sync()
        assert (added.new, added.embedded, drained(loads)) == (1, 1, ["honey.md"])

        noop = index.sync()
        assert (noop.new, noop.changed, noop.deleted, noop.embedded) == (0, 0, 0, 0)
        assert drained(loads) == [] and noop.exit_code == 0

        assert index.status().documents == 4
        hits = index.search("green tea", k=5)
        places = [p for hit in hits for p in hit.places]
        assert not any(p.uri.endswith("wine.md") for p in places)
        tea = next(p for p in places if p.uri == f"{uri}/tea.md")
        assert tea.origin is not None and tea.origin.revision == head
        assert tea.origin.path == "tea.md"
        assert tea.origin.link == (f"https://git.example.com/docs/blob/{head}/tea.md"
                                   f"#L{tea.line_start}-L{tea.line_end}")
        assert hits[0].to_dict()["places"][0]["origin"]["revision"] == head  # type: ignore[index]


def test_a_history_rewrite_lists_the_branch_in_full(repo: Path, tmp_path: Path,
                                                    loads: list[str]) -> None:
    uri = f"git+file://{repo}"  # no ref: the repository's HEAD
    configure(tmp_path / "idx", uri)
    with Index(tmp_path / "idx", backend="local") as index:
        assert index.sync().new == 4
        loads.clear()
        old = git(repo, "rev-parse", "HEAD")
        git(repo, "commit", "--quiet", "--amend", "-m", "rewritten")
        git(repo, "reflog", "expire", "--expire=now", "--all")
        git(repo, "gc", "--quiet", "--prune=now")
        assert subprocess.run(["git", "-C", str(repo), "cat-file", "-e", old]).returncode != 0
        commit(repo, {"tea.md": page("black tea")})
        report = index.sync()
    assert (report.changed, report.deleted, report.embedded) == (1, 0, 1)
    assert loads == ["tea.md"]  # listed in full, read only where the blob moved


def test_a_clone_url_is_fetched_into_a_shallow_cache_that_plan_leaves_alone(
        repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(bare))
    uri = f"git+file://{bare}@main"
    configure(tmp_path / "idx", uri, clone=True)
    cache = Layout.source_state(tmp_path / "idx", uri) / "clone.git"
    with Index(tmp_path / "idx", backend="local") as index:
        plan = index.plan()
        assert plan.new == 4 and not cache.exists()
        assert index.sync().new == 4
        assert (cache / "shallow").exists()  # the commit's files, not the history

        work = tmp_path / "work"
        git(tmp_path, "clone", "--quiet", str(bare), str(work))
        commit(work, {"bread.md": page("rye bread")})
        git(work, "push", "--quiet", "origin", "main")
        tip = git(cache, "rev-parse", "refs/indexer/tip")
        plan = index.plan()
        assert (plan.changed, plan.chunks_to_embed) == (1, 1)
        assert git(cache, "rev-parse", "refs/indexer/tip") == tip  # plan fetched elsewhere
        report = index.sync()
        assert (report.changed, report.embedded) == (1, 1)
        assert git(cache, "rev-parse", "refs/indexer/tip") == git(bare, "rev-parse", "main")


def folder(path: Path) -> Path:
    path.mkdir()
    (path / "oats.md").write_text(page("oats"))
    return path


@pytest.mark.parametrize("break_it, says", [
    ("move", "no git repository at"),
    ("ref", "no branch, tag or commit 'main'"),
    ("clone", "cannot be fetched"),
])
def test_an_unreachable_repository_fails_alone_and_deletes_nothing(
        repo: Path, tmp_path: Path, break_it: str, says: str) -> None:
    oats = folder(tmp_path / "oats")
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(bare))
    uri = f"git+file://{bare if break_it == 'clone' else repo}@main"
    configure(tmp_path / "idx", uri, **({"clone": True} if break_it == "clone" else {}))
    with Index(tmp_path / "idx", backend="local") as index:
        assert index.sync().new == 4
    if break_it == "move":
        shutil.move(repo, tmp_path / "away")
    elif break_it == "ref":
        git(repo, "branch", "--quiet", "-m", "main", "trunk")
    else:
        shutil.rmtree(bare)
    with Index(tmp_path / "idx") as index:
        report = index.sync([uri, oats])
        assert report.exit_code == 1 and report.new == 1 and report.deleted == 0
        assert len(report.unreachable) == 1 and report.unreachable[0].startswith(uri)
        assert says in report.unreachable[0]
        assert index.status().documents == 5  # the repository's 4 and the new folder's


@pytest.fixture()
def context(tmp_path: Path) -> Iterator[ConnectorContext]:
    yield ConnectorContext(Config(), (), tmp_path / "state")


def test_paths_that_are_not_utf8_get_valid_document_uris(tmp_path: Path,
                                                         context: ConnectorContext) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main")
    (repo / os.fsdecode(b"caf\xe9 50%.md")).write_text(page("coffee"))
    commit(repo, {"ok.md": page("ok")})
    source = connector_for(SourceConfig(f"git+file://{repo}"), context)
    items = [i for i in source.scan() if isinstance(i, SourceItem)]
    assert [i.uri.rsplit("/", 1)[1] for i in items] == ["caf%E9 50%25.md", "ok.md"]
    assert all(i.uri.encode("utf-8") for i in items)
    loaded = source.load(items[0])
    assert isinstance(loaded, Document) and "coffee" in loaded.segments[0].text


@pytest.mark.parametrize("location, expected", [
    ("git+file:///srv/repos/handbook@main", ("file:///srv/repos/handbook", "main")),
    ("git+https://host/org/docs.git@feature/x", ("https://host/org/docs.git", "feature/x")),
    ("git+ssh://git@host/org/docs", ("ssh://git@host/org/docs", None)),
    ("git+ssh://git@host/org/docs@v2.0", ("ssh://git@host/org/docs", "v2.0")),
])
def test_uris_name_a_clone_url_and_a_ref(location: str,
                                         expected: tuple[str, str | None]) -> None:
    assert split_uri(location) == expected


@pytest.mark.parametrize("location, options, says", [
    ("git+https://h/r", {"depth": 1}, "unknown setting(s) ['depth']"),
    ("git+https://h/r", {"link": "https://h/{sha}/{path}"}, "uses ['sha']"),
    ("git+https://me:hunter2@h/r", {}, "password in its URL"),
    ("git+https://h/r@main..x", {}, "not a valid branch"),
])
def test_bad_settings_are_refused_before_any_network(location: str, options: dict[str, object],
                                                     says: str,
                                                     context: ConnectorContext) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        connector_for(SourceConfig(location, options=options), context)
    assert says in str(caught.value) and "hunter2" not in str(caught.value)


def test_a_missing_git_repository_raises_only_when_listed(tmp_path: Path,
                                                          context: ConnectorContext) -> None:
    source = connector_for(SourceConfig(f"git+file://{tmp_path}/nowhere@main"), context)
    with pytest.raises(SourceError, match="no git repository at"):
        list(source.scan())


def test_a_permalink_quotes_the_path_and_drops_the_anchor_without_lines() -> None:
    source = connector_for(SourceConfig("git+https://h/docs@main", options={"link": LINK}),
                           ConnectorContext(Config()))
    assert isinstance(source, GitSource)
    page_place = source.address.permalink("c0ffee", "guide/an intro.pdf", None, None)
    assert page_place == "https://git.example.com/docs/blob/c0ffee/guide/an%20intro.pdf"
    assert source.address.permalink("c0ffee", "a.md", 3, 9) == (
        "https://git.example.com/docs/blob/c0ffee/a.md#L3-L9")
