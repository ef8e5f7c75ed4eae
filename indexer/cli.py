"""The ``indexer`` command line: parse, make one library call, render.

Heavy libraries (LanceDB, the model runtime, pypdf, openai) load only inside the
commands that need them, so ``indexer --help`` starts fast.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from indexer.errors import IndexerError, LockedError
from indexer.search.modes import MODES

EXIT_LOCKED = 6
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


class _Backend(click.ParamType):
    """A backend name, checked against the registry (plugins included) only when given."""

    name = "backend"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        from indexer.backends import registry

        if not registry.known(value):
            self.fail(f"{value!r} is not one of {', '.join(registry.names())}", param, ctx)
        return str(value)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[auto|local|openai|PLUGIN]"


_BACKEND = _Backend()


class _Source(click.ParamType):
    """A source: a URI with a scheme (``git+https://…``, ``https://…``, ``s3://…``) as
    given, or a path that must exist."""

    name = "source"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str | Path:
        from indexer.connectors.registry import scheme_of

        if isinstance(value, Path) or scheme_of(str(value)) == "file":
            return click.Path(exists=True, path_type=Path).convert(value, param, ctx)
        return str(value)


_SOURCE = _Source()


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except LockedError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    except IndexerError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # the disk or the file system refused: one line, no traceback
        where = f" {exc.filename}" if exc.filename else ""
        raise click.ClickException(f"cannot use{where}: {exc.strerror or exc}") from exc


@contextmanager
def _second_interrupt_stops_at_once() -> Iterator[None]:
    """The first Ctrl-C stops the run cleanly (transactions roll back, what was embedded
    is kept); a second one ends the process at once, which every step also survives."""
    def first(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        raise KeyboardInterrupt

    try:
        before = signal.signal(signal.SIGINT, first)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _index_dir(ctx: click.Context, discover: bool = True) -> Path:
    """The index the command works on: --index (before or after the command name), else
    INDEXER_DIR, else (with ``discover``) the nearest .indexer folder here or in a parent
    (see :func:`indexer.index.default_path`), else ./.indexer."""
    from indexer.index import DEFAULT_DIR, ENV_DIR, default_path

    chosen = ctx.obj.get("index_dir") if ctx.obj else None
    if chosen:
        return Path(chosen)
    if discover:
        return default_path()
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def _quiet(ctx: click.Context) -> bool:
    return bool(ctx.obj and ctx.obj.get("quiet"))


def _say(ctx: click.Context, text: str) -> None:
    """Print a command's message on stdout, unless -q."""
    if not _quiet(ctx):
        click.echo(text)


def _verbose(ctx: click.Context) -> bool:
    return bool(ctx.obj and ctx.obj.get("verbose"))


def _index(ctx: click.Context, backend: str | None = None, progress: Any = None,
           base_url: str | None = None, store: str | None = None) -> Any:
    from indexer.index import Index

    return Index(_index_dir(ctx), backend=backend, base_url=base_url, progress=progress,
                 store=store)


_STORE_HELP = ("Read the search store at this object-storage URI (an index's store_uri, "
               "e.g. s3://bucket/prefix) without the index folder; credentials come from "
               "the environment (AWS_*).")


def _with_bars(ctx: click.Context, as_json: bool, backend: str | None, base_url: str | None,
               call: Callable[[Any], Any]) -> Any:
    """Run ``call(index)`` with one progress display on stderr (none with --json or -q,
    or when stderr is not a terminal)."""
    from indexer.terminal import BarProgress

    bars = BarProgress(enabled=not (as_json or _quiet(ctx)))
    try:
        with _errors(), _index(ctx, backend, bars, base_url) as index:
            return call(index)
    finally:
        bars.close()


def _show(ctx: click.Context, result: Any, as_json: bool, renderer: str) -> None:
    """Print ``result`` as JSON, or with the named renderer of :mod:`indexer.terminal`
    (nothing with -q)."""
    if as_json:
        _emit(result.to_dict())
    elif not _quiet(ctx):
        from indexer import terminal

        getattr(terminal, renderer)(result, verbose=_verbose(ctx))


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep a global option given after the command name (it wins over one given before)."""
    if value and param.name:
        ctx.ensure_object(dict)[param.name] = value
        if param.name == "index_dir":
            ctx.obj["index"] = Path(value)


_INDEX_HELP = ("Index directory. Default: INDEXER_DIR, else the nearest .indexer folder in "
               "the current folder or a parent, else ./.indexer (created by the first sync).")
_QUIET_HELP = "Print only errors (for scheduled runs)."
_VERBOSE_HELP = "Say more: list every skipped file."


def _global_options() -> list[click.Parameter]:
    """--index, -q and -v, accepted after any command name too."""
    return [
        click.Option(["--index", "index_dir"], type=click.Path(file_okay=False, path_type=Path),
                     expose_value=False, callback=_remember, help=_INDEX_HELP),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_remember,
                     help=_QUIET_HELP),
        click.Option(["-v", "--verbose"], is_flag=True, expose_value=False,
                     callback=_remember, help=_VERBOSE_HELP),
    ]


def _selection(command: Callable[..., None]) -> Callable[..., None]:
    """The options that choose a source's files: --include, --exclude, --follow-links
    (``sync``, ``plan`` and ``add`` take them alike)."""
    for option in reversed([
        click.option("--include", multiple=True,
                     help="Only files matching this glob (repeatable)."),
        click.option("--exclude", multiple=True,
                     help="Skip files matching this glob (repeatable)."),
        click.option("--follow-links", is_flag=True,
                     help="Also index what symbolic links leading outside PATHS point to "
                          "(remembered with the source; by default such links are skipped)."),
    ]):
        command = option(command)
    return command


class _Commands(click.Group):
    """The command group; every command it holds takes the global options too, so
    ``indexer sync docs --index DIR`` means ``indexer --index DIR sync docs``."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register ``cmd`` with the global options appended to its own."""
        cmd.params.extend(_global_options())
        super().add_command(cmd, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="INDEXER_DIR", default=None, help=_INDEX_HELP)
@click.option("-q", "--quiet", is_flag=True, help=_QUIET_HELP)
@click.option("-v", "--verbose", is_flag=True, help=_VERBOSE_HELP)
@click.version_option(package_name="batch-indexer")
@click.pass_context
def cli(ctx: click.Context, index_dir: Path | None, quiet: bool, verbose: bool) -> None:
    """Turn document folders into a local semantic search store.

    The index is found like git finds .git: --index (before or after the command),
    else INDEXER_DIR, else the nearest .indexer folder here or in a parent folder,
    else a new ./.indexer.
    """
    from indexer.index import default_path

    # "index" is the directory resolved now, for commands that read it directly
    ctx.ensure_object(dict).update({"index_dir": index_dir, "quiet": quiet,
                                    "verbose": verbose, "index": index_dir or default_path()})


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--backend", type=_BACKEND, default=None)
@click.option("--model", default=None, help="OpenAI embedding model.")
@click.option("--dimensions", type=click.IntRange(min=1), default=None)
@click.option("--chunk-tokens", type=click.IntRange(min=16), default=None)
@click.option("--token-budget", type=click.IntRange(min=1), default=None)
@click.option("--max-cost", type=click.FloatRange(min=0), default=None)
@click.pass_context
def init(ctx: click.Context, paths: tuple[Path, ...], **settings: Any) -> None:
    """Write a commented config.toml for a new index (PATHS become its sources)."""
    from indexer import config

    with _errors():
        directory = _index_dir(ctx, discover=False)  # like `git init`: here
        path = config.write_template(directory, settings)
        for source in paths:
            config.remember_source(directory, config.SourceConfig(
                source.resolve().as_posix()))
    _say(ctx, f"wrote {path}; edit it, then run `indexer sync`")


@cli.command()
@click.argument("paths", nargs=-1, type=_SOURCE)
@_selection
@click.option("--backend", type=_BACKEND, default=None,
              help="Embedding backend for a new index (default: openai if OPENAI_API_KEY "
                   "is set, else the embedded local model).")
@click.option("--base-url", envvar="OPENAI_BASE_URL", default=None,
              help="OpenAI-compatible API base URL (or set OPENAI_BASE_URL).")
@click.option("--wait", is_flag=True, help="Poll until every batch is done.")
@click.option("--max-cost", type=click.FloatRange(min=0), default=None,
              help="Refuse to submit if the estimated batch cost (dollars) is above this.")
@click.option("--dry-run", is_flag=True, help="Only show the plan (same as `indexer plan`).")
@click.option("--rebuild", is_flag=True,
              help="Build the configured model's table beside the live one; swap it in when "
                   "complete (after a model or dimension change).")
@click.option("--wait-lock", is_flag=True,
              help="If another run holds the index, wait for it instead of exiting with 6.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def sync(ctx: click.Context, paths: tuple[str | Path, ...], include: tuple[str, ...],
         exclude: tuple[str, ...], follow_links: bool, backend: str | None,
         base_url: str | None, wait: bool,
         max_cost: float | None, dry_run: bool, rebuild: bool, wait_lock: bool,
         as_json: bool) -> None:
    """Crawl PATHS (folders or source URIs, remembered) or every known source; update the store.

    \b
    Exit codes:
      0  the store reflects the sources
      1  error, or a source could not be reached (nothing of it is deleted), with
         nothing running remotely (every step is recorded: run again once fixed)
      2  usage error
      3  batches run remotely, or chunks wait for budget: run sync again later
      4  done, but some chunks stay failed for good (`indexer status`, `indexer retry`)
      5  refused: the estimated cost is over --max-cost (nothing was submitted)
      6  another run holds the index (see --wait-lock)
      130  stopped by Ctrl-C: what was embedded is kept, run sync again to resume
           (a second Ctrl-C stops at once)

    Quiet runs (cron, systemd timers): -q prints only errors; -v lists skipped files.
    """
    if dry_run:
        ctx.invoke(plan, paths=paths, include=include, exclude=exclude,
                   follow_links=follow_links, backend=backend, base_url=base_url,
                   as_json=as_json)
        return
    try:
        with _second_interrupt_stops_at_once():
            report = _with_bars(ctx, as_json, backend, base_url, lambda index: index.sync(
                paths, include, exclude, wait=wait, max_cost=max_cost, rebuild=rebuild,
                wait_lock=wait_lock, follow_links=follow_links))
    except KeyboardInterrupt as stop:
        from indexer.errors import Interrupted
        from indexer.terminal import show_interrupted

        show_interrupted(stop if isinstance(stop, Interrupted) else None)
        sys.exit(EXIT_INTERRUPTED)
    _show(ctx, report, as_json, "show_report")
    if _quiet(ctx) and not as_json:
        for problem in [*report.errors, *report.unreachable]:
            click.echo(f"Error: {problem}", err=True)
        if report.chunks_failed:
            click.echo(f"Error: {report.chunks_failed} chunk(s) stay failed for good: see "
                       "`indexer status --skipped`; `indexer retry` queues them again",
                       err=True)
    elif report.exit_code == 1:
        for problem in [report.stopped] if report.stopped else report.unreachable:
            click.echo(f"Error: {problem}", err=True)
    if report.exit_code:
        sys.exit(report.exit_code)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=_SOURCE)
