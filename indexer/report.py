"""What a sync did and what an index holds, as values the CLI renders (or prints as JSON)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from indexer.records import Skip


def skip_kinds(skips: Iterable[Skip]) -> list[tuple[str, int]]:
    """How many skips there are of each kind (:attr:`Skip.kind`), most first."""
    return Counter(skip.kind for skip in skips).most_common()


@dataclass
class FileCounts:
    """How many documents were (or would be) new, changed, touched, unchanged, deleted,
    skipped."""

    new: int = 0
    changed: int = 0
    touched: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0


@dataclass
class SyncReport(FileCounts):
    """The outcome of one ``sync``: document counts, embedding work, problems and time.

    ``tokens`` is what the backend reported billing; ``batches_without_usage`` counts
    batches that reported no usage (their tokens are unknown, not estimated).
    ``in_flight`` counts batches running remotely; ``unsubmitted`` jobs planned but not
    yet there (waiting for budget, or stopped by an error); ``pending`` keys not in a job.
    ``failed`` counts chunks that failed for good in this run, ``chunks_failed`` those of
    live or pending documents that stay failed (from any run, until retried).
    ``stopped`` is the error that ended the run early ("" if it ran to its end);
    ``unreachable`` names each source that could not be reached at all, and why (nothing
    of it was deleted; the other sources were synced); ``orphaned`` names each source no
    longer in the configuration whose documents left search in this run, and how many
    (their vectors are kept until ``indexer remove`` forgets the source). ``resumed``
    counts embeddings an interrupted run had computed and this one ingested (not in
    ``embedded``).
    """

    chunks: int = 0
    reused: int = 0
    embedded: int = 0
    resumed: int = 0
    failed: int = 0
    tokens: int = 0
    batches_without_usage: int = 0
    jobs: int = 0
    in_flight: int = 0
    unsubmitted: int = 0
    pending: int = 0
    chunks_failed: int = 0
    stopped: str = ""
    published: int = 0
    refused_cost: float = 0.0
    swapped: bool = False
    seconds: float = 0.0
    skips: list[Skip] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when nothing is in flight or waiting: the store reflects the sources."""
        return self.in_flight == 0 and self.unsubmitted == 0 and self.pending == 0

    @property
    def exit_code(self) -> int:
        """The ``sync`` exit code: 5 refused over the cost cap; 3 batches run remotely, or
        (with no error) work waits for budget; 1 stopped by an error, or a source could not
        be reached, with nothing running; 4 chunks stay failed for good; 0 the store
        reflects the sources."""
        if self.refused_cost:
            return 5
        if self.in_flight:
            return 3
        if self.stopped or self.unreachable:
            return 1
        if not self.complete:
            return 3
        if self.failed or self.chunks_failed:
            return 4
        return 0

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        data = asdict(self)
        data["complete"] = self.complete
        data["exit_code"] = self.exit_code
        return data


@dataclass
class Plan(FileCounts):
    """What a sync would do, computed without spending or writing anything.

    ``chunks_to_embed`` counts distinct content keys that have no vector yet (after
    deduplication against the index and within the run); ``tokens`` is the larger of
    tiktoken's count and the service's bytes/4 estimate, summed; ``waves`` is how many
    rounds of submission the enqueued-token budget needs; ``orphaned`` the sources no
    longer configured whose documents the sync would take out of search;
    ``context_tokens`` is the part of the new chunks' tiktoken count that their heading
    breadcrumbs take.
    """

    backend: str = ""
    priced: bool = False
    model: str = ""
    chunks: int = 0
    chunks_to_embed: int = 0
    tokens: int = 0
    context_tokens: int = 0
    shards: int = 0
    waves: int = 0
    budget: int = 0
    batch_cost: float = 0.0
    sync_cost: float = 0.0
    skips: list[Skip] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return asdict(self)


@dataclass(frozen=True)
class JobInfo:
    """One batch job as ``status`` shows it."""

    label: str
    state: str
    remote_id: str | None
    remote_state: str | None
    requests: int
    completed: int
    failed: int
    tokens: int


@dataclass(frozen=True)
class IndexStatus:
    """What an index holds: its model, documents, passages and open work.

    ``tokens_billed`` and ``cost`` are None (unknown) when some ingested batch reported
    no usage; ``batches_without_usage`` says how many. ``store`` is where the search
    table lives (a folder or an object-storage URI): a LanceDB database whose one table,
    ``chunks``, LanceDB opens as it is (``lancedb.connect(store).open_table("chunks")``).
    """

    path: str
    backend: str
    model: str
    dimensions: int
    sources: tuple[str, ...]
    documents: int
    pending_documents: int
    skipped_documents: int
    passages: int
    chunks_pending: int
    chunks_failed: int
    jobs_open: int
    problems: tuple[Skip, ...]
    jobs: tuple[JobInfo, ...] = ()
    tokens_billed: int | None = 0
    cost: float | None = 0.0
    batches_without_usage: int = 0
    priced: bool = False
    remote: bool = False
    store: str = ""

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return asdict(self)


@dataclass(frozen=True)
class SourceInfo:
    """One source as ``indexer sources`` shows it.

    ``source`` is how ``config.toml`` names it (for a source no longer configured: the
    URI its documents are recorded under, ``uri``); ``kind`` the connector that crawls
    it. ``synced_at`` is when it was last listed (seconds since the epoch; None: never);
    ``error`` why the last attempt to reach it failed (cleared once reached, or why it
    cannot be crawled at all). Documents are counted as ``documents`` (in search),
    ``pending`` (being embedded), ``skipped`` (unreadable or empty) and ``withdrawn``
    (out of search because the source left the configuration). ``configured`` is False
    for such an orphan, and ``advice`` says what to do about it.
    """

    source: str
    kind: str
    uri: str
    configured: bool
    synced_at: float | None = None
    documents: int = 0
    pending: int = 0
    skipped: int = 0
    withdrawn: int = 0
    error: str | None = None
    failed_at: float | None = None
    advice: str = ""

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view (times as ISO 8601 UTC)."""
        data = asdict(self)
        for name in ("synced_at", "failed_at"):
            data[name] = _iso(data[name])
        return data


@dataclass(frozen=True)
class RemovedSource:
    """What ``indexer remove`` did: the source, whether it was in ``config.toml``, how
    many of its documents left the index, and whether its state folder was deleted."""

    source: str
    uri: str
    configured: bool
    documents: int
    state_deleted: bool

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return asdict(self)


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
