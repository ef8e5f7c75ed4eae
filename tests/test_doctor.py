"""indexer doctor: a healthy index passes; damage is found, and repaired without spending."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from indexer import Index
from indexer.state.layout import Layout
from indexer.state.store import Store


def doctor(index_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run([sys.executable, "-m", "indexer", "--index", str(index_dir),
                             "doctor", "--json", *args], capture_output=True, text=True,
                            timeout=300)
    return result.returncode, json.loads(result.stdout)


@pytest.mark.slow
def test_doctor_finds_and_repairs_damage(docs: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    with Index(index_dir) as index:
        index.sync([docs])
        status = index.status()
    assert doctor(index_dir) == (0, {"healthy": True, "checks": [
        "ledger", "store", "duplicate keys", "orphan rows", "missing vectors", "places",
        "leftover batch files",
        "old generations"],
        "findings": []})

    store = Store(Layout(index_dir).current / "lancedb", status.model, status.dimensions)
    rows = store.places()
    victim, duplicate = rows[0][0], rows[1][0]
    store.delete([victim])                                   # a lost vector
    table = store._table
    table.insert(table.to_table(filter=f"custom_id = '{duplicate}'", limit=1))
    orphan = table.to_table(filter=f"custom_id = '{rows[2][0]}'", limit=1)
    table.insert(orphan.set_column(0, "custom_id", [["orphan-key"]]))

    code, found = doctor(index_dir)
    checks = {f["check"]: f["count"] for f in found["findings"]}
    assert code == 1 and checks == {"duplicate keys": 1, "orphan rows": 1, "missing vectors": 1}

    code, repaired = doctor(index_dir, "--repair")
    assert code == 0 and repaired["healthy"]
    with Index(index_dir) as index:
        report = index.sync()
        assert report.embedded == 1  # only the lost vector is embedded again
    assert doctor(index_dir)[1]["findings"] == []
    fresh = Store(Layout(index_dir).current / "lancedb", status.model, status.dimensions)
    keys = [k for k, _ in fresh.places()]
    assert len(keys) == len(set(keys)) == len(rows)
