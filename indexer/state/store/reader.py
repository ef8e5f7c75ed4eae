"""Searching the store: the table read through Lance itself, without LanceDB.

A search is one synchronous native call (``LanceDataset.to_table``) on a dataset kept
open between searches, so its indices stay cached; LanceDB's query builder takes several
round trips to its event loop per query, and importing it costs seconds that a
one-off ``indexer search`` would spend before its first result. The plans are LanceDB's
own (same index, probes, refinement and prefilter), so hits and scores are the same.
The table is still written by :class:`~indexer.state.store.table.Store` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lance
import numpy as np
import pyarrow as pa

from indexer.errors import IndexMismatch, StateError
from indexer.records import Place, SearchHit
from indexer.state.damage import Damage
from indexer.state.store.filters import _PANICS, _filter_failed, check_filter, panicked
from indexer.state.store.location import is_remote
from indexer.state.store.location import storage_options as remote_options
from indexer.state.store.rows import RowKeys
from indexer.state.store.vectors import HeldVectors

TABLE = "chunks"
NPROBES = 20
"""IVF partitions searched per query: LanceDB's default, which the store was tuned with."""
LEGACY_REFINE = 10
"""The least refine factor for a vector index of 1-bit codes (built before indices had
more bits): at 2 its recall@10 against the exact scan is 0.75 at 100k rows, at 10 0.99."""
PUBLISHED = "n_places > 0"
"""The filter hiding rows whose vectors are paid for but not published (or retired)."""
OVERFETCH = 4
"""Rows ranked beyond ``k`` when a version hides rows: ``k`` times this times the hidden
share, plus 2 (``k`` 10, 2% hidden: 12 rows; the prefiltered query runs again when more
than 2 of them are hidden)."""
_LANCE_ERRORS = (OSError, ValueError, RuntimeError)
_HIT_COLUMNS = ["text", "places"]


@dataclass(frozen=True)
class Ranked:
    """A row one half of a search found, without its text: key, score (cosine similarity
    or BM25) and the row's id in this table version (see :meth:`Reader.passages`)."""

    custom_id: str
    score: float
    row: int


