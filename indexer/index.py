"""The :class:`Index` facade: one index directory, its config, ledger, store and backend."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from indexer import config as configfile
from indexer import identity
from indexer.backends import registry
from indexer.backends.contract import Backend
from indexer.errors import ConfigError, DamageError, IndexMismatch, SourceError, StateError
from indexer.progress import Progress, Silent
from indexer.records import SearchHit, Skip
from indexer.state.damage import Damage
from indexer.state.layout import Layout
from indexer.state.ledger import Ledger

if TYPE_CHECKING:
    from indexer.connectors.contract import Connector, ConnectorContext
    from indexer.report import IndexStatus, Plan, RemovedSource, SourceInfo, SyncReport
    from indexer.state.doctor import Checkup
    from indexer.state.recovery import BatchService
    from indexer.state.store import Reader, Store
    from indexer.sync.pipeline import Pipeline

DEFAULT_DIR = ".indexer"
ENV_DIR = "INDEXER_DIR"
POINTER_SECONDS = 10.0
"""How long a reader of a store in object storage (``--store``) trusts the generation it
opened before reading the store's pointer again (to follow a ``sync --rebuild``)."""


def default_path(start: Path | None = None,
                 environ: Mapping[str, str] = os.environ) -> Path:
    """The index to use when none is named, found as git finds ``.git``: ``$INDEXER_DIR``
    if set, else the nearest ``.indexer`` folder in ``start`` (the current folder) or one
    of its parents, else ``.indexer`` in ``start`` (where a new index is created).

    A path given explicitly (``Index(path)``, ``--index``) always comes first."""
    if environ.get(ENV_DIR):
        return Path(environ[ENV_DIR])
    here = Path(DEFAULT_DIR) if start is None else start / DEFAULT_DIR
    if here.is_dir():
        return here
    for folder in here.parent.resolve().parents:
        if (folder / DEFAULT_DIR).is_dir():
            return folder / DEFAULT_DIR
    return here


