"""A damaged search table: what is wrong with it (:func:`inspect`), putting it back from
what is intact (:func:`restore`, earlier versions included), schema migrations, and
dropping a retired generation's table in object storage (:func:`drop`)."""


from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from indexer.errors import StateError
from indexer.state.damage import Damage, Restoration
from indexer.state.store.columns import DERIVED, ESSENTIAL, INDICES, build_index, schema
from indexer.state.store.location import Location, drop_table, is_remote, open_table, scrub
from indexer.state.store.table import _LANCE_ERRORS, TABLE, _create, _short


def inspect(directory: Location) -> Damage:
    """Check the table in ``directory`` without changing it: it exists, has every column,
    and each fragment's data files can be read (one row of each is read). In object
    storage, index files are not looked for (a listing per index would cost requests)."""
    try:
        if not is_remote(directory) and not Path(directory).is_dir():
            return Damage(missing_table=True)
        table = open_table(directory, TABLE)
        if table is None:
            return Damage(missing_table=True)
        lost, migrations = _schema_changes(table.schema)
        fragments, rowids = _fragments(table)
        indices: tuple[str, ...] = ()
        if not is_remote(directory):
            files = Path(directory) / f"{TABLE}.lance" / "_indices"
            indices = tuple(d.name for d in table.describe_indices()
                            if not d.name.startswith("__") and d.segments
                            and not (files / str(d.segments[0].uuid)).is_dir())
    except _LANCE_ERRORS as exc:
        return Damage(unreadable=scrub(_short(exc)))
    broken = _unreadable(table, fragments, rowids)
    return Damage(lost_fragments=tuple(sorted(broken)),
                  lost_rows=int(np.isin(fragments, list(broken)).sum()) if broken else 0,
                  lost_columns=lost, lost_indices=indices, migrations=migrations)


def migrate_schema(directory: Location) -> tuple[str, ...]:
    """Make, in place, the schema changes :attr:`Damage.migrations` lists."""
    return _migrate(open_table(directory, TABLE))


def recorded_model(directory: Location) -> tuple[str, int] | None:
    """The model and dimensions the table's schema records, if it can be read."""
    try:
        meta = open_table(directory, TABLE).schema.metadata or {}
        return meta[b"model"].decode(), int(meta[b"dimensions"])
    except (*_LANCE_ERRORS, KeyError):
        return None


def restore(directory: Location, model: str, dimensions: int) -> Restoration:
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
        raise StateError(f"could not restore the search store in {directory}: "
                         f"{scrub(_short(exc))}; "
                         "move the index directory aside and sync again") from exc


def _restore(directory: Location, model: str, dimensions: int) -> Restoration:
    damage = inspect(directory)
    if not damage.broken and not damage.migrations:
        return Restoration(damage)
    table_schema = schema(model, dimensions)
    if damage.missing_table:
        _create(directory, table_schema)
        return Restoration(damage, recreated=True)
    version = None
    if damage.unreadable or set(damage.lost_columns) & set(ESSENTIAL):
        version = _last_whole_version(directory)
        if version is None:
            _discard(directory)
            _create(directory, table_schema)
            return Restoration(damage, recreated=True)
        open_table(directory, TABLE, version).restore()
    now = inspect(directory)
    table = open_table(directory, TABLE)
    dropped, damaged = 0, table.version
    recovered: tuple[str, ...] = ()
    if now.lost_fragments:
        table.delete(" OR ".join(f"(_rowaddr >= {f << 32} AND _rowaddr < {(f + 1) << 32})"
                                 for f in now.lost_fragments))
        dropped = now.lost_rows
    for name in now.lost_indices:
        table.drop_index(name)
        if name in INDICES:
            build_index(table, name, dimensions)
    missing = [f for f in table_schema if f.name not in table.schema.names
               and f.name not in DERIVED]
    if missing:
        table.add_columns(pa.schema(missing))
    migrations = _migrate(table)
    if now.lost_fragments:
        recovered = _recover(table, table_schema, set(now.lost_fragments), damaged)
    return Restoration(damage, restored_version=version, dropped_rows=dropped,
                       recovered_rows=len(recovered), recovered_keys=recovered,
                       rewrite=bool(missing) or version is not None, migrations=migrations)


def drop(location: Location) -> None:
    """Delete the table of a retired generation kept in object storage."""
    try:
        drop_table(location, TABLE)
    except _LANCE_ERRORS as exc:
        raise StateError(f"cannot delete the search store at {location}: "
                         f"{scrub(_short(exc))}") from exc


