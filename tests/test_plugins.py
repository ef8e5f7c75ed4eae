"""A third-party connector: a package installed with pip that registers a ConnectorSpec
under the ``batch_indexer.connectors`` entry points is chosen by its URI scheme."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer import Index
from indexer.connectors import registry

PLUGIN = Path(__file__).resolve().parent / "plugins" / "indexer-notes-plugin"


@pytest.fixture()
def notes_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example plugin (docs/connectors.md) installed by pip into a folder on sys.path."""
    source, target = tmp_path / "plugin", tmp_path / "site"
    shutil.copytree(PLUGIN, source)  # a build writes into the project folder
    offline = all(importlib.util.find_spec(m) for m in ("setuptools", "wheel"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    *(["--no-build-isolation"] if offline else []), "--target", str(target),
                    str(source)], check=True, timeout=600, capture_output=True)
    monkeypatch.syspath_prepend(str(target))
    registry.specs.cache_clear()  # entry points are read once per process
    try:
        yield target
    finally:
        registry.specs.cache_clear()
        sys.modules.pop("indexer_notes", None)


def write_notes(path: Path, revision: int, notes: list[dict[str, object]],
                deleted: list[dict[str, object]] | None = None) -> None:
    path.write_text(json.dumps({"revision": revision, "notes": notes,
                                "deleted": deleted or []}))


@pytest.mark.slow
def test_a_pip_installed_connector_plugin_syncs_by_its_uri_scheme(
        notes_plugin: Path, tmp_path: Path) -> None:
    assert registry.specs()["notes"].name == "notes"
    notes = tmp_path / "notes.json"
    tea = {"id": "tea", "title": "Green tea", "body": "Steep green tea at eighty degrees.",
           "revision": 1}
    bread = {"id": "bread", "title": "Sourdough", "body": "Feed the starter every morning.",
             "revision": 2, "tags": ["kitchen"]}
    write_notes(notes, 2, [tea, bread])
    uri = f"notes://{notes.as_posix()}"
    with Index(tmp_path / "idx", backend="local") as index:
        first = index.sync([uri])
        hits = index.search("how hot should the water be for tea", k=1)
        listed = index.sources()
    assert (first.exit_code, first.new, first.embedded) == (0, 2, 2)
    assert hits[0].place.uri == f"{uri}#tea" and "eighty degrees" in hits[0].text
    assert [(s.kind, s.documents, s.error) for s in listed] == [("notes", 2, None)]

    # the next sync asks for the changes since the recorded revision: one edit, one delete
    write_notes(notes, 4, [{**tea, "body": "Steep green tea at seventy degrees.",
                            "revision": 3}], deleted=[{"id": "bread", "revision": 4}])
    with Index(tmp_path / "idx") as index:
        second = index.sync()
        hits = index.search("sourdough starter", k=5)
    assert (second.changed, second.deleted, second.unchanged, second.embedded) == (1, 1, 0, 1)
    assert [h.place.uri for h in hits] == [f"{uri}#tea"]

    notes.unlink()  # unreachable: the source fails alone, nothing of it is deleted
    with Index(tmp_path / "idx") as index:
        third = index.sync()
        errors = [s.error for s in index.sources()]
    assert third.exit_code == 1 and third.deleted == 0
    assert third.unreachable and third.unreachable[0].startswith(uri)
    assert errors[0] is not None and "cannot be read" in errors[0]
