"""Runs that overlap: a second sync is refused (or waits), and search never sees a half update."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from indexer import Index, LockedError


@pytest.mark.slow
def test_second_sync_reports_the_holder_and_exit_code_6(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nSome text.\n")
    index = Index(tmp_path / "idx")
    index.sync([folder])
    with index._open_ledger().lock("sync"):  # a run in progress, in this process
        result = subprocess.run(
            [sys.executable, "-m", "indexer", "--index", str(tmp_path / "idx"), "sync"],
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 6
        assert "another run holds the index ('sync', pid" in result.stderr
        assert "since" in result.stderr and "--wait-lock" in result.stderr
        with pytest.raises(LockedError), Index(tmp_path / "idx") as other:
            other.sync()

        waiter = subprocess.Popen(
            [sys.executable, "-m", "indexer", "--index", str(tmp_path / "idx"), "sync",
             "--wait-lock", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)
        assert waiter.poll() is None  # still waiting for the lock
    _, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    index.close()


def test_search_during_a_sync_sees_each_document_before_or_after(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()

    def write(version: str) -> None:
        sections = [f"## Part {i}\n\nThis is the {version} edition of part {i} of the guide "
                    f"about {version} things." for i in range(12)]
        (folder / "guide.md").write_text("# Guide\n\n" + "\n\n".join(sections) + "\n")

    write("alpha")
    with Index(tmp_path / "idx") as index:
        index.sync([folder])
    write("omega")
    seen: list[set[str]] = []
    done = threading.Event()

    def syncer() -> None:
        with Index(tmp_path / "idx") as index:
            index.sync([folder])
        done.set()

    thread = threading.Thread(target=syncer)
    with Index(tmp_path / "idx") as reader:
        thread.start()
        while not done.is_set():
            hits = reader.search("edition of part of the guide", k=50)
            seen.append({"omega" if "omega" in h.text else "alpha" for h in hits})
        thread.join()
        final = reader.search("edition of part of the guide", k=50)
    assert all(len(versions) == 1 for versions in seen), seen
    assert {"omega" if "omega" in h.text else "alpha" for h in final} == {"omega"}
    assert len(final) == 12
    shutil.rmtree(tmp_path / "idx")
