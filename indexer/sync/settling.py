"""Settling a finished batch: ingest what succeeded, requeue what may succeed later,
learn the limits a failure names, and record what failed for good."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.backends.contract import JobError, JobFiles, JobStatus
from indexer.batchfiles.output import read_groups
from indexer.batchfiles.requests import line_ids
from indexer.report import SyncReport
from indexer.state.ledger import Job
from indexer.sync.base import _ERROR_CHARS, _LEARNED_LIMITS, RunnerBase

if TYPE_CHECKING:
    import numpy as np

_INGESTING = "ingesting_job"
"""Ledger meta: the job whose vectors are being written to the store (see
:meth:`Settling._ingesting`)."""


class Settling(RunnerBase):
    """The part of the job runner that settles finished batches."""

    def _settle(self, job: Job, status: JobStatus, report: SyncReport) -> None:
        codes = {e.code for e in status.errors}
        if status.state == "failed" and "token_limit_exceeded" in codes:
            self._defer(job)
            return
        if status.state == "failed":
            self._reject(job, status, report)
            return
        if self.backend.remote:
            self.progress.note(f"downloading the results of {job.label}")
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

    def _collect(self, job: Job, status: JobStatus, files: JobFiles,
                 report: SyncReport) -> None:
        """Ingest a finished job's files: the vectors of its queued keys go to the store in
        one streamed write, then the ledger records every key's outcome."""
        paths = [p for p in (files.output, files.errors) if p is not None]
        queued = set(self.ledger.job_keys(job.id))
        embedded: list[str] = []
        failed: list[tuple[str, str, bool]] = []
        strays: dict[str, bool] = {}  # lines for keys not queued here: whether with a vector

        def groups() -> Iterator[tuple[list[str], np.ndarray]]:
            seen: set[str] = set()
            for path in paths:
                for group in read_groups(path, self.backend.dimensions,
                                         self.options.group_size):
                    for result in group.failures:
                        if result.custom_id in queued:
                            failed.append((result.custom_id, result.error or "failed",
                                           result.retryable))
                        else:
                            strays.setdefault(result.custom_id, False)
                    taken: list[int] = []
                    for n, key in enumerate(group.keys):
                        if key not in queued:  # never ingest twice, never a stranger
                            strays[key] = True
                        elif key not in seen:
                            seen.add(key)
                            taken.append(n)
                    keys = [group.keys[n] for n in taken]
                    embedded.extend(keys)
                    yield keys, (group.vectors if len(taken) == len(group.keys)
                                 else group.vectors[taken])

        self.store.put_vectors(groups(), fresh=self._ingesting(job))
        tally: Counter[str] = Counter()
        unknown: list[str] = []
        self._strays(strays, paths, tally, unknown)
        settled = self.ledger.finish_job(job.id, embedded, failed, self.options.max_attempts)
        self._ingested(job)
        resumed = min(status.resumed, settled.embedded)
        report.resumed += resumed
        report.embedded += settled.embedded - resumed + tally["adopted"]
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

    def _ingesting(self, job: Job) -> bool:
        """Record that ``job``'s vectors are being written; True when the store can hold
        none of its keys yet, so they may be appended rather than merged by key.

        A run stopped between writing vectors and recording them in the ledger leaves
        rows the ledger does not know of; the mark it left makes every write merge by
        key until that job is collected again, or no job is left open (see
        :meth:`_forget_ingesting`).
        """
        if self.ledger.meta().get(_INGESTING):
            return False
        self.ledger.set_meta({_INGESTING: str(job.id)})
        return True

    def _ingested(self, job: Job) -> None:
        """Every vector of ``job`` written is recorded: clear its mark."""
        if self.ledger.meta().get(_INGESTING) == str(job.id):
            self.ledger.clear_meta(_INGESTING)

    def _forget_ingesting(self) -> None:
        """With no job open and every pending key checked against the store (see
        ``_adopt_stored``), no row can be unknown to the ledger: clear a stale mark."""
        if self.ledger.meta().get(_INGESTING) and not self.ledger.open_jobs():
            self.ledger.clear_meta(_INGESTING)

    def _strays(self, strays: dict[str, bool], paths: list[Path], tally: Counter[str],
                unknown: list[str]) -> None:
        """Lines for keys not queued in the job being collected: a key the ledger does not
        know is only counted; one already embedded is left alone; one whose vector is
        still wanted (queued again elsewhere, pending, or failed) is taken, so whatever
        else holds it is not paid for it again (its vector read from the files again)."""
        if not strays:
            return
        states = self.ledger.key_states(list(strays))
        strangers = [k for k in strays if k not in states]
        unknown.extend(strangers[:max(0, 3 - len(unknown))])
        wanted = {k for k, vector in strays.items()
                  if vector and states.get(k) not in (None, "embedded")}
        if wanted:
            def groups() -> Iterator[tuple[list[str], np.ndarray]]:
                seen: set[str] = set()
                for path in paths:
                    for group in read_groups(path, self.backend.dimensions,
                                             self.options.group_size):
                        taken = [n for n, key in enumerate(group.keys)
                                 if key in wanted and key not in seen]
                        keys = [group.keys[n] for n in taken]
                        seen.update(keys)
                        yield keys, group.vectors[taken]

            self.store.put_vectors(groups())
            changed, taken_from = self.ledger.adopt(sorted(wanted))
            tally["adopted"] += changed
            self._emptied |= taken_from
        tally["unknown"] += len(strangers)
        tally["settled"] += len(strays) - len(strangers) - len(wanted)


def _short(text: str, limit: int = _ERROR_CHARS) -> str:
    """``text`` on one line without a closing period, cut to ``limit`` characters."""
    flat = " ".join(text.split()).rstrip(".")
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _stated_limit(message: str) -> int | None:
    """The limit a validation message states ("... the maximum is 20."), if it does."""
    found = re.search(r"(?:maximum|limit|at most)\D{0,20}?([\d,]+)", message, re.IGNORECASE)
    return int(found.group(1).replace(",", "")) if found else None
