"""The search store's table, written through Lance: one row per content key.

A row holds a passage's vector, its text and heading context, and every place it
occurs (``places``; the first one is also in flat columns for display and
filtering). Identical text in several documents is one row with several places, so
deleting one document never removes text another still holds. Rows whose key is
embedded but not yet published have no places (``n_places = 0``) and are hidden
from search until their document's new version is swapped in.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from indexer.config import Config
from indexer.errors import IndexMismatch, StateError
from indexer.records import Passage, Passages, SearchHit, StoreRow
from indexer.state.damage import Damage
from indexer.state.store.columns import (
    ESSENTIAL,
    INDICES,
    KEY_INDEX,
    PLACE,
    PLACES_SCHEMA,
    build_index,
    index_names,
    schema,
)
from indexer.state.store.heap import (
    bounded_reads,
    release_freed,
    return_freed_buffers,
    reused_buffers,
)
from indexer.state.store.location import Location, create_table, open_table, scrub
from indexer.state.store.reader import TABLE, Reader

return_freed_buffers()  # Lance's large freed buffers go back to the system

_LANCE_ERRORS = (OSError, ValueError, RuntimeError)
_PURGE = 5_000
_FRAGMENT_ROWS = 8_192
"""Fragments with fewer rows are merged by :meth:`Store.optimize` (into fragments of at
most this many); larger ones, such as one job's vectors, are left as they are."""
_HELD_MIN, _HELD_MAX = 2_000, 50_000
"""Keys :meth:`Store.held` asks for in one query, at least and at most."""
_REWRITE_BATCH = 2_000
"""Keys a first publication looks up in the ledger at a time."""


@dataclass(frozen=True)
class StoreHealth:
    """How the store is kept fast as incremental syncs pile up.

    Superseded table versions are kept for readers still on them, but no longer than
    ``retention_seconds`` and no more than the ``max_versions`` newest; past
    ``vector_index_rows`` rows an IVF-RQ vector index replaces exhaustive search,
    re-ranking ``refine_factor`` times ``k`` candidates exactly.
    """

    retention_seconds: float
    max_versions: int
    vector_index_rows: int
    refine_factor: int

    @classmethod
    def from_config(cls, config: Config) -> StoreHealth:
        """The upkeep settings of ``config`` (the defaults live there)."""
        return cls(config.version_retention_seconds, config.max_versions,
                   config.vector_index_rows, config.refine_factor)


@dataclass(frozen=True)
class StoreStats:
    """The store's physical shape, for ``status`` and ``doctor``."""

    rows: int
    fragments: int
    versions: int
    indices: tuple[str, ...]


