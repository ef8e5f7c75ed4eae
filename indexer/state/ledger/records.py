"""The values the ledger hands out: documents, jobs, key rows, settlements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from indexer.batchfiles.requests import Request
from indexer.records import Place

OPEN_JOB_STATES = ("planned", "uploaded", "creating", "submitted")
_JOB_FIELDS = frozenset({"state", "attempt", "remote_id", "input_file", "output_file",
                         "error_file", "completed", "failed", "usage_tokens", "remote_state",
                         "error", "misses", "missing_since"})
_ADDED_JOB_COLUMNS = (("misses", "INTEGER NOT NULL DEFAULT 0"), ("missing_since", "REAL"))
"""Job columns added after the first release, with their declarations (for migration)."""


@dataclass(frozen=True)
class DocumentState:
    """What the ledger knows of one document."""

    uri: str
    fingerprint: str
    content_hash: str | None
    pending_hash: str | None
    status: str
    reason: str | None


@dataclass(frozen=True)
class Job:
    """One batch job: a shard file and where it stands with its backend.

    ``state`` is the ledger's record of intent: ``planned`` (shard written),
    ``uploaded`` (``input_file`` known), ``creating`` (a create call may have reached
    the service), ``submitted`` (``remote_id`` known), then ``ingested``, ``abandoned``
    or ``lost`` (not found for a while, nor in the batch list; adopted if it turns up).
    ``usage_tokens`` is None when the service reported no usage. ``misses`` counts the
    status checks in a row that did not find the batch, since ``missing_since``.
    """

    id: int
    backend: str
    shard: Path
    state: str
    attempt: int
    remote_id: str | None
    input_file: str | None
    output_file: str | None
    error_file: str | None
    requests: int
    tokens: int
    completed: int
    failed: int
    usage_tokens: int | None
    remote_state: str | None
    created_at: float
    misses: int = 0
    missing_since: float | None = None

    @property
    def label(self) -> str:
        """The name the job's batch carries in its metadata (new for each attempt)."""
        return f"job{self.id:06d}-a{self.attempt}"


@dataclass(frozen=True)
class Settled:
    """How a finished job's keys ended: embedded, back to pending, or failed for good."""

    embedded: int
    requeued: int
    failed: int


@dataclass(frozen=True)
class KeyRow:
    """What the store row of one content key shows: its passage and its live places.

    ``pending_refs`` counts the chunks that hold the key without showing it (a pending or
    a retired version): while there are any, the row is kept, hidden.
    """

    custom_id: str
    text: str
    context: str
    places: tuple[Place, ...]
    pending_refs: int


@dataclass(frozen=True)
class RestoredJob:
    """A batch the service still lists, recorded again when the ledger is rebuilt.

    ``state`` is ``submitted`` (the next sync collects it) or ``ingested`` (done before
    the ledger was lost: recorded so that new jobs never reuse its label); ``requests``
    are its keys the store lacks, queued in it.
    """

    id: int
    attempt: int
    backend: str
    shard: Path
    state: str
    remote_id: str
    input_file: str | None
    requests: tuple[Request, ...] = ()
    created_at: float = 0.0


@dataclass(frozen=True)
class SourceRecord:
    """What the ledger knows of one source: when it was last listed (``synced_at``), its
    last failure to be reached (``error`` at ``failed_at``, cleared when reached again),
    and its documents counted by status (``indexed``, ``pending``, ``skipped``,
    ``orphaned``)."""

    uri: str
    synced_at: float | None = None
    error: str | None = None
    failed_at: float | None = None
    counts: Mapping[str, int] = field(default_factory=dict, hash=False)