class Index:
    """A local semantic search index kept in one directory.

    >>> index = Index(".indexer")              # doctest: +SKIP
    >>> index.sync(["docs"])                   # doctest: +SKIP
    >>> index.search("how do I cancel a batch?", k=3)   # doctest: +SKIP
    """

    def __init__(self, path: str | Path | None = None, *, backend: str | None = None,
                 base_url: str | None = None, progress: Progress | None = None,
                 store: str | None = None) -> None:
        if store is not None:
            try:
                configfile.check_store_uri(store)
            except ValueError as exc:
                raise ConfigError(f"--store: {exc}") from None
        self.path = Path(path) if path is not None else default_path()
        self.progress: Progress = progress or Silent()
        self.config = configfile.read(self.path)
        if not registry.known(self.config.backend):
            raise ConfigError(f"{self.path / configfile.FILENAME}: backend must be one of "
                              f"{', '.join(registry.names())}, not {self.config.backend!r}")
        if base_url:
            self.config = replace(self.config, base_url=base_url)
        self._backend_choice = backend
        self._layout = Layout(self.path)
        self._gen = self._layout.current
        self._ledger: Ledger | None = None
        self._backend: Backend | None = None
        self._reader: Reader | None = None
        self._citing: tuple[tuple[configfile.SourceConfig, ...], list[Connector]] | None = None
        self._new_id = ""
        self._writes = True  # False while a reader runs: nothing is created or changed
        self._store_root = store  # a store read from object storage alone, with no ledger
        self._pointer_read = 0.0

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Run a reader (plan, search, status): the ledger is opened read-only (or, for an
        index not yet created, empty in memory) and nothing is written to disk."""
        saved, self._writes = self._writes, False
        try:
            yield
        finally:
            self._writes = saved

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
        from indexer.sync.sources import configured_roots

        sources = self._sources(paths, include, exclude, follow_links, remember=True)
        configured = configured_roots(self.config, self._read_context)
        ledger = self._open_ledger()
        if not rebuild:
            self._check_choice()
            with ledger.lock("sync", wait_lock):
                self._require_table()
                return self._pipeline(wait, max_cost).sync(sources, configured)
        with ledger.lock("rebuild", wait_lock):
            target = Index(self.path, backend=self._backend_choice, progress=self.progress)
            target.config = self.config
            target._gen = self._layout.start_rebuild()
            with target, target._open_ledger().lock("rebuild"):
                report = target._pipeline(wait, max_cost).sync(sources, configured)
            if report.complete:
                self._layout.swap()
                self._point(target._gen, self._layout.identity(target._gen) or {}, True)
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

    def sources(self) -> tuple[SourceInfo, ...]:
        """Every configured source (its kind, when it was last synced, its documents, why
        it could not be reached last time), then every source the index still holds
        documents of that ``config.toml`` no longer names."""
        from indexer.sync.sources import listing

        records = self._open_ledger().source_records() if self._layout.exists() else {}
        return listing(self.config, records, self._read_context)

    def remove(self, source: str | Path, wait_lock: bool = False) -> RemovedSource:
        """Forget ``source`` (as ``config.toml`` or ``sources`` names it): its entry leaves
        ``config.toml`` (comments kept), its documents leave search now (one store commit)
        and the ledger, and its connector state folder is deleted. Vectors no other
        document holds are deleted: adding the source back embeds it again."""
        from indexer.report import RemovedSource, SyncReport
        from indexer.sync.sources import find

        self._refuse_store_only()
        text = str(source)
        names = {text, _location(text)}
        ledger = self._open_ledger() if self._layout.exists() else None
        roots = ledger.source_records().keys() if ledger is not None else set()
        entry, uri = find(self.config, roots, names, self._read_context)
        if uri is None:
            known = [s.source for s in self.sources()]
            raise SourceError(f"no source {text} in this index (known: "
                              f"{', '.join(known) or 'none'}); `indexer sources` lists them")
        documents = 0
        with ledger.lock("remove", wait_lock) if ledger is not None else nullcontext():
            if entry is not None:  # first: a run stopped next withdraws the documents
                configfile.forget_source(self.path, entry.path)
                self.config = replace(self.config, sources=tuple(
                    s for s in self.config.sources if s.path != entry.path))
            if ledger is not None:
                documents = ledger.forget_source(uri)
                if ledger.has_dirty():
                    self._require_table()
                    self._pipeline(wait=False).publish(SyncReport())
            deleted = False
            for name in {uri, entry.path if entry is not None else uri}:
                state = Layout.source_state(self.path, name)
                if state.exists():
                    shutil.rmtree(state)
                    deleted = True
        return RemovedSource(entry.path if entry is not None else uri, uri, entry is not None,
                             documents, deleted)

    def plan(self, paths: Sequence[str | Path] = (), include: Sequence[str] = (),
             exclude: Sequence[str] = (), follow_links: bool = False) -> Plan:
        """What :meth:`sync` would do and cost now, without spending or changing anything
        (new sources are not remembered)."""
        from indexer.sync.sources import configured_roots

        sources = self._sources(paths, include, exclude, follow_links, remember=False)
        with self._reading():
            self._check_choice()
            configured = configured_roots(self.config, self._read_context)
            return self._pipeline(wait=False).plan(sources, configured)

    @property
    def remote(self) -> bool:
        """True when this index's backend runs jobs on a service (batches can be in flight
        between runs); False for one that runs them in-process."""
        with self._reading():
            return self._spec(self._open_ledger().meta()).remote

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
                self._drop_store(generation)
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
            damage = mend_store(ledger, self._location(), meta.get("model", ""),
                                int(meta.get("dimensions") or 0), repair)
            mended += [damage] if damage else []
            if damage and not damage.repaired:  # the other checks read the table
                return Checkup(["ledger", "store"], mended)
            backend = self._open_backend()
            remote = backend.remote_files if backend.remote else None
            checkup = examine(ledger, self._store(backend), self._layout, repair,
                              remote, backend.cleanup if remote else None,
                              Layout.batches(self._gen), self._drop_store)
            checkup.checks[:0] = ["ledger", "store"]
            checkup.findings[:0] = mended
            if repair and any(f.check in ("places", "store") for f in checkup.findings):
                from indexer.report import SyncReport

                self._pipeline(wait=False).publish(SyncReport())  # rewrites the dirty rows
            return checkup

    def _service(self, built: dict[str, str]) -> BatchService | None:
        """The batch service of an index built as ``built`` (None if jobs run in-process),
        for rebuilding a lost ledger."""
        from indexer.state.recovery import BatchService

        spec = registry.get(built["backend"])
        if not spec.remote:
            return None
        self._make_folder(Layout.batches(self._gen))
        backend = spec.create(identity.recorded(self.config, built), built["index_id"],
                              Layout.batches(self._gen))
        return backend if isinstance(backend, BatchService) else None

    def _require_table(self) -> None:
        """Refuse an index whose search table is gone (a look at the files: the store's
        contents are checked when it is opened, see :meth:`_check_store`)."""
        if self._store_uri():
            return  # no file to look at: opening the store finds a missing table
        if self._open_ledger().holds_vectors() and not self._layout.has_table(self._gen):
            raise Damage(missing_table=True).error(Layout.store(self._gen))

    def _check_store(self, migrate: bool = False) -> None:
        """Refuse a damaged store (`indexer doctor --repair` restores it); with ``migrate``
        (writers only) make the schema changes another version left."""
        from indexer.state.store import inspect, migrate_schema

        damage = inspect(self._location())
        if damage.missing_table and not self._open_ledger().holds_vectors():
            return  # a new index: the table is made on its first write
        if damage.broken:
            raise damage.error(self._location())
        if damage.migrations and migrate:
            migrate_schema(self._location())

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
        self._refuse_store_only()
        if not self._layout.exists():
            raise SourceError(f"no index at {self.path}; build one with `indexer sync FOLDER`")

    def search(self, query: str, k: int = 5, where: str | None = None,
               hybrid: bool = False, mode: str | None = None, *, per_doc: bool = False,
               passages: int = 3, context: int = 0, source: str | Path | None = None,
               path: str | None = None) -> list[SearchHit]:
        """The ``k`` passages that best answer ``query``, best first.

        ``mode`` is a :mod:`search mode <indexer.search.modes>`: ``hybrid`` (meaning fused
        with full-text matches, the default once the full-text index exists), ``vector``
        (the default before) or ``keyword``; ``hybrid=True`` says ``mode="hybrid"``. Each
        hit says which mode ranked it and how each half did (:class:`SearchHit`).

        ``per_doc``: the ``k`` best documents instead, each once with up to ``passages``
        of its best passages. ``context``: merge that many neighbouring passages on each
        side into each hit's text. ``where`` filters on stored columns (``uri``,
        ``heading``, ``page``, ``text``...); ``source`` keeps one source's documents and
        ``path`` those whose URI matches a glob (see :func:`indexer.search.scope.glob_regex`).
        Filters apply before ranking, so a narrow one still yields ``k`` hits when there
        are that many.
        """
        from indexer.search.modes import mode as search_mode
        from indexer.search.scope import path_condition
        from indexer.search.searcher import Request, choose, run

        if mode or hybrid:
            search_mode(mode or "hybrid")  # an unknown mode is refused before anything opens
        if not query.strip():
            raise ConfigError("the search query is empty")
        if k < 1 or passages < 1 or context < 0:
            raise ConfigError("k and passages must be at least 1, context at least 0")
        if self._store_root is None:
            self._require()
        elif source is not None or context:
            raise ConfigError(f"--{'source' if source is not None else 'context'} needs the "
                              "index's ledger, which --store does not read; narrow by --path "
                              "or --where")
        with self._reading():
            ledger = self._open_ledger()
            if self._store_root is None and not ledger.holds_vectors():
                return []  # nothing embedded yet (and no table to open)
            spec = self._spec(ledger.meta())
            narrowing = [self._source_condition(source)] if source is not None else []
            narrowing += [path_condition(path)] if path else []
            request = Request(query, k, where, mode or ("hybrid" if hybrid else None),
                              per_doc, passages, context, tuple(narrowing))
            backend = self._open_backend()
            store = self._read_store(backend)
            try:
                chosen = choose(request, store)
                if chosen.embeds_query and not spec.embeds_queries:
                    raise ConfigError(f"the {spec.name} backend cannot embed search queries; "
                                      "use --mode keyword")
                hits = run(request, chosen, store,
                           (lambda: backend.embed_query([query])[0]) if chosen.embeds_query
                           else None, ledger.neighbours)
            except StateError:
                from indexer.state.store import inspect

                directory = Layout.store(self._gen)
                damage = inspect(directory)  # a damaged table is not a bad filter
                if damage.broken:
                    raise damage.error(directory) from None
                if damage.migrations:
                    raise StateError(f"the search store's schema is from another version "
                                     f"({', '.join(damage.migrations)}); run `indexer sync` or "
                                     "`indexer doctor --repair` to migrate it") from None
                raise
            return self._cite(hits)

    def _cite(self, hits: list[SearchHit]) -> list[SearchHit]:
        """Fill in the origin (commit, path, link) of hits from sources that cite one (built
        once per configuration: a warm server does not rebuild them for every query)."""
        from indexer.connectors.registry import spec_for
        from indexer.search.origins import cite

        if self._citing is None or self._citing[0] != self.config.sources:
            sources = []
            for source in self.config.sources:
                spec = spec_for(source)
                if spec is None or not spec.cites:
                    continue  # its connector is never imported for a search
                try:
                    sources.append(spec.create(source, self._context(source.path,
                                                                     self.config, False)))
                except (SourceError, ConfigError):
                    continue  # a source sync would refuse: its hits just have no origin
            self._citing = (self.config.sources, sources)
        return cite(hits, self._citing[1], self._open_ledger().meta())

    def evaluate(self, queries: str | Path, qrels: str | Path,
                 modes: Sequence[str] = ()) -> dict[str, dict[str, float]]:
        """Measure search on judged queries: ``queries`` is JSONL (``{"_id", "text"}``),
        ``qrels`` a BEIR or TREC judgments TSV whose document ids are indexed documents'
        URIs or file stems. Returns, for each of ``modes`` (default: every mode), the mean
        ``ndcg@10``, ``recall@10``, ``recall@100`` and ``mrr@10`` over the judged queries
        (see :mod:`indexer.search.evaluation`)."""
        from indexer.search.evaluation import DEPTH, evaluate, load
        from indexer.search.modes import MODES
        from indexer.search.modes import mode as search_mode

        judged = load(Path(queries), Path(qrels))
        chosen = [search_mode(name).name for name in modes] or list(MODES)

        def rank(text: str, mode: str) -> list[str]:
            return [hit.document or hit.place.uri for hit in
                    self.search(text, k=DEPTH, mode=mode, per_doc=True, passages=1)]

        return evaluate(judged, chosen, rank)

    def _source_condition(self, source: str | Path) -> str:
        """The store filter for one source's documents; an unknown source is refused with
        the known ones named."""
        from indexer.search.scope import source_condition

        ledger = self._open_ledger()
        wanted = _location(source)
        if not ledger.known_source(wanted):
            known = ", ".join(s.path for s in self.config.sources) or "none"
            raise ConfigError(f"no documents are indexed from source {wanted}; "
                              f"known sources: {known}")
        prefix = wanted if wanted.endswith("/") else wanted + "/"
        return source_condition(prefix, ledger.documents_outside(wanted, prefix))

    def status(self) -> IndexStatus:
        """What the index holds, without loading the model or the store (a missing search
        table is refused; `doctor` checks the table's contents)."""
        self._require()
        with self._reading():
            return self._status()

    def _status(self) -> IndexStatus:
        from indexer.report import IndexStatus, JobInfo

        ledger = self._open_ledger()
        self._require_table()
        meta, counts = ledger.meta(), ledger.counts()
        unknown = ledger.jobs_without_usage()
        billed = None if unknown else ledger.billed_tokens()
        spec = registry.get(meta["backend"]) if "backend" in meta else None
        priced = spec is not None and spec.priced
        price = self.config.batch_price(meta.get("model", "")) if priced else 0.0
        jobs = tuple(JobInfo(j.label, j.state, j.remote_id, j.remote_state, j.requests,
                             j.completed, j.failed, j.tokens) for j in ledger.open_jobs())
        return IndexStatus(
            path=str(self.path),
            backend=meta.get("backend", "?"),
            priced=priced,
            remote=spec is not None and spec.remote,
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
            store=str(self._location()),
        )

    def is_current(self) -> bool:
        """True while this object reads the index's current generation (a ``sync
        --rebuild`` elsewhere swaps in a new one: open a new :class:`Index` to read it)."""
        if self._store_root is not None:  # the pointer costs requests: read it now and then
            if self._ledger is None or time.monotonic() - self._pointer_read < POINTER_SECONDS:
                return True
            from indexer.state.store import pointed

            self._pointer_read = time.monotonic()
            return pointed(self._store_root).get("generation") == self._gen.name
        return self._layout.current == self._gen

    def close(self) -> None:
        """Release the ledger connection and the search table."""
        self._reader = None
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

        self._refuse_store_only()
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
            self._make_folder(self.path)
            for entry in config.sources:
                if entry not in self.config.sources:
                    configfile.remember_source(self.path, entry)
            self.config = config
        return sources

    def _read_context(self, source: configfile.SourceConfig) -> ConnectorContext:
        """The context of a connector built only to be looked at (nothing is written)."""
        return self._context(source.path, self.config, writes=False)

    def _context(self, source: str, config: configfile.Config,
                 writes: bool) -> ConnectorContext:
        """What a source's connector is given: the config, the index's own folder (never
        crawled) and the source's private state folder (see :meth:`Layout.source_state`)."""
        from indexer.connectors.contract import ConnectorContext

        return ConnectorContext(config, (self.path,), Layout.source_state(self.path, source),
                                writes)

    def _open_ledger(self) -> Ledger:
        """The generation's ledger; a missing, empty or damaged one next to the index's
        store and identity is refused (`indexer doctor --repair` rebuilds it). While a
        reader runs (:meth:`_reading`) it is opened read-only, and an index not created yet
        gets an empty one in memory."""
        if self._ledger is not None and self._writes and self._ledger.readonly:
            self.close()  # opened by a reader: open it again to write
        if self._ledger is None and self._store_root is not None:
            self._ledger = self._store_ledger(self._store_root)
        if self._ledger is None:
            path = Layout.ledger(self._gen)
            kept = self._layout.holds_index(self._gen)
            if kept and not path.exists():
                raise DamageError(identity.lost_ledger(path, "is missing"))
            if self._writes:
                self._make_folder(self._gen)
                ledger = Ledger(path)
            else:
                ledger = Ledger(path if path.exists() else None, readonly=True)
            meta = ledger.meta()
            if kept and not meta:
                ledger.close()
                raise DamageError(identity.lost_ledger(path, "is empty"))
            if (self._writes and meta.get("index_id")
                    and self._layout.identity(self._gen) is None):
                from indexer.state.recovery import identity as identity_of

                self._layout.record_identity(self._gen, identity_of(meta))  # older indexes
            self._ledger = ledger
        return self._ledger

    def _refuse_store_only(self) -> None:
        """Refuse anything but search on a store read without its index (``--store``)."""
        if self._store_root is not None:
            raise ConfigError(f"{self._store_root} is a search store read without its index: "
                              "only search works there; run other commands where the index "
                              "is (--index)")

    def _store_ledger(self, root: str) -> Ledger:
        """For a store read alone (``--store``): an empty ledger in memory holding the
        identity the store records, its generation made the one read."""
        from indexer.state.store import pointed

        if self._writes:
            raise ConfigError(f"{root} is a search store read without its index: it cannot "
                              "be written from here; sync where the index is")
        meta = pointed(root)
        self._pointer_read = time.monotonic()
        self._gen = Path(meta.pop("generation"))
        ledger = Ledger(None)
        ledger.set_meta(meta)
        return ledger

    def _store_uri(self, generation: Path | None = None) -> str | None:
        """The object-storage root of ``generation``'s store (None: its local folder), as
        recorded when the generation was made; the configuration's for a new one."""
        if self._store_root is not None:
            return self._store_root
        built = self._layout.identity(generation or self._gen)
        if built is None:
            return self.config.store_uri
        return built.get("store_uri") or None

    def _location(self, generation: Path | None = None) -> Path | str:
        """Where the search store of ``generation`` (default: the one open) lives."""
        return Layout.store_location(generation or self._gen, self._store_uri(generation))

    def _check_location(self) -> None:
        """Refuse a ``store_uri`` other than the one the index's vectors are in; an index
        that holds none yet takes the new one."""
        from indexer.state.recovery import identity as identity_of

        ledger = self._open_ledger()
        kept, wanted = ledger.meta().get("store_uri", ""), self.config.store_uri or ""
        if kept == wanted:
            return
        if ledger.holds_vectors():
            raise IndexMismatch(
                f"this index's search store is in {kept or Layout.store(self._gen)} but "
                f"store_uri now names {wanted or 'the index folder'}; restore the setting, "
                "or run `indexer sync --rebuild` to build the store there (everything is "
                "embedded again)")
        ledger.set_meta({"store_uri": wanted})
        self._layout.record_identity(self._gen, identity_of(ledger.meta()))

    def _point(self, generation: Path, built: dict[str, str], swapped: bool = False) -> None:
        """With the store in object storage, name ``generation`` there as the live one,
        with its identity ``built``, for readers that have only the URI (``swapped``: a
        rebuild replaces the index named there)."""
        root = self._store_uri(generation)
        if root and self._store_root is None:
            from indexer.state.store import point

            point(root, generation.name, built, swapped)

    def _drop_store(self, generation: Path) -> None:
        """Delete a retired generation's table kept in object storage (a local one goes
        with its folder)."""
        if self._store_uri(generation):
            from indexer.state.store import drop

            drop(self._location(generation))

    def _make_folder(self, folder: Path) -> None:
        """Create one of the index's folders, or say in one line why it cannot be written."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create the index at {self.path}: "
                             f"{exc.strerror or exc}; give a writable folder with --index or "
                             "INDEXER_DIR") from exc
        if not os.access(folder, os.W_OK):
            raise StateError(f"the index at {self.path} is read-only; searching and "
                             "`indexer status` work, a sync needs a writable copy")

    def _check_choice(self, settings: bool = True) -> dict[str, str]:
        """Refuse, before loading anything, a backend (and with ``settings``, a model
        setting) the index was not built with."""
        meta = self._open_ledger().meta()
        identity.check(meta, self._backend_choice, self.config if settings else None)
        return meta

    def _open_backend(self) -> Backend:
        if self._writes:
            self._make_folder(Layout.batches(self._gen))
        if self._backend is not None:
            if self._writes and not self._open_ledger().meta():
                self._record_identity(self._backend, self._new_id)  # made by a reader
            return self._backend
        meta = self._check_choice(settings=False)
        spec = self._spec(meta)
        index_id = meta.get("index_id") or uuid.uuid4().hex[:12]
        config = identity.recorded(self.config, meta)  # an index keeps the model it was built with
        backend = spec.create(config, index_id, Layout.batches(self._gen))
        if meta and (meta.get("model"), meta.get("dimensions")) != (
                backend.model, str(backend.dimensions)):
            raise identity.changed(meta, f"{backend.model} ({backend.dimensions} dimensions)")
        self._backend, self._new_id = backend, index_id
        if not meta and self._writes:
            self._record_identity(backend, index_id)
        return backend

    def _record_identity(self, backend: Backend, index_id: str) -> None:
        """Record a new index's backend, model and id in its ledger and beside it."""
        meta = identity.new(self._spec({}).name, backend, self.config, index_id)
        self._open_ledger().set_meta(meta)
        self._layout.record_identity(self._gen, meta)

    def _spec(self, meta: dict[str, str]) -> registry.BackendSpec:
        """The backend this index was built with, or the one a new index will use."""
        return registry.choose(meta.get("backend") or self._backend_choice or self.config.backend)

    def _writable_store(self, backend: Backend) -> Store:
        """The store for a run holding the writer lock: checked whole, and migrated (in
        object storage, the live generation is named there for readers)."""
        self._check_location()
        if self._gen == self._layout.current:
            from indexer.state.recovery import identity as identity_of

            self._point(self._gen, identity_of(self._open_ledger().meta()))
        self._check_store(migrate=True)
        return self._store(backend)

    def _read_store(self, backend: Backend) -> Reader:
        """The store searches read (through Lance alone, see :class:`Reader`), kept open
        between searches and moved to the table's latest version before each (a sync in
        another process commits new versions)."""
        if self._reader is None:
            from indexer.state.store import Reader

            self._reader = Reader(self._location(), backend.model, backend.dimensions,
                                  self.config.refine_factor)
        else:
            self._reader.refresh()
        return self._reader

    def _store(self, backend: Backend) -> Store:
        from indexer.state.store import Store, StoreHealth

        health = StoreHealth.from_config(self.config)
        return Store(self._location(), backend.model, backend.dimensions, health,
                     create=self._writes and not self._open_ledger().holds_vectors())


def _location(path: str | Path) -> str:
    """A source as the config records it: a folder's absolute path, or a URI as given."""
    from indexer.connectors.registry import scheme_of

    text = str(path)
    return Path(text).resolve().as_posix() if scheme_of(text) == "file" else text
