"""Plain text from raw bytes: binary sniffing, charset decoding with fallbacks, normalisation,
and the title a Markdown or reStructuredText file gives itself.

Decoding tries, in order: a byte-order mark (UTF-8/16/32), strict UTF-8, an encoding
the document declares (an HTML ``<meta charset>``), Windows-1252 when the result reads
as Western European text, then charset-normalizer's candidates. Every fallback must
decode strictly and look like text (almost no control characters); when none does,
:func:`decode` raises :class:`UnicodeError` naming what was tried.
"""

from __future__ import annotations

import codecs
import itertools
import re

import charset_normalizer

SNIFF_BYTES = 8192
"""How much of a file :func:`looks_binary` inspects."""

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM begins with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# C0 controls except tab, newline, vertical tab, form feed, carriage return and escape; DEL; C1.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
_CHECK_CHARS = 65536
_MAX_CONTROL_RATIO = 0.01
_MAX_FOREIGN_LETTER_RATIO = 0.3
_TITLE_CHARS = 200
# A non-ASCII symbol (not a letter, not typographic punctuation) between two letters.
_TYPOGRAPHIC = r"\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u2022\xb7\xad"
_SYMBOL_IN_WORD = re.compile(rf"(?<=[^\W\d_])[^\w\s\x00-\x7f{_TYPOGRAPHIC}](?=[^\W\d_])")
# A line that opens or closes a code fence (group 1), else an ATX level-1 heading (group 2).
_FENCE_OR_H1 = re.compile(r"^ {0,3}(?:(`{3,}|~{3,})|# +(.+?)(?: +#+)? *$)", re.M)
_FRONT_MATTER_TITLE = re.compile(r"""^title\s*:\s*["']?(.+?)["']?\s*$""")
_RST_ADORNMENT = re.compile(r"""^([!-/:-@\[-`{-~])\1+\s*$""")
# An explicit markup start: a directive, a hyperlink target, a substitution or a footnote.
_RST_EXPLICIT = re.compile(
    r"^\.\. (?:[A-Za-z][\w:+-]*::|_[^:\n]+:|\|[^|\n]+\|\s+[\w:-]+::|\[[^\]\n]+\])", re.M)
_RST_ROLE = re.compile(r"(?<![\w`]):[a-z][\w.:+-]*:`[^`\n]+`")
_RST_SNIFF_CHARS = 65536


class ExtractionError(ValueError):
    """A file's text cannot be had; the message is the reason shown to the user."""


class NoText(ExtractionError):
    """The file was read and holds no text at all."""


def bom_encoding(data: bytes) -> str | None:
    """The codec a leading byte-order mark names, or ``None`` without one."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def looks_binary(data: bytes) -> bool:
    """True when the head of ``data`` holds a NUL byte and no UTF-16/32 byte-order mark."""
    return bom_encoding(data) is None and b"\x00" in data[:SNIFF_BYTES]


def looks_like_text(text: str) -> bool:
    """True when (the head of) ``text`` has almost no control characters."""
    sample = text[:_CHECK_CHARS]
    controls = len(_CONTROL.findall(sample))
    return controls <= max(1, int(len(sample) * _MAX_CONTROL_RATIO))


def decode(data: bytes, declared: str | None = None) -> str:
    """Decode ``data`` to text, trying the encodings described in the module docstring.

    ``declared`` is an encoding the document names for itself, tried after UTF-8.
    Raises :class:`UnicodeError` ("could not decode text (tried ...)") when nothing fits.
    """
    bom = bom_encoding(data)
    if bom is not None:
        text = _strict(data, bom)
        if text is not None:
            return text
    text = _strict(data, "utf-8")
    if text is not None:
        return text
    tried = ["utf-8"]
    if declared:
        tried.append(declared)
        text = _strict(data, declared)
        if text is not None and looks_like_text(text):
            return text
    tried.append("cp1252")
    text = _strict(data, "cp1252")
    if text is not None and looks_like_text(text) and _reads_western(text):
        return text
    tried.append("charset-normalizer")
    text = _detected(data)
    if text is not None:
        return text
    raise UnicodeError(f"could not decode text (tried {', '.join(tried)})")


def normalise(text: str) -> str:
    """Strip NUL characters and a stray byte-order mark; turn CRLF and CR into LF."""
    text = text.replace("\x00", "")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeError, LookupError):
        return None


def _reads_western(text: str) -> bool:
    """Western European text is mostly ASCII letters, and symbols do not sit inside its words.

    Cyrillic or Greek read as cp1252 fails the first test; Central European
    (cp1250) text read as cp1252 fails the second ("Za¿ó³æ" for "Zażółć").
    """
    sample = text[:_CHECK_CHARS]
    letters = [c for c in sample if c.isalpha()]
    if not letters:
        return True
    foreign = sum(1 for c in letters if not c.isascii())
    if foreign / len(letters) > _MAX_FOREIGN_LETTER_RATIO:
        return False
    return _SYMBOL_IN_WORD.search(sample) is None


def _detected(data: bytes) -> str | None:
    """The first charset-normalizer candidate that decodes strictly and looks like text."""
    try:
        matches = charset_normalizer.from_bytes(data)
    except Exception:  # a detector failure only means "no candidate"
        return None
    for match in matches:
        text = _strict(data, match.encoding)
        if text is not None and looks_like_text(text):
            return text
    return None


def markdown_title(text: str) -> str | None:
    """The front-matter ``title:``, or else the first ``# `` heading outside code fences."""
    end = text.find("\n")
    if (text if end < 0 else text[:end]).strip() == "---":
        for line in text.split("\n")[1:]:
            if line.strip() in ("---", "..."):
                break
            match = _FRONT_MATTER_TITLE.match(line)
            if match:
                return _title(match.group(1))
    fence = ""
    for found in _FENCE_OR_H1.finditer(text):  # only the lines that can matter
        opened = found[1]
        if opened:
            if not fence or opened.startswith(fence):
                fence = "" if fence else opened[:3]
        elif not fence:
            return _title(found[2])
    return None


def rst_title(text: str) -> str | None:
    """The first section title: a line underlined by punctuation at least as long as it."""
    lines = text.split("\n")
    for line, under in itertools.pairwise(lines):
        title = line.strip()
        if title and not _RST_ADORNMENT.match(line) and _RST_ADORNMENT.match(under) and (
            len(under.rstrip()) >= len(line.rstrip())
        ):
            return _title(title)
    return None


def looks_like_rst(text: str) -> bool:
    """True when plain text reads as reStructuredText (Sphinx keeps its sources in ``.txt``
    files): a section title underlined (or over- and underlined) with punctuation at least
    as long as the title, a directive or other explicit markup (``.. note::``,
    ``.. _label:``), or an interpreted-text role (``:ref:`sessions```).

    Only the head of the text is read. A plain text file with a title underlined this way
    is read as reStructuredText too, which only makes the title a heading."""
    sample = text[:_RST_SNIFF_CHARS]
    if _RST_EXPLICIT.search(sample) or _RST_ROLE.search(sample):
        return True
    for line, under in itertools.pairwise(sample.split("\n")):
        title = line.strip()
        if title and not _RST_ADORNMENT.match(line) and _RST_ADORNMENT.match(under):
            width = len(under.strip())
            if width >= 3 and width >= len(line.rstrip()):
                return True
    return False


def _title(raw: str) -> str | None:
    return " ".join(raw.split())[:_TITLE_CHARS] or None
