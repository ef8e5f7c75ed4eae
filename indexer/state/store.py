"""The LanceDB search store: one row per content key, and the only module that touches LanceDB.

A row holds a passage's vector, its text and heading context, and every place it
occurs (``places``; the first one is also in flat columns for display and
filtering). Identical text in several documents is one row with several places, so
deleting one document never removes text another still holds. Rows whose key is
embedded but not yet published have no places (``n_places = 0``) and are hidden
from search until their document's new version is swapped in.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lancedb.index import FTS, BTree, IvfRq

from indexer.config import Config
from indexer.errors import IndexMismatch, StateError
from indexer.records import Place, SearchHit, StoreRow
from indexer.state.damage import Damage, Restoration

TABLE = "chunks"
_ESSENTIAL = ("custom_id", "vector")
"""Columns without which a row is worthless (the ledger can rebuild every other one)."""
_DERIVED = {"n_places": "CAST(coalesce(array_length(places), 0) AS INT)"}
_LANCE_ERRORS = (OSError, ValueError, RuntimeError)
_INDICES: dict[str, tuple[str, Callable[[], Any]]] = {
    "custom_id_idx": ("custom_id", BTree), "text_idx": ("text", FTS),
    "vector_idx": ("vector", lambda: IvfRq(distance_type="cosine"))}
"""The table's indices by name: their column and how each is made."""
_PLACE = pa.struct([
    ("uri", pa.string()), ("heading", pa.string()), ("page", pa.int32()),
    ("line_start", pa.int32()), ("line_end", pa.int32()),
])


def schema(model: str, dimensions: int) -> pa.Schema:
    """The table's explicit Arrow schema; the model and dimensions ride in its metadata."""
    return pa.schema(
        [
            pa.field("custom_id", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dimensions)),
            pa.field("text", pa.string()),
            pa.field("context", pa.string()),
            pa.field("uri", pa.string()),
            pa.field("heading", pa.string()),
            pa.field("page", pa.int32()),
            pa.field("line_start", pa.int32()),
            pa.field("line_end", pa.int32()),
            pa.field("places", pa.list_(_PLACE)),
            pa.field("n_places", pa.int32()),
        ],
        metadata={"model": model, "dimensions": str(dimensions)},
    )


_PLACES_SCHEMA = pa.schema([f for f in schema("", 1) if f.name not in ("vector", "text",
                                                                         "context")])
