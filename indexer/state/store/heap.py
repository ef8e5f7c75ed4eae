"""The C heap's policy for this process: large buffers freed go back to the system.

LanceDB's and Arrow's buffers of a megabyte or more are allocated and freed from many
threads. glibc's malloc raises its mmap threshold each time such a buffer is freed (up to
32 MB), after which those buffers come from per-thread heaps that keep the freed memory:
a sync's resident memory then grows with the table it reads and writes rather than with
the batch in flight. A fixed threshold keeps every such buffer mapped on its own, so
freeing it returns it at once. Measured on a 54,000-row table rewritten 2,000 rows at a
time: 380 MB more at peak without, 170 MB with (see benchmarks/sync_profile.py).
"""

from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter: the size from which ``malloc`` maps memory on its own."""
_THRESHOLD = 1 << 20


def return_freed_buffers() -> bool:
    """Fix the C heap's mmap threshold at 1 MiB; False where the C library is not glibc
    (nothing is changed there)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
