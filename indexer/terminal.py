"""Everything drawn on the terminal: progress bars on stderr, tables and summaries on stdout."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from indexer.records import Place, SearchHit
from indexer.report import FileCounts, IndexStatus, Plan, SyncReport

if TYPE_CHECKING:
    from indexer.state.doctor import Checkup

out = Console()
err = Console(stderr=True)


class BarProgress:
    """A :class:`indexer.progress.Progress` drawn as rich progress bars on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self._bars = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=False,
            disable=not (enabled and err.is_terminal),
        )
        self._task: TaskID | None = None

    def stage(self, name: str, total: int | None = None) -> None:
        """Start a bar for the stage (completing the previous one)."""
        self.end()
        self._bars.start()
        self._task = self._bars.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        """Move the current bar."""
        if self._task is not None:
            self._bars.advance(self._task, n)

    def end(self) -> None:
        """Complete the current bar."""
        if self._task is not None:
            task = self._bars.tasks[-1]
            self._bars.update(self._task, total=task.completed)
            self._task = None

    def update(self, name: str, completed: int, total: int) -> None:
        """Move the current bar to an absolute position, starting one if needed."""
        if self._task is None:
            self.stage(name, total)
        if self._task is not None:
            self._bars.update(self._task, description=name, completed=completed, total=total)

    def close(self) -> None:
        """Stop drawing."""
        self._bars.stop()


def show_report(report: SyncReport) -> None:
    """The end-of-sync summary: files by fate, chunks embedded, skips, time."""
    _files(report)
    billed = f" ({report.tokens} tokens billed)" if report.tokens else ""
    if report.batches_without_usage:
        billed = (f" (billed tokens unknown: {report.batches_without_usage} batch(es) reported "
                  "no usage)")
    out.print(
        f"chunks: {report.chunks} in changed files, {report.reused} already embedded, "
        f"{report.embedded} embedded now{billed}, {report.failed} failed"
    )
    for skip in report.skips:
        out.print(f"  skipped {_short(skip.uri)}: {skip.reason}", style="yellow", highlight=False)
    for error in report.errors:
        out.print(f"  {error}", style="red", highlight=False)
    for source in report.unreachable:
        out.print(f"  source not reached, nothing of it deleted: {source}", style="red",
                  highlight=False)
    if report.swapped:
        out.print("rebuilt: the new table is live (`indexer gc` removes the old one)")
    if report.refused_cost:
        out.print(f"nothing submitted: estimated ${report.refused_cost:.4f} is over the cost cap")
    waiting = [f"{n} {what}" for n, what in (
        (report.unsubmitted, "batch job(s) waiting to submit"),
        (report.pending, "chunk(s) waiting")) if n]
    if report.in_flight:
        out.print(", ".join([f"{report.in_flight} batch job(s) in flight", *waiting])
                  + "; run `indexer sync` again later (or `--wait`)")
    elif report.stopped and waiting:
        out.print(f"nothing runs remotely; {', '.join(waiting)}: fix the error above, then "
                  "run `indexer sync` again")
    elif waiting:
        out.print(f"{', '.join(waiting)}; run `indexer sync` again later (or `--wait`)")
    if report.chunks_failed:
        out.print(f"{report.chunks_failed} chunk(s) stay failed for good: see `indexer status`;"
                  " `indexer retry` queues them again", style="yellow", highlight=False)
    out.print(f"done in {report.seconds:.1f}s")


def show_plan(plan: Plan) -> None:
    """What a sync would do and cost."""
    _files(plan)
    out.print(f"chunks: {plan.chunks} in new or changed files; {plan.chunks_to_embed} to embed "
              f"({plan.tokens} tokens) in {plan.shards} shard(s), {plan.waves} wave(s)")
    if plan.context_tokens:
        share = plan.context_tokens / max(plan.tokens, 1)
        out.print(f"heading context: {plan.context_tokens} of those tokens ({share:.0%}); "
                  "chunk_context = false in config.toml leaves it out")
    if not plan.priced:
        out.print(f"cost: none (embedded model {plan.model})")
    else:
        out.print(f"cost: about ${plan.batch_cost:.4f} at batch price "
                  f"(${plan.sync_cost:.4f} synchronous) with {plan.model}; "
                  f"budget {plan.budget} tokens in flight")
    for skip in plan.skips:
        out.print(f"  skip {_short(skip.uri)}: {skip.reason}", style="yellow", highlight=False)


