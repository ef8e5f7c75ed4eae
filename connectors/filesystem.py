"""Documents in a folder: a stat-only walk that decides what to index, and a loader per file.

:meth:`FilesystemSource.scan` walks the tree in sorted order, honouring ``.gitignore``
files at every level (each applies to its own subtree and deeper files win, as in
git), the source's include and exclude globs, and a fixed set of tool directories.
It follows symlinked directories but reports a loop instead of entering it. It never
reads a document; :func:`load` does, and turns every per-file problem into a
:class:`~indexer.records.Skip`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from connectors.text import (
    ExtractionError,
    NoText,
    decode,
    looks_binary,
    markdown_title,
    normalise,
    rst_title,
)
from indexer.errors import SourceError
from indexer.records import Document, Segment, Skip, SourceItem

ALWAYS_SKIPPED = frozenset(
    {".git", ".indexer", ".hg", ".svn", "node_modules", "__pycache__", ".venv"}
)
"""Names never entered or indexed, wherever they occur."""

_MARKUP = {
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".rst": "rst",
    ".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf", ".txt": "text",
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
BINARY_SUFFIXES = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff",
        ".psd", ".heic", ".avif", ".svg", ".eps", ".raw", ".cr2", ".nef", ".mp3", ".wav",
        ".flac", ".ogg", ".oga", ".m4a", ".aac", ".opus", ".mp4", ".m4v", ".mov", ".avi",
        ".mkv", ".webm", ".wmv", ".flv", ".mpg", ".mpeg", ".zip", ".tar", ".gz", ".tgz", ".bz2",
        ".tbz2", ".xz", ".txz", ".zst", ".lz", ".lz4", ".lzma", ".7z", ".rar", ".cab", ".jar",
        ".war", ".ear", ".whl", ".egg", ".apk", ".deb", ".rpm", ".dmg", ".iso", ".img", ".msi",
        ".exe", ".dll", ".so", ".dylib", ".o", ".obj", ".a", ".lib", ".ko", ".elf", ".bin",
        ".class", ".pyc", ".pyo", ".pyd", ".wasm", ".ttf", ".otf", ".woff", ".woff2",
        ".eot", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp",
        ".epub", ".sqlite", ".sqlite3", ".db", ".mdb", ".parquet", ".arrow", ".feather",
        ".avro", ".orc", ".lance", ".npy", ".npz", ".pkl", ".pickle", ".h5", ".hdf5", ".onnx",
        ".pt", ".pth", ".ckpt", ".safetensors", ".gguf", ".tflite", ".pb", ".ds_store", ".swp",
        ".swo"
    }
)
"""Suffixes of files skipped as binary without being read."""


def format_of(name: str) -> str | None:
    """The format a file name implies; ``None`` for a known binary kind.

    Unknown kinds are ``"text"``: :func:`load` still refuses them when the content is binary.
    """
    lower = name.lower()
    if lower in _CODE_NAMES:
        return "code"
    suffix = os.path.splitext(lower)[1] or (lower if lower.startswith(".") else "")
    if suffix in BINARY_SUFFIXES:
        return None
    if suffix in _MARKUP:
        return _MARKUP[suffix]
    return "code" if suffix in _CODE else "text"


_DirKey = tuple[int, int]
_Ignores = tuple[tuple[str, GitIgnoreSpec], ...]


@dataclass(frozen=True)
class FilesystemSource:
    """A folder (or a single file) of documents.

    ``include`` and ``exclude`` are gitignore-style globs relative to ``root``: when
    ``include`` is non-empty only matching files are taken; ``exclude`` always wins.
    Files larger than ``max_bytes`` are reported as skipped. Hidden files and folders
    (names starting with a dot, such as ``.env``) are left out unless ``hidden`` is set,
    so secrets kept in dotfiles are never sent to an embedding service. ``skip_dirs``
    (absolute paths) are never entered: the index's own directory, whatever its name.
    """

    root: Path
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_bytes: int = 20_000_000
    hidden: bool = False
    skip_dirs: tuple[Path, ...] = ()

    def scan(self) -> Iterator[SourceItem | Skip]:
        """List every document under the root, in sorted path order, from ``stat`` alone.

        Yields a :class:`~indexer.records.Skip` for what is found but cannot be indexed
        (symlink loop, unreadable directory or file, too large, empty, binary by name).
        Raises :class:`~indexer.errors.SourceError` when the root is missing or is
        neither a directory nor a file.
        """
        absolute = Path(os.path.abspath(self.root))
        try:
            st = os.stat(absolute)
        except OSError as exc:
            raise SourceError(f"source {self.root} cannot be read: {exc.strerror or exc}") from exc
        if stat.S_ISDIR(st.st_mode):
            yield from _Walk(self, absolute.resolve()).run((st.st_dev, st.st_ino))
        elif stat.S_ISREG(st.st_mode):
            path = (absolute.parent.resolve() / absolute.name).as_posix()
            yield _item(path, path, st, self.max_bytes)
        else:
            raise SourceError(f"source {self.root} is neither a directory nor a file")


def load(item: SourceItem) -> Document | Skip:
    """Read one document and extract its text; a per-file problem becomes a Skip with its reason
    (marked ``empty`` when the file holds no text)."""
    try:
        data = item.path.read_bytes()
    except FileNotFoundError:
        return Skip(item.uri, "file vanished since the scan")
    except PermissionError:
        return Skip(item.uri, "unreadable: permission denied")
    except OSError as exc:
        return Skip(item.uri, f"unreadable: {exc.strerror or exc}")
    if not data:
        return Skip(item.uri, "empty file", empty=True)
    try:
        extracted = _extract(item.format, data)
    except NoText as exc:
        return Skip(item.uri, str(exc), empty=True)
    except (UnicodeError, ExtractionError) as exc:
        return Skip(item.uri, str(exc))
    except RecursionError:
        return Skip(item.uri, "could not extract text: structure nested too deeply")
    except Exception as exc:  # one strange file must not stop a crawl
        return Skip(item.uri, f"could not extract text: {type(exc).__name__}: {exc}")
    if isinstance(extracted, str):
        return Skip(item.uri, extracted)
    title, segments = extracted
    if not any(segment.text.strip() for segment in segments):
        return Skip(item.uri, "empty after extraction", empty=True)
    return Document(
        uri=item.uri,
        title=title or "",
        segments=segments,
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def _extract(fmt: str, data: bytes) -> tuple[str | None, tuple[Segment, ...]] | str:
    """Title and segments of a file's bytes, or the reason it has none."""
    # pypdf and BeautifulSoup are imported on first use: together they take ~0.2 s
    # to import, which a sync that finds nothing changed never needs.
    if fmt == "pdf":
        from connectors import pdf

        pdf_text = pdf.extract(data)
        return pdf_text.title, pdf_text.pages
    if looks_binary(data):
        return "binary file"
    if fmt == "html":
        from connectors import html

        page = html.extract(normalise(decode(data, html.declared_encoding(data))))
        return page.title, page.sections
    text = normalise(decode(data))
    title = markdown_title(text) if fmt == "markdown" else rst_title(text) if fmt == "rst" else None
    return title, (Segment(text=text, format=fmt, line_start=1),)


