"""Batches the service says it does not know: given up only on repeated evidence, looked
for again, and adopted when they turn up, so nothing they hold is paid for twice."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from indexer.backends.contract import RemoteJob
from indexer.report import SyncReport
from indexer.state.ledger import Job
from indexer.sync.base import RunnerBase

if TYPE_CHECKING:

    pass


class LostBatches(RunnerBase):
    """The part of the job runner that handles batches the service lost track of."""

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
            self._abandon(job, "some of its chunks were embedded by another batch; the rest "
                               "were planned again")
            pruned = True
        return pruned
