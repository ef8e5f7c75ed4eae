"""One sync: scan sources, load and chunk what changed, embed new keys, publish, flush.

Each step records its outcome in the ledger before the next begins, so a run killed
anywhere resumes where it stopped: staged documents stay pending, jobs are
collected again (re-ingesting is idempotent), and dirty store rows are rewritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from connectors.filesystem import FilesystemSource, load
from indexer.backend import Backend
from indexer.batchfile import BatchLimits, content_key, write_shards
from indexer.batchoutput import read_results
from indexer.chunker import ChunkerSettings, chunk_document
from indexer.ledger import DocumentState, Job, Ledger
from indexer.progress import Progress
from indexer.records import Document, SourceItem
from indexer.report import SyncReport
from indexer.store import Store, StoreRow

_GROUP = 2_000


@dataclass(frozen=True)
class SyncOptions:
    """The knobs of a sync that do not change the index's identity."""

    chunker: ChunkerSettings
    limits: BatchLimits = field(default_factory=BatchLimits)
    max_attempts: int = 3


class Pipeline:
    """Runs syncs for one index: its ledger, store, backend and scratch directory."""

    def __init__(self, ledger: Ledger, backend: Callable[[], Backend],
                 store: Callable[[Backend], Store], batches: Path, options: SyncOptions,
                 progress: Progress) -> None:
        self.ledger, self._open_backend, self._open_store = ledger, backend, store
        self.batches, self.options, self.progress = batches, options, progress

    @cached_property
    def backend(self) -> Backend:
        """The embedding backend, loaded only when a run has something to embed."""
        return self._open_backend()

    @cached_property
    def store(self) -> Store:
        """The search store, opened only when a run has something to write."""
        return self._open_store(self.backend)

    def sync(self, sources: Sequence[FilesystemSource]) -> SyncReport:
        """Bring the store up to date with ``sources``; see :class:`SyncReport`."""
        started = time.monotonic()
        report = SyncReport()
        for source in sources:
            self._scan(source, report)
        self._embed(report)
        self._publish(report)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    # -- scan, load, chunk ---------------------------------------------------------

    def _scan(self, source: FilesystemSource, report: SyncReport) -> None:
        root = source.root.resolve().as_posix()
        known = self.ledger.documents(root)
        seen: set[str] = set()
        changed: list[SourceItem] = []
        self.progress.stage(f"scan {source.root}")
        for found in source.scan():
            self.progress.advance()
            seen.add(found.uri)
            if not isinstance(found, SourceItem):
                report.skipped += 1
                report.skips.append(found)
                self.ledger.record_skip(found.uri, root, "", found.reason)
                continue
            state = known.get(found.uri)
            if state and state.fingerprint == found.fingerprint:
                report.unchanged += 1
                if state.status == "skipped":
                    report.skipped += 1
            else:
                changed.append(found)
        self.progress.end()
        gone = [uri for uri in known if uri not in seen]
        self.ledger.remove(gone)
        report.deleted += len(gone)
        self._load(changed, root, known, report)

    def _load(self, items: list[SourceItem], root: str, known: dict[str, DocumentState],
              report: SyncReport) -> None:
        self.progress.stage("read & chunk", len(items))
        for item in items:
            loaded = load(item)
            state = known.get(item.uri)
            if not isinstance(loaded, Document):
                report.skipped += 1
                report.skips.append(loaded)
                self.ledger.record_skip(item.uri, root, item.fingerprint, loaded.reason)
            elif state and loaded.content_hash == (state.pending_hash or state.content_hash):
                report.touched += 1
                self.ledger.touch(item.uri, item.fingerprint)
            else:
                self._stage(root, item, loaded, report, is_new=state is None)
            self.progress.advance()
        self.progress.end()

    def _stage(self, root: str, item: SourceItem, doc: Document, report: SyncReport,
               is_new: bool) -> None:
        chunks = chunk_document(doc, self.options.chunker)
        model, dims = self.backend.model, self.backend.dimensions
        keyed = [(c, content_key(model, dims, c.embed_text)) for c in chunks]
        self.ledger.stage(item.uri, root, item.fingerprint, doc.content_hash, doc.title, keyed)
        report.chunks += len(keyed)
        report.reused += len(self.ledger.embedded([key for _, key in keyed]))
        if is_new:
            report.new += 1
        else:
            report.changed += 1

    # -- embed ---------------------------------------------------------------------

    def _embed(self, report: SyncReport) -> None:
        if not self.ledger.open_jobs() and not self.ledger.has_pending():
            return
        for _ in range(self.options.max_attempts + 1):
            for job in self.ledger.open_jobs():
                self._run(job, report)
            requests = self.ledger.pending_requests()
            if not requests:
                break
            limits = self.options.limits
            limits = replace(limits, max_requests=min(limits.max_requests,
                                                      self.backend.max_batch_requests))
            label = f"shard-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}"
            for shard in write_shards(requests, self.backend.body(), self.batches, label, limits):
                self.ledger.create_job(self.backend.name, shard)
        report.in_flight = len(self.ledger.open_jobs())

    def _run(self, job: Job, report: SyncReport) -> None:
        remote = job.remote_id
        if job.state == "planned":
            self.progress.stage("embed", job.requests)
            try:
                remote = self.backend.submit(job.shard, job.shard.stem, self.progress.advance)
            finally:
                self.progress.end()
            self.ledger.set_job(job.id, "submitted", remote_id=remote)
            report.jobs += 1
            report.tokens += job.tokens
        assert remote is not None
        if self.backend.status(remote).done:
            self._collect(job, remote, report)

    def _collect(self, job: Job, remote: str, report: SyncReport) -> None:
        files = self.backend.fetch(remote, self.batches)
        embedded: list[str] = []
        failed: list[tuple[str, str, bool]] = []
        group: dict[str, object] = {}
        for path in (files.output, files.errors):
            if path is None:
                continue
            for result in read_results(path, self.backend.dimensions):
                if result.vector is not None:
                    group[result.custom_id] = result.vector
                    embedded.append(result.custom_id)
                else:
                    failed.append((result.custom_id, result.error or "failed", result.retryable))
                if len(group) >= _GROUP:
                    self._put(group)
                    group = {}
        self._put(group)
        self.ledger.finish_job(job.id, embedded, failed, self.options.max_attempts)
        report.embedded += len(embedded)
        report.failed += sum(1 for _, _, retry in failed if not retry)
        for path in (job.shard, files.output, files.errors):
            if path is not None and self.backend.name == "local":
                path.unlink(missing_ok=True)

    def _put(self, vectors: dict[str, object]) -> None:
        if not vectors:
            return
        rows = self.ledger.key_rows(list(vectors))
        self.store.put([StoreRow(r.custom_id, r.text, r.context, r.places,
                                 vectors[r.custom_id]) for r in rows])  # type: ignore[arg-type]

    # -- publish -------------------------------------------------------------------

    def _publish(self, report: SyncReport) -> None:
        ready = self.ledger.publishable()
        for start in range(0, len(ready), _GROUP):
            self.ledger.publish(ready[start:start + _GROUP])
        report.published = len(ready)
        dirty = self.ledger.dirty_keys()
        if not dirty:
            return
        for start in range(0, len(dirty), _GROUP):
            keys = dirty[start:start + _GROUP]
            rows = self.ledger.key_rows(keys)
            drop = [r.custom_id for r in rows if not r.places and not r.pending_refs]
            keep = [StoreRow(r.custom_id, r.text, r.context, r.places) for r in rows
                    if r.places or r.pending_refs]
            self.store.set_places(keep, drop)
            self.ledger.settle_dirty(keys, drop)
        self.store.optimize()
