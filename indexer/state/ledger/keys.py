"""The ledger's content keys and batch jobs: pending, queued, embedded or failed keys,
and every job's record of intent from planned to ingested."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from indexer.batchfiles.requests import Request, Shard, estimate_tokens
from indexer.state.ledger.connection import LedgerBase, _slices
from indexer.state.ledger.records import (
    _JOB_FIELDS,
    OPEN_JOB_STATES,
    Job,
    RestoredJob,
    Settled,
)


class KeyRecords(LedgerBase):
    """Content keys and the jobs that embed them."""

    _handed: dict[str, int]
    """The rows of the keys :meth:`pending_requests` handed out and no job has queued yet."""

    def has_pending(self) -> bool:
        """True when some key waits for a job."""
        return self._db.execute(
            "SELECT 1 FROM keys WHERE state = 'pending' LIMIT 1").fetchone() is not None

    def count_pending(self) -> int:
        """How many keys wait for a job."""
        return int(self._db.execute(
            "SELECT count(*) FROM keys WHERE state = 'pending'").fetchone()[0])

    def pending_keys(self, group: int = 2_000) -> Iterator[list[str]]:
        """Every key waiting for a job, ``group`` at a time in a stable order; each group is
        read whole before it is handed on, so the caller may change the keys' states."""
        for rows in self._pending_pages(group, "custom_id"):
            yield [r[0] for r in rows]

    def holds_vectors(self) -> bool:
        """True when some key is embedded (so the store must have its table)."""
        return self._db.execute(
            "SELECT 1 FROM keys WHERE state = 'embedded' LIMIT 1").fetchone() is not None

    def adopt_stored(self, keys: Sequence[str]) -> None:
        """Record pending keys whose vector the store already holds as embedded: they are
        never submitted again, and their rows are rewritten on the next flush."""
        with self._tx() as db:
            db.executemany("UPDATE keys SET state = 'embedded', job_id = NULL, error = NULL "
                           "WHERE custom_id = ? AND state = 'pending'", [(k,) for k in keys])
            db.executemany("INSERT OR IGNORE INTO dirty VALUES (?)", [(k,) for k in keys])

    def pending_requests(self, group: int = 2_000, queuing: bool = False
                         ) -> Iterator[Request]:
        """Keys waiting for a job, in a stable order, read ``group`` at a time (memory stays
        flat, and no read is left open while the caller queues the keys handed on).

        ``queuing``: the caller queues every key handed on with :meth:`create_job` (each
        key's row is remembered until then, so that it is found by row, not through the
        key's index; what is left is forgotten at the next call)."""
        handed: dict[str, int] = {}
        self._handed = handed
        for rows in self._pending_pages(group, "custom_id, text, context, tokens", True):
            for row, key, text, ctx, tokens in rows:
                if queuing:
                    handed[key] = row
                yield Request(key, f"{ctx}\n\n{text}" if ctx else text, tokens)

    def _pending_pages(self, group: int, columns: str, rowid: bool = False
                       ) -> Iterator[list[Any]]:
        """Pending keys' ``columns``, ``group`` rows at a time by rowid (the rowid dropped
        unless ``rowid``: then it comes first).

        A pending key has no job (a ledger opened for writing sees to it), so each page is
        a range of the ``keys_state`` index, in rowid order: no page sorts every pending key.
        """
        after = 0
        while rows := self._db.execute(
                f"SELECT rowid, {columns} FROM keys WHERE state = 'pending' AND job_id IS NULL "
                "AND rowid > ? ORDER BY rowid LIMIT ?", (after, group)).fetchall():
            after = rows[-1][0]
            yield rows if rowid else [r[1:] for r in rows]

    def create_job(self, backend: str, shard: Shard) -> int:
        """Record a shard as a planned job and queue its keys in it (before any remote call)."""
        now = time.time()
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO jobs (backend, shard, state, requests, tokens, created_at, "
                "updated_at) VALUES (?, ?, 'planned', ?, ?, ?, ?)",
                (backend, str(shard.path), shard.requests, shard.tokens, now, now))
            job_id = int(cursor.lastrowid or 0)
            # in the shard's order, which is the table's: each of its pages is visited once;
            # a key handed out by pending_requests is found by its row (checked to still be
            # that key's), any other through the key's index
            handed = self._handed
            rows = [(job_id, handed.pop(key, 0), key) for key in shard.custom_ids]
            took = db.executemany("UPDATE keys SET state = 'queued', job_id = ? "
                                  "WHERE rowid = ? AND custom_id = ?", rows).rowcount
            if took != len(rows):
                db.executemany("UPDATE keys SET state = 'queued', job_id = ? "
                               "WHERE custom_id = ?", [(job_id, key) for key in shard.custom_ids])
        return job_id

    def set_job(self, job_id: int, **fields: object) -> None:
        """Record what is now known of a job (state, remote ids, counts, error)."""
        unknown = set(fields) - _JOB_FIELDS
        if unknown:
            raise ValueError(f"not job fields: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ?",
                       (*fields.values(), time.time(), job_id))

    def jobs(self, states: Sequence[str] = OPEN_JOB_STATES) -> list[Job]:
        """Jobs in ``states`` (by default the open ones), oldest first."""
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            "SELECT id, backend, shard, state, attempt, remote_id, input_file, output_file, "
            "error_file, requests, tokens, completed, failed, usage_tokens, remote_state, "
            f"created_at, misses, missing_since FROM jobs WHERE state IN ({marks}) ORDER BY id",
            tuple(states))
        return [Job(r[0], r[1], Path(r[2]), *r[3:]) for r in rows]

    def open_jobs(self) -> list[Job]:
        """Jobs not yet ingested, oldest first."""
        return self.jobs()

    def job_sources(self, keys: Sequence[str]) -> dict[str, str]:
        """For error messages: a document (and location) each key comes from."""
        found: dict[str, str] = {}
        for part in _slices(keys):
            marks = ",".join("?" * len(part))
            for key, uri, start in self._db.execute(
                    f"SELECT custom_id, uri, line_start FROM chunks WHERE custom_id IN ({marks})",
                    part):
                found.setdefault(key, f"{uri}:{start}" if start else uri)
        return found

    def finish_job(self, job_id: int, embedded: Sequence[str],
                   failed: Sequence[tuple[str, str, bool]], max_attempts: int) -> Settled:
        """Settle every key of a job: embedded; failed (a retryable failure goes back to
        pending while attempts remain); or missing from both files (likewise)."""
        # one statement walks the job's keys in table order (through keys_state) and looks
        # each up in the list; the list in key order fills the dirty index in order
        listed = json.dumps(sorted(embedded), separators=(",", ":"))
        with self._tx() as db:
            took = db.execute(  # the job is let go of at once: one change per key
                "UPDATE keys SET state = 'embedded', error = NULL, job_id = NULL "
                "WHERE state = 'queued' AND job_id = ? "
                "AND custom_id IN (SELECT value FROM json_each(?))", (job_id, listed))
            done = max(took.rowcount, 0)
            db.executemany(
                "UPDATE keys SET attempts = attempts + 1, error = ?, "
                "state = CASE WHEN ? AND attempts + 1 < ? THEN 'pending' ELSE 'failed' END "
                "WHERE custom_id = ? AND job_id = ? AND state = 'queued'",
                [(error, retryable, max_attempts, key, job_id)
                 for key, error, retryable in failed])
            db.execute(
                "UPDATE keys SET attempts = attempts + 1, error = 'missing from the batch output',"
                " state = CASE WHEN attempts + 1 < ? THEN 'pending' ELSE 'failed' END "
                "WHERE job_id = ? AND state = 'queued'", (max_attempts, job_id))
            outcome = dict(db.execute(
                "SELECT state, count(*) FROM keys WHERE job_id = ? GROUP BY state", (job_id,)))
            db.execute("UPDATE keys SET job_id = NULL WHERE job_id = ?", (job_id,))
            db.execute("UPDATE jobs SET state = 'ingested', updated_at = ? WHERE id = ?",
                       (time.time(), job_id))
            db.execute("INSERT OR IGNORE INTO dirty SELECT value FROM json_each(?)", (listed,))
        return Settled(done + outcome.get("embedded", 0), outcome.get("pending", 0),
                       outcome.get("failed", 0))

    def lose_job(self, job_id: int, reason: str, max_attempts: int) -> Settled:
        """Record a batch as lost: its queued keys are charged an attempt and go back to
        pending (failed once attempts run out). The job keeps its label, so a batch that
        turns up again under it is recognised and adopted."""
        with self._tx() as db:
            db.execute(
                "UPDATE keys SET attempts = attempts + 1, error = ?, "
                "state = CASE WHEN attempts + 1 < ? THEN 'pending' ELSE 'failed' END "
                "WHERE job_id = ? AND state = 'queued'", (reason, max_attempts, job_id))
            outcome = dict(db.execute(
                "SELECT state, count(*) FROM keys WHERE job_id = ? GROUP BY state", (job_id,)))
            db.execute("UPDATE keys SET job_id = NULL WHERE job_id = ?", (job_id,))
            db.execute("UPDATE jobs SET state = 'lost', error = ?, updated_at = ? WHERE id = ?",
                       (reason, time.time(), job_id))
        return Settled(0, outcome.get("pending", 0), outcome.get("failed", 0))

    def adopt(self, keys: Sequence[str]) -> tuple[int, set[int]]:
        """Mark keys embedded whose vectors came from a batch they were no longer queued in
        (one that turned up again after it was given up): whatever job, pending or failed
        state they were in, they are settled now. Returns how many changed, and the jobs
        they were taken out of."""
        with self._tx() as db:
            changed, taken_from = 0, set()
            for key in keys:
                row = db.execute("SELECT job_id FROM keys WHERE custom_id = ? "
                                 "AND state != 'embedded'", (key,)).fetchone()
                if row is None:
                    continue
                db.execute("UPDATE keys SET state = 'embedded', error = NULL, job_id = NULL "
                           "WHERE custom_id = ?", (key,))
                changed += 1
                if row[0] is not None:
                    taken_from.add(int(row[0]))
            db.executemany("INSERT OR IGNORE INTO dirty VALUES (?)", [(k,) for k in keys])
        return changed, taken_from

    def queued_counts(self) -> dict[int, int]:
        """How many keys each job still holds queued."""
        return dict(self._db.execute(
            "SELECT job_id, count(*) FROM keys WHERE state = 'queued' GROUP BY job_id"))

    def result_files(self) -> set[str]:
        """Remote output and error file ids of jobs no longer open (their lines are in)."""
        marks = ",".join("?" * len(OPEN_JOB_STATES))
        rows = self._db.execute(
            f"SELECT output_file, error_file FROM jobs WHERE state NOT IN ({marks})",
            OPEN_JOB_STATES)
        return {file_id for row in rows for file_id in row if file_id}

    def abandon_job(self, job_id: int, reason: str) -> None:
        """Give a job up without charging its keys an attempt: they go back to pending."""
        with self._tx() as db:
            db.execute("UPDATE keys SET state = 'pending', job_id = NULL "
                       "WHERE job_id = ? AND state = 'queued'", (job_id,))
            db.execute("UPDATE jobs SET state = 'abandoned', error = ?, updated_at = ? "
                       "WHERE id = ?", (reason, time.time(), job_id))

    def reject_job(self, job_id: int, failed: Sequence[tuple[str, str]], reason: str) -> int:
        """Close a job the service refused: the ``failed`` keys fail for good, each with its
        own error; the job's other keys go back to pending without an attempt charged.
        Returns how many keys failed."""
        with self._tx() as db:
            cursor = db.executemany(
                "UPDATE keys SET state = 'failed', attempts = attempts + 1, error = ?, "
                "job_id = NULL WHERE custom_id = ? AND job_id = ? AND state = 'queued'",
                [(error, key, job_id) for key, error in failed])
            count = max(cursor.rowcount, 0)
            db.execute("UPDATE keys SET state = 'pending', job_id = NULL "
                       "WHERE job_id = ? AND state = 'queued'", (job_id,))
            db.execute("UPDATE jobs SET state = 'abandoned', error = ?, updated_at = ? "
                       "WHERE id = ?", (reason, time.time(), job_id))
        return count

    def count_failed(self) -> int:
        """Keys failed for good that a live or pending document still holds."""
        return int(self._db.execute(
            "SELECT count(DISTINCT k.custom_id) FROM keys k JOIN chunks c USING (custom_id) "
            "WHERE k.state = 'failed'").fetchone()[0])

    def job_keys(self, job_id: int) -> list[str]:
        """The keys still queued in a job."""
        return [r[0] for r in self._db.execute(
            "SELECT custom_id FROM keys WHERE job_id = ? AND state = 'queued'", (job_id,))]

    def embedded(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that have a vector in the store."""
        return {k for k, state in self.key_states(keys).items() if state == "embedded"}

    def key_states(self, keys: Sequence[str]) -> dict[str, str]:
        """The state of each of ``keys`` the ledger knows."""
        found: dict[str, str] = {}
        for part in _slices(keys):
            marks = ",".join("?" * len(part))
            found.update(self._db.execute(
                f"SELECT custom_id, state FROM keys WHERE custom_id IN ({marks})", part))
        return found

    def keys_in_state(self, state: str) -> set[str]:
        """Every key in ``state``."""
        return {r[0] for r in self._db.execute(
            "SELECT custom_id FROM keys WHERE state = ?", (state,))}

    def requeue(self, keys: Sequence[str]) -> None:
        """Send keys back to pending (their vectors are lost); the next sync embeds them."""
        with self._tx() as db:
            db.executemany("UPDATE keys SET state = 'pending', job_id = NULL, attempts = 0 "
                           "WHERE custom_id = ?", [(k,) for k in keys])

    def restore_keys(self, keys: Iterable[tuple[str, str, str]]) -> None:
        """Record keys whose vector the store holds, ``(custom_id, text, context)``, as
        embedded."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO keys (custom_id, text, context, tokens, state) "
                "VALUES (?, ?, ?, ?, 'embedded')",
                ((key, text, ctx, estimate_tokens(text, 0)) for key, text, ctx in keys))

    def restore_job(self, job: RestoredJob) -> None:
        """Record a batch found on the service, with its keys the store lacks queued in it."""
        tokens = sum(estimate_tokens(r.text, r.tokens) for r in job.requests)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO jobs (id, backend, shard, state, attempt, remote_id, "
                "input_file, requests, tokens, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.backend, str(job.shard), job.state, job.attempt, job.remote_id,
                 job.input_file, len(job.requests), tokens, job.created_at, time.time()))
            db.executemany(
                "INSERT OR IGNORE INTO keys (custom_id, text, context, tokens, state, job_id) "
                "VALUES (?, ?, '', ?, 'queued', ?)",
                [(r.custom_id, r.text, r.tokens, job.id) for r in job.requests])

    def billed_tokens(self) -> int:
        """Tokens of every ingested job whose usage the backend reported."""
        return int(self._db.execute(
            "SELECT coalesce(sum(usage_tokens), 0) FROM jobs").fetchone()[0])

    def jobs_without_usage(self) -> int:
        """Ingested jobs whose batch reported no token usage (their cost is unknown)."""
        return int(self._db.execute(
            "SELECT count(*) FROM jobs WHERE state = 'ingested' AND usage_tokens IS NULL"
        ).fetchone()[0])
