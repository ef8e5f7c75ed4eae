"""What the extractors make of files every connector meets: reStructuredText kept in
``.txt`` files (Sphinx projects), SVG images, XML, and files that are no text at all."""

from __future__ import annotations

from pathlib import Path

from indexer.chunking.chunker import ChunkerSettings, chunk_document
from indexer.connectors import formats
from indexer.connectors.filesystem import FilesystemSource
from indexer.records import Document, Skip

SAMPLES = Path(__file__).resolve().parent / "samples"


def load(name: str, data: bytes | None = None) -> Document | Skip:
    raw = (SAMPLES / name).read_bytes() if data is None else data
    fmt = formats.format_of(name)
    assert fmt is not None
    return formats.document(f"/docs/{name}", raw, fmt)


def test_sphinx_rst_in_a_txt_file_gets_its_headings_and_no_raw_underlines() -> None:
    doc = load("sessions.txt")  # a Django docs page: Sphinx keeps them in .txt files
    assert isinstance(doc, Document)
    assert doc.title == "How to use sessions"
    assert [s.format for s in doc.segments] == ["rst"]
    chunks = chunk_document(doc, ChunkerSettings(max_tokens=120))
    assert chunks and all(c.heading_path for c in chunks)  # no passage without a heading
    assert not any(line.strip().startswith(("===", "---")) for c in chunks
                   for line in c.text.splitlines())
    assert ("How to use sessions", "Configuring the session engine",
            "Using database-backed sessions") in {c.heading_path for c in chunks}
    as_rst = load("sessions.rst", (SAMPLES / "sessions.txt").read_bytes())
    assert isinstance(as_rst, Document)
    assert chunk_document(as_rst, ChunkerSettings(max_tokens=120)) == chunks


def test_plain_text_stays_plain_text() -> None:
    letter = b"Dear team,\n\nThe build is green again.\nSee you at 10:30: room B.\n\n-- \nAnn\n"
    doc = load("letter.txt", letter)
    assert isinstance(doc, Document) and [s.format for s in doc.segments] == ["text"]
    assert doc.title == ""


def test_a_txt_file_with_only_an_underlined_title_reads_as_rst() -> None:
    doc = load("notes.txt", b"Release notes\n=============\n\nEverything is faster.\n")
    assert isinstance(doc, Document) and doc.title == "Release notes"
    chunks = chunk_document(doc, ChunkerSettings(max_tokens=100))
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Release notes",), "Everything is faster.")]


def test_an_svg_diagram_is_indexed_by_its_title_description_and_labels() -> None:
    doc = load("pipeline.svg")
    assert isinstance(doc, Document) and doc.title == "Sync pipeline"
    text = doc.segments[0].text
    assert text.splitlines() == [
        "Sync pipeline", "How a changed document travels from its source to the search store.",
        "Connector scan", "Batch API embeddings", "LanceDB store"]
    assert "fill" not in text and "M150" not in text  # styles and drawing stay out
    assert doc.segments[0].line_start == 6


def test_an_svg_without_text_is_named_as_such_not_as_a_binary_file() -> None:
    skip = load("icon.svg")
    assert isinstance(skip, Skip) and skip.empty
    assert skip.reason.startswith("SVG image: no text to index")
    assert formats.format_for("image/svg+xml", "https://example.com/logo") == "svg"


def test_an_svg_that_declares_entities_is_refused_unexpanded() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>')
    skip = load("bomb.svg", bomb)
    assert isinstance(skip, Skip) and "entities" in skip.reason and not skip.empty


def test_xml_formats_are_indexed_as_markup() -> None:
    schema = b'<?xml version="1.0"?>\n<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">\n' \
             b'  <xs:element name="invoice" type="xs:string"/>\n</xs:schema>\n'
    for name in ("schema.xsd", "feed.atom", "layout.xml"):
        doc = load(name, schema)
        assert isinstance(doc, Document) and doc.segments[0].format == "code", name
    assert formats.format_for("application/rss+xml", "https://example.com/feed") == "code"


def test_files_that_are_no_text_say_what_they_are(tmp_path: Path) -> None:
    (tmp_path / "photo.JPG").write_bytes(b"\xff\xd8\xff\xe0")
    (tmp_path / "report.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / "data.txt").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    found = list(FilesystemSource(tmp_path).scan())
    reasons = {Path(f.uri).name: f.reason for f in found if isinstance(f, Skip)}
    assert reasons == {"photo.JPG": "image (.jpg): no text to index",
                       "report.docx": "office document (.docx): its text cannot be "
                                      "extracted (not supported)"}
    item = next(f for f in found if not isinstance(f, Skip))
    skip = FilesystemSource(tmp_path).load(item)
    assert isinstance(skip, Skip) and skip.reason == "binary file (SQLite database)"