@_selection
@click.pass_context
def add(ctx: click.Context, paths: tuple[str | Path, ...], include: tuple[str, ...],
        exclude: tuple[str, ...], follow_links: bool) -> None:
    """Remember PATHS as sources (with their globs) without syncing them yet."""
    with _errors(), _index(ctx) as index:
        sources = index.add(paths, include, exclude, follow_links)
    _say(ctx, "sources:\n" + "\n".join(f"  {s}" for s in sources))


@cli.command()
@click.argument("paths", nargs=-1, type=_SOURCE)
@_selection
@click.option("--backend", type=_BACKEND, default=None,
              help="Embedding backend for a new index.")
@click.option("--base-url", envvar="OPENAI_BASE_URL", default=None,
              help="OpenAI-compatible API base URL (or set OPENAI_BASE_URL).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def plan(ctx: click.Context, paths: tuple[str | Path, ...], include: tuple[str, ...],
         exclude: tuple[str, ...], follow_links: bool, backend: str | None,
         base_url: str | None, as_json: bool) -> None:
    """Show what a sync would do and cost, without spending anything."""
    result = _with_bars(ctx, as_json, backend, base_url,
                        lambda index: index.plan(paths, include, exclude, follow_links))
    _show(ctx, result, as_json, "show_plan")