class Store:
    """The search table of one index, opened for one model and dimension.

    A missing table is created, unless ``create`` is false (the ledger says the index
    holds vectors): then it is damage, and :class:`DamageError` is raised.
    """

    def __init__(self, directory: Location, model: str, dimensions: int,
                 health: StoreHealth | None = None, create: bool = True) -> None:
        self.directory = directory
        self.model, self.dimensions = model, dimensions
        self.health = health or StoreHealth.from_config(Config())
        self._schema = schema(model, dimensions)
        self._reader: Reader | None = None
        try:
            found = open_table(directory, TABLE)
            if found is not None:
                self._table: lance.LanceDataset = found
                self._check(self._table.schema)
            elif create:
                self._table = _create(directory, self._schema)
            else:
                raise Damage(missing_table=True).error(directory)
        except (OSError, ValueError, RuntimeError) as exc:
            raise StateError(f"cannot open the search store in {directory}: "
                             f"{scrub(_short(exc))}") from exc

    def _check(self, existing: pa.Schema) -> None:
        meta = {k.decode(): v.decode() for k, v in (existing.metadata or {}).items()}
        if (meta.get("model"), meta.get("dimensions")) != (self.model, str(self.dimensions)):
            raise IndexMismatch(
                f"the store holds vectors of {meta.get('model')} ({meta.get('dimensions')} "
                f"dimensions), not {self.model} ({self.dimensions}); use the index's own model "
                "or build a new index directory"
            )

    def refresh(self) -> None:
        """Read the table's latest version from now on (another process may have
        committed since it was opened; a query already running keeps its version)."""
        try:
            self._table.checkout_latest()
        except _LANCE_ERRORS as exc:
            raise StateError(f"cannot read the search store in {self.directory}: {exc}") \
                from exc

    def has_rows(self) -> bool:
        """True when the table has any row, published or not (read from the manifest)."""
        return bool(self._table.count_rows())

    def held(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that have a row (found through the ``custom_id`` index).

        Each query reads every page of the index that one of its keys falls in, so it
        asks for a number of keys that grows with the table (one per 100 rows, 2,000 to
        50,000): the pages read per key, and the cost per key, stay flat however large
        the table (``benchmarks/store_held.py``)."""
        found: set[str] = set()
        size = min(_HELD_MAX, max(_HELD_MIN, self._table.count_rows() // 100))
        for start in range(0, len(keys), size):
            part = ", ".join(_quote(k) for k in keys[start:start + size])
            rows = self._table.to_table(columns=["custom_id"], filter=f"custom_id IN ({part})")
            found.update(rows.column("custom_id").to_pylist())
        return found

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row's key, passage, context and places (no vectors), streamed."""
        for batch in self._table.to_batches(columns=["custom_id", "text", "context", "places"],
                                            batch_size=2_000):
            yield from batch.to_pylist()

    def put(self, rows: Sequence[StoreRow]) -> None:
        """Insert or replace rows with their vectors (idempotent: keyed by ``custom_id``)."""
        if rows:
            table = self._arrow(rows)
            (self._table.merge_insert("custom_id").when_matched_update_all()
             .when_not_matched_insert_all().execute(table))

    def put_vectors(self, groups: Iterable[tuple[Sequence[str], np.ndarray]],
                    fresh: bool = False) -> None:
        """Write the vectors of keys, streamed group by group (``(keys, vectors)``, one row
        of ``vectors`` per key), in one commit: a new row has no passage and no places yet
        (``n_places = 0``: hidden from search until publishing writes them); a row already
        held (never a published one: its key would be embedded) keeps its passage.

        With ``fresh`` the caller knows the table holds none of the keys, and none repeats:
        the rows are appended, which is much cheaper in time and memory than a merge by
        key (its cost grows with the table). The groups are pulled on one of Lance's
        threads; an exception they raise is re-raised here as it was.
        """
        failure: list[BaseException] = []
        target = pa.schema([f for f in self._schema if f.name in (*ESSENTIAL, "n_places")])

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for keys, vectors in groups:
                    if len(keys):
                        flat = pa.array(np.ascontiguousarray(vectors, np.float32).reshape(-1))
                        yield pa.RecordBatch.from_arrays(
                            [pa.array(keys, pa.string()),
                             pa.FixedSizeListArray.from_arrays(flat, self.dimensions),
                             pa.array(np.zeros(len(keys), np.int32))], schema=target)
            except BaseException as exc:
                failure.append(exc)
                raise

        reader = pa.RecordBatchReader.from_batches(target, batches())
        try:
            if fresh:
                self._table.insert(reader, mode="append")
            else:
                (self._table.merge_insert("custom_id").when_matched_update_all()
                 .when_not_matched_insert_all().execute(reader))
        except Exception:
            if failure:
                raise failure[0] from None
            raise

    def set_places(self, groups: Iterable[Sequence[Passage]], count: int | None = None,
                   rows_for: Callable[[Sequence[str]], Sequence[Passage] | Passages] | None = None,
                   group: int = _REWRITE_BATCH) -> None:
        """Rewrite the places of existing rows, streamed group by group, in one commit.

        Readers see every row's old places or every row's new ones, however many rows
        there are. A row given no places is hidden from search by the same commit (see
        :meth:`purge`); keys without a row are ignored. The groups are pulled on one of
        Lance's threads; an exception they raise is re-raised here as it was.

        Few rows (``count``, the rows to come, under half the table): whole rows are
        written, their vectors read back by key, so the cost follows the rows that
        changed (see :meth:`_replace`). A first publication (nothing published yet,
        ``count`` at least half the table) with ``rows_for`` (the rows of some keys as the
        ledger has them, called with ``group`` keys at a time): every column but the key
        and the vector of every row is written again, fragment by fragment, and the
        vectors are neither read nor written (see :meth:`_fill`); the vector index (past
        the size threshold) is built first, while the process holds least. A row that did
        not change is written as it was: only its cost is spent in vain, and asking the
        ledger which rows changed cost more than writing them.
        """
        release_freed()  # what collecting the vectors freed
        try:
            self._set_places(groups, count, rows_for, group)
        finally:
            release_freed()

    def _set_places(self, groups: Iterable[Sequence[Passage]], count: int | None,
                    rows_for: Callable[[Sequence[str]], Sequence[Passage] | Passages] | None,
                    group: int) -> None:
        total = self._table.count_rows()
        if (rows_for is not None and count is not None and count * 2 >= total
                and not self._table.count_rows("n_places > 0")):
            # _fill keeps every row's address, so an index built now stays valid; built
            # in optimize instead, it added its +270 MB (570k rows) to what publishing holds
            self._index_vectors(total)
            self._fill(rows_for, group)
            return
        if count is None or count * 2 < total:
            self._replace(groups)
            return
        failure: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for rows in groups:
                    if rows:
                        yield pa.RecordBatch.from_pydict(self._columns(rows), PLACES_SCHEMA)
            except BaseException as exc:
                failure.append(exc)
                raise

        reader = pa.RecordBatchReader.from_batches(PLACES_SCHEMA, batches())
        try:
            self._table.merge_insert("custom_id").when_matched_update_all().execute(reader)
        except Exception:
            if failure:
                raise failure[0] from None
            raise

    def _replace(self, groups: Iterable[Sequence[Passage]]) -> None:
        """Write ``groups`` as whole rows (their vectors read back by key, through the key
        index) into new fragments, delete the rows they replace by address, and commit
        both as one update.

        The table is never joined with the rows: Lance's ``merge_insert`` scans every key of a
        table whose key index does not cover every fragment (as after any sync that
        wrote new vectors), so its memory grew with the table (a 1% re-sync of 570k rows
        peaked at 742 MB). Memory holds one group and the replaced rows' addresses.
        """
        dataset = self._table
        replaced: list[np.ndarray] = []
        failure: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for rows in groups:
                    if rows:
                        batch, addresses = self._whole(rows, dataset)
                        replaced.append(addresses)
                        yield batch
            except BaseException as exc:
                failure.append(exc)
                raise

        reader = pa.RecordBatchReader.from_batches(self._schema, batches())
        try:
            written = lance.fragment.write_fragments(
                reader, dataset, schema=self._schema, max_rows_per_file=_FRAGMENT_ROWS)
        except Exception:
            if failure:
                raise failure[0] from None
            raise
        addresses = np.concatenate(replaced) if replaced else np.empty(0, np.uint64)
        owners = addresses >> 32
        updated, removed = [], []
        for owner in np.unique(owners):
            held = ", ".join(str(a) for a in addresses[owners == owner].tolist())
            fragment = cast("lance.LanceFragment", dataset.get_fragment(int(owner)))
            metadata = fragment.delete(f"_rowaddr IN ({held})")
            if metadata is None:
                removed.append(int(owner))
            else:
                updated.append(metadata)
        if written or updated or removed:
            operation = lance.LanceOperation.Update(
                removed_fragment_ids=removed, updated_fragments=updated,
                new_fragments=written)
            lance.LanceDataset.commit(dataset, operation, read_version=dataset.version)
            self._table.checkout_latest()

    def _fill(self, rows_for: Callable[[Sequence[str]], Sequence[Passage] | Passages],
              group: int) -> None:
        """Write, for every fragment, the passage, places and ``n_places`` of the rows
        ``rows_for`` returns (asked ``group`` keys at a time, in the fragment's order) as
        a new data file beside the fragment's vectors, and commit them all as one update.

        The vectors stay where they are, and so do the row addresses: the key and vector
        indices stay valid; the full-text and ``n_places`` indices no longer cover these
        fragments (searches scan them) until :meth:`optimize` adds them again. Memory
        holds one fragment's passages (a fragment is one job's rows, or a compacted run
        of at most ``_FRAGMENT_ROWS``). A fragment whose passage file is lost keeps its
        keys and vectors: :func:`~indexer.state.store.repair.restore` reads them back.
        """
        dataset = self._table
        updated, modified = [], set()
        for fragment in dataset.get_fragments():
            keys = fragment.to_table(columns=["custom_id"]).column("custom_id").to_pylist()
            batches = []
            for start in range(0, len(keys), group):
                rows = rows_for(keys[start:start + group])
                if rows:
                    batches.append(pa.RecordBatch.from_pydict(self._columns(rows),
                                                              PLACES_SCHEMA))
            if batches:
                metadata, fields = fragment.update_columns(
                    pa.Table.from_batches(batches, PLACES_SCHEMA), left_on="custom_id",
                    right_on="custom_id")
                updated.append(metadata)
                modified.update(fields)
        if updated:
            operation = lance.LanceOperation.Update(
                updated_fragments=updated, fields_modified=sorted(modified),
                update_mode="rewrite_columns")
            lance.LanceDataset.commit(dataset, operation, read_version=dataset.version)
            self._table.checkout_latest()

    def _whole(self, rows: Sequence[Passage], dataset: lance.LanceDataset
               ) -> tuple[pa.RecordBatch, np.ndarray]:
        """``rows`` with the vectors ``dataset`` holds for them (rows it lacks are left
        out), and the addresses of the rows they replace (every row of their keys)."""
        keys = ", ".join(_quote(row.custom_id) for row in rows)
        held = dataset.to_table(columns=["custom_id", "vector"], filter=f"custom_id IN ({keys})",
                                with_row_address=True)
        at = {key: n for n, key in enumerate(held.column("custom_id").to_pylist())}
        kept = [row for row in rows if row.custom_id in at]
        vectors = held.column("vector").take(pa.array([at[r.custom_id] for r in kept], pa.int64()))
        columns = {**self._columns(kept), "vector": vectors.combine_chunks()}
        addresses = held.column("_rowaddr").to_numpy().astype(np.uint64)
        return pa.RecordBatch.from_pydict(columns, self._schema), addresses

    def purge(self, keys: Sequence[str]) -> None:
        """Delete the rows of ``keys`` that search cannot see (no places): this changes
        nothing a reader sees, so it may take several commits."""
        for start in range(0, len(keys), _PURGE):
            part = ", ".join(_quote(k) for k in keys[start:start + _PURGE])
            self._table.delete(f"n_places = 0 AND custom_id IN ({part})")

    def search(self, vector: np.ndarray, k: int, where: str | None = None) -> list[SearchHit]:
        """The ``k`` published passages nearest ``vector`` (score: cosine similarity);
        ``where`` as in :meth:`Reader.condition`."""
        return self.nearest(vector, k, self.condition(where), where)

    condition = staticmethod(Reader.condition)

    def nearest(self, vector: np.ndarray, limit: int, condition: str,
                where: str | None = None) -> list[SearchHit]:
        """:meth:`Reader.nearest` on the table's latest version."""
        return self.reader().nearest(vector, limit, condition, where)

    def matching(self, text: str, limit: int, condition: str,
                 where: str | None = None) -> list[SearchHit]:
        """:meth:`Reader.matching` on the table's latest version."""
        return self.reader().matching(text, limit, condition, where)

    def has_text_index(self) -> bool:
        """True once the full-text index on ``text`` exists (made on the first write)."""
        return self.reader().has_text_index()

    def reader(self) -> Reader:
        """Searches of this table (see :class:`Reader`), moved to its latest version."""
        if self._reader is None:
            self._reader = Reader(self.directory, self.model, self.dimensions,
                                  self.health.refine_factor)
        else:
            self._reader.refresh()
        return self._reader

    def count(self) -> int:
        """Rows that search can return."""
        return int(self._table.count_rows("n_places > 0"))

    def keys(self) -> set[str]:
        """Every key that has a row (published or not)."""
        return {key for key, _ in self.places()}

    def places(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(custom_id, the URIs of its places)`` for every row, duplicates included."""
        table = self._table.to_table(columns=["custom_id", "places"]).to_pylist()
        return [(r["custom_id"], tuple(p["uri"] for p in r["places"] or ())) for r in table]

    def delete(self, keys: Sequence[str]) -> None:
        """Delete every row of ``keys``."""
        for start in range(0, len(keys), 500):
            part = ", ".join(_quote(k) for k in keys[start:start + 500])
            self._table.delete(f"custom_id IN ({part})")

    def dedupe(self, keys: Sequence[str]) -> None:
        """Keep one row for each of ``keys`` (that have several): delete all, put one back."""
        if not keys:
            return
        condition = "custom_id IN ({})".format(", ".join(_quote(k) for k in keys))
        rows = self._table.to_table(filter=condition).to_pylist()
        first = {r["custom_id"]: r for r in reversed(rows)}
        self._table.delete(condition)
        self._table.insert(pa.Table.from_pylist(list(first.values()), schema=self._schema),
                           mode="append")

    def optimize(self) -> None:
        """Keep the table fast after writes: compact small fragments, fold new rows into the
        indices, prune versions older than the retention, and add the full-text index, the
        bitmap index on ``n_places`` and (past the size threshold) the vector index when
        missing (a first publication has built it already, see :meth:`set_places`). Its
        scans are bounded (:func:`bounded_reads`): building the vector index reads every
        vector, and held them all at once otherwise."""
        with bounded_reads(4 * self.dimensions):
            self._optimize()
        self._table.checkout_latest()
        release_freed()

    def _optimize(self) -> None:
        names = index_names(self._table)
        rows = self._table.count_rows() if set(INDICES) - names else 0
        if "custom_id_idx" not in names:
            build_index(self._table, "custom_id_idx", self.dimensions)
        for name in ("text_idx", "n_places_idx"):
            if name not in names and rows > 0:
                build_index(self._table, name, self.dimensions)
                release_freed()  # each build starts from the table, not the last one's peak
        if "vector_idx" not in names:
            self._index_vectors(rows)
        dataset = self._table
        # Only fragments smaller than _FRAGMENT_ROWS are merged (one job's rows are not
        # rewritten with another's); a fragment a tenth deleted is rewritten without them.
        dataset.optimize.compact_files(target_rows_per_fragment=_FRAGMENT_ROWS)
        release_freed()
        dataset.optimize.optimize_indices()
        with warnings.catch_warnings():  # a short retention is a deliberate setting
            warnings.simplefilter("ignore", UserWarning)
            # delete_unverified is safe: the index's writer lock excludes other writers
            dataset.cleanup_old_versions(older_than=self._retention(), delete_unverified=True)

    def _index_vectors(self, rows: int) -> None:
        """Build the vector index if the table has none and holds ``rows`` (its row count)
        of at least ``vector_index_rows``, with bounded reads, and release what it freed."""
        if rows < self.health.vector_index_rows or "vector_idx" in index_names(self._table):
            return
        with bounded_reads(4 * self.dimensions), reused_buffers():
            build_index(self._table, "vector_idx", self.dimensions)

    def _retention(self) -> timedelta:
        """Keep versions younger than the retention, but never more than ``max_versions``."""
        retention = timedelta(seconds=self.health.retention_seconds)
        versions = sorted(cast(datetime, v["timestamp"]) for v in self._table.versions())
        if len(versions) <= self.health.max_versions:
            return retention
        nth_newest = versions[-self.health.max_versions]
        age = datetime.now(nth_newest.tzinfo) - nth_newest
        return min(retention, max(age, timedelta(0)))

    def stats(self) -> StoreStats:
        """Rows, fragments, versions and index names."""
        return StoreStats(
            rows=int(self._table.count_rows()),
            fragments=len(self._table.get_fragments()),
            versions=len(self._table.versions()),
            indices=tuple(sorted(index_names(self._table))),
        )

    def _arrow(self, rows: Sequence[StoreRow]) -> pa.Table:
        columns = {**self._columns(rows),
                   "vector": [np.asarray(row.vector, dtype=np.float32) for row in rows]}
        return pa.Table.from_pydict(columns, schema=self._schema)

    @staticmethod
    def _columns(rows: Sequence[Passage] | Passages) -> dict[str, pa.Array]:
        """Every column of ``rows`` but the vector (built column by column: a publication
        makes one of these per ``group`` keys)."""
        table = rows if isinstance(rows, Passages) else Passages.of(rows)
        counts = np.asarray(table.counts, np.int32)
        offsets = np.zeros(len(counts) + 1, np.int32)
        np.cumsum(counts, out=offsets[1:])
        flat = [pa.array(table.uri, pa.string()), pa.array(table.heading, pa.string()),
                pa.array(table.page, pa.int32()), pa.array(table.line_start, pa.int32()),
                pa.array(table.line_end, pa.int32())]
        # a row's first place, from the flat columns (a row with none: empty uri, heading)
        first = pa.array(offsets[:-1], pa.int32(), mask=counts == 0)
        uri, heading, page, start, end = (pc.take(column, first) for column in flat)
        columns = {
            "custom_id": pa.array(table.custom_id, pa.string()),
            "text": pa.array(table.text, pa.string()),
            "context": pa.array(table.context, pa.string()),
            "uri": pc.fill_null(uri, ""), "heading": pc.fill_null(heading, ""),
            "page": page, "line_start": start, "line_end": end,
            "places": pa.ListArray.from_arrays(
                pa.array(offsets), pa.StructArray.from_arrays(flat, fields=list(PLACE))),
            "n_places": pa.array(counts),
        }
        return {name: columns[name] for name in PLACES_SCHEMA.names}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _create(directory: Location, table_schema: pa.Schema) -> lance.LanceDataset:
    """A new empty table in ``directory``, with its key index."""
    table = create_table(directory, TABLE, table_schema.empty_table(), table_schema)
    KEY_INDEX.build(table, "custom_id", "custom_id_idx")
    return table


def _short(exc: BaseException) -> str:
    """An error's first line, without the Rust source locations Lance appends."""
    return str(exc).splitlines()[0].split(", /")[0][:300] if str(exc) else type(exc).__name__


# -- damage and repair ---------------------------------------------------------------
