"""The package as it installs: one top-level package, lazy imports, plugin backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from indexer import ConfigError, Index
from indexer.backends import registry

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env}, check=True)
    return done.stdout.strip()


@pytest.mark.slow
def test_the_wheel_installs_only_the_indexer_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, timeout=600,
                   capture_output=True)
    [wheel] = tmp_path.glob("batch_indexer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(
        (".dist-info", ".data"))}
    assert top == {"indexer"}
    assert "indexer/connectors/filesystem.py" in names
    assert "indexer/connectors/formats/pdf.py" in names
    assert "indexer/backends/local/assets/minilm/tokenizer.json" in names


@pytest.mark.slow
def test_importing_a_connector_loads_no_state_or_config_machinery() -> None:
    loaded = json.loads(run_python(
        "import json, sys, indexer.connectors.filesystem\n"
        "print(json.dumps([m for m in ('sqlite3', 'tomlkit', 'lancedb', 'openai', "
        "'indexer.state.ledger', 'indexer.index') if m in sys.modules]))"))
    assert loaded == []


@pytest.mark.slow
def test_the_public_names_load_on_first_use() -> None:
    out = run_python("import sys, indexer\n"
                     "print('indexer.index' in sys.modules, indexer.Index.__name__, "
                     "'indexer.index' in sys.modules)")
    assert out == "False Index True"


def _plugin(site: Path) -> None:
    """An installed distribution registering a backend under the entry point group."""
    package = site / "tiny_backend"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from indexer.backends.registry import BackendSpec\n"
        "SPEC = BackendSpec('tiny', 'the local model, registered by a plugin',\n"
        "                   'indexer.backends.local.backend:create', remote=False,\n"
        "                   priced=False, identity=('model_dir',),\n"
        "                   describe=lambda config: 'tiny')\n")
    info = site / "tiny_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[batch_indexer.backends]\ntiny = tiny_backend:SPEC\n")


@pytest.mark.slow
def test_a_backend_plugin_registers_through_entry_points(tmp_path: Path, docs: Path) -> None:
    _plugin(tmp_path / "site")
    code = (
        "import sys\n"
        "from indexer import Index\n"
        "from indexer.backends import registry\n"
        "print(','.join(registry.names()))\n"
        f"with Index({str(tmp_path / 'idx')!r}, backend='tiny') as index:\n"
        f"    report = index.sync([{str(docs)!r}])\n"
        "    print(report.embedded > 0, index.status().backend)\n")
    out = run_python(code, PYTHONPATH=str(tmp_path / "site"))
    assert out.splitlines() == ["auto,local,openai,tiny", "True tiny"]


def test_an_unknown_backend_lists_what_is_installed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="installed: local, openai"):
        registry.get("mistral")
    (tmp_path / "config.toml").write_text('[index]\nbackend = "mistral"\n')
    with pytest.raises(ConfigError, match="backend must be one of auto, local, openai"):
        Index(tmp_path)


def _connector_plugin(site: Path) -> None:
    """An installed connector for ``notes://FOLDER`` sources: one item per line of
    FOLDER/notes.txt, fingerprinted by its text, that reports changes since a cursor."""
    package = site / "notes_connector"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('''
import hashlib
from pathlib import Path
from indexer.connectors import formats
from indexer.connectors.contract import Changes
from indexer.connectors.registry import ConnectorSpec
from indexer.records import Document, SourceItem

SPEC = ConnectorSpec("notes", ("notes",), "notes_connector:create")


class Notes:
    def __init__(self, source, context):
        self.uri = source.path
        self.folder = Path(source.path.removeprefix("notes://"))

    def _log(self, what):
        with (self.folder / "calls.log").open("a") as log:
            log.write(what + "\\n")

    def _items(self):
        lines = (self.folder / "notes.txt").read_text().splitlines()
        return {f"{self.uri}#{n}": line for n, line in enumerate(lines)}

    def _item(self, uri, line):
        digest = hashlib.sha256(line.encode()).hexdigest()[:16]
        return SourceItem(uri, self.folder / "notes.txt", len(line), 0, "markdown", digest)

    def scan(self):
        self._log("scan")
        return iter([self._item(u, t) for u, t in self._items().items()])

    def load(self, item):
        return formats.document(item.uri, self._items()[item.uri].encode(), "markdown")

    def cursor(self):
        return (self.folder / "notes.txt").read_text()

    def changes(self, since):
        self._log("changes")
        before = {n: l for n, l in enumerate(since.splitlines())}
        now = self._items()
        found = tuple(self._item(u, t) for u, t in now.items()
                      if before.get(int(u.rsplit("#", 1)[1])) != t)
        gone = tuple(f"{self.uri}#{n}" for n in before if f"{self.uri}#{n}" not in now)
        return Changes(found, gone)


def create(source, context):
    return Notes(source, context)
''')
    info = site / "notes_connector-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: notes-connector\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[batch_indexer.connectors]\nnotes = notes_connector:SPEC\n")


@pytest.mark.slow
def test_a_connector_plugin_is_chosen_by_scheme_and_asked_for_changes(tmp_path: Path) -> None:
    _connector_plugin(tmp_path / "site")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("Alpha is the first letter.\nBeta comes second.\n"
                                      "Gamma is third.\n")
    code = (
        "import sys\n"
        "from indexer import Index\n"
        f"with Index({str(tmp_path / 'idx')!r}) as index:\n"
        f"    report = index.sync([sys.argv[1]])\n"
        "    print(report.new, report.changed, report.deleted, report.unchanged)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}

    def sync() -> str:
        done = subprocess.run([sys.executable, "-c", code, f"notes://{folder}"], env=env,
                              capture_output=True, text=True, timeout=300, check=True)
        return done.stdout.strip()

    assert sync() == "3 0 0 0"
    (folder / "notes.txt").write_text("Alpha is the first letter.\nBeta comes second, b.\n")
    assert sync() == "0 1 1 0"  # only what changed since the stored cursor
    assert (folder / "calls.log").read_text().split() == ["scan", "changes"]


def test_an_unknown_search_mode_lists_the_modes(tmp_path: Path) -> None:
    with Index(tmp_path / "idx") as index, \
            pytest.raises(ConfigError, match="hybrid, vector, keyword"):
        index.search("anything", mode="rerank")