@cli.command()
@click.argument("query")
@click.option("-k", "--limit", "k", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="How many passages (with --per-doc: documents) to return.")
@click.option("--mode", type=click.Choice(list(MODES)), default=None,
              help="How to rank: meaning fused with keyword matches (hybrid, the default "
                   "once the full-text index exists), meaning only (vector), or keyword "
                   "matches only (keyword).")
@click.option("--hybrid", is_flag=True, help="Same as --mode hybrid.")
@click.option("--per-doc", is_flag=True,
              help="Return each document once, with its best passages.")
@click.option("--passages", type=click.IntRange(1, 20), default=3, show_default=True,
              help="With --per-doc: the best passages shown per document.")
@click.option("--context", type=click.IntRange(0, 20), default=0, show_default=True,
              help="Merge N neighbouring passages on each side into each shown passage.")
@click.option("--source", default=None,
              help="Only documents of this source (a folder or URI given to sync).")
@click.option("--path", "path_glob", default=None, metavar="GLOB",
              help="Only documents whose path matches GLOB ('*.md', 'guides/**', "
                   "'/abs/dir/'): * and ? stay within a folder, ** crosses folders.")
@click.option("--where", default=None,
              help="SQL filter on stored columns (uri, heading, page, line_start, line_end, "
                   "text, context), e.g. \"uri LIKE '%/api/%'\". One expression: no "
                   "comments, ';', backslashes or placeholders.")
