"""Syncing a folder through the Python API: first run, re-sync after edits, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer import Index
from indexer.batchfiles.requests import content_key
from indexer.chunking.chunker import ChunkerSettings, chunk_document
from indexer.connectors.filesystem import FilesystemSource, load
from indexer.records import Document, SourceItem
from pdfgen import make_pdf


def keys_of(index: Index, path: Path) -> set[str]:
    """The content keys the index's chunker and model give a file."""
    item = next(i for i in FilesystemSource(path).scan() if isinstance(i, SourceItem))
    doc = load(item)
    assert isinstance(doc, Document)
    status = index.status()
    chunks = chunk_document(doc, ChunkerSettings(max_tokens=index.config.chunk_tokens))
    return {content_key(status.model, status.dimensions, c.embed_text) for c in chunks}


def uris_in_search(index: Index) -> set[str]:
    hits = index.search("documentation", k=200)
    return {p.uri for h in hits for p in h.places}


def test_first_sync_indexes_every_format(docs: Path, tmp_path: Path) -> None:
    with Index(tmp_path / "idx") as index:
        report = index.sync([docs])
        assert report.complete and report.skipped == 0
        assert report.new == 7 and report.embedded > 0
        uris = uris_in_search(index)
    names = {Path(u).name for u in uris}
    assert {"batches.md", "search.md", "configuration.rst", "storage.html", "faq.txt",
            "pricing.pdf"} <= names


def test_resync_embeds_only_what_changed(docs: Path, tmp_path: Path) -> None:
    index = Index(tmp_path / "idx")
    first = index.sync([docs])
    assert first.embedded > 0

    edited, touched, deleted = docs / "guides/batches.md", docs / "faq.txt", docs / "README.md"
    before = keys_of(index, edited)
    text = edited.read_text().replace(
        "A batch that does not finish within its completion window expires.",
        "A batch that does not finish within its 24 hour completion window expires.")
    edited.write_text(text)
    os.utime(touched, (1_900_000_000, 1_900_000_000))
    deleted.unlink()
    added = docs / "guides/new.md"
    added.write_text("# Webhooks\n\nThe indexer can notify a webhook when a sync finishes.\n")

    report = index.sync([docs])
    changed = keys_of(index, edited) - before
    assert 0 < len(changed) < len(before)
    assert report.embedded == len(changed) + len(keys_of(index, added))
    assert (report.new, report.changed, report.touched, report.deleted) == (1, 1, 1, 1)
    assert report.unchanged == 4
    uris = uris_in_search(index)
    assert deleted.resolve().as_posix() not in uris
    assert added.resolve().as_posix() in uris

    again = index.sync([docs])
    assert (again.embedded, again.new, again.changed, again.deleted) == (0, 0, 0, 0)
    index.close()


