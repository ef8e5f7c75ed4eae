"""Everything drawn on the terminal: the progress display on stderr, tables and summaries
on stdout.

Piped output (stdout not a terminal) is never wrapped: each line is as long as its text,
so a path is never cut in two.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from indexer.plain import hits_text, passage_text, place_text, short_path
from indexer.records import SearchHit, Skip
from indexer.report import (
    FileCounts,
    IndexStatus,
    Plan,
    RemovedSource,
    SourceInfo,
    SyncReport,
    skip_kinds,
)

if TYPE_CHECKING:
    from indexer.errors import Interrupted
    from indexer.state.doctor import Checkup


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal:  # piped: never wrap, never cut a line to a width
        console = Console(stderr=stderr, soft_wrap=True, width=100_000)
    return console


out = _console()
err = _console(stderr=True)


class _Rate(ProgressColumn):
    """Units per second."""

    def render(self, task: Task) -> Text:
        """The task's speed, once known."""
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f}/s" if speed else "", style="cyan")


class _Display(Progress):
    """Rich's progress table with one status line under it (what the run waits on)."""

    note = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        """The bars, then the status line."""
        yield self.make_tasks_table(self.tasks)
        if self.note:
            yield Text(self.note, style="dim", overflow="ellipsis", no_wrap=True)


class BarProgress:
    """A :class:`indexer.progress.Progress` drawn on stderr: a bar per stage (a sync's
    embedding is one stage: chunks done of the run's total, rate, time left) and a status
    line for what it waits on. Nothing is drawn unless ``enabled`` and stderr is a
    terminal."""

    def __init__(self, enabled: bool = True) -> None:
        self._bars = _Display(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), _Rate(), TimeElapsedColumn(), TextColumn("left"),
            TimeRemainingColumn(), console=err, transient=False,
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

    def note(self, text: str) -> None:
        """Show ``text`` on the status line under the bars."""
        self._bars.note = text
        self._bars.refresh()

    def close(self) -> None:
        """Stop drawing."""
        self._bars.note = ""
        self._bars.stop()


def show_interrupted(stop: Interrupted | None) -> None:
    """What a sync stopped by Ctrl-C kept, and how to go on (on stderr)."""
    if stop is None or not stop.kept:
        err.print("interrupted: nothing is lost; run `indexer sync` to resume",
                  highlight=False)
        return
    parts = [f"{stop.stored:,} in the store"] if stop.stored else []
    if stop.checkpointed:
        parts.append(f"{stop.checkpointed:,} in a checkpoint the next sync takes in")
    err.print(f"interrupted: kept {stop.kept:,} embedding(s) ({', '.join(parts)}); run "
              "`indexer sync` to resume: it embeds only the rest", highlight=False)


def _skips(skips: Sequence[Skip], verbose: bool, listed_by: str) -> None:
    """One line counting skips by kind, or with ``verbose`` every skip and its reason."""
    if verbose:
        for skip in skips:
            out.print(f"  skipped {short_path(skip.uri)}: {skip.reason}", style="yellow",
                      highlight=False)
        return
    if skips:
        kinds = ", ".join(f"{n} {kind}" for kind, n in skip_kinds(skips))
        out.print(f"{len(skips)} skipped: {kinds}; {listed_by} lists them", style="yellow",
                  highlight=False)


def show_report(report: SyncReport, verbose: bool = False) -> None:
    """The end-of-sync summary: files by fate, chunks embedded, skips (counted by kind,
    or with ``verbose`` listed), time."""
    _files(report)
    billed = f" ({report.tokens} tokens billed)" if report.tokens else ""
    if report.batches_without_usage:
        billed = (f" (billed tokens unknown: {report.batches_without_usage} batch(es) reported "
                  "no usage)")
    resumed = (f", {report.resumed} kept from an interrupted run" if report.resumed else "")
    out.print(
        f"chunks: {report.chunks} in changed files, {report.reused} already embedded, "
        f"{report.embedded} embedded now{billed}{resumed}, {report.failed} failed"
    )
    _skips(report.skips, verbose, "`indexer status --skipped`")
    for error in report.errors:
        out.print(f"  {error}", style="red", highlight=False)
    for source in report.unreachable:
        out.print(f"  source not reached, nothing of it deleted: {source}", style="red",
                  highlight=False)
    for source in report.orphaned:
        out.print(f"  out of search, no longer in config.toml: {source} (`indexer sources`)",
                  style="yellow", highlight=False)
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


def show_plan(plan: Plan, verbose: bool = False) -> None:
    """What a sync would do and cost (skips counted by kind, or with ``verbose`` listed)."""
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
    _skips(plan.skips, verbose, "`indexer plan -v`")
    for source in plan.orphaned:
        out.print(f"  would leave search, no longer in config.toml: {source}", style="yellow",
                  highlight=False)


