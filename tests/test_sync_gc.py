"""A sync collects garbage less often while it runs, and leaves the process's collector
as it found it (a library caller's own settings are not changed behind its back)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer import Index


@pytest.fixture()
def thresholds() -> Iterator[None]:
    """The collector's thresholds are put back whatever the test does."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


class Watch:
    """A progress display that notes the collector's young threshold at every stage."""

    def __init__(self) -> None:
        self.young: list[int] = []

    def stage(self, name: str, total: int | None = None) -> None:
        self.young.append(gc.get_threshold()[0])

    def advance(self, n: int = 1) -> None:
        pass

    def end(self) -> None:
        pass

    def update(self, name: str, completed: int, total: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass


def test_a_sync_restores_the_callers_collector_thresholds(tmp_path: Path, docs: Path,
                                                           thresholds: None) -> None:
    gc.set_threshold(500, 7, 9)
    watch = Watch()
    with Index(tmp_path / "idx", backend="local", progress=watch) as index:
        report = index.sync([docs])
    assert report.chunks > 0
    assert watch.young and set(watch.young) == {10_000}  # raised while the sync ran
    assert gc.get_threshold() == (500, 7, 9)


def test_a_threshold_above_the_syncs_own_is_kept(tmp_path: Path, docs: Path,
                                                 thresholds: None) -> None:
    gc.set_threshold(50_000, 10, 10)
    with Index(tmp_path / "idx", backend="local") as index:
        index.sync([docs])
    assert gc.get_threshold() == (50_000, 10, 10)
