"""PDF text, page by page: the one module that talks to pypdf.

pypdf reports recoverable damage through ``logging`` and ``warnings``; both are
silenced while a PDF is read, since the caller reports per-document problems itself.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from indexer.connectors.formats.text import ExtractionError, NoText, normalise
from indexer.records import Segment

_TITLE_CHARS = 200
_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved_level = logging.NOTSET


class PdfError(ExtractionError):
    """A PDF that yields no text; the message is the reason shown to the user."""


@dataclass(frozen=True)
class PdfText:
    """The text of a PDF: its title (``None`` when it has none) and one segment per page."""

    title: str | None
    pages: tuple[Segment, ...]


def extract(data: bytes) -> PdfText:
    """Read every page's text from the PDF in ``data``.

    Pages whose text cannot be extracted are left out and the rest kept. Raises
    :class:`PdfError` for an encrypted PDF that the empty password does not open or a
    corrupt PDF, and :class:`~indexer.connectors.formats.text.NoText` for one with no
    extractable text at all (a scan without OCR).
    """
    with _quiet():
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                _decrypt(reader)
            page_count = len(reader.pages)
        except PdfError:
            raise
        except FileNotDecryptedError as exc:
            raise PdfError("encrypted PDF") from exc
        except Exception as exc:  # pypdf raises many kinds on damaged files
            raise PdfError(f"corrupt PDF: {_short(exc)}") from exc
        pages = tuple(_pages(reader, page_count))
        title = _metadata_title(reader)
    if not pages:
        raise NoText("PDF has no extractable text (scanned images need OCR)")
    return PdfText(title=title or _first_line(pages[0].text), pages=pages)


def _decrypt(reader: PdfReader) -> None:
    """Open with the empty user password, which many merely "protected" PDFs use."""
    try:
        opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except DependencyError as exc:
        raise PdfError("encrypted PDF (AES needs the 'cryptography' package)") from exc
    except NotImplementedError as exc:
        raise PdfError("encrypted PDF (unsupported encryption)") from exc
    if not opened:
        raise PdfError("encrypted PDF")


def _pages(reader: PdfReader, count: int) -> Iterator[Segment]:
    for number in range(count):
        try:
            raw = reader.pages[number].extract_text()
        except Exception:  # one bad page must not cost the others
            continue
        text = normalise(raw).strip()
        if text:
            yield Segment(text=text, format="text", page=number + 1)


def _metadata_title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # a damaged info dictionary just means no title
        return None
    if not isinstance(title, str):
        return None
    return " ".join(normalise(title).split())[:_TITLE_CHARS] or None


def _first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())[:_TITLE_CHARS]
    return None


def _short(exc: Exception) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message if len(message) <= 120 else message[:117] + "..."


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence pypdf's loggers and warnings meanwhile (safe to nest and to share across threads)."""
    global _quiet_depth, _saved_level
    logger = logging.getLogger("pypdf")
    with _quiet_lock:
        if _quiet_depth == 0:
            _saved_level = logger.level
            logger.setLevel(logging.CRITICAL + 1)
        _quiet_depth += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                logger.setLevel(_saved_level)
