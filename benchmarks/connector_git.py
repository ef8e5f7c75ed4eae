"""Re-syncing a git source: a no-op re-sync and one after 1% of the files changed.

Builds a repository of N small Markdown files (default 1,000; texts from a small pool,
so the first sync embeds few distinct chunks), syncs it with the embedded model, then
times, both read in place (``git+file://…@main``) and through the clone cache
(``clone = true``: a shallow fetch from a bare copy each sync):

- a no-op re-sync (no new commit: one ``rev-parse`` or ``fetch``, no tree listed);
- a re-sync after a commit that edits 1% of the files (a tree diff, only those read);
- for scale, a full listing of the commit's tree (``scan``, as after a force-push).

CPU is this process's plus git's (children), in seconds; wall time is shown too.

    python benchmarks/connector_git.py [N]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer import Index, SyncReport
from indexer.config import Config, SourceConfig
from indexer.connectors.contract import ConnectorContext
from indexer.connectors.registry import connector_for
from indexer.state.layout import Layout

POOL = 40
T = TypeVar("T")
ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example.com",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.com",
       "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], env=ENV, check=True, capture_output=True)


def write(repo: Path, number: int, edit: int = 0) -> None:
    path = repo / f"section{number % 50:02d}" / f"page{number:05d}.md"
    path.parent.mkdir(exist_ok=True)
    topic = number % POOL
    path.write_text(f"# Page {topic}\n\nThis page explains topic number {topic} of the "
                    f"manual.{f' Revised for page {number}, round {edit}.' if edit else ''}\n")


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)


def measured(run: Callable[[], T]) -> tuple[T, float, float]:
    """``run()``'s result, wall seconds, and CPU seconds (this process and its children)."""
    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    wall, before = time.perf_counter(), cpu()
    result = run()
    return result, time.perf_counter() - wall, cpu() - before


def sync(index_dir: Path) -> SyncReport:
    with Index(index_dir) as index:
        return index.sync()


def bench(tmp: Path, n: int, label: str, uri: str, clone: bool, repo: Path,
          publish: Callable[[], None]) -> None:
    index_dir = tmp / f"idx-{label}"
    index_dir.mkdir()
    extra = "clone = true\n" if clone else ""
    (index_dir / "config.toml").write_text(
        f'[index]\nbackend = "local"\n\n[[sources]]\npath = "{uri}"\n{extra}')
    first, wall, cpu = measured(lambda: sync(index_dir))
    print(f"[{label}] first sync of {n} files: {wall:.2f}s wall, {cpu:.2f}s CPU "
          f"({first.new} new, {first.embedded} chunks embedded)")
    runs = [measured(lambda: sync(index_dir)) for _ in range(3)]
    assert all(r.embedded == 0 and r.new == r.changed == r.deleted == 0 for r, _, _ in runs)
    print(f"[{label}] no-op re-sync: best {min(w for _, w, _ in runs):.3f}s wall, "
          f"{min(c for _, _, c in runs):.3f}s CPU")
    changed = max(1, n // 100)
    for number in range(0, n, n // changed)[:changed]:
        write(repo, number, edit=1 + len(label))
    commit(repo, f"edit {changed} pages for {label}")
    publish()
    report, wall, cpu = measured(lambda: sync(index_dir))
    assert report.changed == changed, report
    print(f"[{label}] re-sync after {changed} of {n} files changed (1%): {wall:.3f}s wall, "
          f"{cpu:.3f}s CPU ({report.changed} changed, {report.embedded} chunks embedded)")
    context = ConnectorContext(Config(), (), Layout.source_state(index_dir, uri))
    source = connector_for(SourceConfig(uri, options={"clone": clone} if clone else {}),
                           context)
    listed, wall, cpu = measured(lambda: sum(1 for _ in source.scan()))
    steps = "fetch + listing" if clone else "listing"
    print(f"[{label}] full {steps} (scan) of {listed} files: {wall:.3f}s wall, "
          f"{cpu:.3f}s CPU")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        repo = tmp / "handbook"
        repo.mkdir()
        git(repo, "init", "--quiet", "-b", "main")
        for number in range(n):
            write(repo, number)
        commit(repo, "first")
        bench(tmp, n, "in place", f"git+file://{repo}@main", False, repo, lambda: None)
        bare = tmp / "remote.git"
        git(tmp, "clone", "--quiet", "--bare", str(repo), str(bare))
        bench(tmp, n, "clone", f"git+file://{bare}@main", True, repo,
              lambda: git(repo, "push", "--quiet", str(bare), "main"))


if __name__ == "__main__":
    main()
