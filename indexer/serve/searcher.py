"""One warm :class:`Index` behind a server: searches and status, in one thread, on the
index's latest published version.

The model and the table stay loaded between requests. Each request first checks that
the index's current generation is still the one open (a ``sync --rebuild`` elsewhere
swaps generations: the index is then reopened), and the search moves the table to its
latest version (one manifest read), so a sync in another process shows up as soon as it
commits, and a query never sees half of one.

Search parameters are those of :meth:`Index.search`, read from its signature, so the
servers offer whatever the library does; hits are rendered by
:meth:`SearchHit.to_dict`, the view ``search --json`` prints.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from indexer.index import Index

T = TypeVar("T")
QUERY = "query"
"""The parameter of :meth:`Index.search` that holds the query text."""


@dataclass(frozen=True)
class Parameter:
    """One search parameter besides the query: its name, type, default and help."""

    name: str
    annotation: Any
    default: Any


def parameters() -> tuple[Parameter, ...]:
    """The parameters of :meth:`Index.search` besides ``self`` and the query, with their
    resolved types (a type that cannot be resolved is taken as ``str | None``)."""
    signature = inspect.signature(Index.search)
    try:
        hints = typing.get_type_hints(Index.search)
    except (NameError, TypeError):
        hints = {}
    return tuple(
        Parameter(p.name, hints.get(p.name, str | None), p.default)
        for p in signature.parameters.values()
        if p.name not in ("self", QUERY) and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


class Searcher:
    """An index kept open for a server; every call runs on one worker thread (the
    ledger's SQLite connection and the model belong to it)."""

    def __init__(self, path: str | Path | None, store: str | None = None) -> None:
        self.path, self.store = path, store
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="indexer-search")
        self._index: Index | None = None

    def warm(self) -> None:
        """Open the index, load the model and the table (a first search pays otherwise);
        the second search loads the vectors a kept reader holds (see
        :meth:`indexer.state.store.Reader.refresh`)."""
        if self.store is None:  # a store read alone has no ledger to report on
            self.call(lambda index: index.status())
        for _ in range(2):
            self.call(lambda index: index.search("warm up", k=1))

    def search(self, query: str, options: Mapping[str, Any]) -> list[dict[str, object]]:
        """``Index.search(query, **options)``, each hit as ``search --json`` shows it."""
        return self.call(lambda index: self.render(index, query, options))

    @staticmethod
    def render(index: Index, query: str, options: Mapping[str, Any]) -> list[dict[str, object]]:
        """``index.search(query, **options)`` as ``search --json`` shows it (run it on the
        worker thread, see :meth:`submit`)."""
        return [hit.to_dict() for hit in index.search(query, **options)]

    def status(self) -> dict[str, object]:
        """``Index.status()`` as ``status --json`` shows it."""
        return self.call(lambda index: index.status()).to_dict()

    def call(self, work: Callable[[Index], T]) -> T:
        """Run ``work`` on the open index, on the worker thread."""
        return self.submit(work).result()

    def submit(self, work: Callable[[Index], T]) -> Future[T]:
        """Start ``work`` on the open index, on the worker thread (an event loop awaits the
        future instead of blocking a thread on it)."""
        return self._worker.submit(self._run, work)

    def _run(self, work: Callable[[Index], T]) -> T:
        if self._index is not None and not self._index.is_current():
            self._index.close()
            self._index = None
        if self._index is None:
            self._index = Index(self.path, store=self.store)
        return work(self._index)

    def close(self) -> None:
        """Close the index and stop the worker."""
        if self._index is not None:
            self._worker.submit(self._index.close).result()
        self._worker.shutdown()
