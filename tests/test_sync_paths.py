"""Paths a user's folders really hold: file names that are not UTF-8, symbolic links that
lead outside the folder. Each must leave the rest of the sync intact."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest

from emulator.fixture import Emulator
from indexer import ConfigError, Index, SourceError
from indexer import config as configfile
from indexer.watcher import watch
from support import open_index, paid_twice

BAD_NAME = b"caf\xe9.md"
"""A Latin-1 file name, as an old archive or a Windows share leaves it: not UTF-8."""


def cli(index_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "indexer", "--index", str(index_dir), *args],
                          text=True, capture_output=True, timeout=300)


def notes(folder: Path) -> Path:
    """A folder with two ordinary notes and one whose name is not valid UTF-8."""
    folder.mkdir()
    (folder / "tea.md").write_text("# Tea\n\nGreen tea is steeped at eighty degrees.\n")
    (folder / "bread.md").write_text("# Bread\n\nSourdough rises overnight in the fridge.\n")
    with open(os.path.join(os.fsencode(folder), BAD_NAME), "wb") as file:
        file.write("# Café\n\nEspresso is brewed under nine bars of pressure.\n".encode())
    return folder


def bad_uri(folder: Path) -> str:
    return f"file://{folder.resolve().as_posix()}/caf%E9.md"


def search_json(index_dir: Path, query: str) -> list[dict[str, Any]]:
    result = cli(index_dir, "search", query, "-k", "10", "--json")
    assert result.returncode == 0, result.stderr
    hits: list[dict[str, Any]] = json.loads(result.stdout)
    return hits


def uris(hits: list[dict[str, Any]]) -> set[str]:
    return {p["uri"] for h in hits for p in h["places"]}


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_is_indexed_resynced_and_deleted(tmp_path: Path) -> None:
    folder = notes(tmp_path / "notes")
    index_dir = tmp_path / "idx"
    with Index(index_dir) as index:
        first = index.sync([folder])
        assert (first.new, first.skipped) == (3, 0) and first.complete

    hits = search_json(index_dir, "espresso pressure")
    assert uris(hits) == {bad_uri(folder), *(f"{folder.resolve().as_posix()}/{n}"
                                            for n in ("tea.md", "bread.md"))}
    assert hits[0]["places"][0]["uri"] == bad_uri(folder)
    shown = cli(index_dir, "search", "espresso pressure", "-k", "1")
    assert shown.returncode == 0 and bad_uri(folder) in shown.stdout, shown.stderr

    with Index(index_dir) as index:
        assert index.status().documents == 3
        again = index.sync([folder])
        assert (again.unchanged, again.new, again.changed, again.embedded) == (3, 0, 0, 0)
        path = os.path.join(os.fsencode(folder), BAD_NAME)
        with open(path, "ab") as file:
            file.write(b"\nRistretto uses less water.\n")
        edited = index.sync([folder])
        assert (edited.changed, edited.unchanged) == (1, 2) and edited.complete
        os.unlink(path)
        gone = index.sync([folder])
        assert (gone.deleted, gone.unchanged) == (1, 2) and gone.complete
        assert bad_uri(folder) not in {p.uri for h in index.search("espresso", k=10)
                                       for p in h.places}


def test_watch_indexes_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    folder = notes(tmp_path / "notes")
    reports: queue.Queue[object] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        with Index(tmp_path / "idx") as index:
            watch(index, [folder], debounce_ms=50, on_report=reports.put,
                  on_error=reports.put, stop=stop)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert getattr(reports.get(timeout=60), "new", None) == 3
        with open(os.path.join(os.fsencode(folder), b"cr\xe8me.md"), "w") as file:
            file.write("# Cream\n\nWhipped cream needs cold bowls.\n")
        second = reports.get(timeout=60)
        assert getattr(second, "new", None) == 1, second
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=60)


def test_openai_sync_with_a_file_name_that_is_not_utf8(tmp_path: Path, emu: Emulator) -> None:
    folder = notes(tmp_path / "notes")
    before = emu.stats()
    with open_index(tmp_path / "idx", emu) as index:
        report = index.sync([folder], wait=True)
        assert report.complete and report.new == 3 and not report.errors, report
        hits = index.search("espresso pressure", k=10)
        assert bad_uri(folder) in {p.uri for h in hits for p in h.places}
        again = index.sync([folder])
        assert (again.unchanged, again.embedded) == (3, 0)
    assert paid_twice(emu, before) == []


def secrets_and_links(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A notes folder with a link to a private key and one to a folder, both outside it."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh/id_rsa"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    (home / "recipes").mkdir()
    (home / "recipes/soup.md").write_text("# Soup\n\nLeek soup simmers for forty minutes.\n")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tea.md").write_text("# Tea\n\nGreen tea is steeped at eighty degrees.\n")
    (folder / "key.txt").symlink_to(key)
    (folder / "recipes").symlink_to(home / "recipes", target_is_directory=True)
    return folder, key, home / "recipes"


def searchable(index: Index) -> set[str]:
    return {p.uri for h in index.search("private key soup tea", k=10) for p in h.places}


@pytest.mark.slow
def test_links_outside_the_folder_are_skipped_unless_asked_for(tmp_path: Path) -> None:
    folder, key, recipes = secrets_and_links(tmp_path)
    index_dir = tmp_path / "idx"
    root = folder.resolve().as_posix()
    with Index(index_dir) as index:
        planned = index.plan([folder])
        assert (planned.new, planned.skipped) == (1, 2)
        assert index.plan([folder], follow_links=True).new == 3

    first = cli(index_dir, "sync", str(folder), "-v")  # -v lists each skipped file
    assert first.returncode == 0, first.stderr
    said = " ".join(first.stdout.split())
    for link, target in (("key.txt", key), ("recipes", recipes)):
        # the terminal may show the link's path relative to the working directory
        assert (f"{folder.name}/{link}: symbolic link to {target.resolve().as_posix()} "
                "outside the source; pass --follow-links to index it") in said, first.stdout
    with Index(index_dir) as index:
        assert searchable(index) == {f"{root}/tea.md"}

    followed = cli(index_dir, "sync", str(folder), "--follow-links", "--json")
    assert followed.returncode == 0, followed.stderr
    report = json.loads(followed.stdout)
    assert (report["new"], report["changed"], report["skipped"]) == (1, 1, 0)  # key.txt: changed
    config = tomllib.loads((index_dir / "config.toml").read_text())
    assert config["sources"] == [{"path": root, "follow_links": True}]
    with Index(index_dir) as index:
        assert searchable(index) == {f"{root}/tea.md", f"{root}/key.txt",
                                     f"{root}/recipes/soup.md"}
        assert index.sync().unchanged == 3  # no paths: the stored source, links and all

        withdrawn = index.sync([folder])  # named again without the flag
        assert (withdrawn.deleted, withdrawn.skipped) == (2, 2) and withdrawn.complete
        assert searchable(index) == {f"{root}/tea.md"}
        assert {(Path(p.uri).name, p.reason.split(";")[0]) for p in index.status().problems} == {
            ("key.txt", f"symbolic link to {key.resolve().as_posix()} outside the source"),
            ("recipes", f"symbolic link to {recipes.resolve().as_posix()} outside the source"),
        }


@pytest.mark.slow
def test_add_remembers_follow_links(tmp_path: Path) -> None:
    folder, _, _ = secrets_and_links(tmp_path)
    index_dir = tmp_path / "idx"
    added = cli(index_dir, "add", str(folder), "--follow-links")
    assert added.returncode == 0, added.stderr
    with Index(index_dir) as index:
        assert [s.follow_links for s in index.config.sources] == [True]
        report = index.sync()
    assert (report.new, report.skipped) == (3, 0)


def test_a_follow_links_setting_that_is_not_a_boolean_says_what_to_fix(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[[sources]]\npath = "/notes"\nfollow_links = "yes"\n')
    with pytest.raises(ConfigError, match="follow_links must be true or false"):
        configfile.read(tmp_path)


def test_a_source_folder_whose_own_name_is_not_utf8_is_refused(tmp_path: Path) -> None:
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(folder)
    with open(os.path.join(folder, b"a.md"), "w") as file:
        file.write("# A\n\nAlpha.\n")
    with Index(tmp_path / "idx") as index, pytest.raises(SourceError) as refused:
        index.sync([os.fsdecode(folder)])
    assert str(refused.value) == (
        f"source file://{tmp_path.resolve().as_posix()}/caf%E9 has a name that is not valid "
        "UTF-8; rename it, or give a folder that contains it")
    with Index(tmp_path / "idx") as index:
        report = index.sync([tmp_path], include=("*.md",))
    assert report.new == 1 and report.complete
