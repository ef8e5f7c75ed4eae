"""Batch jobs from planning to ingest: the part of a sync that spends money.

A :class:`JobRunner` turns pending keys into shards, submits them within the
enqueued-token budget, polls, and settles every finished job: it ingests what
succeeded, requeues what may succeed later (bounded attempts), and records what
failed for good. Every step is written to the ledger before the next remote call.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.backends.contract import Backend, JobError, JobFiles, JobStatus, RemoteJob
from indexer.batchfiles.output import read_results
from indexer.batchfiles.requests import (
    BatchLimits,
    check_shard,
    estimate_tokens,
    line_ids,
    write_shards,
)
from indexer.errors import BackendError, BackendUnavailable
from indexer.progress import Progress
from indexer.records import StoreRow
from indexer.report import SyncReport
from indexer.state.ledger import Job, Ledger

if TYPE_CHECKING:
    import numpy as np

    from indexer.state.store import Store

_GROUP = 2_000
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
    max_attempts: int = 3
    token_budget: int = 2_400_000
    min_token_budget: int = 10_000
    request_budget: int = 1_000_000
    wait: bool = False
    poll_seconds: float = 5.0
    max_poll_seconds: float = 120.0
    outage_seconds: float = 1800.0
    batch_price: float = 0.0
    priced: bool = False
    max_cost: float | None = None
    lost_after_misses: int = 3
    lost_after_seconds: float = 300.0
    resurface_seconds: float = 8 * 24 * 3600.0

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
        self._looked_for_lost = float("-inf")
        self._emptied: set[int] = set()
        self._written: set[int] = set()  # jobs whose shard this run wrote

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

    def waves(self, shard_tokens: list[int]) -> int:
        """Rounds of submission needed to send shards of these sizes within the budget."""
        if not shard_tokens:
            return 0
        if not self.backend.remote:
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

    def request_budget(self) -> int:
        """The enqueued-request budget in force (learned from ``request_limit_exceeded``)."""
        learned = self.ledger.meta().get("learned_request_budget")
        return int(learned) if learned else self.options.request_budget

    def run(self, report: SyncReport) -> None:
        """Embed every pending key: plan, submit within the budget, collect, retry.

        A :class:`BackendError` ends the run (``report.stopped``) with every step taken
        recorded, so the next sync resumes; with ``wait``, errors that may pass (429, 5xx,
        no answer) are waited out for up to ``outage_seconds`` first.
        """
        if self.ledger.has_pending():
            self._adopt_stored()  # before the cost cap: what the store holds costs nothing
        if not self.ledger.open_jobs() and not self.ledger.has_pending():
            self._tally(report)
            return
        cap = self.options.max_cost
        cost = self.options.cost(self.unsent_tokens()) if cap is not None else 0.0
        if cap is not None and cost > cap:
            report.refused_cost = round(cost, 6)
            report.errors.append(
                f"not submitting: this sync would cost about ${report.refused_cost:.4f} at "
                f"batch price, over the cap of ${cap:.4f}; run `indexer plan` to see why, "
                "then raise --max-cost (or max_cost in config.toml) or narrow the sources")
            self._tally(report)
            return
        delay = self.options.poll_seconds
        outage: float | None = None  # when the service last started failing
        while True:
            try:
                progressed = self._step(report)
                outage = None
            except BackendUnavailable as exc:
                outage = time.monotonic() if outage is None else outage
                lasted = time.monotonic() - outage
                if not self.options.wait:
                    self._stop(report, exc)
                    break
                if lasted >= self.options.outage_seconds:
                    self._stop(report, exc, lasted)
                    break
                self.progress.update(
                    f"service unavailable for {lasted:.0f} s (giving up after "
                    f"{self.options.outage_seconds:.0f} s): {exc}", 0, 0)
                time.sleep(delay)
                delay = min(delay * 1.5, self.options.max_poll_seconds)
                continue
            except BackendError as exc:
                self._stop(report, exc)
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
        self._tally(report)

    def _stop(self, report: SyncReport, exc: BackendError, lasted: float = 0.0) -> None:
        """End the run on ``exc``; the ledger holds every step taken, the next sync resumes."""
        message = str(exc)
        if lasted:
            message += (f" (the service kept failing for {lasted:.0f} s, over outage_seconds; "
                        "gave up waiting)")
        report.stopped = message
        report.errors.append(message)

    def _tally(self, report: SyncReport) -> None:
        """Record what is left: batches running remotely, jobs not yet there, keys waiting,
        and chunks of live or pending documents that failed for good (this run or before)."""
        jobs = self.ledger.open_jobs()
        report.in_flight = sum(j.state == "submitted" for j in jobs)
        report.unsubmitted = len(jobs) - report.in_flight
        report.pending = self.ledger.count_pending()
        report.chunks_failed = self.ledger.count_failed()

    def _step(self, report: SyncReport) -> bool:
        """Adopt lost batches that turned up again, settle finished jobs, drop unsent jobs
        whose keys were embedded meanwhile, plan shards for pending keys, and submit
        within the budget."""
        progressed = self._resurface(report)
        failure: BackendError | None = None
        for job in self.ledger.jobs(["submitted"]):
            assert job.remote_id is not None
            status = self.backend.status(job.remote_id)
            if status.state == "lost":
                progressed = self._missing(job, report) or progressed
                continue
            done = {"output_file": status.output_file, "error_file": status.error_file,
                    "usage_tokens": status.tokens} if status.done else {}
            self.ledger.set_job(job.id, completed=status.completed, failed=status.failed,
                                remote_state=status.state, misses=0, missing_since=None, **done)
            if status.done:
                try:
                    self._settle(job, status, report)
                except BackendError as exc:  # a download: the job stays submitted
                    failure = failure or exc
                    continue
                progressed = True
        if failure is not None:
            raise failure  # after the other jobs settled; the next sync tries it again
        progressed = self._prune() or progressed
        progressed = self._plan() or progressed
        budget, requests = self.budget(), self.request_budget()
        in_flight = self.ledger.jobs(["submitted"])
        tokens = sum(j.tokens for j in in_flight)
        count = sum(j.requests for j in in_flight)
        for job in self.ledger.jobs(["planned", "uploaded", "creating"]):
            if self._deferred.get(job.id, 0.0) > time.monotonic():
                continue
            if in_flight and (tokens + job.tokens > budget or count + job.requests > requests):
                break
            if self._submit(job, report):
                tokens, count, in_flight = tokens + job.tokens, count + job.requests, [job]
            progressed = True
        return progressed

    def _missing(self, job: Job, report: SyncReport) -> bool:
        """The service answered that it does not know a submitted batch. One answer is no
        proof: it is given up only after repeated answers over a bounded time, and only if
        the batch list (by metadata) does not show it either. Returns True if given up."""
        now = time.time()
        misses, since = job.misses + 1, job.missing_since or now
        self.ledger.set_job(job.id, misses=misses, missing_since=since, remote_state="not found")
        if misses < self.options.lost_after_misses or now - since < self.options.lost_after_seconds:
            return False
        listed = next((r for r in self.backend.remote_jobs()
                       if r.remote_id == job.remote_id or r.label == job.label), None)
        if listed is not None:
            self.ledger.set_job(job.id, remote_id=listed.remote_id, remote_state=listed.state,
                                misses=0, missing_since=None)
            other = f" as {listed.remote_id}" if listed.remote_id != job.remote_id else ""
            report.errors.append(
                f"batch {job.remote_id} ({job.label}) was not found {misses} times, but the "
                f"batch list still lists it{other} ({listed.state}): kept, and polled again")
            return False
        reason = f"batch {job.remote_id} disappeared"
        settled = self.ledger.lose_job(job.id, reason, self.options.max_attempts)
        report.failed += settled.failed
        gone = f", {settled.failed} failed for good" if settled.failed else ""
        report.errors.append(
            f"batch {job.remote_id} ({job.label}) disappeared: not found {misses} times over "
            f"{now - since:.0f}s and not in the batch list; its {settled.requeued} chunk(s) were "
            f"queued again{gone} (if it turns up later, its output is still collected)")
        return True

    def _resurface(self, report: SyncReport) -> bool:
        """Adopt batches given up as lost that the batch list shows again: they are polled
        and collected like any other, and whatever they hold is not paid for again."""
        if time.monotonic() - self._looked_for_lost < self.options.max_poll_seconds:
            return False
        since = time.time() - self.options.resurface_seconds
        lost = [j for j in self.ledger.jobs(["lost"]) if j.created_at >= since]
        if not lost:
            return False
        self._looked_for_lost = time.monotonic()
        listed: dict[str, RemoteJob] = {}
        for entry in self.backend.remote_jobs():  # newest first
            listed.setdefault(entry.label, entry)
        back = False
        for job in lost:
            remote = listed.get(job.label)
            if remote is None:
                continue
            self.ledger.set_job(job.id, state="submitted", remote_id=remote.remote_id,
                                remote_state=remote.state, misses=0, missing_since=None)
            report.errors.append(
                f"batch {remote.remote_id} ({job.label}) turned up again after it was given "
                "up as lost: its output is collected, and the chunks it holds are not "
                "submitted again")
            back = True
        return back

    def _prune(self) -> bool:
        """Give up unsent jobs some of whose keys were embedded meanwhile (by a lost batch
        that turned up again): their other keys go back to pending and are planned
        afresh, so no key already embedded is sent again. A batch in flight whose every
        key was embedded meanwhile is cancelled (what it finished is paid already)."""
        unsent = self.ledger.jobs(["planned", "uploaded", "creating"])
        emptied = [j for j in self.ledger.jobs(["submitted"]) if j.id in self._emptied]
        if not unsent and not emptied:
            return False
        queued = self.ledger.queued_counts()
        for job in emptied:
            if job.remote_id and not queued.get(job.id):
                self.backend.cancel(job.remote_id)
                self._emptied.discard(job.id)
        pruned = False
        for job in unsent:
            if queued.get(job.id, 0) >= job.requests:
                continue
            if job.state == "creating" and self.backend.find(job.label, job.created_at):
                continue  # it was created after all: collected like any other batch
            self.ledger.abandon_job(job.id, "some of its chunks were embedded by another "
                                    "batch; the rest were planned again")
            if job.input_file:
                self.backend.cleanup([job.input_file])
            job.shard.unlink(missing_ok=True)
            pruned = True
        return pruned

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
            self._written.add(self.ledger.create_job(self.backend.name, shard))
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
                self.ledger.adopt_stored(sorted(held))

    def _submit(self, job: Job, report: SyncReport) -> bool:
        """Upload (after checking the shard) and create a job's batch; False when the job
        was given up instead and its keys were planned again."""
        file_id = job.input_file
        local = not self.backend.remote
        if job.state == "creating":
            found = self.backend.find(job.label, job.created_at)
            if found:
                self.ledger.set_job(job.id, state="submitted", remote_id=found)
                return True
        elif self._replan(job, report):
            return False
        if file_id is None:
            if not local:
                size = job.shard.stat().st_size
                self.progress.stage(f"upload {job.label} ({size / 1e6:.1f} MB)")
            try:
                file_id = self.backend.upload(job.shard)
            finally:
                self.progress.end()
            self.ledger.set_job(job.id, state="uploaded", input_file=file_id)
        self.ledger.set_job(job.id, state="creating")
        self.progress.stage("embed" if local else f"submit {job.label}", job.requests)
        try:
            remote = self.backend.create(file_id, job.label, self.progress.advance)
            if not local:
                self.progress.advance(job.requests)
        finally:
            self.progress.end()
        self.ledger.set_job(job.id, state="submitted", remote_id=remote)
        report.jobs += 1
        return True

    def _replan(self, job: Job, report: SyncReport) -> bool:
        """Give up a job not yet created if its shard no longer fits the limits in force, or
        (before upload) no longer holds exactly what was planned; its keys go back to
        pending without an attempt charged. Returns whether it was given up."""
        limits = self.shard_limits()
        size = job.shard.stat().st_size if job.shard.exists() else 0
        if job.requests > limits.max_requests or size > limits.max_bytes:
            self._abandon(job, f"over the limit in force ({limits.max_requests} requests, "
                               f"{limits.max_bytes} bytes): planned again")
            return True
        if job.input_file is not None:
            return False
        problem = check_shard(job.shard, self.backend.body(), self.ledger.job_keys(job.id),
                              self.backend.model, self.backend.dimensions)
        if problem is None:
            return False
        if job.id in self._written:  # written moments ago: re-planning would loop
            raise BackendError(f"shard {job.shard.name} fails its own check right after "
                               f"being written ({problem}); please report this")
        self._abandon(job, f"shard changed on disk: {problem}")
        report.errors.append(
            f"shard {job.shard.name} ({job.label}) changed on disk after it was written "
            f"({problem}); it was not uploaded, its {job.requests} chunk(s) were planned again")
        return True

    def _abandon(self, job: Job, reason: str) -> None:
        """Give a job up: its keys back to pending (no attempt charged), its files deleted."""
        self.ledger.abandon_job(job.id, reason)
        if job.input_file:
            self.backend.cleanup([job.input_file])
        job.shard.unlink(missing_ok=True)

    def _settle(self, job: Job, status: JobStatus, report: SyncReport) -> None:
        codes = {e.code for e in status.errors}
        if status.state == "failed" and "token_limit_exceeded" in codes:
            self._defer(job)
            return
        if status.state == "failed":
            self._reject(job, status, report)
            return
        files = self.backend.fetch(status, self.batches, job.label)
        self._collect(job, status, files, report)
        self._regain_budget()
        if status.tokens is None:
            report.batches_without_usage += 1
        else:
            report.tokens += status.tokens
        # Remote files go only now that every line in them is ingested.
        remote = [f for f in (job.input_file, status.output_file, status.error_file) if f]
        self.backend.cleanup(remote)
        for path in (job.shard, files.output, files.errors):
            if path is not None:
                path.unlink(missing_ok=True)

    def _regain_budget(self) -> None:
        """After a batch went through, raise a learned budget a little (back towards the
        configured one): the service's queue frees up as batches finish."""
        meta = self.ledger.meta()
        for key, configured in (("learned_token_budget", self.options.token_budget),
                                ("learned_request_budget", self.options.request_budget)):
            if meta.get(key):
                raised = int(int(meta[key]) * 1.25)
                if raised >= configured:
                    self.ledger.clear_meta(key)
                else:
                    self.ledger.set_meta({key: str(raised)})

    def _defer(self, job: Job, requests: bool = False) -> None:
        """Over the organisation's enqueued-token limit (or with ``requests``, its
        enqueued-request limit): lower that budget and try later.

        A shard larger than the lowered budget is given up and its keys re-sharded
        smaller; any other waits (a new attempt, so a new label) until batches finish.
        """
        others_jobs = [j for j in self.ledger.jobs(["submitted"]) if j.id != job.id]
        if requests:
            size, key, floor, current = job.requests, "learned_request_budget", 1, \
                self.request_budget()
            others = sum(j.requests for j in others_jobs)
        else:
            size, key, floor, current = job.tokens, "learned_token_budget", \
                self.options.min_token_budget, self.budget()
            others = sum(j.tokens for j in others_jobs)
        budget = min(max(floor, int(0.8 * others) or size // 2), current)
        self.ledger.set_meta({key: str(budget)})
        if size > budget and not others:
            code = "request_limit_exceeded" if requests else "token_limit_exceeded"
            self.ledger.abandon_job(job.id, f"{code}: re-sharded smaller")
            if job.input_file:
                self.backend.cleanup([job.input_file])
        else:
            self.ledger.set_job(job.id, state="uploaded", attempt=job.attempt + 1,
                                remote_id=None)
            self._deferred[job.id] = time.monotonic() + self.options.poll_seconds

    def _reject(self, job: Job, status: JobStatus, report: SyncReport) -> None:
        """A batch failed validation: never send the same file again.

        A per-batch limit the service names (``too_many_tasks``, ``file_too_large``) is
        learned and the keys re-sharded under it; an enqueued-request limit is deferred
        like the token one. Otherwise the lines the errors name fail for good, each with
        its own error and source, and the job's other keys are planned again; errors that
        name no line of ours fail every chunk of the job, once.
        """
        errors = status.errors or (JobError("failed", "the batch failed without a reason"),)
        codes = {e.code for e in errors}
        if "request_limit_exceeded" in codes:
            self._defer(job, requests=True)
            return
        limit = next((e for e in errors if e.code in _LEARNED_LIMITS), None)
        if limit is not None and self._learn_limit(job, limit, report):
            return
        queued = set(self.ledger.job_keys(job.id))
        lines = line_ids(job.shard) if job.shard.exists() else {}
        sources = self.ledger.job_sources(list(lines.values()))
        named: dict[str, str] = {}
        shown: list[str] = []
        for error in errors:
            key = lines.get(error.line) if error.line else None
            if key is None or key not in queued or key in named:
                continue
            named[key] = _short(f"{error.code}: {_short(error.message, 120)} "
                                f"({sources.get(key, f'batch line {error.line}')})")
            shown.append(f"{error.code} at line {error.line} ({sources.get(key, key)}): "
                         f"{_short(error.message, 120)}")
        head = f"batch {job.label} failed validation"
        if named:
            failed = self.ledger.reject_job(job.id, list(named.items()), head)
            more = f"; and {len(shown) - 3} more" if len(shown) > 3 else ""
            report.errors.append(
                f"{head}: {'; '.join(shown[:3])}{more}. Those {failed} chunk(s) failed for "
                f"good (`indexer retry` queues them again); the other "
                f"{len(queued) - failed} were planned again")
        else:
            first = errors[0]
            where = f" (line {first.line})" if first.line else ""
            reason = _short(f"{first.code}: {first.message}{where}")
            failed = self.ledger.reject_job(job.id, [(k, reason) for k in queued], head)
            others = f" (+{len(errors) - 1} more error(s))" if len(errors) > 1 else ""
            report.errors.append(
                f"{head}: {reason}{others}; it names no line to leave out, so its {failed} "
                "chunk(s) failed for good rather than send the same file again "
                "(`indexer retry` queues them again)")
        report.failed += failed
        if job.input_file:
            self.backend.cleanup([job.input_file])
        job.shard.unlink(missing_ok=True)

    def _learn_limit(self, job: Job, error: JobError, report: SyncReport) -> bool:
        """Lower the per-batch limit ``error`` names below this shard and give the job up
        so its keys are re-sharded (no attempt charged). False if it cannot shrink."""
        if job.requests <= 1:
            return False
        stated = _stated_limit(error.message)
        if error.code == "too_many_tasks":
            limit = stated if stated and stated < job.requests else job.requests // 2
            limit = min(limit, self.shard_limits().max_requests)
            self.ledger.set_meta({_LEARNED_LIMITS[error.code]: str(limit)})
            unit = f"{limit} requests"
        else:
            size = job.shard.stat().st_size if job.shard.exists() else 0
            if not size:
                return False
            limit = int(stated * 0.95) if stated and stated < size else size // 2
            limit = min(limit, self.shard_limits().max_bytes)
            self.ledger.set_meta({_LEARNED_LIMITS[error.code]: str(limit)})
            unit = f"{limit:,} bytes"
        self._abandon(job, f"{error.code}: re-sharded under {unit}")
        report.errors.append(
            f"batch {job.label} failed validation: {error.code}: {_short(error.message)}; "
            f"its {job.requests} chunk(s) were planned again in batches of at most {unit}")
        return True

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
        strays: dict[str, np.ndarray | None] = {}
        tally: Counter[str] = Counter()
        unknown: list[str] = []
        for path in (files.output, files.errors):
            if path is None:
                continue
            for result in read_results(path, self.backend.dimensions):
                if result.custom_id not in queued:  # never ingest twice, never a stranger
                    if strays.get(result.custom_id) is None:
                        strays[result.custom_id] = result.vector
                    if len(strays) >= _GROUP:
                        self._strays(strays, tally, unknown)
                        strays = {}
                    continue
                if result.vector is not None:
                    group[result.custom_id] = result.vector
                    embedded.append(result.custom_id)
                else:
                    failed.append((result.custom_id, result.error or "failed", result.retryable))
                if len(group) >= _GROUP:
                    self._put(group)
                    group = {}
        self._put(group)
        self._strays(strays, tally, unknown)
        settled = self.ledger.finish_job(job.id, embedded, failed, self.options.max_attempts)
        report.embedded += settled.embedded + tally["adopted"]
        report.failed += settled.failed
        if sum(tally.values()):
            parts = []
            if tally["adopted"]:
                parts.append(f"{tally['adopted']} embedded from it (they had been queued "
                             "again)")
            if tally["unknown"]:
                parts.append(f"{tally['unknown']} unknown to this index "
                             f"(e.g. {', '.join(unknown)})")
            if tally["settled"]:
                parts.append(f"{tally['settled']} already settled")
            report.errors.append(
                f"batch {job.label} returned {sum(tally.values())} line(s) for chunks not in "
                f"this batch: {'; '.join(parts)}")
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

    def _strays(self, strays: dict[str, np.ndarray | None], tally: Counter[str],
                unknown: list[str]) -> None:
        """Lines for keys not queued in the job being collected: a key the ledger does not
        know is only counted; one already embedded is left alone; one whose vector is
        still wanted (queued again elsewhere, pending, or failed) is taken, so whatever
        else holds it is not paid for it again."""
        if not strays:
            return
        states = self.ledger.key_states(list(strays))
        strangers = [k for k in strays if k not in states]
        unknown.extend(strangers[:max(0, 3 - len(unknown))])
        wanted = {k: v for k, v in strays.items()
                  if v is not None and states.get(k) not in (None, "embedded")}
        if wanted:
            self._put(wanted)
            changed, taken_from = self.ledger.adopt(list(wanted))
            tally["adopted"] += changed
            self._emptied |= taken_from
        tally["unknown"] += len(strangers)
        tally["settled"] += len(strays) - len(strangers) - len(wanted)

    def _put(self, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        rows = self.ledger.key_rows(list(vectors))
        self.store.put([StoreRow(r.custom_id, r.text, r.context, r.places, vectors[r.custom_id])
                        for r in rows])


def _short(text: str, limit: int = _ERROR_CHARS) -> str:
    """``text`` on one line without a closing period, cut to ``limit`` characters."""
    flat = " ".join(text.split()).rstrip(".")
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _stated_limit(message: str) -> int | None:
    """The limit a validation message states ("... the maximum is 20."), if it does."""
    found = re.search(r"(?:maximum|limit|at most)\D{0,20}?([\d,]+)", message, re.IGNORECASE)
    return int(found.group(1).replace(",", "")) if found else None