def show_checkup(checkup: Checkup) -> None:
    """Doctor's findings, one line each, and a verdict."""
    for finding in checkup.findings:
        state = "repaired" if finding.repaired else "found"
        out.print(f"{finding.check}: {finding.count} {finding.message} ({state})",
                  style="green" if finding.repaired else "yellow", highlight=False)
    if not checkup.findings:
        out.print(f"healthy: {len(checkup.checks)} checks passed")
    elif not checkup.healthy:
        out.print("run `indexer doctor --repair` to mend what is safe")


def show_hits(hits: Sequence[SearchHit]) -> None:
    """Search hits as a table on a terminal, or plain blocks when piped."""
    if not hits:
        out.print("no matches")
        return
    if not out.is_terminal:
        for rank, hit in enumerate(hits, start=1):
            places = "; ".join(_place(p).replace("\n", " · ") for p in hit.places)
            out.print(f"{rank}. {hit.score:.3f}  {places}", highlight=False, soft_wrap=True)
            out.print(f"   {_snippet(hit.text)}\n", highlight=False, soft_wrap=True)
        return
    table = Table(show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("where", overflow="fold")
    table.add_column("passage", ratio=1)
    for rank, hit in enumerate(hits, start=1):
        where = "\n".join(_place(p) for p in hit.places[:3])
        if len(hit.places) > 3:
            where += f"\n(+{len(hit.places) - 3} more)"
        table.add_row(str(rank), f"{hit.score:.3f}", where, _snippet(hit.text))
    out.print(table)


def show_status(info: IndexStatus) -> None:
    """The index's model, contents and problems."""
    out.print(f"index: {info.path}")
    out.print(f"model: {info.model} ({info.dimensions} dimensions, {info.backend} backend)")
    for source in info.sources:
        out.print(f"source: {_short(source)}")
    out.print(f"documents: {info.documents} indexed, {info.pending_documents} pending, "
              f"{info.skipped_documents} skipped")
    out.print(f"passages: {info.passages} embedded, {info.chunks_pending} waiting, "
              f"{info.chunks_failed} failed; open jobs: {info.jobs_open}")
    if info.tokens_billed is None:
        out.print(f"billed: unknown ({info.batches_without_usage} batch(es) reported no "
                  "usage)")
    elif info.tokens_billed and info.priced:
        out.print(f"billed: {info.tokens_billed} tokens, about ${info.cost or 0:.4f}")
    if info.jobs:
        table = Table(title="batches in flight")
        for name in ("job", "state", "batch", "progress", "tokens"):
            table.add_column(name)
        for job in info.jobs:
            table.add_row(job.label, job.remote_state or job.state, job.remote_id or "-",
                          f"{job.completed + job.failed}/{job.requests}", str(job.tokens))
        out.print(table)
    for problem in info.problems:
        out.print(f"  {_short(problem.uri)}: {problem.reason}", style="yellow", highlight=False)


def _files(counts: FileCounts) -> None:
    out.print(
        f"files: {counts.new} new, {counts.changed} changed, {counts.unchanged} unchanged, "
        f"{counts.touched} touched, {counts.deleted} deleted, {counts.skipped} skipped"
    )


def _place(place: Place) -> str:
    text = _short(place.uri)
    if place.page is not None:
        text += f" p.{place.page}"
    elif place.line_start is not None:
        text += f":{place.line_start}-{place.line_end}"
    if place.heading:
        text += f"\n{place.heading}"
    return text


def _short(uri: str) -> str:
    if not uri.startswith("/"):
        return uri  # a file:// URI (a path that is not UTF-8) is shown whole
    try:
        relative = os.path.relpath(uri)
    except ValueError:
        return uri
    return uri if relative.startswith("../..") else relative


def _snippet(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
