"""Helpers shared by the OpenAI tests: open an index on the emulator, read its store,
ask the emulator what was paid for twice, run the CLI against it. The ``emu`` and
``clean`` fixtures live in ``conftest.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lance

from emulator.fixture import Emulator
from indexer import Index, SyncReport
from indexer.state.layout import Layout


def open_index(path: Path, emu: Emulator, **config: Any) -> Index:
    """An OpenAI index on the emulator (a new one gets a short timeout and fast polls)."""
    if not path.exists():
        path.mkdir(parents=True)
        settings = {"backend": "openai", "timeout": 5.0, "poll_seconds": 0.05, **config}
        lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
        (path / "config.toml").write_text("[index]\n" + "\n".join(lines) + "\n")
    return Index(path, base_url=emu.base_url)


def store_rows(index_dir: Path) -> dict[str, tuple[object, ...]]:
    """Every store row by key: rounded vector, text, place URIs, place count."""
    generation = Layout(index_dir).current
    rows = lance.dataset(str(generation / "lancedb" / "chunks.lance")).to_table().to_pylist()
    return {r["custom_id"]: (tuple(round(x, 5) for x in r["vector"]), r["text"],
                             tuple(p["uri"] for p in r["places"]), r["n_places"])
            for r in rows}


def store_keys(index_dir: Path) -> list[str]:
    """The key of every store row, a key held by two rows twice."""
    generation = Layout(index_dir).current
    table = lance.dataset(str(generation / "lancedb" / "chunks.lance"))
    return table.to_table(columns=["custom_id"]).column("custom_id").to_pylist()


def sync_until_done(index: Index, rounds: int = 6) -> SyncReport:
    """Sync again until nothing is in flight or waiting (at most ``rounds`` more times)."""
    report = index.sync([])
    for _ in range(rounds):
        if report.complete:
            break
        report = index.sync([])
    return report


BILLED_GARBAGE = {"nan", "wrong_dims"}
"""Line faults the service bills although the vector is unusable: re-buying them is right."""


def paid_twice(emu: Emulator, before: dict[str, Any]) -> list[str]:
    """custom_ids delivered more than once since ``before`` (a stats snapshot), except
    those whose first delivery was an unusable vector."""
    stats = emu.stats()
    old = before["by_custom_id"]
    garbage = {k for k, fault in stats["faulted"].items() if fault in BILLED_GARBAGE}
    return [k for k, n in stats["by_custom_id"].items()
            if n - old.get(k, 0) > 1 and k not in garbage]


def cli(index_dir: Path, emu: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    """``indexer --index DIR ARGS...`` as a user runs it, against the emulator."""
    env = {**os.environ, "OPENAI_BASE_URL": emu.base_url}
    return subprocess.run([sys.executable, "-m", "indexer", "--index", str(index_dir), *args],
                          env=env, text=True, capture_output=True, timeout=300)


def wait_for_call(emu: Emulator, route: str, count: int, timeout: float = 60.0) -> None:
    """Wait until the emulator has answered ``route`` at least ``count`` times."""
    deadline = time.monotonic() + timeout
    while emu.stats()["calls"].get(route, 0) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{route} was never called")
        time.sleep(0.05)
