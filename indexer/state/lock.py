"""The index's single-writer lock: who may write, and whether a holder still runs.

The lock itself is one row in the ledger (so it lives and dies with the index's
state, and taking it is one SQLite transaction); this module decides what a row
means: a :class:`Holder` on this host whose process is gone, or whose pid now belongs
to a later process, has left a stale lock that the next run takes over.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from indexer.errors import LockedError


@dataclass(frozen=True)
class Holder:
    """A run that holds (or asks for) the lock: its process, host, command and token."""

    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    since: float = field(default_factory=time.time)
    command: str = ""
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: str | None = None

    @classmethod
    def me(cls, command: str) -> Holder:
        """This process, asking for the lock to run ``command``."""
        pid = os.getpid()
        return cls(pid=pid, command=command, started=process_started(pid))


def refusal(current: Holder | None, host: str) -> LockedError | None:
    """Why ``current`` keeps a run on ``host`` out, or None when the lock can be taken
    (free, or left by a process that is gone)."""
    if current is None:
        return None
    if current.host != host:
        return LockedError(
            f"a run on host {current.host} (pid {current.pid}) holds the index; "
            "wait for it, or remove the lock if that host is gone")
    if not alive(current.pid, current.started):
        return None
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(current.since))
    return LockedError(
        f"another run holds the index ({current.command!r}, pid {current.pid} on "
        f"{current.host}, since {since}); wait for it to finish, or pass --wait-lock")


def alive(pid: int, started: str | None) -> bool:
    """Whether the lock holder still runs: its pid exists and, where the system tells
    (Linux), it is the same process that took the lock, not a later one given its pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = process_started(pid)
    return started is None or now is None or now == started


def process_started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]
