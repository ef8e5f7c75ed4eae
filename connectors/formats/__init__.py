"""Format extraction shared by every connector: bytes in, a Document (or a Skip) out.

A connector names a document's format from its media type (an HTTP ``Content-Type``,
an object's metadata) and its name (:func:`format_for`), then hands the bytes to
:func:`document`, which extracts the title and the text segments (Markdown,
reStructuredText, HTML, PDF, SVG, code, plain text) and turns every problem into a
:class:`~indexer.records.Skip` with its reason. Plain text that reads as
reStructuredText (a Sphinx project's ``.txt`` files) is read as such; a file that is no
text says what it is (:func:`skipped_kind`, "image (.png): no text to index").
"""

from __future__ import annotations

import hashlib

from indexer.connectors.formats.kinds import (
    BINARY_SUFFIXES,
    skipped_kind,
    sniffed_kind,
    suffix_of,
)
from indexer.connectors.formats.text import (
    ExtractionError,
    NoText,
    decode,
    looks_binary,
    looks_like_rst,
    markdown_title,
    normalise,
    rst_title,
)
from indexer.records import Document, Segment, Skip

__all__ = ["BINARY_SUFFIXES", "document", "format_for", "format_of", "skipped_kind"]

_MARKUP = {
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".rst": "rst",
    ".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf", ".txt": "text",
    ".svg": "svg",
}
_CODE = frozenset(
    {
        ".py", ".pyi", ".pyx", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".rs",
        ".java", ".kt", ".kts", ".scala", ".groovy", ".gradle", ".c", ".h", ".cc", ".cpp",
        ".cxx", ".hpp", ".hh", ".hxx", ".cs", ".fs", ".m", ".mm", ".swift", ".rb", ".php",
        ".pl", ".pm", ".lua", ".r", ".jl", ".dart", ".ex", ".exs", ".erl", ".hrl", ".hs", ".ml",
        ".mli", ".clj", ".cljs", ".el", ".lisp", ".scm", ".zig", ".nim", ".v", ".sv", ".vhd",
        ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd", ".sql", ".toml", ".yaml",
        ".yml", ".json", ".jsonc", ".json5", ".xml", ".ini", ".cfg", ".conf", ".properties",
        ".proto", ".graphql", ".gql", ".css", ".scss", ".sass", ".less", ".vue", ".svelte",
        ".tf", ".hcl", ".cmake", ".mk", ".dockerfile", ".nix", ".vim", ".ipynb"
    }
)
_CODE_NAMES = frozenset(
    {
        "makefile", "gnumakefile", "dockerfile", "containerfile", "justfile", "rakefile",
        "gemfile", "vagrantfile", "jenkinsfile", "procfile", "cmakelists.txt"
    }
)
_XML = frozenset(
    {
        ".xsd", ".xsl", ".xslt", ".wsdl", ".rss", ".atom", ".plist", ".kml", ".gpx", ".xaml",
        ".resx", ".csproj", ".vbproj", ".fsproj", ".vcxproj", ".nuspec", ".drawio", ".opml",
        ".xlf", ".xliff", ".tmx", ".dae", ".xul", ".rdf", ".owl", ".mathml", ".mml"
    }
)
"""Suffixes of XML text formats besides ``.xml``: indexed as markup, like code."""


def format_of(name: str) -> str | None:
    """The format a file name implies; ``None`` for a known binary kind.

    Unknown kinds are ``"text"``: :func:`load` still refuses them when the content is binary.
    """
    if name.lower() in _CODE_NAMES:
        return "code"
    suffix = suffix_of(name)
    if suffix in BINARY_SUFFIXES:
        return None
    if suffix in _MARKUP:
        return _MARKUP[suffix]
    return "code" if suffix in _CODE or suffix in _XML else "text"


_MEDIA = {
    "text/markdown": "markdown", "text/x-markdown": "markdown", "text/x-rst": "rst",
    "text/prs.fallenstein.rst": "rst", "text/html": "html", "application/xhtml+xml": "html",
    "application/pdf": "pdf", "text/plain": "text", "image/svg+xml": "svg",
    "application/xml": "code", "text/xml": "code",
}


def format_for(media_type: str | None, name: str) -> str | None:
    """The format of a document served as ``media_type`` (parameters ignored) under
    ``name``: the media type decides when it is specific, else the name does.
    ``text/plain`` and unknown or missing types defer to the name."""
    kind = (media_type or "").split(";")[0].strip().lower()
    by_type = _MEDIA.get(kind) or ("code" if kind.endswith("+xml") else None)
    if by_type and by_type != "text":
        return by_type
    return format_of(name)


def document(uri: str, data: bytes, fmt: str) -> Document | Skip:
    """The document in ``data`` (a file's bytes, in format ``fmt``), or why it has none."""
    if not data:
        return Skip(uri, "empty file", empty=True)
    try:
        extracted = _extract(fmt, data)
    except NoText as exc:
        return Skip(uri, str(exc), empty=True)
    except (UnicodeError, ExtractionError) as exc:
        return Skip(uri, str(exc))
    except RecursionError:
        return Skip(uri, "could not extract text: structure nested too deeply")
    except Exception as exc:  # one strange file must not stop a crawl
        return Skip(uri, f"could not extract text: {type(exc).__name__}: {exc}")
    if isinstance(extracted, str):
        return Skip(uri, extracted)
    title, segments = extracted
    if not any(segment.text.strip() for segment in segments):
        return Skip(uri, "empty after extraction", empty=True)
    return Document(uri=uri, title=title or "", segments=segments,
                    content_hash=hashlib.sha256(data).hexdigest())


def _extract(fmt: str, data: bytes) -> tuple[str | None, tuple[Segment, ...]] | str:
    """Title and segments of a document's bytes, or the reason it has none."""
    # pypdf and BeautifulSoup are imported on first use: together they take ~0.2 s
    # to import, which a sync that finds nothing changed never needs.
    if fmt == "pdf":
        from indexer.connectors.formats import pdf

        pdf_text = pdf.extract(data)
        return pdf_text.title, pdf_text.pages
    if looks_binary(data):
        return sniffed_kind(data)
    if fmt == "html":
        from indexer.connectors.formats import html

        page = html.extract(normalise(decode(data, html.declared_encoding(data))))
        return page.title, page.sections
    text = normalise(decode(data))
    if fmt == "svg":
        from indexer.connectors.formats import svg

        image = svg.extract(text)
        return image.title, (Segment(text="\n".join(image.lines), format="text",
                                     line_start=image.line_start),)
    if fmt == "text" and looks_like_rst(text):  # Sphinx sources are often .txt files
        fmt = "rst"
    title = markdown_title(text) if fmt == "markdown" else rst_title(text) if fmt == "rst" else None
    return title, (Segment(text=text, format=fmt, line_start=1),)
