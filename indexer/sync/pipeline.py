"""One sync: survey sources, stage what changed, run the batch jobs, publish, flush.

Each step records its outcome in the ledger before the next begins, so a run killed
anywhere resumes where it stopped: staged documents stay pending, jobs are
collected again (re-ingesting is idempotent), and dirty store rows are rewritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.backends.contract import Backend, MeasuresInput
from indexer.batchfiles.requests import Request, content_key, write_shards
from indexer.chunking.chunker import ChunkerSettings, chunk_document, context_share, refit
from indexer.connectors.contract import Connector, ReportsChanges
from indexer.errors import Interrupted, SourceError
from indexer.progress import Progress
from indexer.records import Chunk, Document
from indexer.report import Plan, SyncReport
from indexer.state.ledger import ORPHANED, Ledger
from indexer.sync.base import JobOptions
from indexer.sync.collection import fewer_collections
from indexer.sync.jobs import JobRunner
from indexer.sync.survey import Change, survey

if TYPE_CHECKING:
    from indexer.state.store import Store



_Staged = tuple[str, str, str, str, str, list[tuple[Chunk, str]]]
"""A document read and chunked, as :meth:`Ledger.stage` records it (URI, source root,
fingerprint, content hash, title, chunks with their keys)."""


@dataclass(frozen=True)
class SyncOptions:
    """The knobs of a sync that do not change the index's identity."""

    chunker: ChunkerSettings
    jobs: JobOptions = field(default_factory=JobOptions)


