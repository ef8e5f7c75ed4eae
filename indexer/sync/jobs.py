"""Batch jobs from planning to ingest: the part of a sync that spends money.

A :class:`JobRunner` turns pending keys into shards, submits them within the
enqueued-token budget, polls, and settles every finished job: it ingests what
succeeded, requeues what may succeed later (bounded attempts), and records what
failed for good. Every step is written to the ledger before the next remote call.
"""

from __future__ import annotations

import time
from pathlib import Path

from indexer.batchfiles.requests import check_shard, estimate_tokens, iter_shards
from indexer.errors import BackendError, BackendUnavailable
from indexer.report import SyncReport
from indexer.state.ledger import Job
from indexer.sync.lost import LostBatches
from indexer.sync.settling import Settling

_HELD_KEYS = 50_000
"""Pending keys gathered before asking the store which it holds (its largest query)."""


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a file apart from any rewrite of it: inode, size and change time."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_ctime_ns


def _ignore(n: int) -> None:
    """A tick nobody counts: a remote batch's lines are counted as the service reports."""

class JobRunner(Settling, LostBatches):
    """Runs the batch jobs of one index with one backend: plans, submits and polls here;
    settles in :class:`~indexer.sync.settling.Settling`; and handles batches the service
    lost track of in :class:`~indexer.sync.lost.LostBatches`."""

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

    def run(self, report: SyncReport) -> None:
        """Embed every pending key: plan, submit within the budget, collect, retry.

        A :class:`BackendError` ends the run (``report.stopped``) with every step taken
        recorded, so the next sync resumes; with ``wait``, errors that may pass (429, 5xx,
        no answer) are waited out for up to ``outage_seconds`` first.
        """
        if self.ledger.has_pending():
            # once a run, before the cost cap: what the store holds costs nothing (keys that
            # turn pending later come back from batches, so the store cannot hold them)
            self._adopt_stored()
        self._forget_ingesting()
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
        self._total = self.ledger.count_pending() + sum(
            j.requests for j in self.ledger.open_jobs())
        self.progress.stage("embed", self._total)  # one bar for every shard of the run
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
                self.progress.note(
                    f"service unavailable for {lasted:.0f} s (giving up after "
                    f"{self.options.outage_seconds:.0f} s): {exc}")
                time.sleep(delay)
                delay = min(delay * 1.5, self.options.max_poll_seconds)
                continue
            except BackendError as exc:
                self._stop(report, exc)
                break
            open_jobs = self.ledger.open_jobs()
            if self.backend.remote:
                self._show_flight(open_jobs)
            if not open_jobs and not self.ledger.has_pending():
                break
            if not progressed:
                if not self.options.wait:
                    break
                time.sleep(delay)
                delay = min(delay * 1.5, self.options.max_poll_seconds)
            else:
                delay = self.options.poll_seconds
        self.progress.note("")
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

    def _plan(self) -> bool:
        if not self.ledger.has_pending():
            return False
        limits = self.shard_limits()
        label = f"shard-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}"
        planned = False
        # each shard's keys are queued as soon as it is written: one shard's keys held
        pending = self.ledger.pending_requests(self.options.group_size, queuing=True)
        for shard in iter_shards(pending, self.backend.body(), self.batches, label, limits):
            self._written[self.ledger.create_job(self.backend.name, shard)] = _stamp(shard.path)
            planned = True
        return planned

    def _adopt_stored(self) -> None:
        """The store is keyed by content: a pending key it already has a vector for (the
        ledger was rebuilt, or lost track) is recorded as embedded, never submitted."""
        if not self.store.has_rows():
            return
        gathered: list[str] = []  # Store.held's cost per key is lowest in large queries
        for pending in self.ledger.pending_keys(self.options.group_size):
            gathered += pending
            if len(gathered) >= _HELD_KEYS:
                self._adopt_held(gathered)
                gathered = []
        self._adopt_held(gathered)

    def _adopt_held(self, keys: list[str]) -> None:
        """Record those of pending ``keys`` the store already holds as embedded."""
        held = self.store.held(keys) if keys else set()
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
                self.progress.note(f"uploading {job.label} ({size / 1e6:.1f} MB)")
            file_id = self.backend.upload(job.shard)
            self.ledger.set_job(job.id, state="uploaded", input_file=file_id)
        self.ledger.set_job(job.id, state="creating")
        self.progress.note(f"embedding {job.label} ({job.requests:,} chunks)" if local
                           else f"creating batch {job.label}")
        remote = self.backend.create(file_id, job.label, self.progress.advance if local
                                     else _ignore)
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
        written = self._written.get(job.id)
        if written is not None and written == _stamp(job.shard):
            return False  # written by this run and untouched since: it holds what was planned
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

    def cancel(self) -> int:
        """Ask the backend to cancel every submitted batch; the next sync collects them."""
        jobs = self.ledger.jobs(["submitted"])
        for job in jobs:
            assert job.remote_id is not None
            self.backend.cancel(job.remote_id)
        return len(jobs)

    def _show_flight(self, jobs: list[Job]) -> None:
        """Move the run's bar to the chunks settled or done in batches running remotely,
        and say what the run waits on."""
        submitted = [j for j in jobs if j.state == "submitted"]
        waiting = self.ledger.count_pending() + sum(j.requests for j in jobs)
        running = sum(j.completed + j.failed for j in submitted)
        total = max(self._total, waiting)
        self.progress.update("embed", total - waiting + running, total)
        shown = [f"batch {j.label} {j.remote_state or 'submitted'} "
                 f"{j.completed + j.failed:,}/{j.requests:,}" for j in submitted[:2]]
        more = f" (+{len(submitted) - 2} more)" if len(submitted) > 2 else ""
        self.progress.note("; ".join(shown) + more if shown else "")
