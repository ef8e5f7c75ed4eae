"""The ``indexer`` command line: parse, make one library call, render.

Heavy libraries (LanceDB, the model runtime, pypdf, openai) load only inside the
commands that need them, so ``indexer --help`` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from indexer.errors import IndexerError


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except IndexerError as exc:
        raise click.ClickException(str(exc)) from exc


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _index(ctx: click.Context, backend: str | None = None, progress: Any = None) -> Any:
    from indexer.index import Index

    return Index(ctx.obj["index"], backend=backend, progress=progress)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="INDEXER_DIR", default=Path(".indexer"), show_default=True,
              help="Index directory (or set INDEXER_DIR).")
@click.version_option(package_name="batch-indexer")
@click.pass_context
def cli(ctx: click.Context, index_dir: Path) -> None:
    """Turn document folders into a local semantic search store."""
    ctx.obj = {"index": index_dir}


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option("--backend", type=click.Choice(["auto", "local", "openai"]), default=None,
              help="Embedding backend for a new index (default: openai if OPENAI_API_KEY "
                   "is set, else the embedded local model).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def sync(ctx: click.Context, paths: tuple[Path, ...], include: tuple[str, ...],
         exclude: tuple[str, ...], backend: str | None, as_json: bool) -> None:
    """Crawl PATHS (remembered as sources) or every known source, and update the store.

    Exit codes: 0 done, 1 error, 2 usage error, 3 batches still in flight.
    """
    from indexer.terminal import BarProgress

    bars = BarProgress(enabled=not as_json)
    try:
        with _errors(), _index(ctx, backend, bars) as index:
            report = index.sync(paths, include, exclude)
    finally:
        bars.close()
    if as_json:
        _emit(report.to_dict())
    else:
        from indexer.terminal import show_report

        show_report(report)
    if not report.complete:
        sys.exit(3)


@cli.command()
@click.argument("query")
@click.option("-k", "--limit", "k", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="How many passages to return.")
@click.option("--where", default=None,
              help="SQL filter on stored columns, e.g. \"uri LIKE '%/api/%'\".")
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON.")
@click.pass_context
def search(ctx: click.Context, query: str, k: int, where: str | None, as_json: bool) -> None:
    """Find the passages closest in meaning to QUERY."""
    with _errors(), _index(ctx) as index:
        hits = index.search(query, k=k, where=where)
    if as_json:
        _emit([{"custom_id": h.custom_id, "score": round(h.score, 4), "text": h.text,
                "places": [p.__dict__ for p in h.places]} for h in hits])
    else:
        from indexer.terminal import show_hits

        show_hits(hits)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print status as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show what the index holds: model, documents, passages, problems."""
    with _errors(), _index(ctx) as index:
        info = index.status()
    if as_json:
        _emit(info.to_dict())
    else:
        from indexer.terminal import show_status

        show_status(info)


main: Callable[..., Any] = cli
