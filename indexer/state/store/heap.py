"""This process's memory policy for LanceDB: the C heap's, and how much a bulk read holds.

LanceDB's and Arrow's buffers of a megabyte or more are allocated and freed from many
threads. glibc's malloc raises its mmap threshold each time such a buffer is freed (up to
32 MB), after which those buffers come from per-thread heaps that keep the freed memory:
a sync's resident memory then grows with the table it reads and writes rather than with
the batch in flight. A fixed threshold keeps every such buffer mapped on its own, so
freeing it returns it at once. Measured on a 54,000-row table rewritten 2,000 rows at a
time: 380 MB more at peak without, 170 MB with (see benchmarks/sync_profile.py).

A scan that Lance plans by itself (the vector index's build reads every vector) reads
ahead into a buffer of up to 2 GiB, in batches of thousands of rows: at 1,536 dimensions
the build held +432 MB at 57,000 rows. :func:`bounded_reads` caps both for the upkeep
that runs such scans (+98 MB at 57,000 rows, +114 MB at 170,000, for the same CPU). The
build then reads its shuffled codes back in windows of adjacent partitions of up to
128 MiB, unless told to read its offsets from disk, partition by partition: +273 MB at
570,000 rows with the windows, +124 MB without, the same index for the same CPU.
A batch of rows as wide as 1,536-dimension vectors would be 6 MB: over the mmap
threshold, each one was mapped, faulted in page by page and unmapped again, so the
batches hold as many rows as fit under it (160 at 1,536 dimensions: the vector index's
build 4.0 -> 3.45 CPU-s at 57,000 rows, for the same memory). The build itself still
read each 12 MB page of vectors (one per 2,000-row write) into a fresh mapping, and
glibc trimmed its heaps after frees only to fault the memory in again moments later
(380k page faults at 57,000 rows): it runs inside :func:`reused_buffers`.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

import pyarrow as pa

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
"""glibc's ``mallopt`` parameters: the free memory at a heap's top past which it is handed
back, and the size from which ``malloc`` maps memory on its own."""
_THRESHOLD = 1 << 20
_TRIM = 128 << 10
"""glibc's own trim threshold."""
_REUSED = (16 << 20, 8 << 20)
"""The mmap and trim thresholds inside :func:`reused_buffers`."""


def _libc(name: str) -> Callable[..., int] | None:
    """The C library's function ``name`` (of the library the interpreter runs on), or None
    where it has none (not glibc)."""
    try:
        return cast("Callable[..., int]", getattr(ctypes.CDLL(None), name))
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc("malloc_trim")
BOUNDED_READS = {
    "LANCE_DEFAULT_IO_BUFFER_SIZE": str(32 << 20),  # bytes read ahead (default 2 GiB)
    "LANCE_DEFAULT_BATCH_SIZE": "1024",  # rows a scan's batch holds
    "LANCE_SHUFFLE_BATCH_BYTES": str(16 << 20),  # index build: codes held before a spill
    "LANCE_SHUFFLE_MAX_PRELOADED_OFFSETS_BYTES": "0",  # its shuffle's offsets read as needed
}
"""The Lance settings (read from the environment at each operation) of :func:`bounded_reads`;
one the user set already is left as it is."""


def release_freed() -> None:
    """Hand the free pages inside the C heap back to the system (glibc's ``malloc_trim``;
    nothing elsewhere), and those Arrow's own allocator (mimalloc, which ``malloc_trim``
    does not reach) keeps. Buffers under the mmap threshold that LanceDB freed stay in
    their heaps otherwise, so each step of publishing started from the peak of the one
    before it (at 570k rows, 42 MB back after rewriting 6,600 rows, for 3 ms); Arrow's
    kept 27 MB at 57k rows when publishing ended."""
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def return_freed_buffers() -> bool:
    """Fix the C heap's mmap threshold at 1 MiB; False where the C library is not glibc
    (nothing is changed there)."""
    mallopt = _libc("mallopt")
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))


_reusing = [0]  # how many reused_buffers() are open


@contextmanager
def reused_buffers() -> Iterator[None]:
    """Inside, buffers under 16 MiB come from the C heap and a heap keeps up to 8 MiB free
    at its top, so a bulk step's buffers of a few megabytes are reused rather than mapped,
    faulted in page by page and unmapped each time (the vector index's build at 57k rows
    of 1,536 dimensions: 380k page faults -> 170k). After it, the 1 MiB threshold again,
    and what it freed is handed back (:func:`release_freed`). Where the C library is not
    glibc, the thresholds stay as they are and only what it freed is handed back."""
    mallopt = _libc("mallopt")
    if mallopt is None or not return_freed_buffers():
        try:
            yield
        finally:
            release_freed()
        return
    _reusing[0] += 1
    mallopt(_M_MMAP_THRESHOLD, _REUSED[0])
    mallopt(_M_TRIM_THRESHOLD, _REUSED[1])
    try:
        yield
    finally:
        _reusing[0] -= 1
        if not _reusing[0]:
            mallopt(_M_TRIM_THRESHOLD, _TRIM)
            mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)
            release_freed()


def batch_rows(row_bytes: int) -> int:
    """Rows a bounded scan's batch holds when a row is ``row_bytes`` wide: at most 1,024,
    and few enough that the batch stays under the C heap's mmap threshold (so its buffers
    are reused, not mapped and faulted in anew for every batch)."""
    fits = (_THRESHOLD - _THRESHOLD // 16) // max(row_bytes, 1)
    return max(16, min(int(BOUNDED_READS["LANCE_DEFAULT_BATCH_SIZE"]), fits))


@contextmanager
def bounded_reads(row_bytes: int = 0) -> Iterator[None]:
    """Lance operations started inside read ahead at most 32 MB, 1,024 rows a batch (fewer
    when rows of ``row_bytes``, the widest column's, would make a batch of a megabyte or
    more: see :func:`batch_rows`).

    Only for a writer's upkeep: small batches cost a search about a millisecond more.
    The settings live in the process's environment, so another thread's Lance operation
    started meanwhile is bounded too (never wrong, only slower)."""
    wanted = {**BOUNDED_READS, "LANCE_DEFAULT_BATCH_SIZE": str(batch_rows(row_bytes))}
    added = {name: value for name, value in wanted.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
