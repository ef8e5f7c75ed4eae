"""The store stays healthy over many small syncs: bounded fragments and versions, indices kept."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from indexer import Index
from indexer.state.layout import Layout
from indexer.state.store import Store


def configure(index_dir: Path, **settings: object) -> None:
    index_dir.mkdir(parents=True)
    lines = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in settings.items())
    (index_dir / "config.toml").write_text("[index]\n" + lines)


def open_store(index_dir: Path) -> Store:
    with Index(index_dir) as index:
        status = index.status()
    return Store(Layout(index_dir).current / "lancedb", status.model, status.dimensions)


def test_many_small_syncs_keep_fragments_and_versions_bounded(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(5):
        (folder / f"note{i}.md").write_text(f"# Note {i}\n\nThe first version of note {i}.\n")
    configure(tmp_path / "idx")  # default retention: 60 s, at most 20 versions
    shapes = []
    with Index(tmp_path / "idx") as index:
        index.sync([folder])
        for round_ in range(40):
            note = folder / f"note{round_ % 5}.md"
            note.write_text(f"# Note {round_ % 5}\n\nEdited in round {round_} of many.\n")
            report = index.sync([folder])
            assert report.embedded == 1 and report.complete
            shapes.append(open_store(tmp_path / "idx").stats())
    final = shapes[-1]
    assert final.rows == 5
    assert max(s.fragments for s in shapes[10:]) <= 3
    assert max(s.versions for s in shapes) <= 25  # max_versions + one optimize's own
    assert {"custom_id_idx", "text_idx"} <= set(final.indices)


def test_vector_index_is_built_past_the_threshold_and_search_still_finds(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    topics = ["volcanoes erupt lava", "penguins live in Antarctica", "bread needs yeast",
              "violins have four strings", "comets have icy tails", "rust prevents data races"]
    for i in range(60):
        topic = topics[i % len(topics)]
        (folder / f"doc{i:02d}.txt").write_text(f"Fact {i}: {topic}, remark number {i}.\n")
    configure(tmp_path / "idx", vector_index_rows=50)
    with Index(tmp_path / "idx") as index:
        index.sync([folder])
        started = time.perf_counter()
        hits = index.search("which birds live near the south pole?", k=3)
        assert time.perf_counter() - started < 30
    assert "vector_idx" in open_store(tmp_path / "idx").stats().indices
    assert all("penguins" in hit.text for hit in hits)


def test_upkeep_bounds_its_reads_and_leaves_the_environment_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``optimize`` builds the vector index with Lance's reads bounded (its scan held every
    vector otherwise), then gives the process its environment back: searches after a sync
    run unbounded (faster), and a Lance setting the user chose is never overridden."""
    import numpy as np

    from indexer.records import Place, StoreRow
    from indexer.state.store.heap import BOUNDED_READS

    for name in BOUNDED_READS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANCE_DEFAULT_BATCH_SIZE", "4096")  # the user's own
    seen: list[dict[str, str | None]] = []
    rng = np.random.default_rng(3)
    store = Store(tmp_path / "lancedb", "m", 16)
    store.put([StoreRow(f"k{i}", f"passage {i}", "", (Place(f"/d/{i}.md"),),
                        rng.standard_normal(16)) for i in range(300)])
    store.health = dataclasses.replace(store.health, vector_index_rows=100)
    build = store._table.create_index

    def watched(*args: object, **kwargs: object) -> object:
        seen.append({name: os.environ.get(name) for name in BOUNDED_READS})
        return build(*args, **kwargs)

    monkeypatch.setattr(store._table, "create_index", watched)
    store.optimize()
    assert "vector_idx" in store.stats().indices
    assert seen and all(s == {**BOUNDED_READS, "LANCE_DEFAULT_BATCH_SIZE": "4096"}
                        for s in seen)
    assert {name: os.environ.get(name) for name in BOUNDED_READS} == {
        **dict.fromkeys(BOUNDED_READS), "LANCE_DEFAULT_BATCH_SIZE": "4096"}