@click.option("--json", "as_json", is_flag=True,
              help="Print hits as JSON: mode, fused score and each half's rank and score.")
@click.option("--store", "store_uri", default=None, metavar="URI", help=_STORE_HELP)
@click.pass_context
def search(ctx: click.Context, query: str, k: int, mode: str | None, hybrid: bool,
           per_doc: bool, passages: int, context: int, source: str | None,
           path_glob: str | None, where: str | None, as_json: bool,
           store_uri: str | None) -> None:
    """Find the passages that best answer QUERY.

    Filters (--where, --source, --path) apply before ranking, so a narrow filter still
    returns -k hits when that many match.

    \b
    Exit codes (like grep):
      0  something matched
      1  nothing matched, or the index cannot be searched, or the --where filter is
         malformed or fails to run (the message says why)
      2  usage error
    """
    with _errors(), _index(ctx, store=store_uri) as index:
        hits = index.search(query, k=k, where=where, hybrid=hybrid, mode=mode,
                            per_doc=per_doc, passages=passages, context=context,
                            source=source, path=path_glob)
    from indexer import plain

    if as_json:
        _emit([hit.to_dict() for hit in hits])
    elif plain.piped():
        click.echo(plain.hits_text(hits), nl=False)
    else:
        from indexer.terminal import show_hits

        show_hits(hits)
    _finish(ctx, 0 if hits else 1)


@cli.command(name="eval")
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Queries as JSON lines: {\"_id\": ..., \"text\": ...}.")
@click.option("--qrels", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Judgments: a BEIR (query-id corpus-id score) or TREC "
                                  "qrels TSV; documents named by URI or file stem.")
