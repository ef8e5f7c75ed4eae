"""At the edges, the command line behaves like git and ripgrep: the index is found from a
sub-folder, options go before or after the command, quiet runs are quiet, piped output
is never wrapped, errors name their source, readers write nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer import ConfigError, Index
from indexer import config as configfile
from indexer.cli import cli
from indexer.report import IndexStatus

LONG = "a-file-name-long-enough-that-an-eighty-column-terminal-would-cut-it-in-the-middle"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small local index in ``<root>/.indexer`` over ``<root>/docs``, with two files
    skipped at scan (binary) and one skipped when read (no text)."""
    root = tmp_path_factory.mktemp("edges")
    docs = root / "docs"
    (docs / "deep" / "deeper").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\n\nThe alpha passage talks about kites.\n")
    (docs / "b.md").write_text("# Beta\n\nThe beta passage talks about boats.\n")
    (docs / f"{LONG}.png").write_bytes(b"\x89PNG\x00\x00binary")
    (docs / "deep" / "blob.bin").write_bytes(b"\x00\x01\x02")
    (docs / "deep" / "blank.md").write_text("  \n\n   \n")
    with Index(root / ".indexer", backend="local") as index:
        report = index.sync([docs])
    assert report.complete and report.new == 2
    yield root


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_index_is_found_in_a_parent_folder(built: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(built / "docs" / "deep" / "deeper")
    code, out, _ = invoke("status")
    assert code == 0 and f"{built / '.indexer'}" in out and "2 indexed" in out
    monkeypatch.setenv("INDEXER_DIR", str(built / "elsewhere"))  # env wins over discovery
    code, _, err = invoke("status")
    assert code == 1 and "no index at" in err and "elsewhere" in err
    code, out, _ = invoke("status", "--index", str(built / ".indexer"))  # the flag wins
    assert code == 0 and "2 indexed" in out


def test_global_options_work_after_the_command_and_a_quiet_noop_sync_says_nothing(
        built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no index here or above
    index = str(built / ".indexer")
    before = invoke("--index", index, "status")
    after = invoke("status", "--index", index)
    assert before == after and before[0] == 0
    code, out, err = invoke("sync", str(built / "docs"), "--index", index, "-q")
    assert (code, out, err) == (0, "", "")
    code, out, _ = invoke("-q", "--index", index, "sync")
    assert (code, out) == (0, "")
    assert not (tmp_path / ".indexer").exists()


def test_skips_are_counted_once_and_summarised_by_kind(built: Path) -> None:
    with Index(built / ".indexer") as index:
        report = index.sync([])
    counts = (report.new, report.changed, report.touched, report.unchanged, report.skipped)
    assert counts == (0, 0, 0, 2, 3)  # 5 files, each counted once
    assert sorted(s.kind for s in report.skips) == ["compiled program or library",
                                                    "empty after extraction", "image"]
    index_dir = str(built / ".indexer")
    _, out, _ = invoke("sync", "--index", index_dir)
    summary = next(line for line in out.splitlines() if line.startswith("3 skipped: "))
    assert summary.endswith("; `indexer status --skipped` lists them")
    assert sorted(summary[len("3 skipped: "):].split(";")[0].split(", ")) == [
        "1 compiled program or library", "1 empty after extraction", "1 image"]
    assert "blob.bin" not in out
    _, out, _ = invoke("sync", "--index", index_dir, "-v")
    assert "blob.bin: compiled program or library" in out and "blank.md" in out
    _, out, _ = invoke("status", "--index", index_dir, "--skipped")
    assert len(out.splitlines()) == 3 and "blob.bin: compiled program or library" in out


def test_piped_output_is_never_wrapped(built: Path) -> None:
    index_dir = str(built / ".indexer")
    for args in (("sync", "-v"), ("status", "--skipped")):
        _, out, _ = invoke(*args, "--index", index_dir)
        lines = [line for line in out.splitlines() if LONG in line]
        assert len(lines) == 1, out
        assert f"{LONG}.png: image" in lines[0]
        assert len(lines[0]) > 100  # one line as long as its text, not cut at 80


def test_local_messages_speak_of_no_remote_batches(built: Path) -> None:
    code, out, _ = invoke("cancel", "--index", str(built / ".indexer"))
    assert code == 0 and "nothing to cancel" in out and "10 minutes" not in out
    _, out, _ = invoke("status", "--index", str(built / ".indexer"))
    assert "tokens billed" in out and "cost" in out and "in flight" not in out


def test_status_shows_tokens_billed_and_cost(capsys: pytest.CaptureFixture[str]) -> None:
    from indexer.terminal import show_status

    info = IndexStatus("/x/.indexer", "openai", "text-embedding-3-small", 1536, (), 3, 0, 0,
                       9, 0, 0, 0, (), tokens_billed=123_456, cost=0.001235, priced=True,
                       remote=True)
    show_status(info)
    out = capsys.readouterr().out
    assert "tokens billed  123,456" in out and "cost" in out and "$0.0012" in out


def test_plan_leaves_nothing_on_disk(built: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh" / ".indexer"
    with Index(fresh, backend="local") as index:
        plan = index.plan([built / "docs"])
    assert plan.new == 2 and plan.chunks_to_embed == 2
    assert not (tmp_path / "fresh").exists()


def test_a_bad_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        configfile.read(tmp_path, {"INDEXER_CHUNK_TOKENS": "abc"})
    assert "INDEXER_CHUNK_TOKENS" in str(caught.value)
    assert "config.toml" not in str(caught.value)
    code, _, err = invoke("--index", str(tmp_path), "status")
    assert code == 1 and "no index" in err  # the test's own environment is clean


def _sample(field: dataclasses.Field[object]) -> object:
    """A valid value for the setting that differs from its default."""
    kind = str(field.type)
    if field.name == "encoding_format":
        return "float"
    if field.name == "store_uri":
        return "s3://bucket/prefix"
    if kind == "bool":
        return not field.default
    if "int" in kind:
        return 7 if field.default != 7 else 8
    if "float" in kind:
        return 2.5
    return "something"


def test_every_setting_can_be_set_in_the_file_and_the_environment(tmp_path: Path) -> None:
    settings = [f for f in dataclasses.fields(configfile.Config) if f.name != "sources"]
    assert "max_bytes" in {f.name for f in settings}
    for field in settings:
        value = _sample(field)
        toml = (f'"{value}"' if isinstance(value, str) else str(value).lower()
                if isinstance(value, bool) else str(value))
        (tmp_path / "config.toml").write_text(f"[index]\n{field.name} = {toml}\n")
        assert getattr(configfile.read(tmp_path, {}), field.name) == value, field.name
        (tmp_path / "config.toml").unlink()
        variable = {f"INDEXER_{field.name.upper()}": str(value)}
        assert getattr(configfile.read(tmp_path, variable), field.name) == value, field.name


def test_a_new_index_where_nothing_can_be_written_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha.\n")
    code, _, err = invoke("sync", str(docs), "--index", str(blocker / "index"))
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "cannot create the index" in err and os.fspath(blocker) in err


def _run(*args: str, wrap: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [*(wrap or []), sys.executable, "-m", "indexer", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_read_only_copy_is_searched_and_writes_fail_in_one_line(built: Path,
                                                                  tmp_path: Path) -> None:
    copy = tmp_path / "snapshot"
    shutil.copytree(built / ".indexer", copy / ".indexer")
    wrap: list[str] = []
    if os.geteuid() == 0:  # root writes through chmod: mount the copy read-only instead
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        wrap = ["unshare", "-m", "sh", "-c", script, str(copy)]
        probe = subprocess.run([*wrap, "touch", str(copy / "probe")], capture_output=True,
                               text=True)
        if "Read-only" not in probe.stderr:
            pytest.skip(f"running as root, where chmod does not stop writes, and no read-only "
                        f"bind mount could be made: {probe.stderr.strip()}")
    else:
        subprocess.run(["chmod", "-R", "a-w", str(copy)], check=True)
    try:
        index = ["--index", str(copy / ".indexer")]
        found = _run("search", "kites", "-k", "1", "--json", *index, wrap=wrap)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)[0]["places"][0]["uri"].endswith("/a.md")
        status = _run("status", *index, wrap=wrap)
        assert status.returncode == 0 and "2 indexed" in status.stdout, status.stderr
        for args in (index, ["--index", str(copy / "new")]):
            refused = _run("sync", str(built / "docs"), *args, wrap=wrap)
            assert refused.returncode == 1 and "Traceback" not in refused.stderr
            assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
            assert "read-only" in refused.stderr or "cannot create" in refused.stderr
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(copy)], check=False)


WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"]


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_embedded_and_the_next_sync_embeds_only_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXER_CHUNK_TOKENS", "64")  # one chunk a section
    rng = random.Random(7)
    docs = tmp_path / "docs"
    docs.mkdir()
    for number in range(2):
        sections = [f"## Part {number}-{p}\n\n" + " ".join(rng.choice(WORDS) for _ in range(40))
                    for p in range(64)]
        (docs / f"f{number}.md").write_text(f"# File {number}\n\n" + "\n\n".join(sections))
    index_dir = tmp_path / ".indexer"
    process = subprocess.Popen(
        [sys.executable, "-m", "indexer", "sync", str(docs), "--index", str(index_dir),
         "--backend", "local"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    batches = index_dir / "g1" / "batches"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        parts = list(batches.glob("*.part")) if batches.is_dir() else []
        if sum(p.read_bytes().count(b"\n") for p in parts) >= 64:
            break  # a group is checkpointed, two more are to come
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "run `indexer sync` to resume" in err
    found = re.search(r"kept ([\d,]+) embedding", err)
    assert found, err
    kept = int(found.group(1).replace(",", ""))
    assert kept >= 64
    with Index(index_dir) as index:
        report = index.sync([])
        total = index.status().passages
    assert report.complete and not report.errors
    assert report.resumed == kept and report.embedded + kept == total > kept
