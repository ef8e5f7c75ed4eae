"""What a crawl keeps between runs, in the source's state folder.

``crawl.json`` remembers, for each URL fetched, its validators (ETag, Last-Modified),
the digest of its body, its format, the URI it is indexed under (its canonical URL) and
the links it holds, so an unchanged page costs one ``304`` and is neither downloaded nor
parsed again. :class:`Bodies` stores the fetched bodies by digest: ``load`` reads a page
from there instead of fetching it twice. A run that may not write (``plan``) reads the
saved state and puts new bodies in a temporary folder instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One URL as last fetched: ``kind`` is ``"page"``, ``"sitemap"``, ``"other"`` or
    ``"large"`` (over ``max_bytes``: only its validators are kept, no body)."""

    uri: str
    digest: str
    kind: str
    format: str | None = None
    media_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    links: tuple[str, ...] = ()
    size: int = 0
    noindex: bool = False


def read(folder: Path | None) -> dict[str, Entry]:
    """The entries saved in ``folder`` (none when it has no readable crawl state)."""
    if folder is None:
        return {}
    try:
        saved = json.loads((folder / "crawl.json").read_text(encoding="utf-8"))
        if saved.get("version") != _VERSION:
            return {}
        return {url: Entry(**{**fields, "links": tuple(fields.get("links", ()))})
                for url, fields in saved["pages"].items()}
    except (OSError, ValueError, TypeError, KeyError):
        return {}  # a damaged cache only costs a full download


def write(folder: Path, entries: Mapping[str, Entry]) -> None:
    """Replace the saved entries atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"version": _VERSION, "pages": {url: asdict(e) for url, e in entries.items()}}
    temporary = folder / "crawl.json.tmp"
    temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    os.replace(temporary, folder / "crawl.json")


class _Body:
    """A body being written: hashed as it goes, kept under its digest or dropped."""

    def __init__(self, folder: Path, stream: IO[bytes], name: str) -> None:
        self.folder, self.stream, self.name = folder, stream, name
        self.hash = hashlib.sha256()
        self.size = 0
        self.kept = False

    def write(self, block: bytes) -> None:
        self.hash.update(block)
        self.size += len(block)
        self.stream.write(block)

    def keep(self) -> str:
        self.stream.close()
        digest = self.hash.hexdigest()
        os.replace(self.name, self.folder / digest)
        self.kept = True
        return digest


class Bodies:
    """Fetched bodies by SHA-256: in ``folder`` (created on first write), plus a
    temporary folder that replaces it for new bodies when the run may not write."""

    def __init__(self, folder: Path | None, writes: bool) -> None:
        self.saved = folder
        self.writes = writes and folder is not None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    @property
    def folder(self) -> Path:
        """Where new bodies go (a temporary folder, made on first use, when the run may
        not write)."""
        if self.writes and self.saved is not None:
            return self.saved
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="indexer-crawl-")
        return Path(self._scratch.name)

    def path(self, digest: str) -> Path:
        """Where the body ``digest`` is (new bodies first, then the saved ones)."""
        here = self.folder / digest
        if self.saved is not None and not here.exists():
            return self.saved / digest
        return here

    def has(self, digest: str) -> bool:
        """True when the body ``digest`` is stored."""
        return self.path(digest).exists()

    @contextlib.contextmanager
    def writer(self) -> Iterator[_Body]:
        """A new body; it is kept only if :meth:`_Body.keep` is called."""
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=self.folder, prefix=".part-")
        body = _Body(self.folder, os.fdopen(descriptor, "wb"), name)
        try:
            yield body
        finally:
            if not body.kept:
                body.stream.close()
                with contextlib.suppress(OSError):
                    os.unlink(name)

    def prune(self, keep: Iterable[str]) -> None:
        """Delete the saved bodies no entry refers to any more."""
        if not self.writes or self.saved is None or not self.saved.exists():
            return
        wanted = set(keep)
        for path in self.saved.iterdir():
            if path.name not in wanted:
                with contextlib.suppress(OSError):
                    path.unlink()
