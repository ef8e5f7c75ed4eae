"""kill -9 the indexer at each step of a batch, restart, and converge with no double spend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from emulator.fixture import Emulator
from support import (
    open_index,
    paid_twice,
    store_keys,
    store_rows,
    sync_until_done,
    wait_for_call,
)

STEPS: dict[str, dict[str, Any]] = {
    "after upload, before create": {"route": "batches.create", "action": "hang", "seconds": 20},
    "after create, before its answer": {"route": "batches.create", "action": "hang",
                                        "seconds": 20, "after": True},
    "while polling": {"route": "batches.retrieve", "action": "hang", "seconds": 20},
    "mid-download": {"route": "files.content", "action": "hang", "seconds": 20},
    "after ingest, before cleanup": {"route": "files.delete", "action": "hang", "seconds": 20},
}


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step_then_converge(step: str, docs: Path, tmp_path: Path, emu: Emulator,
                                         clean: dict[str, tuple[object, ...]]) -> None:
    fault = STEPS[step]
    index_dir = tmp_path / "killed"
    open_index(index_dir, emu).close()  # writes the index's config (openai backend)
    before = emu.stats()
    calls = before["calls"].get(fault["route"], 0)
    emu.inject({"routes": [fault]})
    env = {**os.environ, "OPENAI_BASE_URL": emu.base_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "indexer", "--index", str(index_dir), "sync", str(docs)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_call(emu, fault["route"], calls + 1)
        time.sleep(0.2)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    emu.clear_faults()

    with open_index(index_dir, emu) as index:
        report = sync_until_done(index)
    assert report.complete, report
    assert store_rows(index_dir) == clean
    assert paid_twice(emu, before) == []
    created = emu.stats()["batches_created"] - before["batches_created"]
    assert created == 1, f"{created} batches were created for one shard"


@pytest.mark.parametrize("when", ["mid-write", "after the write"])
def test_crash_mid_ingest_then_converge(when: str, docs: Path, tmp_path: Path, emu: Emulator,
                                        clean: dict[str, tuple[object, ...]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash while an output file's vectors are written to the store, or after they are
    but before the ledger records them: the next sync converges, no row twice."""
    from indexer.state.store import Store

    class Crash(BaseException):
        pass

    real_put = Store.put_vectors

    def crashing(self: Store, groups: Any, fresh: bool = False) -> None:
        def two_then_crash() -> Any:
            for number, group in enumerate(groups):
                if number == 2:
                    raise Crash
                yield group

        real_put(self, two_then_crash() if when == "mid-write" else groups, fresh)
        raise Crash

    monkeypatch.setattr(Store, "put_vectors", crashing)
    before = emu.stats()
    index_dir = tmp_path / "crashed"
    with pytest.raises(Crash), open_index(index_dir, emu, group_size=4) as index:
        index.sync([docs])  # output is read in groups of 4 rows
    monkeypatch.setattr(Store, "put_vectors", real_put)
    with open_index(index_dir, emu) as index:
        report = sync_until_done(index)
    assert report.complete
    assert store_rows(index_dir) == clean
    assert len(store_keys(index_dir)) == len(clean)  # no key has two rows
    assert paid_twice(emu, before) == []
    assert emu.stats()["batches_created"] - before["batches_created"] == 1
