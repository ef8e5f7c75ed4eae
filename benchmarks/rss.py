"""This process's peak resident memory, read without importing anything heavy (a child
that measures its own imports must not pay for the meter's)."""

from __future__ import annotations

import os
import resource

_KEPT: dict[str, tuple[int, int]] = {}
"""Open descriptors of this process's ``/proc`` files by name, with the pid that opened
them (a forked child opens its own): opening a file costs several times reading it, and a
profile reads these thousands of times."""


def proc_file(name: str) -> int:
    """A descriptor of ``/proc/self/<name>``, kept open (raises OSError where there is
    none)."""
    pid = os.getpid()
    kept = _KEPT.get(name)
    if kept is None or kept[0] != pid:
        flags = os.O_RDWR if name == "clear_refs" else os.O_RDONLY
        _KEPT[name] = kept = (pid, os.open(f"/proc/{pid}/{name}", flags))
    return kept[1]


def hwm_mb() -> float:
    """Peak resident memory so far, in MB: VmHWM where there is /proc (``ru_maxrss`` keeps
    the parent's peak across fork and exec)."""
    try:
        status = os.pread(proc_file("status"), 1 << 16, 0)
        return int(status.split(b"VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
