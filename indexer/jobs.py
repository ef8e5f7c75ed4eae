"""Batch jobs from planning to ingest: the part of a sync that spends money.

A :class:`JobRunner` turns pending keys into shards, submits them within the
enqueued-token budget, polls, and settles every finished job: it ingests what
succeeded, requeues what may succeed later (bounded attempts), and records what
failed for good. Every step is written to the ledger before the next remote call.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.backend import Backend, JobError, JobFiles, JobStatus
from indexer.batchfile import BatchLimits, estimate_tokens, line_ids, write_shards
from indexer.batchoutput import read_results
from indexer.errors import BackendError
from indexer.ledger import Job, Ledger
from indexer.progress import Progress
from indexer.records import StoreRow
from indexer.report import SyncReport

if TYPE_CHECKING:
    import numpy as np

    from indexer.store import Store

_GROUP = 2_000


@dataclass(frozen=True)
class JobOptions:
    """How jobs are sized, paced and retried.

    ``token_budget`` caps the estimated tokens of batches in flight at once (the
    organisation's enqueued-token limit, which the API does not expose); a
    ``token_limit_exceeded`` failure lowers it (remembered in the ledger).
    ``wait`` keeps polling until every batch is done.
    """

    limits: BatchLimits = field(default_factory=BatchLimits)
    max_attempts: int = 3
    token_budget: int = 2_400_000
    min_token_budget: int = 10_000
    request_budget: int = 1_000_000
    wait: bool = False
    poll_seconds: float = 5.0
    max_poll_seconds: float = 120.0
    batch_price: float = 0.0
    max_cost: float | None = None

    def cost(self, tokens: int) -> float:
        """Dollars for ``tokens`` at the batch price."""
        return tokens * self.batch_price / 1e6


class JobRunner:
    """Runs the batch jobs of one index with one backend."""

    def __init__(self, ledger: Ledger, backend: Callable[[], Backend],
                 store: Callable[[], Store], batches: Path, options: JobOptions,
                 progress: Progress) -> None:
        self.ledger, self._open_backend, self._open_store = ledger, backend, store
        self.batches, self.options, self.progress = batches, options, progress
        self._deferred: dict[int, float] = {}

    @cached_property
    def backend(self) -> Backend:
        """The embedding backend, loaded only when there is something to embed."""
        return self._open_backend()

    @cached_property
    def store(self) -> Store:
        """The search store, opened only when there are vectors to write."""
        return self._open_store()

    def shard_limits(self) -> BatchLimits:
        """The Batch API's limits, with the backend's request cap and the token budget."""
        remote = self.backend.name != "local"
        return replace(self.options.limits,
                       max_requests=min(self.options.limits.max_requests,
                                        self.backend.max_batch_requests),
                       max_shard_tokens=self.budget() if remote else None)

    def waves(self, shard_tokens: list[int]) -> int:
        """Rounds of submission needed to send shards of these sizes within the budget."""
        if not shard_tokens:
            return 0
        if self.backend.name == "local":
            return 1
        waves, load = 1, 0
        for tokens in shard_tokens:
            if load and load + tokens > self.budget():
                waves, load = waves + 1, 0
            load += tokens
        return waves

    def unsent_tokens(self) -> int:
        """Estimated tokens of everything not yet submitted: pending keys and planned jobs."""
        pending = sum(estimate_tokens(r.text, r.tokens) for r in self.ledger.pending_requests())
        planned = self.ledger.jobs(["planned", "uploaded", "creating"])
        return pending + sum(j.tokens for j in planned)

    def budget(self) -> int:
        """The enqueued-token budget in force (learned from the service, or configured)."""
        learned = self.ledger.meta().get("learned_token_budget")
        return int(learned) if learned else self.options.token_budget

    def run(self, report: SyncReport) -> None:
        """Embed every pending key: plan, submit within the budget, collect, retry."""
        if not self.ledger.open_jobs() and not self.ledger.has_pending():
            return
        cap = self.options.max_cost
        cost = self.options.cost(self.unsent_tokens()) if cap is not None else 0.0
        if cap is not None and cost > cap:
            report.refused_cost = round(cost, 6)
            report.errors.append(
                f"not submitting: this sync would cost about ${report.refused_cost:.4f} at "
                f"batch price, over the cap of ${cap:.4f}; run `indexer plan` to see why, "
                "then raise --max-cost (or max_cost in config.toml) or narrow the sources")
            report.pending = self.ledger.count_pending()
            report.in_flight = len(self.ledger.open_jobs())
            return
        delay = self.options.poll_seconds
        while True:
            try:
                progressed = self._step(report)
            except BackendError as exc:
                # The ledger holds every step taken so far: the next sync resumes here.
                report.errors.append(str(exc))
                break
            open_jobs = self.ledger.open_jobs()
            if not open_jobs and not self.ledger.has_pending():
                break
            if not progressed:
                if not self.options.wait:
                    break
                self._show_flight(open_jobs)
                time.sleep(delay)
                delay = min(delay * 1.5, self.options.max_poll_seconds)
            else:
                delay = self.options.poll_seconds
        self.progress.end()
        report.in_flight = len(self.ledger.open_jobs())
        report.pending = self.ledger.count_pending()

    def _step(self, report: SyncReport) -> bool:
        """Plan shards for pending keys, settle finished jobs, submit within the budget."""
        progressed = self._plan()
        for job in self.ledger.jobs(["submitted"]):
            assert job.remote_id is not None
            status = self.backend.status(job.remote_id)
            self.ledger.set_job(job.id, completed=status.completed, failed=status.failed,
                                remote_state=status.state)
            if status.done or status.state == "lost":
                self._settle(job, status, report)
                progressed = True
        budget, requests = self.budget(), self.options.request_budget
        in_flight = self.ledger.jobs(["submitted"])
        tokens = sum(j.tokens for j in in_flight)
        count = sum(j.requests for j in in_flight)
        for job in self.ledger.jobs(["planned", "uploaded", "creating"]):
            if self._deferred.get(job.id, 0.0) > time.monotonic():
                continue
            if in_flight and (tokens + job.tokens > budget or count + job.requests > requests):
                break
            self._submit(job, report)
            tokens, count, in_flight = tokens + job.tokens, count + job.requests, [job]
            progressed = True
        return progressed

    def _plan(self) -> bool:
        if not self.ledger.has_pending():
            return False
        self._adopt_stored()
        if not self.ledger.has_pending():
            return False
        limits = self.shard_limits()
        label = f"shard-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}"
        shards = write_shards(self.ledger.pending_requests(), self.backend.body(),
                              self.batches, label, limits)
        for shard in shards:
            self.ledger.create_job(self.backend.name, shard)
        return bool(shards)

    def _adopt_stored(self) -> None:
        """The store is keyed by content: a pending key it already has a vector for (the
        ledger was rebuilt, or lost track) is recorded as embedded, never submitted."""
        if not self.store.has_rows():
            return
        pending = self.ledger.pending_keys()
        for start in range(0, len(pending), _GROUP):
            held = self.store.held(pending[start:start + _GROUP])
            if held:
                self.ledger.adopt(sorted(held))

    def _submit(self, job: Job, report: SyncReport) -> None:
        file_id = job.input_file
        if job.state == "creating":
            found = self.backend.find(job.label, job.created_at)
            if found:
                self.ledger.set_job(job.id, state="submitted", remote_id=found)
                return
        if file_id is None:
            file_id = self.backend.upload(job.shard)
            self.ledger.set_job(job.id, state="uploaded", input_file=file_id)
        self.ledger.set_job(job.id, state="creating")
        local = self.backend.name == "local"
        self.progress.stage("embed" if local else f"submit {job.label}", job.requests)
        try:
            remote = self.backend.create(file_id, job.label, self.progress.advance)
            if not local:
                self.progress.advance(job.requests)
        finally:
            self.progress.end()
        self.ledger.set_job(job.id, state="submitted", remote_id=remote)
        report.jobs += 1

    def _settle(self, job: Job, status: JobStatus, report: SyncReport) -> None:
        codes = {e.code for e in status.errors}
        if status.state == "failed" and "token_limit_exceeded" in codes:
            self._defer(job)
            return
        if status.state == "failed":
            self._reject(job, status, report)
            return
        if status.state == "lost":
            report.errors.append(f"batch {job.remote_id} ({job.label}) disappeared; "
                                 "its chunks were queued again")
            settled = self.ledger.finish_job(job.id, [], [], self.options.max_attempts)
            report.failed += settled.failed
            return
        files = self.backend.fetch(status, self.batches, job.label)
        self._collect(job, status, files, report)
        self._regain_budget()
        report.tokens += status.tokens or job.tokens
        self.ledger.set_job(job.id, usage_tokens=status.tokens or job.tokens)
        remote = [f for f in (job.input_file, status.output_file, status.error_file) if f]
        self.backend.cleanup(remote)
        for path in (job.shard, files.output, files.errors):
            if path is not None:
                path.unlink(missing_ok=True)

    def _regain_budget(self) -> None:
        """After a batch went through, raise a learned budget a little (back towards the
        configured one): the service's queue frees up as batches finish."""
        learned = self.ledger.meta().get("learned_token_budget")
        if learned:
            raised = int(int(learned) * 1.25)
            if raised >= self.options.token_budget:
                self.ledger.clear_meta("learned_token_budget")
            else:
                self.ledger.set_meta({"learned_token_budget": str(raised)})

    def _defer(self, job: Job) -> None:
        """Over the organisation's enqueued-token limit: lower the budget and try later.

        A shard larger than the lowered budget is given up and its keys re-sharded
        smaller; any other waits (a new attempt, so a new label) until batches finish.
        """
        others = sum(j.tokens for j in self.ledger.jobs(["submitted"]) if j.id != job.id)
        learned = max(self.options.min_token_budget, int(0.8 * others) or job.tokens // 2)
        budget = min(learned, self.budget())
        self.ledger.set_meta({"learned_token_budget": str(budget)})
        if job.tokens > budget and not others:
            self.ledger.abandon_job(job.id, "token_limit_exceeded: re-sharded smaller")
            if job.input_file:
                self.backend.cleanup([job.input_file])
        else:
            self.ledger.set_job(job.id, state="uploaded", attempt=job.attempt + 1,
                                remote_id=None)
            self._deferred[job.id] = time.monotonic() + self.options.poll_seconds

    def _reject(self, job: Job, status: JobStatus, report: SyncReport) -> None:
        keys = self.ledger.job_keys(job.id)
        lines = line_ids(job.shard) if job.shard.exists() else {}
        sources = self.ledger.job_sources(list(lines.values()))
        for error in status.errors or (JobError("failed", "the batch failed"),):
            key = lines.get(error.line or 0)
            where = f" (line {error.line}: {sources.get(key, key)})" if key else ""
            report.errors.append(f"batch {job.label} failed validation: {error.code}: "
                                 f"{error.message}{where}")
        reason = "; ".join(f"{e.code}: {e.message}" for e in status.errors) or "batch failed"
        settled = self.ledger.finish_job(job.id, [], [(k, reason, True) for k in keys],
                                         self.options.max_attempts)
        report.failed += settled.failed
        if job.input_file:
            self.backend.cleanup([job.input_file])

    def cancel(self) -> int:
        """Ask the backend to cancel every submitted batch; the next sync collects them."""
        jobs = self.ledger.jobs(["submitted"])
        for job in jobs:
            assert job.remote_id is not None
            self.backend.cancel(job.remote_id)
        return len(jobs)

    def _show_flight(self, jobs: list[Job]) -> None:
        submitted = [j for j in jobs if j.state == "submitted"]
        self.progress.update(f"waiting for {len(submitted)} batch(es)",
                             sum(j.completed + j.failed for j in submitted),
                             sum(j.requests for j in submitted))

    def _collect(self, job: Job, status: JobStatus, files: JobFiles,
                 report: SyncReport) -> None:
        embedded: list[str] = []
        failed: list[tuple[str, str, bool]] = []
        group: dict[str, np.ndarray] = {}
        queued = set(self.ledger.job_keys(job.id))
        for path in (files.output, files.errors):
            if path is None:
                continue
            for result in read_results(path, self.backend.dimensions):
                if result.custom_id not in queued:
                    continue  # not ours, or already settled: never ingest twice
                if result.vector is not None:
                    group[result.custom_id] = result.vector
                    embedded.append(result.custom_id)
                else:
                    failed.append((result.custom_id, result.error or "failed", result.retryable))
                if len(group) >= _GROUP:
                    self._put(group)
                    group = {}
        self._put(group)
        settled = self.ledger.finish_job(job.id, embedded, failed, self.options.max_attempts)
        report.embedded += settled.embedded
        report.failed += settled.failed
        if settled.requeued or settled.failed:
            reasons = Counter(error.split(":")[0] for _, error, _ in failed)
            missing = len(queued) - len(embedded) - len(failed)
            if missing:
                reasons["missing from the output"] += missing
            detail = ", ".join(f"{reason} ({n})" for reason, n in reasons.most_common())
            report.errors.append(
                f"batch {job.label} ended {status.state}"
                f"{' without an output file' if not status.output_file else ''}: "
                f"{settled.embedded} embedded, {settled.requeued} queued again, "
                f"{settled.failed} failed for good; {detail}")

    def _put(self, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        rows = self.ledger.key_rows(list(vectors))
        self.store.put([StoreRow(r.custom_id, r.text, r.context, r.places, vectors[r.custom_id])
                        for r in rows])
