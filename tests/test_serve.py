"""``indexer serve``: search over HTTP on a real socket, with the model and table warm,
answering what ``search --json`` prints, following a sync run by another process, and
refusing requests without the token when one is set. And: a clean search writes
nothing on stderr."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from indexer import Index
from indexer.cli import cli

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    docs = root / "docs"
    docs.mkdir()
    (docs / "cancel.md").write_text("# Cancelling\n\nTo cancel a batch, call the cancel "
                                    "endpoint with the batch id.\n")
    (docs / "alpha.md").write_text("# Alpha\n\nAlpha release notes, first edition: the "
                                   "lighthouse keeper counts ships.\n")
    with Index(root / "idx", backend="local") as index:
        assert index.sync([docs]).complete
    return root / "idx"


@pytest.fixture(scope="module")
def server(index_dir: Path) -> Iterator[str]:
    """``indexer serve`` on every interface (so with a token), on a free port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "indexer", "--index", str(index_dir), "serve", "--host",
         "0.0.0.0", "--port", "0"], env={**os.environ, "INDEXER_TOKEN": TOKEN},
        stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    found = re.search(r"on http://0\.0\.0\.0:(\d+) ", line)
    assert found, line + process.stderr.read()
    try:
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(url: str, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def search(server: str, **params: object) -> Any:
    status, body = get(f"{server}/search?{urllib.parse.urlencode(params)}")
    assert status == 200, body
    return body


def cli_json(index_dir: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--index", str(index_dir), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.slow
def test_the_server_answers_what_the_cli_prints(server: str, index_dir: Path) -> None:
    assert get(f"{server}/healthz", token=None) == (200, {"status": "ok"})
    for params, args in [
        ({"q": "how do I stop a batch?", "k": 2}, ["-k", "2"]),
        ({"q": "ships", "k": 3, "mode": "hybrid", "where": "uri LIKE '%alpha%'"},
         ["-k", "3", "--mode", "hybrid", "--where", "uri LIKE '%alpha%'"]),
    ]:
        assert search(server, **params) == cli_json(index_dir, "search", str(params["q"]),
                                                    *args, "--json")
    assert get(f"{server}/status") == (200, cli_json(index_dir, "status", "--json"))

    status, body = get(f"{server}/search?q=batch&mode=nope")
    assert status == 400 and "unknown search mode 'nope'" in body["detail"]
    status, body = get(f"{server}/search?q=batch&k=many&per_doc=maybe")
    assert status == 422 and [e["loc"] for e in body["detail"]] == [["query", "k"],
                                                                     ["query", "per_doc"]]
    assert search(server, q="ships", k="1", per_doc="yes")[0]["document"].endswith("alpha.md")
    status, schema = get(f"{server}/openapi.json", token=None)
    assert status == 200
    names = {p["name"] for p in schema["paths"]["/search"]["get"]["parameters"]}
    assert {"q", "k", "mode", "where"} <= names


@pytest.mark.slow
def test_a_token_is_required_off_loopback(server: str, tmp_path: Path) -> None:
    refused = CliRunner().invoke(cli, ["--index", str(tmp_path / "none"), "serve", "--host",
                                       "0.0.0.0"], env={"INDEXER_TOKEN": ""})
    assert refused.exit_code == 1
    assert "give a token with --token or INDEXER_TOKEN" in refused.output
    assert not (tmp_path / "none").exists()
    for token in (None, "wrong"):
        for path in ("/search?q=batch", "/status"):
            status, body = get(server + path, token=token)
            assert status == 401, (path, token, body)
    assert get(f"{server}/search?q=batch")[0] == 200


@pytest.mark.slow
def test_answers_stay_consistent_during_a_sync_in_another_process(
        server: str, index_dir: Path) -> None:
    docs = index_dir.parent / "docs"
    query = {"q": "lighthouse keeper release notes", "k": 10}

    def texts() -> frozenset[str]:
        return frozenset(hit["text"] for hit in search(server, **query))

    before = texts()
    assert any("first edition" in text for text in before)
    (docs / "alpha.md").write_text("# Alpha\n\nAlpha release notes, second edition: the "
                                   "lighthouse keeper counts boats.\n")
    (docs / "beta.md").write_text("# Beta\n\nBeta release notes: the lighthouse keeper "
                                  "retires.\n")
    seen: list[frozenset[str]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            seen.append(texts())

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        synced = subprocess.run([sys.executable, "-m", "indexer", "--index", str(index_dir),
                                 "sync"], capture_output=True, text=True, timeout=300)
    finally:
        done.set()
        poller.join()
    assert synced.returncode == 0, synced.stderr
    after = texts()
    assert any("second edition" in text for text in after)
    assert any("retires" in text for text in after)
    assert not any("first edition" in text for text in after)
    assert len(seen) > 1 and set(seen) <= {before, after}  # never half of the sync
    assert after == frozenset(h["text"] for h in cli_json(index_dir, "search", query["q"],
                                                          "-k", "10", "--json"))


@pytest.mark.slow
def test_a_cli_hybrid_search_writes_nothing_on_stderr(index_dir: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "indexer", "--index", str(index_dir),
                             "search", "cancel a batch", "--mode", "hybrid", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    assert json.loads(result.stdout)
    assert result.stderr == ""


def test_api_searches_write_nothing_on_stderr(index_dir: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings(record=True) as caught, Index(index_dir) as index:
        warnings.simplefilter("default")
        for mode in ("vector", "hybrid"):
            assert index.search("cancel a batch", k=2, mode=mode)
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr().err == ""
