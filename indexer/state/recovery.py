"""``indexer doctor --repair`` for a lost or damaged ledger: rebuild it from what survives.

The index's identity (backend, model, dimensions, index id) is kept in the generation's
``identity.json``; the search store holds every paid-for vector with its text and
places; the batch service still lists the index's batches by their metadata. From
these the ledger is rebuilt without embedding anything:

- each store row's key is recorded as embedded, and its places become the live chunks
  of their documents, with empty fingerprints: the next sync reads every file again,
  re-chunks it and finds its keys already embedded;
- each batch the service still runs is recorded as a submitted job with its keys
  queued (read from the local shard, or from the uploaded input file), so the next
  sync collects it instead of paying for its chunks again.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from indexer.backends import registry
from indexer.backends.contract import TERMINAL, RemoteJob
from indexer.batchfiles.requests import Request, estimate_tokens, read_requests
from indexer.errors import BackendError, DamageError, StateError
from indexer.records import Place
from indexer.state.doctor import Finding, store_finding
from indexer.state.layout import Layout
from indexer.state.ledger import Ledger, RestoredJob, install, set_aside

if TYPE_CHECKING:
    from indexer.config import Config

IDENTITY_KEYS = ("backend", "model", "dimensions", "index_id", "config_model",
                 "config_dimensions", "config_model_dir", "store_uri")
"""The ledger settings that make an index what it is (kept in ``identity.json`` too)."""
_LABEL = re.compile(r"job(\d+)-a(\d+)")


@runtime_checkable
class BatchService(Protocol):
    """What the rebuild needs from a remote backend: its batches and their input files."""

    def remote_jobs(self) -> list[RemoteJob]:
        """This index's batches, newest first."""
        ...

    def remote_files(self) -> list[tuple[str, str]]:
        """``(file id, filename)`` of this index's uploaded batch files."""
        ...

    def download_input(self, file_id: str, target: Path) -> Path:
        """Save an uploaded input file as ``target``."""
        ...


@dataclass(frozen=True)
class Rebuilt:
    """What the rebuilt ledger holds: keys, documents, batches recreated in flight (with
    the keys queued in them), and batches whose keys could not be read."""

    keys: int
    documents: int
    jobs: int
    queued: int
    unreadable_jobs: int


def identity(meta: dict[str, str]) -> dict[str, str]:
    """The identity part of a ledger's settings."""
    return {k: meta[k] for k in IDENTITY_KEYS if k in meta}


def ledger_problem(path: Path) -> str | None:
    """Why the ledger at ``path`` cannot be used (missing, empty, damaged), or None."""
    if not path.exists():
        return "missing"
    try:
        ledger = Ledger(path, verify=True)
    except DamageError:
        return "damaged"
    try:
        return None if ledger.meta() else "empty"
    finally:
        ledger.close()


def recover_ledger(generation: Path, config: Config,
                   service: Callable[[dict[str, str]], BatchService | None]) -> list[Finding]:
    """Set a damaged ledger aside and rebuild a missing (or empty) one; return what was done.

    The store is restored first (see :func:`indexer.state.store.restore`) so that every row
    the rebuild reads is whole. ``service`` gives the batch service for an identity
    (None for a backend that runs jobs in-process).
    """
    from indexer.state.store import Store, recorded_model, restore

    path = Layout.ledger(generation)
    problem = ledger_problem(path)
    kept = Layout.holds_index(generation)
    if problem is None or (problem in ("missing", "empty") and not kept):
        return []
    if not kept:  # a damaged ledger of an index that embedded nothing yet: start afresh
        return [Finding("ledger", f"damaged ledger set aside as {set_aside(path)} (the index "
                        "held no vectors yet: the next sync starts a new one)", 1, True)]
    found = Layout.identity(generation)
    recorded = found is not None
    root = found.get("store_uri") if found is not None else config.store_uri
    store_dir = Layout.store_location(generation, root or None)
    meta = found or _guess_identity(config, recorded_model(store_dir))
    remote = service(meta)  # fails (missing API key...) before anything is changed
    findings = []
    if problem != "missing":
        findings.append(Finding("ledger", f"{problem} ledger set aside as {set_aside(path)}",
                                1, True))
    rows: Iterable[dict[str, Any]] = ()
    table = (Layout.has_table(generation) if isinstance(store_dir, Path)
             else recorded_model(store_dir) is not None)
    if table:
        restored = restore(store_dir, meta["model"], int(meta["dimensions"]))
        if restored.damage.broken:
            lost = None if restored.recreated else restored.dropped_rows - restored.recovered_rows
            findings.append(store_finding(restored, lost))
        rows = Store(store_dir, meta["model"], int(meta["dimensions"])).rows()
    sources = [s.path for s in config.sources]
    rebuilt = rebuild(path, meta, rows, sources, remote, Layout.batches(generation))
    Layout.record_identity(generation, identity(meta))
    message = (f"key(s) rebuilt into a new ledger from the store ({rebuilt.documents} "
               "document(s); the next sync reads every file again and embeds only what the "
               "store lacks)")
    if remote is not None:
        message += (f", {rebuilt.jobs} batch(es) in flight recorded with {rebuilt.queued} "
                    "chunk(s) queued")
    if rebuilt.unreadable_jobs:
        message += (f"; {rebuilt.unreadable_jobs} batch(es) in flight had no readable "
                    "input file: their chunks are embedded again")
    if not table:
        message += ("; there is no search table (never written, or lost): the next sync "
                    "embeds every chunk that is not in a batch in flight")
    if not recorded and registry.get(meta["backend"]).remote:
        message += ("; the index id was never recorded (an index made by an older version): "
                    "batches it had in flight cannot be found")
    findings.append(Finding("ledger", message, rebuilt.keys, True))
    return findings