@click.option("--modes", default=None, metavar="MODE,...",
              help=f"Modes to compare (default: all of {', '.join(MODES)}).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def evaluate(ctx: click.Context, queries: Path, qrels: Path, modes: str | None,
             as_json: bool) -> None:
    """Measure search on judged queries: nDCG@10, Recall@10, Recall@100 and MRR@10 for
    each mode, to compare chunk sizes, models and modes on your own judgments."""
    chosen = [m.strip() for m in (modes or "").split(",") if m.strip()]
    with _errors(), _index(ctx) as index:
        figures = index.evaluate(queries, qrels, chosen)
    if as_json:
        _emit(figures)
    else:
        from indexer.terminal import show_evaluation

        show_evaluation(figures)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback requires --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port; the address is printed on stderr).")
@click.option("--token", envvar="INDEXER_TOKEN", default=None,
              help="Bearer token every request must carry (or set INDEXER_TOKEN).")
@click.option("--store", "store_uri", default=None, metavar="URI", help=_STORE_HELP)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, token: str | None,
          store_uri: str | None) -> None:
    """Answer searches over HTTP with JSON, the model and the table kept warm.

    GET /search?q=...&k=...&mode=...&where=... answers what `search --json` prints;
    GET /status, GET /healthz; the API is described at /openapi.json and /docs.
    Searches see each sync once it is published, even one run by another process.
    """
    from indexer.serve.web import serve as run_server

    def ready(url: str) -> None:
        click.echo(f"serving {store_uri or ctx.obj['index']} on {url} (API docs: {url}/docs)"
                   + ("; requests need the bearer token" if token else ""), err=True)

    with _errors():
        run_server(ctx.obj["index"], host, port, token, ready, store=store_uri)


@cli.command()
@click.option("--store", "store_uri", default=None, metavar="URI", help=_STORE_HELP)
@click.pass_context
def mcp(ctx: click.Context, store_uri: str | None) -> None:
    """Serve the index to coding agents and editors as MCP tools over stdio.

    Tools: `search` (query, k, mode, where, ...) and `status`. Configure your client to
    run `indexer --index PATH mcp`.
    """
    from indexer.serve.tools import run

    with _errors():
        run(ctx.obj["index"], store=store_uri)


@cli.command()
@click.option("--skipped", is_flag=True,
              help="List every skipped or failed document with its reason (by default "
                   "they are counted by reason).")
@click.option("--json", "as_json", is_flag=True, help="Print status as JSON.")
@click.pass_context
def status(ctx: click.Context, skipped: bool, as_json: bool) -> None:
    """Show what the index holds: model, documents, passages, tokens billed and cost,
    open jobs, problems."""
    with _errors(), _index(ctx) as index:
        info = index.status()
    if skipped and not as_json:
        from indexer.terminal import show_problems

        show_problems(info)
    else:
        _show(ctx, info, as_json, "show_status")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option("--debounce", "debounce_ms", type=click.IntRange(min=0), default=500,
              show_default=True, help="Milliseconds to gather changes before a sync.")
@click.option("--max-cost", type=click.FloatRange(min=0), default=None,
              help="Refuse to submit a sync estimated above this many dollars.")
@click.option("--json", "as_json", is_flag=True, help="Print each report as one JSON line.")
@click.pass_context
def watch(ctx: click.Context, paths: tuple[Path, ...], include: tuple[str, ...],
          exclude: tuple[str, ...], debounce_ms: int, max_cost: float | None,
          as_json: bool) -> None:
    """Sync PATHS (or every known source) now and again whenever files change (Ctrl-C stops).

    Errors are shown and watching goes on; while another run holds the index, the sync
    waits for it.
    """
    from indexer.terminal import err, show_report
    from indexer.watcher import watch as watch_paths

    first = [True]

    def on_report(report: Any) -> None:
        quiet = not (report.new or report.changed or report.deleted or report.touched
                     or report.embedded or report.errors or report.in_flight)
        if quiet and not first[0]:
            return  # an event that changed nothing indexable (a hidden or ignored file)
        first[0] = False
        if as_json:
            click.echo(json.dumps(report.to_dict(), ensure_ascii=False, default=str))
        elif not _quiet(ctx):
            show_report(report, verbose=_verbose(ctx))

    def on_error(exc: IndexerError) -> None:
        err.print(f"Error: {exc}", style="red", highlight=False)

    if not _quiet(ctx):
        err.print("watching for changes; Ctrl-C to stop")
    with _errors(), _index(ctx) as index:
        watch_paths(index, paths, debounce_ms=debounce_ms, on_report=on_report,
                    on_error=on_error, include=include, exclude=exclude, max_cost=max_cost)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """List the sources: kind, last sync, documents, errors, and orphans (sources no
    longer in config.toml whose documents the index still holds)."""
    with _errors(), _index(ctx) as index:
        found = index.sources()
    if as_json:
        _emit([source.to_dict() for source in found])
    else:
        from indexer.terminal import show_sources

        show_sources(found)


