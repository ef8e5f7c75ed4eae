"""Several sources in one index: one that cannot be reached fails alone."""

from __future__ import annotations

import shutil
from pathlib import Path

from indexer import Index


def folder(path: Path, topic: str) -> Path:
    path.mkdir()
    (path / f"{topic}.md").write_text(f"# {topic.title()}\n\nAll about {topic} here.\n")
    return path


def test_an_unreachable_source_deletes_nothing_and_the_others_still_sync(
        tmp_path: Path) -> None:
    tea, bread = folder(tmp_path / "tea", "tea"), folder(tmp_path / "bread", "bread")
    with Index(tmp_path / "idx", backend="local") as index:
        assert index.sync([tea, bread]).exit_code == 0
    shutil.move(bread, tmp_path / "away")  # an unmounted share, a deleted checkout
    (tea / "green.md").write_text("# Green tea\n\nSteep at eighty degrees.\n")
    with Index(tmp_path / "idx") as index:
        report = index.sync()
        status = index.status()
        hits = index.search("bread", k=5)
    assert report.exit_code == 1 and report.new == 1 and report.deleted == 0
    assert len(report.unreachable) == 1 and str(bread) in report.unreachable[0]
    assert status.documents == 3
    assert any(p.uri.endswith("bread.md") for h in hits for p in h.places)