def rebuild(path: Path, meta: dict[str, str], rows: Iterable[dict[str, Any]],
            sources: Sequence[str], service: BatchService | None, batches: Path) -> Rebuilt:
    """Write a new ledger at ``path`` (where none is) from store ``rows`` and the batch
    ``service``; built in a scratch file and moved into place when complete."""
    scratch = path.with_name(f"{path.name}.rebuild-{os.getpid()}")
    for leftover in scratch.parent.glob(f"{scratch.name}*"):
        leftover.unlink()
    ledger = Ledger(scratch)
    try:
        ledger.set_meta(meta)
        places: dict[str, list[tuple[str, Place]]] = defaultdict(list)
        unpublished: list[str] = []

        def keys() -> Iterable[tuple[str, str, str]]:
            for row in rows:
                for place in row["places"] or ():
                    places[place["uri"]].append((row["custom_id"], Place(**place)))
                if not row["places"]:
                    unpublished.append(row["custom_id"])
                yield row["custom_id"], row["text"] or "", row["context"] or ""

        ledger.restore_keys(keys())
        ledger.mark_dirty(unpublished)  # dropped by the next flush unless a document holds it
        ledger.restore_documents({
            uri: (_source(uri, sources),
                  sorted(found, key=lambda c: (c[1].page or 0, c[1].line_start or 0, c[0])))
            for uri, found in places.items()})
        jobs = _jobs(ledger, meta, service, batches) if service is not None else []
        for job in jobs:
            ledger.restore_job(job)
        counts = ledger.counts()
        install(ledger, path)
    except BaseException:
        ledger.close()
        for leftover in scratch.parent.glob(f"{scratch.name}*"):
            leftover.unlink()
        raise
    live = [j for j in jobs if j.state == "submitted"]
    return Rebuilt(keys=counts.get("chunks_embedded", 0), documents=len(places),
                   jobs=len(live), queued=sum(len(j.requests) for j in live),
                   unreadable_jobs=sum(1 for j in jobs if j.state == "abandoned"))


def _jobs(ledger: Ledger, meta: dict[str, str], service: BatchService,
          batches: Path) -> list[RestoredJob]:
    """The service's batches of this index as jobs (the newest attempt of each): running
    ones, or finished ones holding keys the store lacks, are ``submitted``; the rest are
    recorded as done so that no new job reuses their labels."""
    newest: dict[int, tuple[int, RemoteJob]] = {}
    for remote in service.remote_jobs():
        match = _LABEL.fullmatch(remote.label)
        if match:
            number, attempt = int(match[1]), int(match[2])
            if number not in newest or attempt > newest[number][0]:
                newest[number] = (attempt, remote)
    names = dict(service.remote_files()) if newest else {}
    prefix = f"{meta['index_id']}-"
    jobs = []
    for number, (attempt, remote) in sorted(newest.items()):
        name = names.get(remote.input_file or "")
        shard = batches / (name.removeprefix(prefix) if name else f"lost-{remote.remote_id}")
        job = RestoredJob(number, attempt, meta["backend"], shard, "ingested",
                          remote.remote_id, remote.input_file, created_at=remote.created_at)
        running = remote.state not in TERMINAL
        if remote.state == "failed" or name is None or remote.input_file is None:
            # keys unknown: a batch still running is given up (its chunks are embedded again)
            jobs.append(replace(job, state="abandoned") if running else job)
            continue
        lines = _lines(shard)
        if lines is None:  # not here, or not whole: the uploaded copy is
            batches.mkdir(parents=True, exist_ok=True)
            lines = _lines(service.download_input(remote.input_file, shard))
        if lines is None:
            raise StateError(f"cannot read the batch input file {remote.input_file}; run "
                             "`indexer doctor --repair` again")
        known = ledger.key_states([key for key, _ in lines])
        requests = [Request(key, text, estimate_tokens(text, 0)) for key, text in lines
                    if known.get(key) != "embedded"]
        jobs.append(replace(job, state="submitted", requests=tuple(requests))
                    if running or requests else job)
    return jobs


def _lines(shard: Path) -> list[tuple[str, str]] | None:
    """``(custom_id, embed text)`` of each line of a shard, or None if it cannot be read."""
    try:
        return [(key, str(body.get("input", ""))) for key, body in read_requests(shard)]
    except (OSError, BackendError):
        return None


def _source(uri: str, sources: Sequence[str]) -> str:
    """The configured source a document belongs to (the longest that contains it)."""
    inside = [s for s in sources if uri.startswith(s.rstrip("/") + "/")]
    return max(inside, key=len) if inside else Path(uri).parent.as_posix()


def _guess_identity(config: Config, recorded: tuple[str, int] | None) -> dict[str, str]:
    """For an index made before identities were recorded: its model from the store, its
    backend from the configuration (or the model's name), a new index id."""
    if recorded is None:
        raise DamageError("the ledger is lost and nothing records the index's model (no "
                          "identity.json, no readable search table); remove the index "
                          "directory and sync again")
    model, dimensions = recorded
    backend = config.backend
    if backend == "auto":
        backend = "openai" if model.startswith("text-embedding") else "local"
    return {"backend": backend, "model": model, "dimensions": str(dimensions),
            "index_id": uuid.uuid4().hex[:12], "store_uri": config.store_uri or ""}
