"""Tiny valid PDFs with real, extractable text, written byte by byte (no PDF library needed).

``make_pdf(["page one text", "page two text"], title="A title")`` returns the bytes of a
PDF with one page per string (lines split on ``\\n``), set in Helvetica with
WinAnsiEncoding, so Latin-1 text round-trips through text extraction.
"""

from __future__ import annotations

from pathlib import Path


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A PDF whose pages show the given texts; an empty string makes a page without text."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in once the page object numbers are known
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    page_numbers: list[int] = []
    for text in pages:
        stream = _content_stream(text)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_number = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_number
        )
        page_numbers.append(len(objects))
    kids = b" ".join(b"%d 0 R" % number for number in page_numbers)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_numbers))
    info = None
    if title is not None:
        objects.append(b"<< /Title (%s) /Producer (pdfgen) >>" % _literal(title))
        info = len(objects)
    return _assemble(objects, info)


def write_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    """Write :func:`make_pdf`'s bytes to ``path`` and return it."""
    path.write_bytes(make_pdf(pages, title))
    return path


def _content_stream(text: str) -> bytes:
    if not text:
        return b"0 0 m 10 10 l S"
    lines = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
    for line in text.split("\n"):
        lines.append(b"(%s) Tj T*" % _literal(line))
    lines.append(b"ET")
    return b"\n".join(lines)


def _literal(text: str) -> bytes:
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _assemble(objects: list[bytes], info: int | None) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if info is not None:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