def _schema_changes(found: pa.Schema) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Our columns that are gone, and the migrations the rest needs."""
    ours = schema("", 1).names
    lost = tuple(n for n in ours if n not in found.names and n not in DERIVED)
    migrations = [f"add {n}" for n in DERIVED if n not in found.names]
    migrations += [f"make {f.name} nullable" for f in found
                   if f.name not in ours and not f.nullable]
    return lost, tuple(migrations)


def _migrate(table: Any) -> tuple[str, ...]:
    """Derive missing ``n_places``; let rows without the columns a newer version added
    be written (those columns become nullable, their values are kept)."""
    done = []
    for name, expression in DERIVED.items():
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
    found = table.to_table(columns=[], with_row_id=True, with_row_address=True)
    addresses = found.column("_rowaddr").to_numpy()
    return addresses >> 32, found.column("_rowid").to_numpy()


def _unreadable(table: Any, fragments: np.ndarray, rowids: np.ndarray) -> set[int]:
    """Fragments whose first row cannot be read."""
    ids, first = np.unique(fragments, return_index=True)
    try:
        table._take_rows([int(rowids[i]) for i in first])
        return set()
    except _LANCE_ERRORS:
        pass
    broken = set()
    for fragment, index in zip(ids, first, strict=True):
        try:
            table._take_rows([int(rowids[index])])
        except _LANCE_ERRORS:
            broken.add(int(fragment))
    return broken


def _last_whole_version(directory: Location) -> int | None:
    """The newest earlier version that has keys and vectors and can be listed."""
    try:
        versions = sorted((v["version"] for v in open_table(directory, TABLE).versions()),
                          reverse=True)
    except _LANCE_ERRORS:
        return None
    for version in versions[1:]:
        try:
            old = open_table(directory, TABLE, version)
            if all(n in old.schema.names for n in ESSENTIAL):
                _fragments(old)
                return int(version)
        except _LANCE_ERRORS:
            continue
    return None


def _discard(directory: Location) -> None:
    """Drop a table that cannot even be opened (or move its files aside)."""
    try:
        drop_table(directory, TABLE)
    except _LANCE_ERRORS as exc:
        if is_remote(directory):  # nothing to move aside in object storage
            raise StateError(f"the search table at {directory} can neither be read nor "
                             f"dropped ({scrub(_short(exc))}); delete {directory}/"
                             f"{TABLE}.lance with your storage tools, then run `indexer "
                             "doctor --repair`") from exc
        for path in Path(directory).glob(f"{TABLE}.lance"):
            path.rename(path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"))


def _recover(table: Any, table_schema: pa.Schema, lost: set[int],
             damaged: int) -> tuple[str, ...]:
    """Put back rows the table lacks, and return their keys: first from what is intact of
    the lost fragments themselves (version ``damaged``: a publication writes the passage
    columns to a file of their own beside the vectors, so a fragment may have lost one
    of its files and still hold its keys and vectors), then from fragments of earlier
    versions still readable. A row is put back with the columns that could be read (at
    least its key and vector); its passage and places are to be written again from the
    ledger.

    A fragment whose id the table still has is the same rows (deleted ones deleted on
    purpose) and is not read again; a lost fragment is read in each different set of data
    files it had (before and after a publication added its passage columns).
    """
    have = set(table.to_table(columns=["custom_id"]).column("custom_id").to_pylist())
    live = {int(f) for f in np.unique(_fragments(table)[0])}
    dataset = table
    versions = sorted((v["version"] for v in dataset.versions()
                       if v["version"] < damaged), reverse=True)
    tried: set[tuple[str, ...]] = set()
    recovered: list[str] = []
    for version in [damaged, *versions]:
        try:
            old = dataset.checkout_version(version)
            if not all(n in old.schema.names for n in ESSENTIAL):
                continue
            fragments = old.get_fragments()
        except _LANCE_ERRORS:
            continue
        for fragment in fragments:
            files = tuple(sorted(f.path for f in fragment.metadata.files))
            if (version == damaged and fragment.fragment_id not in lost) or \
                    fragment.fragment_id in live or files in tried:
                continue
            tried.add(files)
            rows = _readable(fragment, old.schema.names, have)
            if rows is not None and rows.num_rows:
                rows = _conform(rows, table_schema)
                table.merge_insert("custom_id").when_not_matched_insert_all().execute(rows)
                keys = rows.column("custom_id").to_pylist()
                have.update(keys)
                recovered.extend(keys)
    return tuple(recovered)


def _readable(fragment: Any, names: list[str], have: set[str]) -> pa.Table | None:
    """The rows of ``fragment`` whose keys are not in ``have``: every column, or the key
    and vector only when the others' file is lost; None if even those cannot be read."""
    try:
        keys = fragment.to_table(columns=["custom_id"]).column("custom_id")
    except _LANCE_ERRORS:
        return None
    wanted = pc.invert(pc.is_in(keys, pa.array(list(have), pa.string())))
    if not pc.any(wanted).as_py():
        return None
    for columns in (names, list(ESSENTIAL)):
        try:
            return fragment.to_table(columns=columns).filter(wanted)
        except _LANCE_ERRORS:
            continue
    return None


def _conform(rows: pa.Table, table_schema: pa.Schema) -> pa.Table:
    """``rows`` in our schema: missing columns null (``n_places`` derived), others dropped,
    one row per key."""
    first = {key: i for i, key in reversed(list(enumerate(rows.column("custom_id").to_pylist())))}
    rows = rows.take(sorted(first.values()))
    columns = []
    for field in table_schema:
        if field.name in rows.column_names:
            columns.append(rows.column(field.name).cast(field.type))
        elif field.name == "n_places":  # no places read: hidden until written again
            places = (pc.list_value_length(rows.column("places"))
                      if "places" in rows.column_names else pa.nulls(rows.num_rows, pa.int32()))
            columns.append(pc.fill_null(places, 0).cast(field.type))
        else:
            columns.append(pa.nulls(rows.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=table_schema)
