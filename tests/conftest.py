"""Shared test setup: isolate every index and the model cache from the user's own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.fixture import Emulator, run_emulator
from support import open_index, store_rows

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session", autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    cache = os.environ.get("INDEXER_CACHE_DIR") or str(tmp_path_factory.mktemp("model-cache"))
    saved = {k: os.environ.get(k) for k in ("INDEXER_CACHE_DIR", "INDEXER_DIR", "OPENAI_API_KEY")}
    os.environ["INDEXER_CACHE_DIR"] = cache
    os.environ.pop("INDEXER_DIR", None)
    os.environ.pop("OPENAI_API_KEY", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    """A private copy of the example docs folder."""
    target = tmp_path / "docs"
    shutil.copytree(EXAMPLES / "docs", target)
    return target


@pytest.fixture()
def emu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The OpenAI emulator in its own process, with an API key set for the index."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with run_emulator(tmp_path / "emu") as emulator:
        yield emulator


@pytest.fixture()
def clean(docs: Path, tmp_path: Path, emu: Emulator) -> dict[str, tuple[object, ...]]:
    """The store a fault-free run builds (vectors are a pure function of the text)."""
    with open_index(tmp_path / "clean", emu) as index:
        report = index.sync([docs])
    assert report.complete and report.embedded > 0 and not report.errors
    emu.control("POST", "config", {})  # still alive
    return store_rows(tmp_path / "clean")
