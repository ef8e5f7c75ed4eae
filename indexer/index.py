"""The :class:`Index` facade: one index directory, its config, ledger, store and backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from indexer import config as configfile
from indexer import identity
from indexer.backends import registry
from indexer.backends.contract import Backend
from indexer.errors import ConfigError, DamageError, SourceError, StateError
from indexer.progress import Progress, Silent
from indexer.records import SearchHit, Skip
from indexer.report import IndexStatus, JobInfo, Plan, SyncReport
from indexer.state.damage import Damage
from indexer.state.layout import Layout
from indexer.state.ledger import Ledger

if TYPE_CHECKING:
    from indexer.connectors.contract import Connector, ConnectorContext
    from indexer.state.doctor import Checkup
    from indexer.state.recovery import BatchService
    from indexer.state.store import Store
    from indexer.sync.pipeline import Pipeline

DEFAULT_DIR = ".indexer"
ENV_DIR = "INDEXER_DIR"


def default_path() -> Path:
    """``$INDEXER_DIR`` if set, else ``./.indexer``."""
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


class Index:
    """A local semantic search index kept in one directory.

    >>> index = Index(".indexer")              # doctest: +SKIP
    >>> index.sync(["docs"])                   # doctest: +SKIP
    >>> index.search("how do I cancel a batch?", k=3)   # doctest: +SKIP
    """

    def __init__(self, path: str | Path | None = None, *, backend: str | None = None,
                 base_url: str | None = None, progress: Progress | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.progress: Progress = progress or Silent()
        self.config = configfile.read(self.path)
        if self.config.backend not in registry.names():
            raise ConfigError(f"{self.path / configfile.FILENAME}: backend must be one of "
                              f"{', '.join(registry.names())}, not {self.config.backend!r}")
        if base_url:
            self.config = replace(self.config, base_url=base_url)
        self._backend_choice = backend
        self._layout = Layout(self.path)
        self._gen = self._layout.current
        self._ledger: Ledger | None = None
        self._backend: Backend | None = None

    # -- public API ----------------------------------------------------------------

    def sync(self, paths: Sequence[str | Path] = (), include: Sequence[str] = (),
             exclude: Sequence[str] = (), *, wait: bool = False,
             max_cost: float | None = None, rebuild: bool = False,
             wait_lock: bool = False, follow_links: bool = False) -> SyncReport:
        """Crawl ``paths`` (added to the index's sources) or every configured source, and
        bring the store up to date: embed what changed, drop what was deleted.

        With a remote backend, batches still running when the call returns are
        collected by the next sync (``report.in_flight``); ``wait=True`` polls until
        every batch is done. ``max_cost`` (dollars, default from config) refuses to
        submit a run estimated above it (``report.refused_cost``).

        ``rebuild=True`` builds a new generation with the configured model beside the
        live one (resumed by the next ``rebuild`` sync while batches are in flight) and
        swaps it in once complete (``report.swapped``); search keeps using the old one
        until then.

        ``paths`` are remembered with ``include``, ``exclude`` and ``follow_links``
        (index what symbolic links leading outside the folder point to; by default
        such a link is reported as skipped).
        """
        sources = self._sources(paths, include, exclude, follow_links, remember=True)
        ledger = self._open_ledger()
        if not rebuild:
            self._check_choice()
            with ledger.lock("sync", wait_lock):
                self._require_table()
                return self._pipeline(wait, max_cost).sync(sources)
        with ledger.lock("rebuild", wait_lock):
            target = Index(self.path, backend=self._backend_choice, progress=self.progress)
            target.config = self.config
            target._gen = self._layout.start_rebuild()
            with target, target._open_ledger().lock("rebuild"):
                report = target._pipeline(wait, max_cost).sync(sources)
            if report.complete:
                self._layout.swap()
                report.swapped = True
            return report

    def add(self, paths: Sequence[str | Path], include: Sequence[str] = (),
            exclude: Sequence[str] = (), follow_links: bool = False) -> list[str]:
        """Remember folders as sources (see :meth:`sync`) without syncing; returns every
        known source."""
        if not paths:
            raise SourceError("give at least one folder to add")
        self._sources(paths, include, exclude, follow_links, remember=True)
        return [s.path for s in self.config.sources]

    def plan(self, paths: Sequence[str | Path] = (), include: Sequence[str] = (),
             exclude: Sequence[str] = (), follow_links: bool = False) -> Plan:
        """What :meth:`sync` would do and cost now, without spending or changing anything
        (new sources are not remembered)."""
        sources = self._sources(paths, include, exclude, follow_links, remember=False)
        self._check_choice()
        return self._pipeline(wait=False).plan(sources)

    def retry(self) -> int:
        """Give chunks that failed for good another round of attempts on the next sync.
        Returns how many were queued again."""
        self._require()
        ledger = self._open_ledger()
        with ledger.lock("retry"):
            failed = sorted(ledger.keys_in_state("failed"))
            ledger.requeue(failed)
            return len(failed)

    def cancel(self) -> int:
        """Cancel every batch in flight; the next sync ingests what they finished and
        queues the rest again. Returns how many batches were asked to cancel."""
        self._require()
        with self._open_ledger().lock("cancel"):
            return self._pipeline(wait=False).cancel()

    def gc(self) -> int:
        """Delete scratch batch files, local and remote, that no open job needs.
        Returns how many files were deleted."""
        self._require()
        ledger = self._open_ledger()
        with ledger.lock("gc"):
            from indexer.state.doctor import stale_local_files

            deleted = 0
            for path in stale_local_files(ledger, Layout.batches(self._gen)):
                path.unlink(missing_ok=True)
                deleted += 1
            for generation in self._layout.retired():
                self._layout.remove(generation)
                deleted += 1
            built_with = ledger.meta().get("backend")
            if built_with and registry.get(built_with).remote:  # only then files stay remote
                from indexer.state.doctor import stale_remote_files

                backend = self._open_backend()
                stale = stale_remote_files(ledger, backend.remote_files)
                backend.cleanup(stale)
                deleted += len(stale)
            return deleted

    def doctor(self, repair: bool = False) -> Checkup:
        """Check that the ledger and the store are whole and agree; with ``repair``, mend
        what is safe (never spending: lost vectors are queued for the next sync). A lost
        or damaged ledger is rebuilt from the store and the batch service's list."""
        from indexer.state.doctor import Checkup, examine, mend_store
        from indexer.state.recovery import recover_ledger

        self._require()
        mended = recover_ledger(self._gen, self.config, self._service) if repair else []
        if mended:
            self.close()  # a connection opened before would still see the old file
        ledger = self._open_ledger()
        with ledger.lock("doctor"):
            meta = ledger.meta()
            damage = mend_store(ledger, Layout.store(self._gen), meta.get("model", ""),
                                int(meta.get("dimensions") or 0), repair)
            mended += [damage] if damage else []
            if damage and not damage.repaired:  # the other checks read the table
                return Checkup(["ledger", "store"], mended)
            backend = self._open_backend()
            remote = backend.remote_files if backend.remote else None
            checkup = examine(ledger, self._store(backend), self._layout, repair,
                              remote, backend.cleanup if remote else None,
                              Layout.batches(self._gen))
            checkup.checks[:0] = ["ledger", "store"]
            checkup.findings[:0] = mended
            if repair and any(f.check in ("places", "store") for f in checkup.findings):
                self._pipeline(wait=False).publish(SyncReport())  # rewrites the dirty rows
            return checkup

    def _service(self, built: dict[str, str]) -> BatchService | None:
        """The batch service of an index built as ``built`` (None if jobs run in-process),
        for rebuilding a lost ledger."""
        from indexer.state.recovery import BatchService

        spec = registry.get(built["backend"])
        if not spec.remote:
            return None
        backend = spec.create(identity.recorded(self.config, built), built["index_id"],
                              Layout.batches(self._gen))
        return backend if isinstance(backend, BatchService) else None

    def _require_table(self) -> None:
        """Refuse an index whose search table is gone (a look at the files: the store's
        contents are checked when it is opened, see :meth:`_check_store`)."""
        if self._open_ledger().holds_vectors() and not self._layout.has_table(self._gen):
            raise Damage(missing_table=True).error(Layout.store(self._gen))

    def _check_store(self, migrate: bool = False) -> None:
        """Refuse a damaged store (`indexer doctor --repair` restores it); with ``migrate``
        (writers only) make the schema changes another version left."""
        from indexer.state.store import inspect, migrate_schema

        damage = inspect(Layout.store(self._gen))
        if damage.missing_table and not self._open_ledger().holds_vectors():
            return  # a new index: the table is made on its first write
        if damage.broken:
            raise damage.error(Layout.store(self._gen))
        if damage.migrations and migrate:
            migrate_schema(Layout.store(self._gen))

    def _pipeline(self, wait: bool, max_cost: float | None = None) -> Pipeline:
        from indexer.chunking.chunker import ChunkerSettings
        from indexer.sync.base import JobOptions
        from indexer.sync.pipeline import Pipeline, SyncOptions

        meta = self._open_ledger().meta()
        model = meta.get("model") or self.config.model
        priced = self._spec(meta).priced
        jobs = JobOptions(max_attempts=self.config.max_attempts,
                          token_budget=self.config.token_budget, wait=wait,
                          poll_seconds=self.config.poll_seconds,
                          outage_seconds=self.config.outage_seconds,
                          batch_price=self.config.batch_price(model) if priced else 0.0,
                          priced=priced,
                          max_cost=max_cost if max_cost is not None else self.config.max_cost,
                          lost_after_seconds=self.config.lost_after_seconds,
                          group_size=self.config.group_size)
        options = SyncOptions(ChunkerSettings(max_tokens=self.config.chunk_tokens,
                                                  context=self.config.chunk_context), jobs)
        return Pipeline(self._open_ledger(), self._open_backend, self._writable_store,
                        Layout.batches(self._gen), options, self.progress)

    def _require(self) -> None:
        if not self._layout.exists():
            raise SourceError(f"no index at {self.path}; build one with `indexer sync FOLDER`")

    def search(self, query: str, k: int = 5, where: str | None = None,
               hybrid: bool = False, mode: str | None = None) -> list[SearchHit]:
        """The ``k`` passages that best answer ``query``, best first. ``mode`` is a
        :mod:`search mode <indexer.search.modes>` (``vector``, the default, or ``hybrid``,
        which fuses vector and full-text results; ``hybrid=True`` says the same);
        ``where`` filters on stored columns (``uri``, ``heading``, ``page``, ``text``)."""
        from indexer.search.modes import Query
        from indexer.search.modes import mode as search_mode

        chosen = search_mode(mode or ("hybrid" if hybrid else "vector"))
        if not query.strip():
            raise ConfigError("the search query is empty")
        self._require()
        spec = self._spec(self._open_ledger().meta())
        if chosen.embeds_query and not spec.embeds_queries:
            raise ConfigError(f"the {spec.name} backend cannot embed search queries")
        backend = self._open_backend()
        vector = backend.embed_query([query])[0] if chosen.embeds_query else None
        store = self._store(backend)
        try:
            return chosen.run(store, Query(query, vector, k, where))
        except StateError:
            from indexer.state.store import inspect

            damage = inspect(store.directory)  # a damaged table is not a bad --where filter
            if damage.broken:
                raise damage.error(store.directory) from None
            if damage.migrations:
                raise StateError(f"the search store's schema is from another version "
                                 f"({', '.join(damage.migrations)}); run `indexer sync` or "
                                 "`indexer doctor --repair` to migrate it") from None
            raise

    def status(self) -> IndexStatus:
        """What the index holds, without loading the model or the store (a missing search
        table is refused; `doctor` checks the table's contents)."""
        self._require()
        ledger = self._open_ledger()
        self._require_table()
        meta, counts = ledger.meta(), ledger.counts()
        unknown = ledger.jobs_without_usage()
        billed = None if unknown else ledger.billed_tokens()
        priced = "backend" in meta and registry.get(meta["backend"]).priced
        price = self.config.batch_price(meta.get("model", "")) if priced else 0.0
        jobs = tuple(JobInfo(j.label, j.state, j.remote_id, j.remote_state, j.requests,
                             j.completed, j.failed, j.tokens) for j in ledger.open_jobs())
        return IndexStatus(
            path=str(self.path),
            backend=meta.get("backend", "?"),
            priced=priced,
            model=meta.get("model", "?"),
            dimensions=int(meta.get("dimensions", 0)),
            sources=tuple(s.path for s in self.config.sources),
            documents=counts.get("documents_indexed", 0),
            pending_documents=counts.get("documents_pending", 0),
            skipped_documents=counts.get("documents_skipped", 0),
            passages=counts.get("chunks_embedded", 0),
            chunks_pending=counts.get("chunks_pending", 0) + counts.get("chunks_queued", 0),
            chunks_failed=counts.get("chunks_failed", 0),
            jobs_open=counts.get("jobs_open", 0),
            problems=tuple(Skip(uri, reason) for uri, reason in ledger.skips()),
            jobs=jobs,
            tokens_billed=billed,
            cost=None if billed is None else round(billed * price / 1e6, 6),
            batches_without_usage=unknown,
        )

    def close(self) -> None:
        """Release the ledger connection."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------

    def _sources(self, paths: Sequence[str | Path], include: Sequence[str],
                 exclude: Sequence[str], follow_links: bool,
                 remember: bool) -> list[Connector]:
        """The sources a run covers: ``paths`` (remembered if asked) or every known one,
        each with the connector its URI scheme names."""
        from indexer.connectors import registry as connectors
        from indexer.connectors.filesystem import path_uri

        config = self.config
        wanted = [_location(p) for p in paths]
        known = {s.path: s for s in config.sources}
        for path in wanted:
            if connectors.scheme_of(path) == "file" and path_uri(path) != path:
                raise SourceError(
                    f"source {path_uri(path)} has a name that is not valid UTF-8; rename it, "
                    "or give a folder that contains it")
            kept = known[path].options if path in known else {}  # set in config.toml only
            config = config.with_source(configfile.SourceConfig(
                path, tuple(include), tuple(exclude), follow_links, kept))
        sources = [connectors.connector_for(s, self._context(s.path, config, remember))
                   for s in config.sources if not wanted or s.path in wanted]
        if not sources:
            raise SourceError("no source to sync: give a folder, e.g. `indexer sync ./docs`")
        if remember:
            self.path.mkdir(parents=True, exist_ok=True)
            for entry in config.sources:
                if entry not in self.config.sources:
                    configfile.remember_source(self.path, entry)
            self.config = config
        return sources

    def _context(self, source: str, config: configfile.Config,
                 writes: bool) -> ConnectorContext:
        """What a source's connector is given: the config, the index's own folder (never
        crawled) and the source's private state folder (see :meth:`Layout.source_state`)."""
        from indexer.connectors.contract import ConnectorContext

        return ConnectorContext(config, (self.path,), Layout.source_state(self.path, source),
                                writes)

    def _open_ledger(self) -> Ledger:
        """The generation's ledger; a missing, empty or damaged one next to the index's
        store and identity is refused (`indexer doctor --repair` rebuilds it)."""
        if self._ledger is None:
            from indexer.state.recovery import identity as identity_of

            self._gen.mkdir(parents=True, exist_ok=True)
            path = Layout.ledger(self._gen)
            kept = self._layout.holds_index(self._gen)
            if kept and not path.exists():
                raise DamageError(identity.lost_ledger(path, "is missing"))
            ledger = Ledger(path)
            meta = ledger.meta()
            if kept and not meta:
                ledger.close()
                raise DamageError(identity.lost_ledger(path, "is empty"))
            if meta.get("index_id") and self._layout.identity(self._gen) is None:
                self._layout.record_identity(self._gen, identity_of(meta))  # older indexes
            self._ledger = ledger
        return self._ledger

    def _check_choice(self, settings: bool = True) -> dict[str, str]:
        """Refuse, before loading anything, a backend (and with ``settings``, a model
        setting) the index was not built with."""
        meta = self._open_ledger().meta()
        identity.check(meta, self._backend_choice, self.config if settings else None)
        return meta

    def _open_backend(self) -> Backend:
        if self._backend is not None:
            return self._backend
        ledger = self._open_ledger()
        meta = self._check_choice(settings=False)
        spec = self._spec(meta)
        index_id = meta.get("index_id") or uuid.uuid4().hex[:12]
        config = identity.recorded(self.config, meta)  # an index keeps the model it was built with
        backend = spec.create(config, index_id, Layout.batches(self._gen))
        if meta and (meta.get("model"), meta.get("dimensions")) != (
                backend.model, str(backend.dimensions)):
            raise identity.changed(meta, f"{backend.model} ({backend.dimensions} dimensions)")
        if not meta:
            meta = identity.new(spec.name, backend, config, index_id)
            ledger.set_meta(meta)
            self._layout.record_identity(self._gen, meta)
        self._backend = backend
        return backend

    def _spec(self, meta: dict[str, str]) -> registry.BackendSpec:
        """The backend this index was built with, or the one a new index will use."""
        return registry.choose(meta.get("backend") or self._backend_choice or self.config.backend)

    def _writable_store(self, backend: Backend) -> Store:
        """The store for a run holding the writer lock: checked whole, and migrated."""
        self._check_store(migrate=True)
        return self._store(backend)

    def _store(self, backend: Backend) -> Store:
        from indexer.state.store import Store, StoreHealth

        health = StoreHealth.from_config(self.config)
        return Store(Layout.store(self._gen), backend.model, backend.dimensions, health,
                     create=not self._open_ledger().holds_vectors())


def _location(path: str | Path) -> str:
    """A source as the config records it: a folder's absolute path, or a URI as given."""
    from indexer.connectors.registry import scheme_of

    text = str(path)
    return Path(text).resolve().as_posix() if scheme_of(text) == "file" else text
