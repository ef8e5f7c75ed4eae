"""PDFs load page by page; damaged, locked or image-only PDFs are skipped with a reason."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.errors import DependencyError

from indexer.connectors.filesystem import FilesystemSource, load
from indexer.records import Document, Skip, SourceItem
from pdfgen import make_pdf


def load_pdf(tmp_path: Path, data: bytes) -> Document | Skip:
    (tmp_path / "doc.pdf").write_bytes(data)
    [item] = list(FilesystemSource(tmp_path).scan())
    assert isinstance(item, SourceItem) and item.format == "pdf"
    return load(item)


def encrypted(data: bytes, user_password: str, owner_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_one_segment_per_page_with_page_numbers(tmp_path: Path) -> None:
    data = make_pdf(["Page one (intro)\nsecond line café", "", "Page three"], title="Manual")
    document = load_pdf(tmp_path, data)
    assert isinstance(document, Document)
    assert document.title == "Manual"
    assert [(s.page, s.format, s.text) for s in document.segments] == [
        (1, "text", "Page one (intro)\nsecond line café"),
        (3, "text", "Page three"),
    ]


def test_title_falls_back_to_first_line(tmp_path: Path) -> None:
    document = load_pdf(tmp_path, make_pdf(["  Quarterly report\nbody"]))
    assert isinstance(document, Document) and document.title == "Quarterly report"


def test_pdf_without_text_is_skipped(tmp_path: Path) -> None:
    result = load_pdf(tmp_path, make_pdf(["", ""]))
    assert isinstance(result, Skip) and result.reason.startswith("PDF has no extractable text")


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\nthis is not really a pdf", make_pdf(["text"])[:120], b"plain words"],
    ids=["garbage", "truncated", "not-a-pdf"],
)
def test_corrupt_pdf_is_skipped_quietly(
    tmp_path: Path, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        result = load_pdf(tmp_path, data)
    assert isinstance(result, Skip) and result.reason.startswith("corrupt PDF: ")
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]


def test_encrypted_pdf_is_skipped(tmp_path: Path) -> None:
    result = load_pdf(tmp_path, encrypted(make_pdf(["secret text"]), "secret", "owner"))
    assert isinstance(result, Skip) and result.reason == "encrypted PDF"


def test_pdf_with_empty_user_password_is_read(tmp_path: Path) -> None:
    document = load_pdf(tmp_path, encrypted(make_pdf(["open text"]), "", "owner"))
    assert isinstance(document, Document) and document.segments[0].text == "open text"


def test_a_page_that_fails_to_extract_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = PageObject.extract_text

    def flaky(page: PageObject, *args: object, **kwargs: object) -> str:
        text = real(page, *args, **kwargs)  # type: ignore[arg-type]
        if "two" in text:
            raise ValueError("broken content stream")
        return text

    monkeypatch.setattr(PageObject, "extract_text", flaky)
    document = load_pdf(tmp_path, make_pdf(["page one", "page two", "page three"]))
    assert isinstance(document, Document)
    assert [(s.page, s.text) for s in document.segments] == [(1, "page one"), (3, "page three")]


@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256"])
def test_aes_pdf_with_empty_user_password_is_read(tmp_path: Path, algorithm: str) -> None:
    pytest.importorskip("cryptography")
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["aes text"]))))
    writer.encrypt("", "owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    document = load_pdf(tmp_path, out.getvalue())
    assert isinstance(document, Document) and document.segments[0].text == "aes text"


def test_aes_pdf_without_crypto_library_names_the_missing_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_aes(reader: PdfReader, password: str) -> None:
        raise DependencyError("cryptography is required for AES")

    monkeypatch.setattr(PdfReader, "decrypt", no_aes)
    result = load_pdf(tmp_path, encrypted(make_pdf(["text"]), "", "owner"))
    assert result == Skip(result.uri, "encrypted PDF (AES needs the 'cryptography' package)")