def test_a_first_sync_indexes_every_vector_once_with_bounded_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first publication builds the vector index before it writes the passages (a
    sync then holds less when it builds it): the index still covers every row after the
    sync, it is built once, with Lance's reads bounded and large buffers reused (where
    the C library is glibc), and the next sync keeps it whole."""
    import lance

    from indexer.state.store.heap import BOUNDED_READS, batch_rows

    for name in BOUNDED_READS:
        monkeypatch.delenv(name, raising=False)
    from indexer.state.store.heap import return_freed_buffers

    reused = return_freed_buffers()
    builds: list[tuple[str, bool]] = []
    build = lance.LanceDataset.create_index

    def watched(self: lance.LanceDataset, column: str, *args: object, **kwargs: object
                ) -> object:
        # a batch of vectors stays under the mmap threshold (see heap.batch_rows)
        width = 4 * self.schema.field("vector").type.list_size
        bounded = {**BOUNDED_READS, "LANCE_DEFAULT_BATCH_SIZE": str(batch_rows(width))}
        builds.append((column, all(os.environ.get(n) == v for n, v in bounded.items())
                       and _mapped_alone() is not reused))
        return build(self, column, *args, **kwargs)

    monkeypatch.setattr(lance.LanceDataset, "create_index", watched)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        (folder / f"doc{i:02d}.txt").write_text(f"Fact {i}: comets have icy tails, note {i}.\n")
    configure(tmp_path / "idx", vector_index_rows=50)
    with Index(tmp_path / "idx") as index:
        index.sync([folder])
        assert [b for b in builds if b[0] == "vector"] == [("vector", True)]
        (folder / "doc07.txt").write_text("Fact 7: penguins live in Antarctica.\n")
        index.sync([folder])
        hits = index.search("which birds live near the south pole?", k=1)
    assert [b for b in builds if b[0] == "vector"] == [("vector", True)]
    stats = open_store(tmp_path / "idx")._table.stats.index_stats("vector_idx")
    assert stats["num_unindexed_rows"] == 0
    assert stats["num_indexed_rows"] == 60
    assert "penguins" in hits[0].text


def _mapped_alone(count: int = 3) -> bool:
    """Whether ``count`` malloc'ed 4 MiB buffers each got a mapping of their own (glibc puts
    such a chunk 16 bytes past a page boundary; chunks in a heap follow each other). Under
    the mmap threshold they never do; over it they do unless a free chunk in the heap
    already fits one."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    held = [libc.malloc(4 << 20) for _ in range(count)]
    try:
        return all(address % 4096 == 16 for address in held)
    finally:
        for address in held:
            libc.free(address)


_REUSE_CHECK = """
import pytest
from test_store_health import _mapped_alone
from indexer.state.store.heap import return_freed_buffers, reused_buffers
if not return_freed_buffers():
    print("not glibc")
    raise SystemExit
seen = [_mapped_alone()]
with reused_buffers():
    seen.append(_mapped_alone())
    with reused_buffers():
        seen.append(_mapped_alone())
    seen.append(_mapped_alone())  # an inner step leaves the outer one's setting
seen.append(_mapped_alone())
with pytest.raises(OSError), reused_buffers():
    raise OSError("the table went away")
seen.append(_mapped_alone())
print(seen)
"""


@pytest.mark.slow
def test_a_bulk_step_reuses_large_buffers_then_maps_them_again() -> None:
    """Inside ``reused_buffers`` (the vector index's build) buffers of a few megabytes come
    from the C heap and are reused, instead of being mapped and faulted in anew each time;
    once the step is over, even when it failed, such a buffer is mapped on its own again,
    so freeing it gives it back to the system at once. (A process of its own: in one
    that has freed large buffers, a free chunk may serve the check's allocations.)"""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _REUSE_CHECK], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    if out == "not glibc":
        pytest.skip("the C library is not glibc")
    assert out == str([True, False, False, False, True, True])


def test_without_glibc_a_bulk_step_still_hands_back_what_it_freed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the C library has no ``mallopt`` (macOS, musl), the thresholds are left alone
    but what a bulk step freed (Arrow's pool) is still handed back after it."""
    from indexer.state.store import heap

    released: list[bool] = []
    monkeypatch.setattr(heap, "_libc", lambda name: None)
    monkeypatch.setattr(heap, "release_freed", lambda: released.append(True))
    with heap.reused_buffers():
        assert not released
    assert released == [True]
