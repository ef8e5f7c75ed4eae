"""A lost or corrupt ledger, a damaged store: every command refuses with one clear line,
`indexer doctor --repair` mends the index without spending, and no chunk is paid twice."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import lance
import pytest

from emulator.fixture import Emulator
from indexer import DamageError, Index
from indexer.config import Config
from indexer.state.layout import Layout
from indexer.state.store import Store, StoreHealth
from support import open_index, paid_twice, store_rows, sync_until_done

COMMANDS = (["sync"], ["status"], ["search", "cancel a batch"], ["doctor"])


def cli(index_dir: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "indexer", "--index", str(index_dir), *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 1 with a one-line error naming the damage and the repair, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "indexer doctor --repair" in lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def repair(index_dir: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = cli(index_dir, "doctor", "--repair", "--json", env=env)
    assert result.returncode == 0, (result.stdout, result.stderr)
    checkup: dict[str, Any] = json.loads(result.stdout)
    assert checkup["healthy"]
    return checkup


def finding(checkup: dict[str, Any], check: str, containing: str = "") -> dict[str, Any]:
    found = [f for f in checkup["findings"]
             if f["check"] == check and containing in f["message"] and f["repaired"]]
    assert found, checkup
    return found[0]


def generation(index_dir: Path) -> Path:
    return Layout(index_dir).current


# -- point 2: a deleted ledger with a batch in flight (OpenAI emulator) ----------------------


IN_FLIGHT = {
    "shard kept": (True, True),
    "shard lost": (True, False),  # its keys are read from the uploaded input file
    "no table yet": (False, True),  # the first sync's batch is still running
}


@pytest.mark.slow
@pytest.mark.parametrize("case", IN_FLIGHT)
def test_deleted_ledger_with_a_batch_in_flight_is_rebuilt_and_each_chunk_paid_once(
        case: str, docs: Path, tmp_path: Path, emu: Emulator,
        clean: dict[str, tuple[object, ...]]) -> None:
    """The ledger is deleted while a batch runs: the next sync is refused, doctor --repair
    rebuilds the ledger with the batch in flight, and the sync after collects it."""
    table_first, shard_kept = IN_FLIGHT[case]
    before = emu.stats()
    index_dir = tmp_path / "idx"
    batches = 1
    if table_first:
        later = [docs / "guides", docs / "faq.txt"]
        aside = tmp_path / "aside"
        aside.mkdir()
        for path in later:
            shutil.move(path, aside / path.name)
        with open_index(index_dir, emu) as index:
            assert index.sync([docs]).complete  # the table holds the first documents
        for path in later:
            shutil.move(aside / path.name, path)
        batches += 1
    emu.configure(speed=0)  # the next batch stays in progress
    with open_index(index_dir, emu) as index:
        report = index.sync([docs])
    assert report.in_flight == 1 and report.jobs == 1
    if not shard_kept:
        for path in (generation(index_dir) / "batches").glob("*.jsonl"):
            path.unlink()
    (generation(index_dir) / "state.db").unlink()

    env = {"OPENAI_BASE_URL": emu.base_url}
    assert_refused(cli(index_dir, "sync", env=env), "ledger", "missing")
    checkup = repair(index_dir, env)
    rebuilt = finding(checkup, "ledger", "rebuilt")
    assert "1 batch(es) in flight" in rebuilt["message"]
    assert (rebuilt["count"] > 0) == table_first  # the first sync's keys, from the store

    emu.configure(speed=float("inf"))
    with open_index(index_dir, emu) as index:
        report = sync_until_done(index)
        assert report.complete and report.jobs == 0  # collected, nothing submitted again
        status = index.status()
    assert status.chunks_pending == 0 and status.chunks_failed == 0
    assert store_rows(index_dir) == clean
    assert paid_twice(emu, before) == []
    assert emu.stats()["batches_created"] - before["batches_created"] == batches


def test_a_key_the_store_holds_is_never_submitted_again(docs: Path, tmp_path: Path,
                                                        emu: Emulator) -> None:
    """Whatever the ledger says (here: every key pending again), the store is keyed by
    content: a key that has a vector is recorded as embedded, not paid for."""
    from indexer.state.ledger import Ledger

    index_dir = tmp_path / "idx"
    with open_index(index_dir, emu) as index:
        assert index.sync([docs]).complete
    ledger = Ledger(generation(index_dir) / "state.db")
    keys = sorted(ledger.keys_in_state("embedded"))
    ledger.requeue(keys)
    ledger.close()
    rows = store_rows(index_dir)
    before = emu.stats()
    with open_index(index_dir, emu) as index:
        report = index.sync([])
        assert report.complete and report.jobs == 0 and report.embedded == 0
        assert index.status().passages == len(keys)
    assert emu.stats()["batches_created"] == before["batches_created"]
    assert store_rows(index_dir) == rows


# -- points 2 and 8: a deleted or corrupt ledger (local backend) ----------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synced local index and its docs folder; tests work on copies of both."""
    from conftest import EXAMPLES

    root = tmp_path_factory.mktemp("built")
    shutil.copytree(EXAMPLES / "docs", root / "docs")
    with Index(root / "idx") as index:
        assert index.sync([root / "docs"]).complete
    return root / "idx", root / "docs"


