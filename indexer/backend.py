"""What an embedding backend offers the pipeline: batch jobs in OpenAI's format, and queries.

Every backend takes a shard (a batch input JSONL file of ``/v1/embeddings``
requests) and eventually yields an output file and an error file in the Batch
API's format. The OpenAI backend does it through the Files and Batches API; the
embedded backend does it in-process and is finished when ``submit`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

Tick = Callable[[int], None]
"""Called with the number of lines just processed, for progress bars."""


@dataclass(frozen=True)
class JobStatus:
    """Where a submitted job stands, in the Batch API's terms."""

    state: str
    completed: int = 0
    failed: int = 0
    total: int = 0

    @property
    def done(self) -> bool:
        """True once the job will change no more (completed, failed, expired, cancelled)."""
        return self.state in {"completed", "failed", "expired", "cancelled"}


@dataclass(frozen=True)
class JobFiles:
    """The local copies of a finished job's output and error files (either may be absent)."""

    output: Path | None
    errors: Path | None


class Backend(Protocol):
    """An embedding backend: its model identity, batch jobs and query embedding."""

    name: str
    model: str
    dimensions: int
    max_batch_requests: int

    def body(self) -> dict[str, object]:
        """The request body options every line of a shard carries (model, encoding...)."""
        ...

    def submit(self, shard: Path, label: str, tick: Tick) -> str:
        """Start a job for ``shard``; return its id (a remote batch id, or a local one)."""
        ...

    def status(self, job_id: str) -> JobStatus:
        """Where the job stands now."""
        ...

    def fetch(self, job_id: str, directory: Path) -> JobFiles:
        """Download a finished job's output and error files into ``directory``."""
        ...

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries synchronously with the index's model."""
        ...
