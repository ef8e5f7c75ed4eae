"""``indexer doctor``: check that the ledger and the store agree, and mend what is safe.

Each check yields a :class:`Finding`. Repairs never spend money on their own: a key
whose vector is missing goes back to pending, so the next sync (with its plan and
cost cap) embeds it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.state.layout import Layout
from indexer.state.ledger import Ledger

if TYPE_CHECKING:
    from indexer.state.damage import Damage, Restoration
    from indexer.state.store import Store


@dataclass(frozen=True)
class Finding:
    """One problem: what it is, how many items, and whether ``repair`` fixed it."""

    check: str
    message: str
    count: int
    repaired: bool = False


@dataclass
class Checkup:
    """The outcome of ``doctor``: the checks run and what they found."""

    checks: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """True when nothing is wrong (or everything found was repaired)."""
        return all(f.repaired for f in self.findings)


def examine(ledger: Ledger, store: Store, layout: Layout, repair: bool,
            remote_files: Callable[[], list[tuple[str, str]]] | None = None,
            cleanup: Callable[[list[str]], None] | None = None,
            batches: Path | None = None,
            drop_store: Callable[[Path], None] | None = None) -> Checkup:
    """Run every check; with ``repair``, mend what can be mended without spending.
    ``batches`` is the generation's scratch directory (default: the live one's);
    ``drop_store`` deletes a retired generation's table kept in object storage."""
    checkup = Checkup()

    def found(check: str, message: str, items: list[str], fix: Callable[[], None]) -> None:
        checkup.checks.append(check)
        if items:
            if repair:
                fix()
            checkup.findings.append(Finding(check, message, len(items), repair))

    rows = store.places()
    counts = Counter(key for key, _ in rows)
    duplicates = [k for k, n in counts.items() if n > 1]
    found("duplicate keys", "store rows sharing one custom_id", duplicates,
          lambda: store.dedupe(duplicates))

    states = ledger.key_states(list(counts))
    orphans = [k for k in counts if k not in states]
    found("orphan rows", "store rows no ledger key accounts for", orphans,
          lambda: store.delete(orphans))

    embedded = ledger.keys_in_state("embedded")
    missing = sorted(embedded - set(counts))
    found("missing vectors", "embedded keys without a store row (queued to embed again)",
          missing, lambda: ledger.requeue(missing))

    live = dict(rows)
    wrong = [row.custom_id for row in ledger.key_rows(sorted(embedded & set(counts)))
             if tuple(p.uri for p in row.places) != live.get(row.custom_id)]
    found("places", "store rows whose places differ from the ledger (rewritten on sync)",
          wrong, lambda: ledger.mark_dirty(wrong))

    if remote_files is not None and cleanup is not None:
        stale = stale_remote_files(ledger, remote_files)
        found("remote files", "batch files left on the service", stale, lambda: cleanup(stale))

    leftovers = stale_local_files(ledger, batches or Layout.batches(layout.current))

    def remove_leftovers() -> None:
        for path in leftovers:
            path.unlink(missing_ok=True)

    found("leftover batch files", "local batch files no open job needs (shards, outputs "
          "left by an interrupted run)", [str(p) for p in leftovers], remove_leftovers)

    retired = layout.retired()

    def remove_retired() -> None:
        for generation in retired:
            if drop_store is not None:
                drop_store(generation)
            layout.remove(generation)

    found("old generations", "retired index generations taking disk space",
          [str(p) for p in retired], remove_retired)
    return checkup


def stale_remote_files(ledger: Ledger,
                       remote_files: Callable[[], list[tuple[str, str]]]) -> list[str]:
    """Ids of the index's remote files that no open job still needs: input files named
    after the index, and the output and error files of jobs already ingested (left when
    a run stopped between ingesting a job and deleting its files).

    ``remote_files`` lists ``(id, filename)`` of the index's input files and of result
    files, whose names do not say which index they belong to: the ledger does."""
    prefix = f"{ledger.meta().get('index_id', '')}-"
    needed = {file_id for job in ledger.open_jobs()
              for file_id in (job.input_file, job.output_file, job.error_file) if file_id}
    results = ledger.result_files()
    return [file_id for file_id, name in remote_files()
            if file_id not in needed and (file_id in results or name.startswith(prefix))]


def stale_local_files(ledger: Ledger, batches: Path) -> list[Path]:
    """Files in the scratch directory ``batches`` that no open job needs: everything but
    an open job's shard and its (possibly not yet ingested) output and error files."""
    if not batches.is_dir():
        return []
    needed = set()
    for job in ledger.open_jobs():
        outputs = {f"{job.label}.output.jsonl", f"{job.label}.errors.jsonl"}
        needed |= {job.shard.name, *outputs, *(f"{name}.part" for name in outputs)}
    return sorted(p for p in batches.iterdir() if p.is_file() and p.name not in needed)


def mend_store(ledger: Ledger, directory: Path | str, model: str, dimensions: int,
               repair: bool) -> Finding | None:
    """Check the search table itself: there, whole, every column (run before the other
    checks, which read it). With ``repair`` restore it from what is intact, queue the
    chunks whose vectors are lost, and have every row rewritten if columns came back
    empty."""
    from indexer.state.store import Store, inspect, restore

    damage = inspect(directory)
    if damage.missing_table and not ledger.holds_vectors():
        return None  # a new index: the table is made on its first write
    if not damage.broken and not damage.migrations:
        return None
    if not repair:
        message, count = _store_problem(damage, len(ledger.keys_in_state("embedded")))
        return Finding("store", message, count)
    restored = restore(directory, model, dimensions)
    held = Store(directory, model, dimensions).keys()
    lost = sorted(ledger.keys_in_state("embedded") - held)
    ledger.requeue(lost)
    if restored.rewrite:
        ledger.mark_dirty(sorted(held))
    elif restored.recovered_keys:
        ledger.mark_dirty(sorted(restored.recovered_keys))
    return store_finding(restored, len(lost))


def store_finding(restored: Restoration, lost: int | None) -> Finding:
    """A store restoration as a finding: what was wrong, what was done, and how many
    chunks the next sync pays to embed again (``None``: unknown, the ledger is lost too)."""
    done = []
    if restored.recreated:
        done.append("re-created the table empty")
    if restored.restored_version is not None:
        done.append(f"went back to table version {restored.restored_version}")
    if restored.dropped_rows:
        done.append(f"dropped {restored.dropped_rows} unreadable row(s), "
                    f"{restored.recovered_rows} recovered from intact files and earlier "
                    "versions")
    if restored.rewrite:
        done.append("rows rewritten from the ledger")
    done.extend(restored.migrations)
    cost = ("chunk(s) the next sync embeds again" if lost is not None else
            "known chunk(s) to embed again (the ledger is lost too: the next sync embeds "
            "whatever the store lacks)")
    return Finding("store", f"{cost}; {restored.damage.describe()} ({'; '.join(done)})",
                   max(lost or 0, 0), True)


def _store_problem(damage: Damage, embedded: int) -> tuple[str, int]:
    if damage.missing_table:
        return "chunk(s) whose vectors were in the missing search table", embedded
    if damage.unreadable:
        return f"search table that cannot be read ({damage.unreadable})", 1
    if damage.lost_fragments:
        return f"row(s) lost: {damage.describe()}", damage.lost_rows
    if damage.lost_columns:
        return (f"column(s) gone from the search table: {', '.join(damage.lost_columns)}",
                len(damage.lost_columns))
    return (f"schema change(s) to make (a sync makes them too): {', '.join(damage.migrations)}",
            len(damage.migrations))