def copy_of(built: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the built index whose sources are the original docs folder."""
    index_dir = tmp_path / "idx"
    shutil.copytree(built[0], index_dir)
    return index_dir


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def zero(path: Path) -> None:
    path.write_bytes(b"\0" * path.stat().st_size)


def garbage(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.seek(2 * 4096)
        handle.write(os.urandom(4 * 4096))


def delete(path: Path) -> None:
    path.unlink()


LEDGER_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "deleted": (delete, "missing"),
    "truncated": (truncate, "damaged"),
    "zeroed": (zero, "damaged"),
    "garbage pages": (garbage, "damaged"),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", LEDGER_DAMAGE)
def test_lost_or_corrupt_ledger_is_refused_then_rebuilt_without_embedding(
        damage: str, built: tuple[Path, Path], tmp_path: Path) -> None:
    index_dir = copy_of(built, tmp_path)
    rows = store_rows(index_dir)
    ledger = generation(index_dir) / "state.db"
    spoil, word = LEDGER_DAMAGE[damage]
    spoil(ledger)

    for command in COMMANDS:
        assert_refused(cli(index_dir, *command), "ledger", word)
    checkup = repair(index_dir)
    assert finding(checkup, "ledger", "rebuilt")["count"] == len(rows)
    if damage != "deleted":
        assert finding(checkup, "ledger", "set aside")
        assert list(ledger.parent.glob("state.db.corrupt-*"))
    with Index(index_dir) as index:
        report = index.sync()
        assert report.complete and report.embedded == 0
        assert "indexer cancel" in index.search("how do I cancel a batch?", k=1)[0].text
    assert store_rows(index_dir) == rows


def test_a_ledger_spoiled_in_place_after_a_clean_close_is_still_refused(
        built: tuple[Path, Path], tmp_path: Path) -> None:
    """Opening trusts a ledger left as a clean close recorded it (so commands do not read
    the whole file): bytes changed in place since, size and mtime kept, are still found."""
    index_dir = copy_of(built, tmp_path)
    with Index(index_dir) as index:
        assert index.sync().complete  # closed cleanly in place: its stamp is recorded
    ledger = generation(index_dir) / "state.db"
    assert (ledger.parent / "state.db-closed").exists()
    with Index(index_dir) as index:
        index.status()  # opened as left, closed again
    before = ledger.stat()
    garbage(ledger)
    os.utime(ledger, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert ledger.stat().st_size == before.st_size
    from indexer.state.ledger import Ledger

    for readonly in (True, False):  # refused on open, before any command reads a page
        with pytest.raises(DamageError, match="damaged"):
            Ledger(ledger, readonly=readonly)
    with pytest.raises(DamageError, match="damaged"), Index(index_dir) as index:
        index.sync()


@pytest.mark.slow
def test_an_index_made_before_identities_were_kept_is_rebuilt_too(
        built: tuple[Path, Path], tmp_path: Path) -> None:
    """Without identity.json, the model and dimensions come from the table."""
    index_dir = copy_of(built, tmp_path)
    rows = store_rows(index_dir)
    (generation(index_dir) / "identity.json").unlink()
    (generation(index_dir) / "state.db").unlink()
    assert_refused(cli(index_dir, "status"), "missing")
    repair(index_dir)
    assert json.loads((generation(index_dir) / "identity.json").read_text())["backend"] == "local"
    with Index(index_dir) as index:
        assert index.sync().embedded == 0
    assert store_rows(index_dir) == rows


# -- point 7: a damaged store -----------------------------------------------------------------


def table(index_dir: Path) -> Any:
    return lance.dataset(str(generation(index_dir) / "lancedb" / "chunks.lance"))


def drop_table(index_dir: Path) -> None:
    shutil.rmtree(generation(index_dir) / "lancedb")


def data_files(index_dir: Path, vectors: bool) -> list[Path]:
    """After pruning old versions, the data files that hold the vectors (or those that hold
    none: the passage columns a first publication writes beside the vectors)."""
    with Index(index_dir) as index:
        status = index.status()
    Store(generation(index_dir) / "lancedb", status.model, status.dimensions,
          replace(StoreHealth.from_config(Config()), retention_seconds=0)).optimize()
    dataset = table(index_dir)
    vector = dataset.lance_schema.field("vector").id()
    data = generation(index_dir) / "lancedb" / "chunks.lance" / "data"
    return [data / f.path for fragment in dataset.get_fragments()
            for f in fragment.metadata.files if (vector in f.fields) == vectors]


def delete_vector_file(index_dir: Path) -> None:
    """Delete a data file holding vectors, no earlier version kept: its rows are gone."""
    data_files(index_dir, vectors=True)[-1].unlink()


def delete_passage_file(index_dir: Path) -> None:
    """Delete the passages a publication wrote beside the vectors, no earlier version kept:
    the vectors are still there, so nothing may be paid again."""
    data_files(index_dir, vectors=False)[-1].unlink()


def delete_index_files(index_dir: Path) -> None:
    files = generation(index_dir) / "lancedb" / "chunks.lance" / "_indices"
    for index in table(index_dir).describe_indices():
        for segment in index.segments:
            shutil.rmtree(files / str(segment.uuid))


def drop_text(index_dir: Path) -> None:
    table(index_dir).drop_columns(["text"])


def drop_vector(index_dir: Path) -> None:
    table(index_dir).drop_columns(["vector"])


STORE_DAMAGE: dict[str, tuple[Callable[[Path], None], str, bool]] = {
    "table deleted": (drop_table, "the search table is missing", True),
    "vector file deleted": (delete_vector_file, "can no longer be read", True),
    "passage file deleted": (delete_passage_file, "can no longer be read", False),
    "index files deleted": (delete_index_files, "the files of index(es)", False),
    "text column dropped": (drop_text, "column(s) text are gone", False),
    "vector column dropped": (drop_vector, "column(s) vector are gone", False),
}
"""Damage, what the error says, and whether the vectors are lost (else nothing is paid)."""
REFUSED_BY_SYNC = ("table deleted", "vector file deleted", "passage file deleted")


@pytest.mark.slow
@pytest.mark.parametrize("damage", STORE_DAMAGE)
def test_damaged_store_is_refused_then_restored(damage: str, built: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    index_dir = copy_of(built, tmp_path)
    rows = store_rows(index_dir)
    spoil, message, vectors_lost = STORE_DAMAGE[damage]
    spoil(index_dir)
    extra = tmp_path / "extra"  # a new file: the sync has to open the store
    extra.mkdir()
    (extra / "note.md").write_text("# Sourdough\n\nA starter needs flour, water and time.\n")

    if damage == "table deleted":  # seen without opening the store
        assert_refused(cli(index_dir, "status"), message)
    if damage in REFUSED_BY_SYNC:  # was: exit 0, or a RuntimeError
        assert_refused(cli(index_dir, "sync", str(extra)), message)
        assert cli(index_dir, "doctor").returncode == 1
    refused = re.escape(message) + ".*run `indexer doctor --repair`"
    with Index(index_dir) as index:
        with pytest.raises(DamageError, match=refused):
            index.sync([extra])
        with pytest.raises(DamageError, match=refused):
            index.search("how do I cancel a batch?", hybrid=True)
        found = index.doctor()
        assert not found.healthy and [f.check for f in found.findings] == ["store"]

        repaired = index.doctor(repair=True)
        assert repaired.healthy
        lost = next(f.count for f in repaired.findings if f.check == "store")
        assert (lost > 0) == vectors_lost
        if damage == "table deleted":
            assert lost == len(rows)
        report = index.sync()
        assert report.complete and report.embedded == lost + 1  # and the new note
        assert index.doctor().healthy
        assert "indexer cancel" in index.search("cancel a batch", k=1, hybrid=True)[0].text
    after = store_rows(index_dir)
    assert {k: v for k, v in after.items() if k in rows} == rows and len(after) == len(rows) + 1


@pytest.mark.slow
def test_rows_of_a_deleted_data_file_are_recovered_from_earlier_versions(
        built: tuple[Path, Path], tmp_path: Path) -> None:
    """Right after a sync the versions before compaction are still on disk: the rows of a
    deleted data file are read back from them, and nothing is embedded again."""
    index_dir = copy_of(built, tmp_path)
    rows = store_rows(index_dir)
    data = generation(index_dir) / "lancedb" / "chunks.lance" / "data"
    max(data.glob("*"), key=lambda p: p.stat().st_mtime).unlink()  # the compacted file
    with Index(index_dir) as index:
        restored = next(f for f in index.doctor(repair=True).findings if f.check == "store")
        assert restored.count == 0 and f"{len(rows)} recovered from intact" in restored.message
        assert index.sync().embedded == 0
    assert store_rows(index_dir) == rows


@pytest.mark.slow
def test_schema_of_another_version_is_migrated_in_place(built: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    """A column a newer version added is kept; n_places missing (an older version) is
    derived; the next sync that writes migrates the table and search works again."""
    index_dir = copy_of(built, tmp_path)
    rows = store_rows(index_dir)
    table(index_dir).add_columns({"language": "CAST('en' AS STRING)"})
    table(index_dir).drop_columns(["n_places"])
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "note.md").write_text("# Sourdough\n\nA starter needs flour, water and time.\n")
    with Index(index_dir) as index:
        assert "schema change" in index.doctor().findings[0].message
        report = index.sync([extra])
        assert report.complete and report.embedded == 1
        assert index.doctor().healthy
        assert "flour, water" in index.search("bread starter", k=1)[0].text
    assert "language" in table(index_dir).schema.names
    after = store_rows(index_dir)
    assert {k: v for k, v in after.items() if k in rows} == rows and len(after) == len(rows) + 1
