"""What an embedding backend offers the pipeline: batch jobs in OpenAI's format, and queries.

Every backend takes a shard (a batch input JSONL file of ``/v1/embeddings``
requests) and eventually yields an output file and an error file in the Batch
API's format. The OpenAI backend does it through the Files and Batches API; the
embedded backend does it in-process and is finished when ``create`` returns.

A backend whose model reads fewer tokens than the chunk budget may also offer
``input_limit`` and ``count_tokens(texts)``: chunks its tokenizer counts as too long
are then cut again (:func:`indexer.chunking.chunker.refit`) rather than silently truncated.

The pipeline drives a job step by step and records each step in the ledger before
the next remote call: ``upload`` → ``create`` (after ``find`` if an earlier
``create`` may have succeeded unseen) → ``status`` until done → ``fetch`` → ``cleanup``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

Tick = Callable[[int], None]
"""Called with the number of lines just processed, for progress bars."""

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class JobError:
    """A batch-level error (validation failure): its code, the input line, the message."""

    code: str
    message: str
    line: int | None = None


@dataclass(frozen=True)
class JobStatus:
    """Where a submitted job stands, in the Batch API's terms.

    ``state`` ``lost`` means the service answered that it does not know the job (one
    such answer is not proof: the runner looks again before giving it up). ``tokens``
    is the usage the service billed, None when it reported none. ``resumed`` counts
    lines an earlier, interrupted run had already computed (a backend that checkpoints
    its work): they are reported as kept, not as embedded by this run.
    """

    state: str
    completed: int = 0
    failed: int = 0
    total: int = 0
    output_file: str | None = None
    error_file: str | None = None
    errors: tuple[JobError, ...] = field(default_factory=tuple)
    tokens: int | None = 0
    resumed: int = 0

    @property
    def done(self) -> bool:
        """True once the job will change no more (completed, failed, expired, cancelled)."""
        return self.state in TERMINAL


@dataclass(frozen=True)
class JobFiles:
    """The local copies of a finished job's output and error files (either may be absent)."""

    output: Path | None
    errors: Path | None


@dataclass(frozen=True)
class RemoteJob:
    """A batch this index created on the service, as its batch list shows it.

    ``label`` is the ``indexer_shard`` metadata the batch was created with (the ledger's
    job label, ``job000012-a0``); ``input_file`` is the uploaded shard's file id.
    """

    remote_id: str
    label: str
    state: str
    input_file: str | None
    created_at: float


class Backend(Protocol):
    """An embedding backend: its model identity, batch jobs and query embedding."""

    name: str
    model: str
    dimensions: int
    max_batch_requests: int
    remote: bool
    """True when jobs run on a service: the token budget and waves apply, files are
    kept remotely until cleaned up, and batches can be in flight between runs."""

    def body(self) -> dict[str, object]:
        """The request body options every line of a shard carries (model, encoding...)."""
        ...

    def upload(self, shard: Path) -> str:
        """Make ``shard`` available to the service; return its file id."""
        ...

    def find(self, label: str, since: float) -> str | None:
        """The job created under ``label`` after ``since`` (epoch seconds), if one exists."""
        ...

    def create(self, file_id: str, label: str, tick: Tick) -> str:
        """Start the job for an uploaded shard; return its id."""
        ...

    def status(self, job_id: str) -> JobStatus:
        """Where the job stands now."""
        ...

    def fetch(self, status: JobStatus, directory: Path, label: str) -> JobFiles:
        """Download a finished job's output and error files into ``directory``."""
        ...

    def cancel(self, job_id: str) -> None:
        """Ask the service to cancel the job (finished lines are still delivered)."""
        ...

    def cleanup(self, file_ids: Sequence[str]) -> None:
        """Delete the job's remote files once ingested (best effort)."""
        ...

    def remote_files(self) -> list[tuple[str, str]]:
        """``(file id, filename)`` of this index's files kept by the service (empty for a
        backend that keeps none)."""
        ...

    def remote_jobs(self) -> list[RemoteJob]:
        """Every batch this index created that the service still lists, newest first
        (empty for a backend that runs jobs in-process)."""
        ...

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries synchronously with the index's model."""
        ...


@runtime_checkable
class MeasuresInput(Protocol):
    """A backend whose model has an input limit of its own, and the tokenizer to check it."""

    @property
    def input_limit(self) -> int:
        """The model's input limit, in its own tokens."""
        ...

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Each text's length in the model's tokens."""
        ...