class Pipeline:
    """Runs syncs for one index: its ledger, store, backend and scratch directory.

    The backend and the store are opened only when a run needs them, so a sync that
    finds nothing changed loads no model and touches no table.
    """

    def __init__(self, ledger: Ledger, backend: Callable[[], Backend],
                 store: Callable[[Backend], Store], batches: Path, options: SyncOptions,
                 progress: Progress) -> None:
        self.ledger, self._open_backend, self._open_store = ledger, backend, store
        self.options, self.progress = options, progress
        self.jobs = JobRunner(ledger, lambda: self.backend, lambda: self.store, batches,
                              options.jobs, progress)

    @cached_property
    def backend(self) -> Backend:
        """The embedding backend."""
        return self._open_backend()

    @cached_property
    def store(self) -> Store:
        """The search store."""
        return self._open_store(self.backend)

    def sync(self, sources: Sequence[Connector],
             configured: Collection[str] | None = None) -> SyncReport:
        """Bring the store up to date with ``sources``; see :class:`SyncReport`.

        ``configured`` names every source the index is configured with (not only those
        synced now): documents of any other source leave search (see
        :meth:`Ledger.withdraw_source`); ``None`` when that cannot be told.
        """
        started = time.monotonic()
        report = SyncReport()
        with fewer_collections():  # see indexer.sync.collection
            try:
                with self.ledger.first_staging():
                    for source in sources:
                        try:
                            self._survey(source, report)
                        except SourceError as exc:  # nothing of it is deleted; the others go on
                            self.progress.end()
                            self.ledger.source_failed(source.uri, str(exc))
                            report.unreachable.append(f"{source.uri}: {exc}")
                        else:
                            self.ledger.source_reached(source.uri)
                if configured is not None:
                    gone = self.ledger.withdraw_sources(self.ledger.roots() - set(configured))
                    report.orphaned.extend(f"{root}: {n} document(s)" for root, n in gone.items())
                self.jobs.run(report)
                self.publish(report)
            except KeyboardInterrupt as stop:  # every step so far is recorded: count what is kept
                checkpointed = stop.checkpointed if isinstance(stop, Interrupted) else 0
                raise Interrupted(report.embedded + report.resumed, checkpointed) from None
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _survey(self, source: Connector, report: SyncReport) -> None:
        """Stage what changed in one source; a :class:`SourceError` raised while listing
        stops it before any of its documents is deleted."""
        key = f"cursor {source.uri}"
        cursor = source.cursor() if isinstance(source, ReportsChanges) else None
        since = self.ledger.meta().get(key)
        group = self.options.jobs.group_size
        staged: list[_Staged] = []  # read and chunked, recorded a group of chunks at a time
        try:
            held = 0
            for change in survey(source, self.ledger, self.progress, since, group):
                held += self._apply(source.uri, change, report, staged)
                if held >= group:
                    self._stage(staged, report)
                    held = 0
        finally:
            self._stage(staged, report)
        if cursor is not None:  # every change up to it is staged: start there next time
            self.ledger.set_meta({key: cursor})

    def plan(self, sources: Sequence[Connector],
             configured: Collection[str] | None = None) -> Plan:
        """What :meth:`sync` would do and cost, without writing or spending anything."""
        plan = Plan(backend=self.backend.name, priced=self.options.jobs.priced,
                    model=self.backend.model,
                    budget=self.jobs.budget())
        if configured is not None:
            for root, record in self.ledger.source_records().items():
                left = sum(n for status, n in record.counts.items() if status != ORPHANED)
                if root not in configured and left:
                    plan.orphaned.append(f"{root}: {left} document(s)")
        wanted: dict[str, Request] = {r.custom_id: r for r in self.ledger.pending_requests()}
        for source in sources:
            since = self.ledger.meta().get(f"cursor {source.uri}")
            for change in survey(source, self.ledger, self.progress, since,
                                 self.options.jobs.group_size):
                setattr(plan, change.kind, getattr(plan, change.kind) + 1)
                if change.skip is not None:
                    plan.skips.append(change.skip)
                if change.document is None:
                    continue
                keyed = self.keyed_chunks(change.document)
                plan.chunks += len(keyed)
                known = self.ledger.key_states([key for _, key in keyed])
                for chunk, key in keyed:
                    if key not in known and key not in wanted:
                        wanted[key] = Request(key, chunk.embed_text, chunk.tokens)
                        plan.context_tokens += context_share(chunk)
        planned = self.ledger.jobs(["planned", "uploaded", "creating"])
        shards = write_shards(wanted.values(), self.backend.body(), None, "plan",
                              self.jobs.shard_limits())
        tokens = [s.tokens for s in shards] + [j.tokens for j in planned]
        plan.chunks_to_embed = len(wanted) + sum(j.requests for j in planned)
        plan.tokens = sum(tokens)
        plan.shards = len(tokens)
        plan.waves = self.jobs.waves(tokens)
        plan.batch_cost = round(self.options.jobs.cost(plan.tokens), 6)
        plan.sync_cost = round(2 * plan.batch_cost, 6)
        return plan

    def cancel(self) -> int:
        """Ask the backend to cancel every batch in flight."""
        return self.jobs.cancel()

    def _stage(self, staged: list[_Staged], report: SyncReport) -> None:
        """Record the documents in ``staged`` as pending in one ledger transaction (a
        commit writes every page it changed: one per document cost a third of staging),
        and empty it. Nothing is held open meanwhile: the survey reads with no lock."""
        documents = list(staged)
        staged.clear()
        if documents:
            with self.ledger.grouped():
                for document in documents:
                    report.reused += self.ledger.stage(*document)

    def _apply(self, root: str, change: Change, report: SyncReport,
               staged: list[_Staged]) -> int:
        """Record one change (a new or changed document is put in ``staged``); returns
        how many chunks it staged."""
        if change.kind == "unchanged":
            report.unchanged += 1
        elif change.kind == "deleted":
            self.ledger.remove([change.uri])
            report.deleted += 1
        elif change.kind == "skipped":
            assert change.skip is not None
            fingerprint = change.item.fingerprint if change.item else ""
            if change.was_skipped:
                pass  # skipped before, unchanged since: already recorded
            elif change.skip.empty:  # its text is gone: so is its place in search
                self.ledger.withdraw(change.uri, root, fingerprint, change.skip.reason)
            else:  # unreadable for now: an indexed version stays searchable
                self.ledger.record_skip(change.uri, root, fingerprint, change.skip.reason)
            report.skipped += 1
            report.skips.append(change.skip)
        elif change.kind == "touched":
            assert change.item is not None
            self.ledger.touch(change.uri, change.item.fingerprint)
            report.touched += 1
        else:
            assert change.item is not None and change.document is not None
            keyed = self.keyed_chunks(change.document)
            staged.append((change.uri, root, change.item.fingerprint,
                           change.document.content_hash, change.document.title, keyed))
            report.chunks += len(keyed)
            report.new += change.kind == "new"
            report.changed += change.kind == "changed"
            return len(keyed)
        return 0

    def keyed_chunks(self, document: Document) -> list[tuple[Chunk, str]]:
        """A document's chunks with their content keys under the index's model."""
        chunks = chunk_document(document, self.options.chunker)
        if isinstance(self.backend, MeasuresInput):
            chunks = refit(document, chunks, self.options.chunker, self.backend.count_tokens,
                           self.backend.input_limit)
        model, dims = self.backend.model, self.backend.dimensions
        return [(c, content_key(model, dims, c.embed_text)) for c in chunks]

    def publish(self, report: SyncReport) -> None:
        """Swap in documents whose keys are all settled, then rewrite dirty store rows.

        The ledger swaps versions in groups, which readers never see; the store rewrites
        every dirty row in one commit, so a reader sees each document before or after
        this sync, never a mix. Keys no document holds any more are hidden by that commit,
        forgotten by the ledger, then deleted from the store (a commit that changes nothing
        visible). Dirty keys are cleared only once the store has them (a dropped key once
        its row is deleted), so a run killed anywhere here is finished by the next one.
        """
        size = self.options.jobs.group_size
        after = ""
        while ready := self.ledger.publishable(size, after):
            self.ledger.publish(ready)
            report.published += len(ready)
            after = ready[-1]
        if not self.ledger.has_dirty():
            return
        through = self.ledger.dirty_mark()

        with self.ledger.passage_lookup() as lookup:
            self.store.set_places(self.ledger.dirty_rows(size, through),
                                  self.ledger.dirty_count(), lookup, size)
        self.ledger.settle_dirty(through)
        for dropped in self.ledger.dropped_keys(size, through):
            self.store.purge(dropped)
            self.ledger.clear_dirty(dropped)
        self.store.optimize()
