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


def test_a_sync_restores_the_callers_collector_thresholds(tmp_path: Path, docs: Path,
                                                           thresholds: None) -> None:
    young: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            young.append(gc.get_threshold()[0])

    gc.set_threshold(500, 7, 9)
    gc.callbacks.append(watch)
    try:
        with Index(tmp_path / "idx", backend="local") as index:
            report = index.sync([docs])
    finally:
        gc.callbacks.remove(watch)
    assert report.chunks > 0
    assert gc.get_threshold() == (500, 7, 9)
    assert 10_000 in young  # the sync's own collections ran at the raised threshold


def test_a_threshold_above_the_syncs_own_is_kept(tmp_path: Path, docs: Path,
                                                 thresholds: None) -> None:
    gc.set_threshold(50_000, 10, 10)
    with Index(tmp_path / "idx", backend="local") as index:
        index.sync([docs])
    assert gc.get_threshold() == (50_000, 10, 10)
