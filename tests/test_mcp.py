"""``indexer mcp``: the index's search and status as MCP tools, driven over stdio by the
official SDK's own client, as an editor or coding agent does."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from indexer import Index
from indexer.cli import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp")
    docs = root / "docs"
    docs.mkdir()
    (docs / "cancel.md").write_text("# Cancelling\n\nTo cancel a batch, call the cancel "
                                    "endpoint with the batch id.\n")
    (docs / "garden.md").write_text("# Garden\n\nTomatoes need sun and water every day.\n")
    with Index(root / "idx", backend="local") as index:
        assert index.sync([docs]).complete
    return root / "idx"


async def _session(index_dir: Path, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "indexer", "--index", str(index_dir), "mcp"],
                                   env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        results: list[Any] = [{t.name: t.input_schema for t in tools.tools}]
        for name, arguments in calls:
            results.append(await session.call_tool(name, arguments))
        return results


def _cli_json(index_dir: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--index", str(index_dir), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_search_and_status_tools_answer_over_stdio_like_the_cli(index_dir: Path) -> None:
    tools, found, hybrid, status, bad = anyio.run(_session, index_dir, [
        ("search", {"query": "how do I stop a batch?", "k": 1}),
        ("search", {"query": "tomatoes", "k": 2, "mode": "hybrid",
                    "where": "uri LIKE '%garden%'"}),
        ("status", {}),
        ("search", {"query": "batch", "mode": "no-such-mode"}),
    ])
    assert {"search", "status"} <= set(tools)
    assert {"query", "k", "mode", "where"} <= set(tools["search"]["properties"])
    assert tools["search"]["required"] == ["query"]

    assert not found.is_error
    hits = found.structured_content["result"]
    assert hits == _cli_json(index_dir, "search", "how do I stop a batch?", "-k", "1", "--json")
    assert hits[0]["places"][0]["uri"].endswith("cancel.md")

    assert not hybrid.is_error
    hybrid_hits = hybrid.structured_content["result"]
    assert [h["places"][0]["uri"].rsplit("/", 1)[-1] for h in hybrid_hits] == ["garden.md"]

    assert not status.is_error
    assert status.structured_content["documents"] == 2
    assert status.structured_content["backend"] == "local"

    assert bad.is_error
    assert "unknown search mode 'no-such-mode'" in bad.content[0].text
