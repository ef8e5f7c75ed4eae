"""The job runner's shared ground: its options, its state, and the budgets in force.

:class:`~indexer.sync.jobs.JobRunner` is assembled from :class:`RunnerBase` and two
parts that settle jobs (:mod:`indexer.sync.settling`) and deal with batches the
service lost track of (:mod:`indexer.sync.lost`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.backends.contract import Backend
from indexer.batchfiles.requests import (
    BatchLimits,
)
from indexer.config import Config
from indexer.progress import Progress
from indexer.state.ledger import Job, Ledger

if TYPE_CHECKING:

    from indexer.state.store import Store

_ERROR_CHARS = 200
"""A failed chunk keeps at most this much of its error (``status`` shows it per document)."""
_LEARNED_LIMITS = {"too_many_tasks": "learned_max_requests",
                   "file_too_large": "learned_max_bytes"}
"""Validation codes naming a per-batch limit that smaller shards satisfy, and where the
lowered limit is remembered."""


@dataclass(frozen=True)
class JobOptions:
    """How jobs are sized, paced and retried.

    ``token_budget`` caps the estimated tokens of batches in flight at once (the
    organisation's enqueued-token limit, which the API does not expose); a
    ``token_limit_exceeded`` failure lowers it (remembered in the ledger).
    ``wait`` keeps polling until every batch is done, riding out service errors (429,
    5xx, no answer) for up to ``outage_seconds`` in a row. A batch the service says it does
    not know is given up only after ``lost_after_misses`` such answers in a row spanning
    ``lost_after_seconds``, and only if the batch list does not show it either; one given
    up is looked for again for ``resurface_seconds`` after it was planned.
    """

    limits: BatchLimits = field(default_factory=BatchLimits)
    max_attempts: int = Config.max_attempts
    token_budget: int = Config.token_budget
    min_token_budget: int = 10_000
    request_budget: int = 1_000_000
    wait: bool = False
    poll_seconds: float = Config.poll_seconds
    max_poll_seconds: float = 120.0
    outage_seconds: float = Config.outage_seconds
    batch_price: float = 0.0
    priced: bool = False
    max_cost: float | None = None
    lost_after_misses: int = 3
    lost_after_seconds: float = Config.lost_after_seconds
    group_size: int = Config.group_size
    resurface_seconds: float = 8 * 24 * 3600.0

    def cost(self, tokens: int) -> float:
        """Dollars for ``tokens`` at the batch price."""
        return tokens * self.batch_price / 1e6


class RunnerBase:
    """What the job runner's parts share: the ledger, the backend and store (opened on
    first use), the options, and the budgets in force."""

    def __init__(self, ledger: Ledger, backend: Callable[[], Backend],
                 store: Callable[[], Store], batches: Path, options: JobOptions,
                 progress: Progress) -> None:
        self.ledger, self._open_backend, self._open_store = ledger, backend, store
        self.batches, self.options, self.progress = batches, options, progress
        self._total = 0  # chunks the run's progress bar counts to
        self._deferred: dict[int, float] = {}
        self._looked_for_lost = float("-inf")
        self._emptied: set[int] = set()
        self._written: dict[int, tuple[int, int, int] | None] = {}
        """Jobs whose shard this run wrote, and the shard's stamp once written."""

    @cached_property
    def backend(self) -> Backend:
        """The embedding backend, loaded only when there is something to embed."""
        return self._open_backend()

    @cached_property
    def store(self) -> Store:
        """The search store, opened only when there are vectors to write."""
        return self._open_store()

    def shard_limits(self) -> BatchLimits:
        """The Batch API's limits, with the backend's request cap, the budgets, and any
        lower per-batch limit the service taught us (``too_many_tasks``, ``file_too_large``)."""
        remote = self.backend.remote
        meta, limits = self.ledger.meta(), self.options.limits
        requests = min(limits.max_requests, self.backend.max_batch_requests,
                       self.request_budget(), int(meta.get("learned_max_requests") or 10**9))
        return replace(limits, max_requests=requests,
                       max_bytes=min(limits.max_bytes,
                                     int(meta.get("learned_max_bytes") or 10**12)),
                       max_shard_tokens=self.budget() if remote else None)

    def budget(self) -> int:
        """The enqueued-token budget in force (learned from the service, or configured)."""
        learned = self.ledger.meta().get("learned_token_budget")
        return int(learned) if learned else self.options.token_budget

    def request_budget(self) -> int:
        """The enqueued-request budget in force (learned from ``request_limit_exceeded``)."""
        learned = self.ledger.meta().get("learned_request_budget")
        return int(learned) if learned else self.options.request_budget

    def _abandon(self, job: Job, reason: str) -> None:
        """Give a job up: its keys back to pending (no attempt charged), its files deleted."""
        self.ledger.abandon_job(job.id, reason)
        if job.input_file:
            self.backend.cleanup([job.input_file])
        job.shard.unlink(missing_ok=True)