"""The columns a publication rewrites: the key and its places."""
_PURGE = 5_000


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

    def __init__(self, directory: Path, model: str, dimensions: int,
                 health: StoreHealth | None = None, create: bool = True) -> None:
        self.directory = directory
        self.model, self.dimensions = model, dimensions
        self.health = health or StoreHealth.from_config(Config())
        self._schema = schema(model, dimensions)
        try:
            self._db = lancedb.connect(str(directory))
            if TABLE in self._db.list_tables().tables:
                self._table = self._db.open_table(TABLE)
                self._check(self._table.schema)
            elif create:
                self._table = _create(self._db, self._schema)
            else:
                raise Damage(missing_table=True).error(directory)
        except (OSError, ValueError, RuntimeError) as exc:
            raise StateError(f"cannot open the search store in {directory}: {exc}") from exc

    def _check(self, existing: pa.Schema) -> None:
        meta = {k.decode(): v.decode() for k, v in (existing.metadata or {}).items()}
        if (meta.get("model"), meta.get("dimensions")) != (self.model, str(self.dimensions)):
            raise IndexMismatch(
                f"the store holds vectors of {meta.get('model')} ({meta.get('dimensions')} "
                f"dimensions), not {self.model} ({self.dimensions}); use the index's own model "
                "or build a new index directory"
            )

    def damage(self) -> Damage:
        """What is wrong with the table now (see :func:`inspect`)."""
        return inspect(self.directory)

    def has_rows(self) -> bool:
        """True when the table has any row, published or not (read from the manifest)."""
        return bool(self._table.count_rows())

    def held(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that have a row (found through the ``custom_id`` index)."""
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            part = ", ".join(_quote(k) for k in keys[start:start + 500])
            rows = (self._table.search().where(f"custom_id IN ({part})")
                    .select(["custom_id"]).limit(None).to_arrow())
            found.update(rows.column("custom_id").to_pylist())
        return found

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row's key, passage, context and places (no vectors), streamed."""
        query = self._table.search().select(["custom_id", "text", "context", "places"])
        for batch in query.limit(None).to_batches(2_000):
            yield from batch.to_pylist()

    def put(self, rows: Sequence[StoreRow]) -> None:
        """Insert or replace rows with their vectors (idempotent: keyed by ``custom_id``)."""
        if rows:
            table = self._arrow(rows)
            (self._table.merge_insert("custom_id").when_matched_update_all()
             .when_not_matched_insert_all().execute(table))

    def set_places(self, groups: Iterable[Sequence[StoreRow]]) -> None:
        """Rewrite the places of existing rows, streamed group by group, in one commit.

        Readers see every row's old places or every row's new ones, however many rows
        there are. A row given no places is hidden from search by the same commit (see
        :meth:`purge`); keys without a row are ignored. The groups are pulled on one of
        LanceDB's threads; an exception they raise is re-raised here as it was.
        """
        failure: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for rows in groups:
                    if rows:
                        yield pa.RecordBatch.from_pydict(self._columns(rows), _PLACES_SCHEMA)
            except BaseException as exc:
                failure.append(exc)
                raise

        reader = pa.RecordBatchReader.from_batches(_PLACES_SCHEMA, batches())
        try:
            self._table.merge_insert("custom_id").when_matched_update_all().execute(reader)
        except Exception:
            if failure:
                raise failure[0] from None
            raise

    def purge(self, keys: Sequence[str]) -> None:
        """Delete the rows of ``keys`` that search cannot see (no places): this changes
        nothing a reader sees, so it may take several commits."""
        for start in range(0, len(keys), _PURGE):
            part = ", ".join(_quote(k) for k in keys[start:start + _PURGE])
            self._table.delete(f"n_places = 0 AND custom_id IN ({part})")

    def search(self, vector: np.ndarray, k: int, where: str | None = None,
               text: str | None = None) -> list[SearchHit]:
        """The ``k`` published passages nearest ``vector`` (score: cosine similarity), or,
        given ``text``, the hybrid of vector and full-text search (score: RRF relevance).

        ``where`` is a LanceDB SQL filter; it must be one self-contained expression (see
        :func:`check_filter`), so it narrows the published rows and cannot widen them.
        Raises :class:`StateError` for a filter that is malformed or fails to run.
        """
        condition = "n_places > 0"
        if where and where.strip():
            condition += f" AND ({check_filter(where)})"
        vector = np.asarray(vector, dtype=np.float32)
        query: Any
        if text is not None:
            query = (self._table.search(query_type="hybrid", vector_column_name="vector",
                                        fts_columns="text").vector(vector).text(text))
            columns, score = ["custom_id", "text", "places"], "_relevance_score"
        else:
            query = self._table.search(vector, vector_column_name="vector")
            query = query.distance_type("cosine")
            columns, score = ["custom_id", "text", "places", "_distance"], "_distance"
            if self.health.refine_factor and self._has_vector_index():
                query = query.refine_factor(self.health.refine_factor)
        query = query.where(condition, prefilter=True).limit(k).select(columns)
        try:
            found = query.to_arrow().to_pylist()
        except (ValueError, RuntimeError) as exc:
            if not where:
                raise StateError(f"search failed: {exc}") from exc
            raise StateError(_filter_failed(where, exc)) from None
        except BaseException as exc:  # a Rust panic may derive from BaseException only
            if type(exc).__name__ not in _PANICS:
                raise
            if not where:
                raise StateError(f"search failed: LanceDB stopped ({exc})") from None
            raise StateError(_filter_failed(where, exc)) from None
        return [
            SearchHit(r["custom_id"],
                      float(r[score]) if score != "_distance" else 1.0 - float(r[score]),
                      r["text"], tuple(Place(**p) for p in r["places"]))
            for r in found if r["places"]  # never a hidden row, whatever the filter did
        ]

    def _has_vector_index(self) -> bool:
        return any(i.name == "vector_idx" for i in self._table.list_indices())

    def count(self) -> int:
        """Rows that search can return."""
        return int(self._table.count_rows("n_places > 0"))

    def keys(self) -> set[str]:
        """Every key that has a row (published or not)."""
        return {key for key, _ in self.places()}

    def places(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(custom_id, the URIs of its places)`` for every row, duplicates included."""
        table = (self._table.search().select(["custom_id", "places"]).limit(None)
                 .to_arrow().to_pylist())
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
        rows = (self._table.search().where(condition).limit(None).to_arrow().to_pylist())
        first = {r["custom_id"]: r for r in reversed(rows)}
        self._table.delete(condition)
        self._table.add(pa.Table.from_pylist(list(first.values()), schema=self._schema))

    def optimize(self) -> None:
        """Keep the table fast after writes: compact small fragments, fold new rows into the
        indices, prune versions older than the retention, and add the full-text index and
        (past the size threshold) the vector index when missing."""
        names = {i.name for i in self._table.list_indices()}
        rows = self._table.count_rows() if {"text_idx", "vector_idx"} - names else 0
        if "text_idx" not in names and rows > 0:
            self._table.create_index("text", config=FTS(), name="text_idx")
        if "vector_idx" not in names and rows >= self.health.vector_index_rows:
            self._table.create_index("vector", config=IvfRq(distance_type="cosine"),
                                     name="vector_idx")
        with warnings.catch_warnings():  # a short retention is a deliberate setting
            warnings.simplefilter("ignore", UserWarning)
            # delete_unverified is safe: the index's writer lock excludes other writers
            self._table.optimize(cleanup_older_than=self._retention(), delete_unverified=True)

    def _retention(self) -> timedelta:
        """Keep versions younger than the retention, but never more than ``max_versions``."""
        retention = timedelta(seconds=self.health.retention_seconds)
        versions = sorted(v["timestamp"] for v in self._table.list_versions())
        if len(versions) <= self.health.max_versions:
            return retention
        nth_newest = versions[-self.health.max_versions]
        age = datetime.now(nth_newest.tzinfo) - nth_newest
        return min(retention, max(age, timedelta(0)))

    def stats(self) -> StoreStats:
        """Rows, fragments, versions and index names."""
        stats: Any = self._table.stats()
        return StoreStats(
            rows=int(stats["num_rows"]),
            fragments=int(stats["fragment_stats"]["num_fragments"]),
            versions=len(self._table.list_versions()),
            indices=tuple(sorted(i.name for i in self._table.list_indices())),
        )

    def _arrow(self, rows: Sequence[StoreRow]) -> pa.Table:
        columns = {**self._columns(rows), "text": [row.text for row in rows],
                   "context": [row.context for row in rows],
                   "vector": [np.asarray(row.vector, dtype=np.float32) for row in rows]}
        return pa.Table.from_pydict(columns, schema=self._schema)

    @staticmethod
    def _columns(rows: Sequence[StoreRow]) -> dict[str, list[object]]:
        """The key and place columns of ``rows``."""
        columns: dict[str, list[object]] = {name: [] for name in _PLACES_SCHEMA.names}
        for row in rows:
            first = row.places[0] if row.places else Place("")
            columns["custom_id"].append(row.custom_id)
            columns["uri"].append(first.uri)
            columns["heading"].append(first.heading)
            columns["page"].append(first.page)
            columns["line_start"].append(first.line_start)
            columns["line_end"].append(first.line_end)
            columns["places"].append([asdict(p) for p in row.places])
            columns["n_places"].append(len(row.places))
        return columns


_PANICS = frozenset({"PanicException", "RustPanic"})
"""How a Rust panic inside LanceDB reaches Python (pyo3_runtime, pyo3_async_runtimes)."""


def check_filter(where: str) -> str:
    """``where`` itself, once checked to be one self-contained filter expression.

    Search runs ``n_places > 0 AND (where)``. With its parentheses balanced, its quotes
    closed and no comment or ``;``, the filter is one group under that ``AND`` and can
    only narrow the published rows (``1=1) OR (n_places = 0`` is refused). Also refused:
    backslashes (an escape inside LanceDB's strings, so a way to hide a quote from this
    check), placeholders (``?``, ``$1``, ``:name``) and prefixed strings (``N'a'``), on
    which LanceDB panics. Raises :class:`StateError` naming the problem.
    """
    depth, quote, i = 0, "", 0
    while i < len(where):
        char = where[i]
        if char == "\\":
            raise StateError(_refused(where, "backslashes are not allowed"))
        if quote:
            if char == quote and where.startswith(quote * 2, i):
                i += 1  # a doubled quote stands for itself
            elif char == quote:
                quote = ""
        elif char in "'\"`":
            before = where[i - 1] if i else " "
            if char == "'" and (where.startswith("'" * 3, i) or before.isalnum()
                                or before in "_&"):
                raise StateError(_refused(where, "prefixed or triple-quoted strings are not "
                                                 "supported (put a space before a quote)"))
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise StateError(_refused(where, f"the ')' at character {i + 1} closes "
                                                 "nothing"))
        elif where.startswith(("--", "/*"), i):
            raise StateError(_refused(where, "comments are not allowed"))
        elif char == ";":
            raise StateError(_refused(where, "';' is not allowed: give one expression"))
        elif char in "?$" or (char == ":" and "::" not in where[max(i - 1, 0):i + 2]):
            raise StateError(_refused(where, f"{char!r} (a placeholder) is not supported"))
        i += 1
    if quote:
        raise StateError(_refused(where, f"a {quote} quote is never closed"))
    if depth:
        raise StateError(_refused(where, "a '(' is never closed"))
    return where


def _refused(where: str, problem: str) -> str:
    return f"the --where filter {where!r} is refused: {problem}"


def _filter_failed(where: str, exc: BaseException) -> str:
    """One line saying why LanceDB could not run a filter (without its source paths)."""
    lines = str(exc).splitlines()
    detail = re.sub(r",? /\S+\.rs:\d+:\d+", "", lines[0] if lines else "")
    detail = detail.replace("Invalid input, ", "")
    if type(exc).__name__ in _PANICS:
        detail = f"LanceDB stopped on an internal error ({detail or 'panic'})"
    return (f"the --where filter {where!r} failed: {detail[:300]}; check its syntax and "
            "columns (uri, heading, page, line_start, line_end, text, context)")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _create(db: Any, table_schema: pa.Schema) -> Any:
    table = db.create_table(TABLE, schema=table_schema)
    table.create_index("custom_id", config=BTree())
    return table


def _short(exc: BaseException) -> str:
    """An error's first line, without the Rust source locations LanceDB appends."""
    return str(exc).splitlines()[0].split(", /")[0][:300] if str(exc) else type(exc).__name__


# -- damage and repair ---------------------------------------------------------------


def inspect(directory: Path) -> Damage:
    """Check the table in ``directory`` without changing it: it exists, has every column,
    and each fragment's data files can be read (one row of each is read)."""
    try:
        db = lancedb.connect(str(directory))
        if not directory.is_dir() or TABLE not in db.list_tables().tables:
            return Damage(missing_table=True)
        table = db.open_table(TABLE)
        lost, migrations = _schema_changes(table.schema)
        fragments, rowids = _fragments(table)
        files = directory / f"{TABLE}.lance" / "_indices"
        indices = tuple(i.name for i in table.list_indices()
                        if i.index_uuid and not (files / i.index_uuid).is_dir())
    except _LANCE_ERRORS as exc:
        return Damage(unreadable=_short(exc))
    broken = _unreadable(table, fragments, rowids)
    return Damage(lost_fragments=tuple(sorted(broken)),
                  lost_rows=int(np.isin(fragments, list(broken)).sum()) if broken else 0,
                  lost_columns=lost, lost_indices=indices, migrations=migrations)


def migrate_schema(directory: Path) -> tuple[str, ...]:
    """Make, in place, the schema changes :attr:`Damage.migrations` lists."""
    return _migrate(lancedb.connect(str(directory)).open_table(TABLE))


def recorded_model(directory: Path) -> tuple[str, int] | None:
    """The model and dimensions the table's schema records, if it can be read."""
    try:
        meta = lancedb.connect(str(directory)).open_table(TABLE).schema.metadata or {}
        return meta[b"model"].decode(), int(meta[b"dimensions"])
    except (*_LANCE_ERRORS, KeyError):
        return None


def restore(directory: Path, model: str, dimensions: int) -> Restoration:
    """Mend the table in ``directory`` from what is intact; never embeds anything.

    A missing table is re-created empty. A table that cannot be read, or lost its keys or
    vectors, goes back to the newest earlier version that has them (or is re-created).
    Fragments whose data files are unreadable are dropped, and the rows they held are
    looked for in earlier versions still on disk. Other lost columns come back empty
    (``rewrite``), and the migrations are made.
    """
    try:
        return _restore(directory, model, dimensions)
    except _LANCE_ERRORS as exc:
        raise StateError(f"could not restore the search store in {directory}: {_short(exc)}; "
                         "move the index directory aside and sync again") from exc


def _restore(directory: Path, model: str, dimensions: int) -> Restoration:
    damage = inspect(directory)
    if not damage.broken and not damage.migrations:
        return Restoration(damage)
    db = lancedb.connect(str(directory))
    table_schema = schema(model, dimensions)
    if damage.missing_table:
        _create(db, table_schema)
        return Restoration(damage, recreated=True)
    version = None
    if damage.unreadable or set(damage.lost_columns) & set(_ESSENTIAL):
        version = _last_whole_version(db)
        if version is None:
            _discard(db, directory)
            _create(db, table_schema)
            return Restoration(damage, recreated=True)
        db.open_table(TABLE).restore(version)
    now = inspect(directory)
    table = db.open_table(TABLE)
    dropped = recovered = 0
    if now.lost_fragments:
        table.delete(" OR ".join(f"(_rowaddr >= {f << 32} AND _rowaddr < {(f + 1) << 32})"
                                 for f in now.lost_fragments))
        dropped = now.lost_rows
    for name in now.lost_indices:
        table.drop_index(name)
        if name in _INDICES:
            column, config = _INDICES[name]
            table.create_index(column, config=config(), name=name)
    missing = [f for f in table_schema if f.name not in table.schema.names
               and f.name not in _DERIVED]
    if missing:
        table.add_columns(pa.schema(missing))
    migrations = _migrate(table)
    if now.lost_fragments:
        recovered = _recover(db, table, table_schema, set(now.lost_fragments))
    return Restoration(damage, restored_version=version, dropped_rows=dropped,
                       recovered_rows=recovered, rewrite=bool(missing) or version is not None,
                       migrations=migrations)


def _schema_changes(found: pa.Schema) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Our columns that are gone, and the migrations the rest needs."""
    ours = schema("", 1).names
    lost = tuple(n for n in ours if n not in found.names and n not in _DERIVED)
    migrations = [f"add {n}" for n in _DERIVED if n not in found.names]
    migrations += [f"make {f.name} nullable" for f in found
                   if f.name not in ours and not f.nullable]
    return lost, tuple(migrations)


def _migrate(table: Any) -> tuple[str, ...]:
    """Derive missing ``n_places``; let rows without the columns a newer version added
    be written (those columns become nullable, their values are kept)."""
    done = []
    for name, expression in _DERIVED.items():
        if name not in table.schema.names and "places" in table.schema.names:
            table.add_columns({name: expression})
            done.append(f"added {name}")
    ours = schema("", 1).names
    for field in table.schema:
        if field.name not in ours and not field.nullable:
            table.alter_columns({"path": field.name, "nullable": True})
            done.append(f"made {field.name} nullable")
    return tuple(done)


def _fragments(table: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each live row's fragment id and row id, read from the manifest and deletion files
    only (no data file is opened)."""
    found = (table.search().where("_rowaddr >= 0").select(["_rowaddr"]).with_row_id(True)
             .limit(None).to_arrow())
    addresses = found.column("_rowaddr").to_numpy()
    return addresses >> 32, found.column("_rowid").to_numpy()


def _unreadable(table: Any, fragments: np.ndarray, rowids: np.ndarray) -> set[int]:
    """Fragments whose first row cannot be read."""
    ids, first = np.unique(fragments, return_index=True)
    try:
        table.take_row_ids([int(rowids[i]) for i in first]).to_arrow()
        return set()
    except _LANCE_ERRORS:
        pass
    broken = set()
    for fragment, index in zip(ids, first, strict=True):
        try:
            table.take_row_ids([int(rowids[index])]).to_arrow()
        except _LANCE_ERRORS:
            broken.add(int(fragment))
    return broken


def _last_whole_version(db: Any) -> int | None:
    """The newest earlier version that has keys and vectors and can be listed."""
    try:
        versions = sorted((v["version"] for v in db.open_table(TABLE).list_versions()),
                          reverse=True)
    except _LANCE_ERRORS:
        return None
    for version in versions[1:]:
        try:
            old = db.open_table(TABLE)
            old.checkout(version)
            if all(n in old.schema.names for n in _ESSENTIAL):
                _fragments(old)
                return int(version)
        except _LANCE_ERRORS:
            continue
    return None


def _discard(db: Any, directory: Path) -> None:
    """Drop a table that cannot even be opened (or move its files aside)."""
    try:
        db.drop_table(TABLE)
    except _LANCE_ERRORS:
        for path in directory.glob(f"{TABLE}.lance"):
            path.rename(path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"))


def _recover(db: Any, table: Any, table_schema: pa.Schema, seen: set[int]) -> int:
    """Put back rows the table lacks from fragments of earlier versions still readable."""
    have = set(table.search().select(["custom_id"]).limit(None).to_arrow()
               .column("custom_id").to_pylist())
    fragments, _ = _fragments(table)
    seen |= {int(f) for f in np.unique(fragments)}
    recovered = 0
    for version in sorted((v["version"] for v in table.list_versions()), reverse=True)[1:]:
        old = db.open_table(TABLE)
        try:
            old.checkout(version)
            if not all(n in old.schema.names for n in _ESSENTIAL):
                continue
            fragments, rowids = _fragments(old)
        except _LANCE_ERRORS:
            continue
        for fragment in {int(f) for f in np.unique(fragments)} - seen:
            seen.add(fragment)
            try:
                rows = old.take_row_ids([int(r) for r in rowids[fragments == fragment]]
                                        ).to_arrow()
            except _LANCE_ERRORS:
                continue
            keys = rows.column("custom_id")
            rows = rows.filter(pc.invert(pc.is_in(keys, pa.array(list(have), pa.string()))))
            if rows.num_rows:
                rows = _conform(rows, table_schema)
                (table.merge_insert("custom_id").when_not_matched_insert_all().execute(rows))
                have.update(rows.column("custom_id").to_pylist())
                recovered += rows.num_rows
    return recovered


def _conform(rows: pa.Table, table_schema: pa.Schema) -> pa.Table:
    """``rows`` in our schema: missing columns null (``n_places`` derived), others dropped,
    one row per key."""
    first = {key: i for i, key in reversed(list(enumerate(rows.column("custom_id").to_pylist())))}
    rows = rows.take(sorted(first.values()))
    columns = []
    for field in table_schema:
        if field.name in rows.column_names:
            columns.append(rows.column(field.name).cast(field.type))
        elif field.name == "n_places" and "places" in rows.column_names:
            columns.append(pc.fill_null(pc.list_value_length(rows.column("places")), 0)
                           .cast(field.type))
        else:
            columns.append(pa.nulls(rows.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=table_schema)
