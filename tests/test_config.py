"""Configuration: init writes a commented file, precedence flags > INDEXER_* > file, validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from indexer import ConfigError, Index
from indexer import config as configfile


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "indexer", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300)


@pytest.mark.slow
def test_init_writes_a_commented_config_that_survives_adding_sources(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha.\n")
    result = run("init", "--chunk-tokens", "150", "--max-cost", "2.5", "docs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / ".indexer/config.toml").read_text()
    assert "# Which embedder" in text and "chunk_tokens = 150" in text
    again = run("init", cwd=tmp_path)
    assert again.returncode == 1 and "exists already" in again.stderr

    other = tmp_path / "more"
    other.mkdir()
    (other / "b.md").write_text("# B\n\nBeta.\n")
    assert run("sync", "more", cwd=tmp_path).returncode == 0
    config = configfile.read(tmp_path / ".indexer")
    assert config.chunk_tokens == 150 and config.max_cost == 2.5
    assert [Path(s.path).name for s in config.sources] == ["docs", "more"]
    assert "# Which embedder" in (tmp_path / ".indexer/config.toml").read_text()


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    configfile.write_template(tmp_path, {"chunk_tokens": 150})
    assert configfile.read(tmp_path, {"INDEXER_CHUNK_TOKENS": "300"}).chunk_tokens == 300
    assert configfile.read(tmp_path, {}).chunk_tokens == 150
    assert configfile.read(tmp_path, {"INDEXER_MAX_COST": "1.5"}).max_cost == 1.5


def test_invalid_settings_say_what_to_fix(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[index]\nchunk_tokens = "big"\n')
    with pytest.raises(ConfigError, match="chunk_tokens must be int"):
        configfile.read(tmp_path)
    (tmp_path / "config.toml").write_text("[index]\nchunk_size = 3\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        configfile.read(tmp_path)
    (tmp_path / "config.toml").write_text('[index]\nbackend = "cloud"\n')
    with pytest.raises(ConfigError, match="backend must be"):
        Index(tmp_path)


@pytest.mark.slow
def test_add_remembers_sources_with_their_globs(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nAlpha.\n")
    (tmp_path / "docs" / "b.txt").write_text("Beta.\n")
    result = run("add", "docs", "--include", "*.md", cwd=tmp_path)
    assert result.returncode == 0 and "docs" in result.stdout
    (source,) = configfile.read(tmp_path / ".indexer").sources
    assert source.include == ("*.md",)
    synced = run("sync", "--json", cwd=tmp_path)
    assert synced.returncode == 0 and '"new": 1' in synced.stdout


def test_outage_and_timeout_settings_are_documented_overridable_and_checked(
        tmp_path: Path) -> None:
    configfile.write_template(tmp_path, {})
    text = (tmp_path / "config.toml").read_text()
    assert "outage_seconds = 1800.0" in text and "timeout = 120.0" in text
    assert configfile.read(tmp_path).outage_seconds == 1800.0
    assert configfile.read(tmp_path, {"INDEXER_OUTAGE_SECONDS": "90"}).outage_seconds == 90.0
    with pytest.raises(ConfigError, match="outage_seconds must be 0 seconds or more"):
        configfile.read(tmp_path, {"INDEXER_OUTAGE_SECONDS": "-1"})
    with pytest.raises(ConfigError, match="timeout must be more than 0"):
        configfile.read(tmp_path, {"INDEXER_TIMEOUT": "0"})


def test_group_size_is_a_setting_with_a_floor(tmp_path: Path) -> None:
    assert configfile.read(tmp_path, {"INDEXER_GROUP_SIZE": "500"}).group_size == 500
    with pytest.raises(ConfigError, match="group_size must be 1 or more"):
        configfile.read(tmp_path, {"INDEXER_GROUP_SIZE": "0"})


def test_a_sources_own_settings_reach_its_connector_and_survive_a_resync(
        tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "config.toml").write_text(
        '[index]\n\n[[sources]]\npath = "git+file:///srv/handbook@main"\n'
        'link = "https://example.com/{commit}/{path}"\n')
    source = configfile.read(index_dir).sources[0]
    assert source.options == {"link": "https://example.com/{commit}/{path}"}
    configfile.remember_source(index_dir, configfile.SourceConfig(
        source.path, ("*.md",), (), False, source.options))
    assert configfile.read(index_dir).sources[0].options == source.options


def test_a_folder_source_refuses_settings_it_does_not_know(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "config.toml").write_text(
        f'[index]\n\n[[sources]]\npath = "{docs.as_posix()}"\nmax_pages = 3\n')
    with pytest.raises(ConfigError, match="max_pages"):
        Index(index_dir).plan()