def show_checkup(checkup: Checkup, verbose: bool = False) -> None:
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
    """Search hits as a table on a terminal, or plain blocks when piped; the first line
    names the mode that ranked them. A document hit (``--per-doc``) shows its passages."""
    if not hits or not out.is_terminal:
        out.file.write(hits_text(hits))  # as written: no markup, no emoji codes
        return
    unit = "documents" if hits[0].document is not None else "passages"
    out.print(f"{len(hits)} {unit}, {hits[0].mode} search", highlight=False)
    table = Table(show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("where", overflow="fold")
    table.add_column("passage", ratio=1)
    for rank, hit in enumerate(hits, start=1):
        where = "\n".join(place_text(p) for p in hit.places[:3])
        if len(hit.places) > 3:
            where += f"\n(+{len(hit.places) - 3} more)"
        shown = "\n\n".join(passage_text(passage) for passage in (hit, *hit.more))
        table.add_row(str(rank), f"{hit.score:.3f}", Text(where), Text(shown))
    out.print(table)


def show_evaluation(figures: dict[str, dict[str, float]]) -> None:
    """One row per search mode, one column per measure."""
    measures = list(next(iter(figures.values()), {}))
    table = Table()
    table.add_column("mode")
    for name in measures:
        table.add_column(name.replace("ndcg", "nDCG").replace("recall", "Recall")
                         .replace("mrr", "MRR"), justify="right")
    for mode, values in figures.items():
        table.add_row(mode, *(f"{values[name]:.4f}" for name in measures))
    out.print(table)


def show_status(info: IndexStatus, verbose: bool = False) -> None:
    """The index's model, contents, tokens billed and cost, open jobs, and problems
    (counted by kind; listed with ``verbose`` or ``status --skipped``)."""
    rows = _status_rows(info)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        out.print(f"[bold]{name:<{width}}[/bold]  {escape(value)}", highlight=False)
    if info.jobs:
        jobs = Table(title="batches in flight" if info.remote else "open jobs")
        for name in ("job", "state", "batch", "progress", "tokens"):
            jobs.add_column(name)
        for job in info.jobs:
            jobs.add_row(job.label, job.remote_state or job.state, job.remote_id or "-",
                         f"{job.completed + job.failed}/{job.requests}", str(job.tokens))
        out.print(jobs)
    _skips(info.problems, verbose, "`indexer status --skipped`")


def show_problems(info: IndexStatus) -> None:
    """Every skipped or failed document and why, one a line."""
    for problem in info.problems:
        out.print(f"{short_path(problem.uri)}: {problem.reason}", highlight=False)
    if not info.problems:
        out.print("no document was skipped")


def _status_rows(info: IndexStatus) -> list[tuple[str, str]]:
    rows = [("index", info.path), ("store", info.store),
            ("model", f"{info.model} ({info.dimensions} dimensions, {info.backend} backend)")]
    rows += [("source", short_path(source)) for source in info.sources]
    rows += [("documents", f"{info.documents} indexed, {info.pending_documents} pending, "
                           f"{info.skipped_documents} skipped"),
             ("passages", f"{info.passages} embedded, {info.chunks_pending} waiting, "
                          f"{info.chunks_failed} failed"),
             ("open jobs", str(info.jobs_open))]
    if info.tokens_billed is None:
        rows.append(("tokens billed", f"unknown ({info.batches_without_usage} batch(es) "
                                      "reported no usage)"))
        rows.append(("cost", "unknown"))
    elif info.priced:
        rows.append(("tokens billed", f"{info.tokens_billed:,}"))
        rows.append(("cost", f"about ${info.cost or 0:.4f} at batch price"))
    else:
        rows.append(("tokens billed", "none"))
        rows.append(("cost", "none (embedded model)"))
    return rows


def show_sources(sources: Sequence[SourceInfo]) -> None:
    """The sources as a table, then each one's error or what to do about it."""
    if not sources:
        out.print("no sources: add one with `indexer sync FOLDER|URI`")
        return
    table = Table()
    for name in ("source", "kind", "last synced", "indexed", "pending", "skipped", "state"):
        table.add_column(name, overflow="fold",
                         justify="right" if name in ("indexed", "pending", "skipped") else "left")
    for info in sources:
        state = ("orphan" if not info.configured else "error" if info.error
                 else "never synced" if info.synced_at is None else "ok")
        table.add_row(short_path(info.source), info.kind, _when(info.synced_at),
                      str(info.documents), str(info.pending), str(info.skipped), state,
                      style="red" if state == "error" else "yellow" if state != "ok" else None)
    out.print(table)
    for info in sources:
        if info.configured and info.error:
            when = f" (at {_when(info.failed_at)})" if info.failed_at else ""
            out.print(f"{short_path(info.source)}: not reached{when}: {info.error}", style="red",
                      highlight=False)
        if info.advice:
            out.print(f"{short_path(info.source)}: {info.advice}", style="yellow", highlight=False)


def show_removed(removed: RemovedSource, verbose: bool = False) -> None:
    """What ``remove`` did."""
    where = "config.toml and " if removed.configured else ""
    state = "; its crawl state was deleted" if removed.state_deleted else ""
    out.print(f"removed {short_path(removed.source)} from {where}the index: "
              f"{removed.documents} document(s) left search{state}", highlight=False)


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(moment))


def _files(counts: FileCounts) -> None:
    out.print(
        f"files: {counts.new} new, {counts.changed} changed, {counts.unchanged} unchanged, "
        f"{counts.touched} touched, {counts.deleted} deleted, {counts.skipped} skipped"
    )