class Reader:
    """Searches of the table in ``directory`` (a folder, or a URI with
    ``storage_options``), on one table version until :meth:`refresh`.

    Raises :class:`DamageError` when the table is missing and :class:`IndexMismatch`
    when it holds another model's vectors.
    """

    def __init__(self, directory: Path | str, model: str, dimensions: int,
                 refine_factor: int = 0,
                 storage_options: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self.refine_factor = refine_factor
        self._indexed: tuple[int, frozenset[str], int, int] = (-1, frozenset(), 0, 0)
        self._rows: RowKeys | None = None
        self._held = HeldVectors()
        self._holding = False
        location = f"{str(directory).rstrip('/')}/{TABLE}.lance"
        if isinstance(directory, Path) and not Path(location).is_dir():
            raise Damage(missing_table=True).error(directory)
        try:
            if storage_options is None and is_remote(directory):
                storage_options = remote_options()
            self._dataset = lance.dataset(location, storage_options=dict(storage_options or {}))
            meta = self._dataset.schema.metadata or {}
        except _LANCE_ERRORS as exc:
            raise StateError(f"cannot open the search store in {directory}: {exc}") from exc
        recorded = {k.decode(): v.decode() for k, v in meta.items()}
        if (recorded.get("model"), recorded.get("dimensions")) != (model, str(dimensions)):
            raise IndexMismatch(
                f"the store holds vectors of {recorded.get('model')} "
                f"({recorded.get('dimensions')} dimensions), not {model} ({dimensions}); use "
                "the index's own model or build a new index directory")

    @property
    def version(self) -> int:
        """The table version searches read."""
        return int(self._dataset.version)

    def refresh(self) -> None:
        """Read the table's latest version from now on (another process may have
        committed since); a version already read is not loaded again. A reader refreshed
        is one kept between searches: from then on it holds the table's vectors in memory
        to refine the vector index's candidates (:mod:`~indexer.state.store.vectors`)."""
        self._holding = True
        try:
            latest = self._dataset.latest_version
            if latest != self._dataset.version:
                self._dataset = self._dataset.checkout_version(latest)
        except _LANCE_ERRORS as exc:
            raise StateError(f"cannot read the search store in {self.directory}: {exc}") \
                from exc

    @staticmethod
    def condition(where: str | None = None, narrowing: tuple[str, ...] | list[str] = ()) -> str:
        """The filter a search runs under: published rows (``n_places > 0``), the user's
        ``where`` (a LanceDB SQL filter, checked to be one self-contained expression by
        :func:`check_filter`, so it can only narrow them) and ``narrowing`` conditions
        the library built itself. Raises :class:`StateError` for a refused filter."""
        condition = PUBLISHED
        if where and where.strip():
            condition += f" AND ({check_filter(where)})"
        return condition + "".join(f" AND ({extra})" for extra in narrowing)

    def nearest(self, vector: np.ndarray, limit: int, condition: str,
                where: str | None = None) -> list[SearchHit]:
        """The ``limit`` rows under ``condition`` (see :meth:`condition`, applied before
        ranking, so a narrow filter still yields ``limit`` rows when there are) nearest
        ``vector``, best first (score: cosine similarity). ``where`` is the user's part,
        named when the filter fails."""
        if self._holds():  # refined from memory, the hits' passages held too
            return self._read(self.nearest_keys(vector, limit, condition, where), "vector")
        found, keys = self._ranked(where, condition, limit, self._vector_query(vector),
                                   ["_distance", *_HIT_COLUMNS])
        return _hits(found, keys, [1.0 - d for d in found["_distance"].to_pylist()], "vector")

    def matching(self, text: str, limit: int, condition: str,
                 where: str | None = None) -> list[SearchHit]:
        """The ``limit`` rows under ``condition`` that best match ``text`` in the full-text
        index, best first (score: BM25); none before the index exists."""
        if not self.has_text_index():
            return []
        found, keys = self._ranked(where, condition, limit, _text_query(text),
                                   ["_score", *_HIT_COLUMNS])
        return _hits(found, keys, found["_score"].to_pylist(), "keyword")

    def nearest_keys(self, vector: np.ndarray, limit: int, condition: str,
                     where: str | None = None) -> list[Ranked]:
        """:meth:`nearest` without reading text and places (:meth:`passages` reads them
        for the rows a fusion keeps)."""
        found, keys = self._ranked(where, condition, limit, self._vector_query(vector),
                                   ["_distance"])
        return [Ranked(key, 1.0 - distance, row) for key, distance, row in zip(
            keys, found["_distance"].to_pylist(), found["_rowid"].to_pylist(), strict=True)]

    def matching_keys(self, text: str, limit: int, condition: str,
                      where: str | None = None) -> list[Ranked]:
        """:meth:`matching` without reading text and places."""
        if not self.has_text_index():
            return []
        found, keys = self._ranked(where, condition, limit, _text_query(text), ["_score"])
        return [Ranked(key, score, row) for key, score, row in zip(
            keys, found["_score"].to_pylist(), found["_rowid"].to_pylist(), strict=True)]

    def passages(self, rows: Sequence[int], keys: Sequence[str] | None = None,
                 ) -> dict[str, tuple[str, tuple[Place, ...]]]:
        """The text and places of ``rows`` (ids from :meth:`nearest_keys` or
        :meth:`matching_keys` on this version), by key; a row without places is left out
        (never a hidden row). ``keys``: the rows' keys, when the caller has them from
        that ranking (else they are looked up, 0.13 ms for 10 rows)."""
        if not rows:
            return {}
        if keys is None:
            keys = self._keys().of(rows)
        found = self._held.passages(np.asarray(rows, dtype=np.uint64)) \
            if self._holds() else None
        try:  # by row id: one read of those rows (a filter on them plans a scan)
            if found is None:
                found = self._dataset._take_rows(list(rows), columns=_HIT_COLUMNS).to_pylist()
        except _LANCE_ERRORS as exc:
            raise StateError(f"search failed: {exc}") from exc
        return {key: (r["text"], tuple(Place(**p) for p in r["places"]))
                for key, r in zip(keys, found, strict=True) if r["places"]}

    def _read(self, ranked: list[Ranked], mode: str) -> list[SearchHit]:
        """``ranked`` as hits of ``mode`` with their text and places (:meth:`passages`)."""
        read = self.passages([r.row for r in ranked], [r.custom_id for r in ranked])
        return [SearchHit(r.custom_id, r.score, *read[r.custom_id], mode)
                for r in ranked if r.custom_id in read]

    def _vector_query(self, vector: np.ndarray) -> Ranking:
        """The ranking of a vector query: ``nearest`` with the index's refine factor
        (codes of 1 bit need more candidates re-ranked, see :data:`LEGACY_REFINE`), or,
        with the vectors held, that many candidates unrefined, re-ranked from memory."""
        q = np.asarray(vector, dtype=np.float32)

        def nearest(n: int, **refine: int) -> dict[str, Any]:
            return {"limit": n, "nearest": {
                "column": "vector", "q": q, "k": n, "metric": "cosine",
                "minimum_nprobes": NPROBES, "maximum_nprobes": NPROBES, **refine}}

        bits = self._vector_bits()
        factor = max(self.refine_factor, LEGACY_REFINE if bits == 1 else 0) \
            if self.refine_factor and bits else 0
        if not factor:
            return Ranking(nearest)
        refined = Ranking(lambda n: nearest(n, refine_factor=factor))
        if not self._holds():
            return refined

        return Ranking(lambda n: nearest(n * factor),
                       lambda found, n: self._held.best(found, n, q), refined)

    def _holds(self) -> bool:
        """True when this reader holds the table's vectors (see :meth:`refresh`), they
        fit in memory and the vector index covers every row (Lance ranks rows it does not
        cover exactly, beside the index's candidates, before any re-ranking of ours)."""
        if not self._holding or not self._vector_bits():
            return False
        try:
            held = self._held.follow(self._dataset)
        except _LANCE_ERRORS:
            return False  # the table's own refinement then, which reports what failed
        return held and self._indexed[3] >= self._held.rows

    def has_text_index(self) -> bool:
        """True once the full-text index on ``text`` exists (made on the first write)."""
        return "text_idx" in self._index_names()

    def _vector_bits(self) -> int:
        """Bits per dimension of the vector index's codes (0: no vector index; an index
        without the figure counts as 1 bit)."""
        self._index_names()
        return self._indexed[2]

    def _index_names(self) -> frozenset[str]:
        """The table's index names, looked up once per table version (searches ask for
        them on every query), the vector index's code bits and the rows it indexed."""
        version = self._dataset.version
        if self._indexed[0] != version:
            try:
                described = self._dataset.describe_indices()
            except _LANCE_ERRORS as exc:
                raise StateError(f"search failed: {exc}") from exc
            bits = rows = 0
            for index in described:
                if index.name == "vector_idx":
                    compression = (index.details or {}).get("compression") or {}
                    bits = int(compression.get("num_bits") or 1)
                    rows = int(index.num_rows_indexed or 0)
            self._indexed = (version, frozenset(i.name for i in described), bits, rows)
        return self._indexed[1]

    def _keys(self) -> RowKeys:
        """This table version's row ids, keys and published rows (read once per version:
        a search then ranks row ids only, and reads text and places for its winners)."""
        version = self._dataset.version
        if self._rows is None or self._rows.version != version:
            try:
                table = self._dataset.to_table(columns=["custom_id", "n_places"],
                                               with_row_id=True)
            except _LANCE_ERRORS as exc:
                raise StateError(f"search failed: {exc}") from exc
            self._rows = RowKeys.of_table(version, table)
        return self._rows

    def _ranked(self, where: str | None, condition: str, limit: int, query: Ranking,
                columns: list[str]) -> tuple[pa.Table, list[str]]:
        """The ``limit`` best rows under ``condition`` of the ranking ``query`` (its ``n``
        best rows): their ``columns`` and row ids, and their keys. Under the
        bare published-rows filter no prefilter runs (it costs 0.5 ms a query at 10k
        rows, 3 at 100k): a version hiding no row needs none, and on one that does, a few
        rows more than ``limit`` are ranked unfiltered and the hidden ones dropped; only
        when too many of them were hidden does the prefiltered query run. Any other
        condition is applied before ranking."""
        keys = self._keys()

        def ask(n: int, **scan: Any) -> pa.Table:
            found = self._run(where, columns=columns, with_row_id=True, **scan, **query.scan(n))
            if query.rerank is None:
                return found
            reranked = query.rerank(found, n)
            if reranked is not None or query.otherwise is None:
                return reranked if reranked is not None else found
            return self._run(where, columns=columns, with_row_id=True, **scan,
                             **query.otherwise.scan(n))

        if condition == PUBLISHED:
            share = keys.hidden_share
            more = limit + (math.ceil(limit * OVERFETCH * share) + 2 if share else 0)
            found = ask(more)
            shown = keys.shown(found, limit)
            if shown[0].num_rows >= limit or found.num_rows < more:
                return shown
        return keys.shown(ask(limit, filter=condition, prefilter=True), limit)

    def _run(self, where: str | None, **scan: Any) -> pa.Table:
        """Run a search; a failure is one line naming the filter when there was one."""
        try:
            found = self._dataset.to_table(**scan)
        except (ValueError, RuntimeError, OSError) as exc:
            if panicked(exc) and not where:
                raise StateError(f"search failed: Lance stopped ({exc})") from None
            if not where:
                raise StateError(f"search failed: {exc}") from exc
            raise StateError(_filter_failed(where, exc)) from None
        except BaseException as exc:  # a Rust panic may derive from BaseException only
            if type(exc).__name__ not in _PANICS:
                raise
            if not where:
                raise StateError(f"search failed: Lance stopped ({exc})") from None
            raise StateError(_filter_failed(where, exc)) from None
        return found


@dataclass(frozen=True)
class Ranking:
    """A ranking query: ``scan(n)`` gives Lance's arguments for its ``n`` best rows;
    ``rerank(found, n)`` (when given) keeps the ``n`` best of what that found, or gives
    None, and then ``otherwise`` runs instead."""

    scan: Callable[[int], dict[str, Any]]
    rerank: Callable[[pa.Table, int], pa.Table | None] | None = None
    otherwise: Ranking | None = None


def _text_query(text: str) -> Ranking:
    return Ranking(lambda n: {"limit": n,
                              "full_text_query": {"query": text, "columns": ["text"]}})


def _hits(found: pa.Table, keys: list[str], scores: list[float], mode: str) -> list[SearchHit]:
    """Ranked rows with their text and places as hits of ``mode`` (never a hidden row)."""
    return [SearchHit(key, score, text, tuple(Place(**p) for p in places), mode)
            for key, score, text, places in zip(keys, scores, found["text"].to_pylist(),
                                                found["places"].to_pylist(), strict=True)
            if places]
