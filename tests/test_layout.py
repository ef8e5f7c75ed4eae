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


def test_importing_a_connector_loads_no_state_or_config_machinery() -> None:
    loaded = json.loads(run_python(
        "import json, sys, indexer.connectors.filesystem\n"
        "print(json.dumps([m for m in ('sqlite3', 'tomlkit', 'lancedb', 'openai', "
        "'indexer.state.ledger', 'indexer.index') if m in sys.modules]))"))
    assert loaded == []


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