def _item(path: str, uri: str, st: os.stat_result, max_bytes: int) -> SourceItem | Skip:
    """Decide from a file's name and stat alone whether it is worth loading."""
    fmt = format_of(os.path.basename(path))
    if not stat.S_ISREG(st.st_mode):
        return Skip(uri, "not a regular file")
    if fmt is None:
        return Skip(uri, "binary file")
    if st.st_size == 0:
        return Skip(uri, "empty file", empty=True)
    if st.st_size > max_bytes:
        return Skip(uri, f"file too large: {st.st_size} bytes (max_bytes is {max_bytes})")
    if not os.access(path, os.R_OK):
        return Skip(uri, "unreadable: permission denied")
    return SourceItem(
        uri=uri, path=Path(path), size=st.st_size, mtime_ns=st.st_mtime_ns, format=fmt
    )


@dataclass
class _Frame:
    """One directory on the walk's current path: what is left of its sorted entries."""

    rel: str
    key: _DirKey
    ignores: _Ignores
    entries: Iterator[os.DirEntry[str]]


class _Walk:
    """Depth-first, sorted walk with an explicit stack (deep trees need no recursion)."""

    def __init__(self, source: FilesystemSource, root: Path) -> None:
        self.root = root
        self.root_uri = root.as_posix().rstrip("/")
        self.max_bytes = source.max_bytes
        self.hidden = source.hidden
        self.skip_dirs = frozenset(p.resolve() for p in source.skip_dirs)
        self.include = GitIgnoreSpec.from_lines(source.include) if source.include else None
        self.exclude = GitIgnoreSpec.from_lines(source.exclude) if source.exclude else None
        self.stack: list[_Frame] = []

    def run(self, root_key: _DirKey) -> Iterator[SourceItem | Skip]:
        skip = self.enter(self.root, "", root_key, ())
        if skip is not None:
            yield skip
        while self.stack:
            entry = next(self.stack[-1].entries, None)
            if entry is None:
                self.stack.pop()
            else:
                yield from self.visit(entry, self.stack[-1])

    def uri(self, rel: str) -> str:
        return f"{self.root_uri}/{rel}" if rel else self.root_uri or "/"

    def enter(self, path: Path, rel: str, key: _DirKey, ignores: _Ignores) -> Skip | None:
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            return Skip(self.uri(rel), f"unreadable directory: {exc.strerror or exc}")
        if any(entry.name == ".gitignore" for entry in entries):
            spec = _gitignore(path / ".gitignore")
            if spec is not None:
                ignores = (*ignores, (rel, spec))
        self.stack.append(_Frame(rel=rel, key=key, ignores=ignores, entries=iter(entries)))
        return None

    def visit(self, entry: os.DirEntry[str], parent: _Frame) -> Iterator[SourceItem | Skip]:
        if entry.name in ALWAYS_SKIPPED or (not self.hidden and entry.name.startswith(".")):
            return
        rel = f"{parent.rel}/{entry.name}" if parent.rel else entry.name
        try:
            st = entry.stat()
        except OSError as exc:
            if self.ignored(rel, False, parent.ignores):
                return
            if exc.errno == errno.ENOENT and entry.is_symlink():
                yield Skip(self.uri(rel), "broken symlink")
            elif exc.errno == errno.ELOOP:
                yield Skip(self.uri(rel), "symlink loop")
            else:
                yield Skip(self.uri(rel), f"unreadable: {exc.strerror or exc}")
            return
        if stat.S_ISDIR(st.st_mode):
            if self.ignored(rel, True, parent.ignores):
                return
            if self.skip_dirs and Path(entry.path).resolve() in self.skip_dirs:
                return
            key = (st.st_dev, st.st_ino)
            looped = next((frame for frame in self.stack if frame.key == key), None)
            if looped is not None:
                yield Skip(self.uri(rel), f"symlink loop: leads back to {self.uri(looped.rel)}")
                return
            skip = self.enter(Path(entry.path), rel, key, parent.ignores)
            if skip is not None:
                yield skip
            return
        if self.ignored(rel, False, parent.ignores):
            return
        if self.include is not None and not self.include.match_file(rel):
            return
        yield _item(entry.path, self.uri(rel), st, self.max_bytes)

    def ignored(self, rel: str, is_dir: bool, ignores: _Ignores) -> bool:
        """Excluded by the source, or by the deepest ``.gitignore`` with a matching rule."""
        path = f"{rel}/" if is_dir else rel
        if self.exclude is not None and self.exclude.match_file(path):
            return True
        for base, spec in reversed(ignores):
            verdict = spec.check_file(path[len(base) + 1 :] if base else path).include
            if verdict is not None:
                return verdict
        return False


def _gitignore(path: Path) -> GitIgnoreSpec | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return GitIgnoreSpec.from_lines(lines)
