"""Documents in a git repository at a ref: the tracked files of one commit, by blob id.

A source is ``git+<clone URL>[@ref]`` (``git+file:///srv/repos/handbook@main``,
``git+https://github.com/org/docs@v2``, ``git+ssh://git@host/org/docs``); the ref is a
branch, a tag or a full commit id, and the remote's ``HEAD`` when left out. A local
``git+file://`` repository is read in place (its committed files, never the work tree);
any other URL (or a local one with ``clone = true``) is fetched into a shallow cache in
the source's state folder (``--depth=1``: the files of the commit, no history), which
later syncs update with one ``git fetch``.

:meth:`GitSource.scan` lists the tree of the commit (``git ls-tree``, no blob read); each
file's fingerprint is its blob id. The cursor is the commit (with a digest of the
settings that decide what is listed): :meth:`GitSource.changes` compares two commits'
trees (``git diff-tree``), so a re-sync reads nothing unchanged; a rename is a path found
and a path deleted, and its text is not embedded again (its chunks' content keys are
known). A commit the cache or repository no longer holds (after a force-push and a gc)
means a full listing. :meth:`GitSource.load` reads blobs through one ``git cat-file
--batch`` process.

A ``plan`` (``context.writes`` False) never creates or fetches into the cache: it fetches
into a throwaway repository that borrows the cache's objects (``objects/info/alternates``),
so it costs what a sync's fetch would and leaves nothing behind.

**Why the git executable** rather than dulwich or pygit2: it is what users already have
configured: credential helpers, SSH keys, agent and ``~/.ssh/config``, proxies,
``insteadOf`` rewrites and ``safe.directory`` all apply unchanged, which neither library
reproduces (libgit2 needs credentials passed in code, dulwich supports a subset); it does
shallow and partial fetches over every transport, and its plumbing commands
(``ls-tree``, ``diff-tree``, ``cat-file --batch``) are stable, documented interfaces
that list a tree or read many blobs in one process. It costs a process per command
(a few milliseconds) and nothing to install. Every call to git is in this module.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import quote

from pathspec import GitIgnoreSpec

from indexer.config import SourceConfig
from indexer.connectors import formats
from indexer.connectors.contract import Changes, ConnectorContext
from indexer.connectors.filesystem import ALWAYS_SKIPPED
from indexer.connectors.formats import format_of
from indexer.connectors.gitaddress import GitAddress, address
from indexer.errors import SourceError
from indexer.records import Document, Origin, Place, Skip, SourceItem

TIP = "refs/indexer/tip"
_OID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


_BOILERPLATE = ("fatal: Could not read from remote", "Please make sure you have", "and the repo")


class _Failed(Exception):
    """A git command exited non-zero; ``str()`` is what git said (its hints left out)."""


class _Git:
    """Runs git commands in one repository (a git directory or a work tree)."""

    def __init__(self, where: Path, low_speed_seconds: float) -> None:
        self.where = where
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0",  # never wait for a password
                    "GIT_CEILING_DIRECTORIES": str(where.parent)}  # never a parent's repo
        self.settings = ("-c", "http.lowSpeedLimit=1000",
                         "-c", f"http.lowSpeedTime={max(1, round(low_speed_seconds))}")

    def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        try:
            done = subprocess.run(["git", *self.settings, "-C", str(self.where), *args],
                                  input=stdin, capture_output=True, env=self.env)
        except FileNotFoundError:
            raise SourceError("the git executable was not found; install git and put it on "
                              "PATH to index git sources") from None
        if done.returncode != 0:
            lines = [line.removeprefix("fatal: ").removeprefix("error: ") for line in
                     done.stderr.decode("utf-8", "replace").splitlines()
                     if line.strip() and not line.startswith(_BOILERPLATE)]
            raise _Failed("; ".join(lines[:3]) or f"git {args[0]} failed")
        return done.stdout

    def blobs(self) -> subprocess.Popen[bytes]:
        """A ``git cat-file --batch`` process: write ids, read ``<id> <type> <size>`` + data."""
        return subprocess.Popen(["git", "-C", str(self.where), "cat-file", "--batch"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=self.env)


class GitSource:
    """The tracked files of a repository at a ref (see the module's description).

    ``include`` and ``exclude`` are gitignore-style globs on paths inside the repository,
    as for a folder; hidden paths (a part starting with a dot) and tool folders are left
    out; files over ``max_bytes`` and binary kinds are reported as skipped.
    """

    def __init__(self, address: GitAddress, *, cache: Path | None, writes: bool,
                 include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
                 max_bytes: int = 20_000_000, timeout: float = 120.0) -> None:
        self.address, self.ref, self.local = address, address.ref, address.local
        self.cache, self.writes, self.max_bytes = cache, writes, max_bytes
        self.timeout = timeout
        self.include = GitIgnoreSpec.from_lines(include) if include else None
        self.exclude = GitIgnoreSpec.from_lines(exclude) if exclude else None
        self.settings = hashlib.sha256(repr((include, exclude, max_bytes)).encode()).hexdigest()
        self._git: _Git | None = None
        self._commit: str | None = None
        self._reader: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        """The source as configured; each document is this, ``/``, and its path."""
        return self.address.uri

    def cursor(self) -> str:
        """The commit the ref points at now, and a digest of what decides the listing."""
        return f"{self.commit()} {self.settings[:12]}"

    def commit(self) -> str:
        """The commit this sync reads (resolved, and fetched, once)."""
        if self._commit is None:
            git = self._open()
            try:
                self._commit = git.run("rev-parse", "--verify", "--end-of-options",
                                       f"{self.ref or 'HEAD'}^{{commit}}" if self.local
                                       else f"{TIP}^{{commit}}").decode().strip()
            except _Failed:
                raise SourceError(f"no branch, tag or commit "
                                  f"{self.ref or 'HEAD'!r} in the repository; check the "
                                  "@ref (`git branch --list`, `git tag --list`)") from None
        return self._commit

    def scan(self) -> Iterator[SourceItem | Skip]:
        """Every tracked file at the commit, from the tree alone (no blob is read)."""
        commit = self.commit()
        listing = self._run("ls-tree", "-r", "-z", "--full-tree", "--long", commit)
        for record in listing.split(b"\0"):
            if record:
                meta, _, raw = record.partition(b"\t")
                mode, _, oid, size = meta.decode().split()
                found = self._item(raw, mode, oid, size)
                if found is not None:
                    yield found

    def changes(self, since: str) -> Changes | None:
        """What differs between the tree of the commit ``since`` names and this one's;
        None when ``since`` is gone (force-push, gc) or the settings changed."""
        old, _, settings = since.partition(" ")
        commit = self.commit()
        if settings != self.settings[:12] or not _OID.fullmatch(old):
            return None
        if old == commit:
            return Changes((), ())
        git = self._open()
        try:
            git.run("cat-file", "-e", f"{old}^{{tree}}")
        except _Failed:
            return None
        diff = self._run("diff-tree", "-r", "-z", "--no-renames", old, commit).split(b"\0")
        found: list[tuple[bytes, str, str]] = []
        deleted: list[str] = []
        for meta, raw in zip(diff[0:-1:2], diff[1::2], strict=True):
            _, mode, _, oid, status = meta.decode().split()
            if status == "D":
                deleted.append(self._document_uri(raw))
            else:
                found.append((raw, mode, oid))
        sizes = self._sizes([oid for _, mode, oid in found if mode.startswith("100")])
        items = (self._item(raw, mode, oid, sizes.get(oid, "-")) for raw, mode, oid in found)
        return Changes(tuple(item for item in items if item is not None), tuple(deleted))

    def load(self, item: SourceItem) -> Document | Skip:
        """The blob behind ``item`` (by its id), through one long-lived ``cat-file``."""
        if self._reader is None:
            self._reader = self._open().blobs()
            weakref.finalize(self, _close, self._reader)
        try:
            data = _read_blob(self._reader, item.version or "")
        except (OSError, ValueError) as exc:  # git stopped: the next load starts another
            self._reader = None
            return Skip(item.uri, f"could not read the file from git: {exc}")
        if data is None:
            return Skip(item.uri, "blob missing from the repository")
        return formats.document(item.uri, data, item.format)

    def cite(self, place: Place, cursor: str | None) -> Origin | None:
        """Where ``place`` comes from: its path, the commit indexed (the cursor's), and
        the web link the source's ``link`` template makes of them."""
        prefix = self.uri.rstrip("/") + "/"
        if not cursor or not place.uri.startswith(prefix):
            return None
        path, commit = place.uri[len(prefix):], cursor.split(" ")[0]
        return Origin(path, commit, self.address.permalink(commit, path, place.line_start,
                                                           place.line_end))

    # -- internals -------------------------------------------------------------------

    def _open(self) -> _Git:
        """The repository to read: the local one, or the cache after a fetch."""
        if self._git is not None:
            return self._git
        if self.local is not None:
            git = _Git(self.local, self.timeout)
            try:
                git.run("rev-parse", "--git-dir")
            except _Failed as exc:
                raise SourceError(f"no git repository at {self.local} "
                                  f"({exc}); check the path") from None
        else:
            git = _Git(self._repository(), self.timeout)
            try:
                git.run("fetch", "--quiet", "--depth=1", "--no-tags", "--no-write-fetch-head",
                        self.address.remote, f"+{self.ref or 'HEAD'}:{TIP}")
            except _Failed as exc:
                if "couldn't find remote ref" in str(exc):
                    raise SourceError(f"the repository has no branch or tag {self.ref!r}; "
                                      "check the @ref (a commit needs its full id)") from None
                raise SourceError(f"the repository cannot be fetched ({exc}); check "
                                  "the URL, the network and your access to the repository "
                                  "(git's credential helpers and SSH settings apply)") from None
        self._git = git
        return git

    def _repository(self) -> Path:
        """The cache (created on first use), or for a run that writes nothing a throwaway
        repository borrowing the cache's objects."""
        cache = self.cache
        if cache is not None and self.writes:
            if not (cache / "HEAD").exists():  # made aside, so never found half-made
                cache.parent.mkdir(parents=True, exist_ok=True)
                made = self._init(Path(tempfile.mkdtemp(prefix="clone-", dir=cache.parent)))
                shutil.rmtree(cache, ignore_errors=True)  # a broken copy: fetched anew
                made.replace(cache)
            return cache
        folder = self._init(Path(tempfile.mkdtemp(prefix="indexer-git-")))
        weakref.finalize(self, shutil.rmtree, folder, True)
        if cache is not None and (cache / "HEAD").exists():
            (folder / "objects" / "info" / "alternates").write_text(
                f"{(cache / 'objects').resolve()}\n")
        return folder

    def _init(self, folder: Path) -> Path:
        try:
            _Git(folder, self.timeout).run("init", "--quiet", "--bare")
            return folder
        except _Failed as exc:
            raise SourceError(f"cannot create a git repository in "
                              f"{folder} ({exc})") from None

    def _run(self, *args: str, stdin: bytes | None = None) -> bytes:
        try:
            return self._open().run(*args, stdin=stdin)
        except _Failed as exc:
            raise SourceError(f"git {args[0]} failed ({exc}); run "
                              "`git fsck` on the repository, or remove the index's copy "
                              "to fetch it again") from None

    def _sizes(self, oids: list[str]) -> dict[str, str]:
        if not oids:
            return {}
        out = self._run("cat-file", "--batch-check=%(objectname) %(objectsize)",
                        stdin="\n".join(oids).encode() + b"\n")
        return dict(line.split(" ", 1) for line in out.decode().splitlines()
                    if not line.endswith(" missing"))

    def _document_uri(self, raw: bytes) -> str:
        return f"{self.uri.rstrip('/')}/{_path_text(raw)}"

    def _item(self, raw: bytes, mode: str, oid: str, size: str) -> SourceItem | Skip | None:
        """A listed entry as an item, a skip with its reason, or None when left out."""
        rel = _path_text(raw)
        parts = rel.split("/")
        if any(part.startswith(".") or part in ALWAYS_SKIPPED for part in parts):
            return None
        if (self.exclude is not None and self.exclude.match_file(rel)) or (
                self.include is not None and not self.include.match_file(rel)):
            return None
        uri = self._document_uri(raw)
        if mode == "160000":
            return Skip(uri, "submodule: add its repository as a source of its own",
                        withdraw=True)
        if mode == "120000":
            return Skip(uri, "symbolic link: what it points to is indexed under its own path",
                        withdraw=True)
        fmt = format_of(parts[-1])
        if fmt is None:
            return Skip(uri, "binary file")
        length = int(size) if size.isdigit() else 0
        if length == 0:
            return Skip(uri, "empty file", empty=True)
        if length > self.max_bytes:
            return Skip(uri, f"file too large: {length} bytes (max_bytes is {self.max_bytes})")
        return SourceItem(uri=uri, path=Path(rel), size=length, mtime_ns=0, format=fmt,
                          version=oid)


def _read_blob(reader: subprocess.Popen[bytes], oid: str) -> bytes | None:
    stdin, stdout = reader.stdin, reader.stdout
    assert stdin is not None and stdout is not None
    stdin.write(oid.encode() + b"\n")
    stdin.flush()
    header = stdout.readline().split()
    if len(header) != 3 or header[1] != b"blob":
        return None
    data = _read_exactly(stdout, int(header[2]))
    stdout.read(1)  # the newline after the content
    return data


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise OSError("git cat-file stopped while reading a blob")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _close(reader: subprocess.Popen[bytes]) -> None:
    if reader.stdin is not None:
        reader.stdin.close()
    reader.wait()


def _path_text(raw: bytes) -> str:
    """A path as valid UTF-8: itself when it is, else each undecodable byte as ``%XX``
    (and ``%`` as ``%25``)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return quote(raw, safe="".join(chr(b) for b in range(0x20, 0x7f) if b != 0x25))


def create(source: SourceConfig, context: ConnectorContext) -> GitSource:
    """The registry's factory: checks the source's URI and settings (no network here)."""
    cache = context.state_dir / "clone.git" if context.state_dir is not None else None
    return GitSource(address(source), cache=cache, writes=context.writes,
                     include=source.include, exclude=source.exclude,
                     max_bytes=context.config.max_bytes, timeout=context.config.timeout)
