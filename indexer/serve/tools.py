"""``indexer mcp``: the index as Model Context Protocol tools over stdio, and the only
module that imports the MCP SDK.

Two tools: ``search`` (the query plus every parameter of :meth:`Index.search`: ``k``,
``mode``, ``where``, …) answering the array ``search --json`` prints, and ``status``
answering ``status --json``. Editors and coding agents start ``indexer mcp`` and talk to
it on its stdin and stdout; nothing else may be written to stdout.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from indexer.errors import IndexerError
from indexer.index import Index
from indexer.search.modes import MODES
from indexer.serve.searcher import QUERY, Searcher, parameters

INSTRUCTIONS = ("Semantic search over a local document index built by batch-indexer. "
                "Call `search` with a question or keywords; each hit has the passage text, "
                "a score (higher is better) and the places (file URI, heading, lines) it "
                "occurs. `status` says what the index holds.")


def create_server(searcher: Searcher) -> MCPServer:
    """The MCP server answering from ``searcher``."""
    server = MCPServer("batch-indexer", instructions=INSTRUCTIONS, log_level="WARNING")
    server.tool(name="search", description=_search_description())(_search_tool(searcher))

    @server.tool(name="status", description="What the index holds: its model, documents, "
                 "passages, pending work and problems (as `indexer status --json`).")
    def status() -> dict[str, Any]:
        with _refusals():
            return searcher.status()

    return server


def _search_tool(searcher: Searcher) -> Any:
    def search(**arguments: Any) -> list[dict[str, Any]]:
        query = arguments.pop(QUERY)
        with _refusals():
            return searcher.search(query, {k: v for k, v in arguments.items()
                                           if v is not None})

    keyword = inspect.Parameter.KEYWORD_ONLY
    search.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(QUERY, keyword, annotation=str)]
        + [inspect.Parameter(p.name, keyword, annotation=p.annotation, default=p.default)
           for p in parameters()],
        return_annotation=list[dict[str, Any]])
    return search


@contextmanager
def _refusals() -> Iterator[None]:
    """A library error reaches the client as the tool's error message (a bad mode or
    filter is the caller's to fix), without a traceback in the server's log."""
    try:
        yield
    except IndexerError as exc:
        raise ToolError(str(exc)) from None


def _search_description() -> str:
    modes = "; ".join(f"{m.name}: {m.summary}" for m in MODES.values())
    usage = inspect.getdoc(Index.search) or ""
    return (f"Find the passages of the indexed documents that best answer `query`, best "
            f"first, as JSON. Modes: {modes}.\n\n{usage}")


def run(path: str | Path | None, store: str | None = None) -> None:
    """Serve the index at ``path`` (or only its search store at the object-storage URI
    ``store``) over stdio until the client closes it."""
    searcher = Searcher(path, store)
    try:
        searcher.warm()
        create_server(searcher).run("stdio")
    finally:
        searcher.close()
