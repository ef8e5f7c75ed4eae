"""Watch mode: keep an index fresh by re-syncing its folders whenever files change.

The only module that touches ``watchfiles``. One watcher runs for the whole session, so
changes made while a sync is running are collected and trigger the next sync; the index's
own writes (its directory may sit inside a watched folder) and ``.git`` never do.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import watchfiles
from watchfiles._rust_notify import WatchfilesRustInternalError

from indexer.connectors.filesystem import ALWAYS_SKIPPED
from indexer.connectors.registry import scheme_of
from indexer.errors import ConfigError, IndexerError, LockedError, SourceError
from indexer.index import Index
from indexer.report import SyncReport

_MIN_TICK_MS = 50
_MAX_TICK_MS = 1000
_MIN_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class ChangeFilter:
    """Which file events may trigger a sync: not the index's own directory, not the folders
    the crawler never enters (``.git``, ``.indexer``, ``node_modules``...), not editor
    swap and backup files."""

    roots: tuple[Path, ...]
    index_dir: Path

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        """True when the event at ``path`` should trigger a sync."""
        target = Path(path)
        if target.is_relative_to(self.index_dir):
            return False
        root = next((r for r in self.roots if target.is_relative_to(r)), None)
        inside = target.relative_to(root).parts if root is not None else target.parts
        if any(part in ALWAYS_SKIPPED for part in inside):
            return False
        return _EDITOR_FILES(change, path)


_EDITOR_FILES = watchfiles.DefaultFilter(ignore_dirs=())
"""watchfiles' patterns for swap, backup and lock files, without its folder list."""


def watch(index: Index, paths: Sequence[str | Path], *, debounce_ms: int = 500,
          on_report: Callable[[SyncReport], None],
          on_error: Callable[[IndexerError], None] | None = None,
          stop: threading.Event | None = None, include: Sequence[str] = (),
          exclude: Sequence[str] = (), max_cost: float | None = None) -> None:
    """Sync ``paths`` into ``index`` now and again after every batch of file changes,
    until ``stop`` is set or the user presses Ctrl-C.

    ``paths`` are remembered as sources, with ``include``/``exclude``; no paths means
    every source the index already knows. Changes are grouped: a sync starts once
    they pause for 50 ms, and at most ``debounce_ms`` after the first one. Each sync's
    :class:`~indexer.report.SyncReport` goes to ``on_report``. While another run holds
    the index (:class:`~indexer.errors.LockedError`) the sync is retried every
    ``debounce_ms``; while batches are still in flight (a remote backend) the sources
    are synced again every ``poll_seconds`` of the index's config until they are done.
    Any other :class:`~indexer.errors.IndexerError` goes to ``on_error`` (raised if
    there is none) and watching goes on: the next change syncs everything again.

    Raises :class:`~indexer.errors.SourceError` when a folder is missing or there is
    nothing to watch, :class:`~indexer.errors.ConfigError` for a negative debounce.
    """
    if debounce_ms < 0:
        raise ConfigError(f"the debounce must be 0 ms or more, not {debounce_ms}")
    roots = _roots(index, paths)
    tick_ms = min(max(debounce_ms, _MIN_TICK_MS), _MAX_TICK_MS)
    retry_seconds = debounce_ms / 1000
    poll_seconds = max(index.config.poll_seconds, _MIN_POLL_SECONDS)
    changes = _changes(roots, ChangeFilter(roots, index.path.resolve()), debounce_ms, tick_ms,
                       stop)
    due: float | None = time.monotonic()
    with contextlib.suppress(KeyboardInterrupt), contextlib.closing(changes):
        for batch in changes:
            now = time.monotonic()
            if batch:
                due = now
            if due is None or now < due or (stop is not None and stop.is_set()):
                continue
            try:
                report = index.sync(paths, include, exclude, max_cost=max_cost)
            except LockedError:
                due = time.monotonic() + retry_seconds
                continue
            except IndexerError as exc:
                due = None
                if on_error is None:
                    raise
                on_error(exc)
                continue
            due = time.monotonic() + poll_seconds if _unfinished(report) else None
            on_report(report)


def _changes(roots: tuple[Path, ...], keep: ChangeFilter, debounce_ms: int, tick_ms: int,
             stop: threading.Event | None
             ) -> Generator[set[tuple[watchfiles.Change, str]], None, None]:
    """watchfiles' batches of changes, empty ones on each tick.

    watchfiles cannot name a path that is not valid UTF-8: an event on ``caf\\xe9.md``
    raises and ends its watcher. That event becomes a batch that triggers a sync (which
    reads the folder itself), and a new watcher takes over.
    """
    while True:
        changes = watchfiles.watch(*roots, watch_filter=keep, debounce=debounce_ms,
                                   stop_event=stop, rust_timeout=tick_ms, yield_on_timeout=True)
        try:
            with contextlib.closing(changes):
                yield from changes
            return
        except WatchfilesRustInternalError as exc:
            if "decode path" not in str(exc):
                raise
            yield {(watchfiles.Change.modified, str(roots[0]))}


def _roots(index: Index, paths: Sequence[str | Path]) -> tuple[Path, ...]:
    """The folders to watch: ``paths``, or every folder source the index knows (a git
    repository, a web site or a bucket sends no file events: each sync covers it, and a
    schedule keeps it fresh)."""
    wanted = [Path(p) for p in paths] or [Path(s.path) for s in index.config.sources
                                          if scheme_of(s.path) == "file"]
    if not wanted:
        raise SourceError("nothing to watch: watch follows folders (give one, e.g. `indexer "
                          "watch ./docs`); keep git, web and S3 sources fresh with a "
                          "scheduled `indexer sync` (see the README)")
    for path in wanted:
        if not path.exists():
            raise SourceError(f"source {path} does not exist; check the path")
    return tuple(p.resolve() for p in wanted)


def _unfinished(report: SyncReport) -> bool:
    """True when batches are still running, or chunks wait for a later wave."""
    return report.exit_code == 3
