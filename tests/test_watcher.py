"""Watch mode as a local assistant relies on it: every change reaches the store, once."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from watchfiles import Change

from indexer.errors import BackendError, IndexerError, LockedError, SourceError
from indexer.index import Index
from indexer.report import SyncReport
from indexer.watcher import ChangeFilter, watch

WAIT = 30.0
"""Upper bound on waiting for a report; a healthy run answers in well under a second."""


@dataclass
class Watching:
    """A ``watch`` running in a background thread, its reports and errors in queues."""

    folder: Path
    stop: threading.Event = field(default_factory=threading.Event)
    reports: queue.Queue[SyncReport] = field(default_factory=queue.Queue)
    errors: queue.Queue[IndexerError] = field(default_factory=queue.Queue)
    thread: threading.Thread | None = None

    def start(self) -> None:
        def run() -> None:
            with Index(self.folder / ".indexer") as index:
                index.config = replace(index.config, poll_seconds=1.0)
                watch(index, [self.folder], debounce_ms=100, on_report=self.reports.put,
                      on_error=self.errors.put, stop=self.stop)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def next_report(self) -> SyncReport:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                return self.reports.get(timeout=0.1)
            except queue.Empty:
                assert self.thread is not None and self.thread.is_alive(), "watch ended"
        raise AssertionError(f"no report within {WAIT} s")

    def save(self, name: str, text: str) -> None:
        """Write a note in one step, as editors save: write beside, then rename over."""
        scratch = self.folder.parent / f"{name}.saving"
        scratch.write_text(text)
        os.replace(scratch, self.folder / name)

    def settle(self) -> None:
        """Let any event already written be noticed (or filtered) before going on."""
        time.sleep(0.5)


@pytest.fixture()
def watching(tmp_path: Path) -> Iterator[Watching]:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "first.md").write_text("# First\n\nThe watcher keeps this index fresh.\n")
    session = Watching(folder)
    session.start()
    initial = session.next_report()
    assert initial.new == 1
    yield session
    session.stop.set()
    assert session.thread is not None
    session.thread.join(timeout=WAIT)


def test_create_edit_delete_each_reach_the_store(watching: Watching) -> None:
    watching.save("cats.md", "# Cats\n\nCats sleep most of the day.\n")
    assert watching.next_report().new == 1

    watching.save("cats.md", "# Cats\n\nCats sleep most of the day and hunt at night.\n")
    assert watching.next_report().changed == 1

    (watching.folder / "cats.md").unlink()
    report = watching.next_report()
    assert report.deleted == 1 and report.new == report.changed == 0
    assert watching.errors.empty()


def test_writes_inside_the_index_directory_trigger_nothing(watching: Watching) -> None:
    (watching.folder / ".indexer" / "scratch.md").write_text("# Not a source\n")
    (watching.folder / ".git").mkdir()
    (watching.folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    watching.settle()
    watching.save("dogs.md", "# Dogs\n\nDogs like walks.\n")
    report = watching.next_report()
    assert report.new == 1, "a sync ran for a write inside the index or .git"
    watching.settle()
    assert watching.reports.empty(), "the sync's own writes triggered another sync"


def test_an_index_directory_of_any_name_is_ignored(tmp_path: Path) -> None:
    folder, store = tmp_path / "notes", tmp_path / "notes" / "store"
    changes = ChangeFilter((folder,), store)
    assert not changes(Change.modified, str(store / "g1" / "state.db-wal"))
    assert not changes(Change.added, str(folder / "sub" / ".git" / "index"))
    assert not changes(Change.added, str(folder / ".cats.md.swp"))
    assert changes(Change.added, str(folder / "storehouse.md"))
    assert changes(Change.deleted, str(folder / "sub" / "cats.md"))


def test_stop_event_ends_the_watch_promptly(watching: Watching) -> None:
    watching.stop.set()
    assert watching.thread is not None
    watching.thread.join(timeout=5)
    assert not watching.thread.is_alive()


def test_a_locked_index_is_retried_not_fatal(watching: Watching,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real_sync = Index.sync
    calls: list[str] = []

    def locked_once(self: Index, *args: object, **kwargs: object) -> SyncReport:
        calls.append("sync")
        if len(calls) == 1:
            raise LockedError("another run holds the index")
        return real_sync(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Index, "sync", locked_once)
    watching.save("birds.md", "# Birds\n\nBirds sing at dawn.\n")
    assert watching.next_report().new == 1
    assert len(calls) == 2 and watching.errors.empty()


def test_other_errors_are_reported_and_watching_goes_on(
        watching: Watching, monkeypatch: pytest.MonkeyPatch) -> None:
    real_sync = Index.sync
    calls: list[str] = []

    def fails_once(self: Index, *args: object, **kwargs: object) -> SyncReport:
        calls.append("sync")
        if len(calls) == 1:
            raise BackendError("the model is unavailable")
        return real_sync(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Index, "sync", fails_once)
    watching.save("fish.md", "# Fish\n\nFish swim.\n")
    assert isinstance(watching.errors.get(timeout=WAIT), BackendError)
    watching.save("frogs.md", "# Frogs\n\nFrogs jump.\n")
    assert watching.next_report().new == 2


def test_batches_in_flight_are_collected_without_another_change(
        watching: Watching, monkeypatch: pytest.MonkeyPatch) -> None:
    real_sync = Index.sync
    calls: list[str] = []

    def in_flight_once(self: Index, *args: object, **kwargs: object) -> SyncReport:
        calls.append("sync")
        report = real_sync(self, *args, **kwargs)  # type: ignore[arg-type]
        if len(calls) == 1:
            report.in_flight = 1
        return report

    monkeypatch.setattr(Index, "sync", in_flight_once)
    watching.save("owls.md", "# Owls\n\nOwls hunt at night.\n")
    assert watching.next_report().in_flight == 1
    assert watching.next_report().complete
    assert len(calls) == 2


def test_sources_that_send_no_file_events_are_not_watched(tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "config.toml").write_text(
        '[index]\n\n[[sources]]\npath = "git+file:///srv/handbook@main"\n')
    stop = threading.Event()
    stop.set()
    with Index(index_dir) as index, pytest.raises(SourceError, match="scheduled `indexer sync`"):
        watch(index, [], on_report=lambda report: None, stop=stop)