@cli.command()
@click.argument("source")
@click.option("--wait-lock", is_flag=True,
              help="If another run holds the index, wait for it instead of exiting with 6.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
@click.pass_context
def remove(ctx: click.Context, source: str, wait_lock: bool, as_json: bool) -> None:
    """Forget SOURCE (as `indexer sources` names it): out of config.toml, its documents
    out of search now, its crawl state deleted."""
    with _errors(), _index(ctx) as index:
        removed = index.remove(source, wait_lock=wait_lock)
    _show(ctx, removed, as_json, "show_removed")


@cli.command()
@click.pass_context
def cancel(ctx: click.Context) -> None:
    """Cancel batches in flight on a remote service; the next sync ingests what they
    finished."""
    with _errors(), _index(ctx) as index:
        count = index.cancel()
        remote = index.remote
    if not remote:
        _say(ctx, "nothing to cancel: the embedded model runs no batch outside a sync "
                  "(Ctrl-C stops a sync and keeps what it embedded)")
    else:
        _say(ctx, f"asked {count} batch(es) to cancel; run `indexer sync` to collect what "
                  "they finished (cancelling can take up to 10 minutes)")


@cli.command()
@click.option("--repair", is_flag=True, help="Mend what can be mended without spending.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def doctor(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Check that the ledger and the store agree (exit 1 if something is wrong)."""
    with _errors(), _index(ctx) as index:
        checkup = index.doctor(repair=repair)
    if as_json:
        _emit({"healthy": checkup.healthy, "checks": checkup.checks,
               "findings": [f.__dict__ for f in checkup.findings]})
    else:
        from indexer.terminal import show_checkup

        show_checkup(checkup)
    if not checkup.healthy:
        sys.exit(1)


@cli.command()
@click.pass_context
def retry(ctx: click.Context) -> None:
    """Queue chunks that failed for good again (the next sync embeds them)."""
    with _errors(), _index(ctx) as index:
        count = index.retry()
    _say(ctx, f"queued {count} failed chunk(s) again; run `indexer sync` to embed them")


@cli.command()
@click.pass_context
def gc(ctx: click.Context) -> None:
    """Delete batch files, local and remote, that no open job needs."""
    with _errors(), _index(ctx) as index:
        count = index.gc()
    _say(ctx, f"deleted {count} file(s)")


def _finish(ctx: click.Context, code: int) -> None:
    """End a command that wrote nothing but its output with exit status ``code``. In the
    command line's own process (:func:`main`) the process ends at once once the output
    is flushed: tearing down the native libraries a search loaded (Lance's runtime,
    onnxruntime, Arrow) and every module would cost more CPU than the search."""
    if not (ctx.obj and ctx.obj.get(_OWN_PROCESS)):
        if code:
            sys.exit(code)
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the reader went away (a closed pipe), as click reports it
        code = code or 1
    os._exit(code)


_OWN_PROCESS = "own_process"


def main() -> None:
    """The ``indexer`` command in a process of its own (the console script, ``python -m
    indexer``). numpy's BLAS runs on this thread only: no array here is large enough to
    gain from its threads, and starting them costs more than a search's arithmetic."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    cli.main(obj={_OWN_PROCESS: True})