def test_identical_text_is_embedded_once_and_survives_deleting_one_copy(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    licence = "Licensed under the Apache License, Version 2.0. See LICENSE for details.\n"
    (folder / "a.txt").write_text(licence)
    (folder / "b.txt").write_text(licence)
    with Index(tmp_path / "idx") as index:
        report = index.sync([folder])
        assert report.chunks == 2 and report.embedded == 1
        (hit,) = index.search("apache licence", k=5)
        assert {Path(p.uri).name for p in hit.places} == {"a.txt", "b.txt"}
        (folder / "a.txt").unlink()
        index.sync([folder])
        (hit,) = index.search("apache licence", k=5)
        assert [Path(p.uri).name for p in hit.places] == ["b.txt"]


def test_bad_input_is_skipped_with_reasons_and_the_rest_is_indexed(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThis document is perfectly readable.\n")
    (folder / "image.bin").write_bytes(bytes(range(256)) * 8)
    (folder / "garbage.txt").write_bytes(b"\x81\x8d\x8f\x90\x9d" * 200 + b"\x00\xff" * 50)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nnot a pdf")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    with Index(tmp_path / "idx") as index:
        report = index.sync([folder])
        reasons = {Path(s.uri).name: s.reason for s in report.skips}
        assert set(reasons) >= {"image.bin", "garbage.txt", "broken.pdf", "empty.txt", "loop"}
        assert all(reasons.values())
        assert report.new == 1 and report.complete
        (hit,) = index.search("readable document", k=1)
        assert Path(hit.place.uri).name == "good.md"
        assert {Path(p.uri).name for p in index.status().problems} >= {"broken.pdf"}


def test_a_changed_model_is_refused(docs: Path, tmp_path: Path) -> None:
    from indexer.errors import IndexMismatch

    with Index(tmp_path / "idx") as index:
        index.sync([docs / "faq.txt"])
    with pytest.raises(IndexMismatch), Index(tmp_path / "idx", backend="openai") as other:
        other.sync([docs / "faq.txt"])


@pytest.mark.slow
def test_a_noop_sync_reads_no_file_and_loads_no_model_or_store(docs: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    import subprocess
    import sys

    with Index(tmp_path / "idx") as index:
        index.sync([docs])

    def no_reading(*_: object) -> None:
        raise AssertionError("an unchanged file was read")

    monkeypatch.setattr("indexer.connectors.filesystem.load", no_reading)
    with Index(tmp_path / "idx") as index:
        report = index.sync([docs])
    assert report.unchanged == 7 and report.embedded == 0

    code = ("import sys; from indexer import Index\n"
            f"Index({str(tmp_path / 'idx')!r}).sync()\n"
            "print(sorted({'lancedb', 'onnxruntime', 'openai', 'pypdf'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_an_index_directory_inside_the_source_is_never_crawled(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nA note about gardens.\n")
    with Index(folder / "search-index") as index:
        first = index.sync([folder])
        second = index.sync([folder])
    assert (first.new, first.skipped) == (1, 0)
    assert (second.new, second.changed, second.unchanged) == (0, 0, 1)


@pytest.mark.slow
def test_an_emptied_file_leaves_search_and_comes_back_without_paying_again(
        tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    texts = {"lighthouse.md": "# Lighthouse\n\nThe keeper logs every passing ship at dusk.\n",
             "orchard.txt": "The orchard grows apples, pears and a single quince tree.\n",
             "kiln.md": "# Kiln\n\nThe pottery kiln is fired to 1,200 degrees.\n",
             "harbour.md": "# Harbour\n\nFishing boats unload their catch at dawn.\n"}
    for name, text in texts.items():
        (folder / name).write_text(text)
    (folder / "scan.pdf").write_bytes(make_pdf(["The scanned contract runs for two years."]))
    with Index(tmp_path / "idx") as index:
        first = index.sync([folder])
        assert (first.new, first.skipped) == (5, 0)

        def found() -> set[str]:
            return {Path(p.uri).name for h in index.search("ship orchard kiln harbour contract",
                                                           k=50) for p in h.places}

        assert found() == {"lighthouse.md", "orchard.txt", "kiln.md", "harbour.md", "scan.pdf"}
        (folder / "lighthouse.md").write_bytes(b"")
        (folder / "orchard.txt").write_text("  \n\n\t\n")
        (folder / "scan.pdf").write_bytes(make_pdf(["", ""]))  # a scan without a text layer
        emptied = {"lighthouse.md", "orchard.txt", "scan.pdf"}

        report = index.sync([folder])
        reasons = {Path(s.uri).name: s.reason for s in report.skips}
        assert reasons == {"lighthouse.md": "empty file",
                           "orchard.txt": "empty after extraction",
                           "scan.pdf": "PDF has no extractable text (scanned images need OCR)"}
        assert report.embedded == 0 and report.complete
        assert found() == {"harbour.md", "kiln.md"}
        hits = index.search("keeper logs passing ship", k=50, hybrid=True)
        assert all("keeper" not in h.text for h in hits)
        status = index.status()
        assert (status.documents, status.skipped_documents) == (2, 3)
        assert {Path(p.uri).name: p.reason for p in status.problems} == reasons

        again = index.sync([folder])  # still empty: still skipped, nothing written
        assert again.skipped == 3 and again.embedded == 0
        assert found() == {"harbour.md", "kiln.md"}
        assert index.doctor().healthy

        for name in emptied - {"scan.pdf"}:
            (folder / name).write_text(texts[name])
        (folder / "scan.pdf").write_bytes(make_pdf(["The scanned contract runs for two years."]))
        back = index.sync([folder])
        assert back.embedded == 0 and back.reused == back.chunks > 0  # nothing paid twice
        assert (back.changed, back.skipped) == (3, 0)
        assert found() == emptied | {"harbour.md", "kiln.md"}
        status = index.status()
        assert (status.documents, status.skipped_documents, status.problems) == (5, 0, ())
        assert index.doctor().healthy


_WITHOUT_LANCEDB = """
import sys
from pathlib import Path
from indexer import Index

docs, work = Path(sys.argv[1]), Path(sys.argv[2])
with Index(work / "idx") as index:
    first = index.sync([docs])
    note = next(p for p in sorted(docs.rglob("*.md")))
    note.write_text(note.read_text() + "\\n\\nA paragraph about greenhouse tomatoes.\\n")
    again = index.sync([docs])
    hits = index.search("greenhouse tomatoes", k=3)
    checkup = index.doctor()
assert first.published and again.changed == 1 and checkup.healthy
assert hits and "greenhouse tomatoes" in hits[0].text
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.mark.slow
def test_syncing_searching_and_checking_an_index_never_import_lancedb(
        docs: Path, tmp_path: Path) -> None:
    """The store is written, searched and checked through Lance alone: importing LanceDB
    cost every process that wrote the store about 3 CPU-seconds (a process of its own:
    this one may have imported LanceDB for another test)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WITHOUT_LANCEDB, str(docs), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert not {"lancedb", "lance_namespace"} & loaded
    assert "lance" in loaded
