"""The command line as a user runs it: the README quickstart, JSON output, exit codes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_block(heading: str) -> list[str]:
    """The commands of the first fenced block under ``heading`` in README.md."""
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    block = re.search(r"```(?:\w+)?\n(.*?)```", section, re.S)
    assert block, f"no code block under {heading}"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines()
            if line.strip() and not line.startswith("#")]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "indexer", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=600)


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


@pytest.mark.slow
def test_readme_quickstart_finds_the_known_passage(workdir: Path) -> None:
    commands = [c for c in readme_block("## Quickstart") if c.startswith("indexer ")]
    assert [c.split()[1] for c in commands] == ["sync", "search"]
    for command in commands:
        args = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', command)[1:]]
        result = run(args, workdir)
        assert result.returncode == 0, result.stderr
    assert "batches.md" in result.stdout
    query = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', commands[-1])][2]
    result = run(["search", query, "-k", "3", "--json"], workdir)
    hits = json.loads(result.stdout)
    assert any(h["places"][0]["uri"].endswith("guides/batches.md")
               and "indexer cancel" in h["text"] for h in hits)


@pytest.mark.slow
def test_sync_json_status_and_errors(workdir: Path) -> None:
    result = run(["sync", "examples/docs", "--json"], workdir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["new"] == 7 and report["complete"] is True

    status = json.loads(run(["status", "--json"], workdir).stdout)
    assert status["documents"] == 7 and status["dimensions"] == 384
    assert (workdir / status["store"] / "chunks.lance").is_dir()  # what LanceDB opens

    missing = run(["sync", "no/such/folder"], workdir)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    empty = run(["--index", "elsewhere", "search", "anything"], workdir)
    assert empty.returncode == 1 and "indexer sync" in empty.stderr


@pytest.mark.slow
def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys; from indexer.cli import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = {'lancedb', 'openai', 'pypdf', 'onnxruntime', 'pyarrow', 'tokenizers'}\n"
            "print(sorted(heavy & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], text=True, capture_output=True)
    assert result.stdout.strip().endswith("[]"), result.stdout


@pytest.mark.slow
def test_search_where_and_hybrid(workdir: Path) -> None:
    assert run(["sync", "examples/docs"], workdir).returncode == 0
    result = run(["search", "price of embeddings", "--where", "uri LIKE '%.pdf'", "--json"],
                 workdir)
    hits = json.loads(result.stdout)
    assert hits and all(h["places"][0]["uri"].endswith("pricing.pdf") for h in hits)
    assert hits[0]["places"][0]["page"] in (1, 2)
    hybrid = json.loads(run(["search", "indexer cancel", "--hybrid", "-k", "2", "--json"],
                            workdir).stdout)
    assert hybrid[0]["places"][0]["uri"].endswith("guides/batches.md")
    bad = run(["search", "x", "--where", "no_such_column = 1"], workdir)
    assert bad.returncode == 1 and "--where" in bad.stderr


@pytest.mark.slow
def test_the_example_script_runs(workdir: Path) -> None:
    result = subprocess.run([sys.executable, "examples/quickstart.py"], cwd=workdir,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "indexed 7 new or changed files" in result.stdout
    assert "batches.md · Working with batches › Cancelling a batch" in result.stdout
