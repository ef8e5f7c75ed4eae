"""Documents in a folder: a stat-only walk that decides what to index, and a loader per file.

:meth:`FilesystemSource.scan` walks the tree in sorted order, honouring ``.gitignore``
files at every level (each applies to its own subtree and deeper files win, as in
git), the source's include and exclude globs, and a fixed set of tool directories.
It follows symbolic links that stay inside the root, reports a loop instead of entering
it, and skips a link that leads outside the root unless the source allows it. It never
reads a document; :func:`load` does, and turns every per-file problem into a
:class:`~indexer.records.Skip`.

Every document is named by :func:`path_uri` of its path and read through
:attr:`~indexer.records.SourceItem.path`, so a file name that is not valid UTF-8 is
indexed like any other.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from indexer.config import Config, SourceConfig
from indexer.connectors import formats
from indexer.connectors.contract import ConnectorContext
from indexer.connectors.formats import format_of
from indexer.errors import ConfigError, SourceError
from indexer.records import Document, Skip, SourceItem

ALWAYS_SKIPPED = frozenset(
    {".git", ".indexer", ".hg", ".svn", "node_modules", "__pycache__", ".venv"}
)
"""Names never entered or indexed, wherever they occur."""

FILE_URI = "file://"
"""The prefix of the URIs of paths that are not valid UTF-8 (see :func:`path_uri`)."""


def path_uri(path: str) -> str:
    """The URI that names a file in the index: its absolute POSIX path when that is valid
    UTF-8, else a ``file://`` URI that spells the path's undecodable bytes as ``%XX``.

    Python hands over a file name whose bytes are not UTF-8 with each undecodable byte
    as a lone surrogate (``b"caf\\xe9.md"`` -> ``"caf\\udce9.md"``, PEP 383), which
    SQLite, Arrow and JSON refuse. Such a path becomes ``"file://"`` followed by the path
    with ``%`` written ``%25`` and each undecodable byte ``%XX``; every other character
    stays as it is (``file:///notes/caf%E9.md``). The mapping is lossless and one-to-one:

    - a valid-UTF-8 path is its own URI, so existing indexes keep their URIs;
    - those URIs start with ``/`` and the escaped ones with ``file:``, so they never meet;
    - ``urllib.parse.unquote_to_bytes(uri.removeprefix("file://"))`` gives back the exact
      bytes of the path.

    Nothing reads a file through its URI: :class:`~indexer.records.SourceItem` carries the
    real path.
    """
    if path.isascii():
        return path
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        text = os.fsencode(path).decode("utf-8", "surrogateescape").replace("%", "%25")
        return FILE_URI + _UNDECODABLE.sub(lambda m: f"%{ord(m[0]) - 0xDC00:02X}", text)
    return path


_UNDECODABLE = re.compile("[\udc80-\udcff]")


_DirKey = tuple[int, int]
_Ignores = tuple[tuple[str, GitIgnoreSpec], ...]


@dataclass(frozen=True)
class FilesystemSource:
    """A folder (or a single file) of documents.

    ``include`` and ``exclude`` are gitignore-style globs relative to ``root``: when
    ``include`` is non-empty only matching files are taken; ``exclude`` always wins.
    Files larger than ``max_bytes`` are reported as skipped. Hidden files and folders
    (names starting with a dot, such as ``.env``) are left out unless ``hidden`` is set,
    so secrets kept in dotfiles are never sent to an embedding service. A symbolic link
    whose target lies outside the root (``notes/key -> ~/.ssh/id_rsa``) is reported as
    skipped unless ``follow_links`` is set; links that stay inside the root are always
    followed. ``skip_dirs`` (absolute paths) are never entered: the index's own
    directory, whatever its name.
    """

    root: Path
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_bytes: int = Config.max_bytes
    hidden: bool = False
    skip_dirs: tuple[Path, ...] = ()
    follow_links: bool = False

    @property
    def uri(self) -> str:
        """The source's identity in the ledger: its root's absolute POSIX path."""
        return self.root.resolve().as_posix()

    def load(self, item: SourceItem) -> Document | Skip:
        """Read one listed file (see :func:`load`)."""
        return load(item)

    def scan(self) -> Iterator[SourceItem | Skip]:
        """List every document under the root, in sorted path order, from ``stat`` alone.

        Yields a :class:`~indexer.records.Skip` for what is found but cannot be indexed
        (symlink loop or link outside the root, unreadable directory or file, too large,
        empty, binary by name).
        Raises :class:`~indexer.errors.SourceError` when the root is missing or is
        neither a directory nor a file.
        """
        absolute = Path(os.path.abspath(self.root))
        try:
            st = os.stat(absolute)
        except OSError as exc:
            raise SourceError(f"source {self.root} cannot be read ({exc.strerror or exc}); check "
                              "that it exists and is readable") from exc
        if stat.S_ISDIR(st.st_mode):
            yield from _Walk(self, absolute.resolve()).run((st.st_dev, st.st_ino))
        elif stat.S_ISREG(st.st_mode):
            path = (absolute.parent.resolve() / absolute.name).as_posix()
            yield _item(path, path_uri(path), st, self.max_bytes)
        else:
            raise SourceError(f"source {self.root} is neither a directory nor a file")


def load(item: SourceItem) -> Document | Skip:
    """Read one file and extract its text; a per-file problem becomes a Skip with its reason
    (marked ``empty`` when the file holds no text)."""
    try:
        data = item.path.read_bytes()
    except FileNotFoundError:
        return Skip(item.uri, "file vanished since the scan")
    except PermissionError:
        return Skip(item.uri, "unreadable: permission denied")
    except OSError as exc:
        return Skip(item.uri, f"unreadable: {exc.strerror or exc}")
    return formats.document(item.uri, data, item.format)


def _item(path: str, uri: str, st: os.stat_result, max_bytes: int) -> SourceItem | Skip:
    """Decide from a file's name and stat alone whether it is worth loading."""
    fmt = format_of(os.path.basename(path))
    if not stat.S_ISREG(st.st_mode):
        return Skip(uri, "not a regular file")
    if fmt is None:
        return Skip(uri, formats.skipped_kind(os.path.basename(path)))
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
        self.root_path = os.fspath(root)
        self.root_prefix = self.root_uri + "/"
        self.max_bytes = source.max_bytes
        self.hidden = source.hidden
        self.follow_links = source.follow_links
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
        return path_uri(f"{self.root_uri}/{rel}" if rel else self.root_uri or "/")

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
            outside = self.outside(entry)
            if outside is not None:
                yield Skip(self.uri(rel), outside, withdraw=True)
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
        outside = self.outside(entry)
        if outside is not None:
            yield Skip(self.uri(rel), outside, withdraw=True)
            return
        yield _item(entry.path, self.uri(rel), st, self.max_bytes)

    def outside(self, entry: os.DirEntry[str]) -> str | None:
        """Why ``entry`` is not followed: a symbolic link to a place outside the root
        (``None`` when it is no link, stays inside, or such links are allowed)."""
        if self.follow_links or not entry.is_symlink():
            return None
        target = os.path.realpath(entry.path)
        if target == self.root_path or target.startswith(self.root_prefix):
            return None
        return (f"symbolic link to {path_uri(target)} outside the source; "
                "pass --follow-links to index it")

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


def create(source: SourceConfig, context: ConnectorContext) -> FilesystemSource:
    """The registry's factory: a folder (or file) source with its globs and settings."""
    if source.options:
        raise ConfigError(f"source {source.path}: unknown setting(s) "
                          f"{sorted(source.options)} for a folder source")
    root = Path(source.path.removeprefix("file://"))
    return FilesystemSource(root, include=source.include, exclude=source.exclude,
                            max_bytes=context.config.max_bytes, skip_dirs=context.skip_dirs,
                            follow_links=source.follow_links)
