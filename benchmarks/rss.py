"""This process's peak resident memory, read without importing anything heavy (a child
that measures its own imports must not pay for the meter's)."""

from __future__ import annotations

import resource
from pathlib import Path


def hwm_mb() -> float:
    """Peak resident memory so far, in MB: VmHWM where there is /proc (``ru_maxrss`` keeps
    the parent's peak across fork and exec)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
