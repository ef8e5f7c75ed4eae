"""A git source's address: the clone URL and ref its URI names, its own settings (checked
when the source is set up, before any network), and the permalinks its ``link`` makes.

``git+<clone URL>[@ref]``: the ref follows the last ``@`` in the URL's path (a user name
before the host, as in ``git+ssh://git@host/org/docs``, is not one) and may itself hold
slashes (``@feature/x``). A ``[[sources]]`` entry may add:

``link``
    a web permalink template for search hits, with :data:`LINK_FIELDS`, e.g.
    ``"https://github.com/org/docs/blob/{commit}/{path}#L{line_start}-L{line_end}"``;
    for a place without lines (a PDF page) the ``#`` anchor is left out.
``clone``
    ``true`` to fetch a local ``git+file://`` repository into the index's cache rather
    than read it in place (a repository on a slow network share).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from urllib.parse import quote, unquote, urlsplit

from indexer.config import SourceConfig
from indexer.errors import ConfigError

OPTIONS = {"link": str, "clone": bool}
"""The settings a git source's ``[[sources]]`` entry may hold besides the common ones."""

LINK_FIELDS = frozenset({"commit", "path", "line_start", "line_end", "ref"})
"""What a ``link`` template may use (``{path}`` comes URL-quoted)."""

_BAD_REF = re.compile(r"(^[-/.])|\.\.|@\{|[\x00-\x20\x7f~^:?*\[\\]|(/|\.lock|\.)$")


@dataclass(frozen=True)
class GitAddress:
    """Where a git source's files come from.

    ``uri`` is the source as configured (its documents are ``uri/path``), ``remote`` the
    URL git fetches from, ``ref`` the branch, tag or commit (None: the remote's HEAD),
    ``local`` the repository read in place when there is one, ``link`` the permalink
    template.
    """

    uri: str
    remote: str
    ref: str | None = None
    local: Path | None = None
    link: str | None = None

    def permalink(self, commit: str, path: str, line_start: int | None,
                  line_end: int | None) -> str | None:
        """The web link to ``path`` at ``commit`` (and its lines), or None without a
        template."""
        if self.link is None:
            return None
        template = self.link
        if line_start is None and "{line_" in template:
            anchor = template.rfind("#", 0, template.index("{line_"))
            template = template[:anchor] if anchor >= 0 else template
        end = line_end if line_end is not None else line_start
        return template.format(commit=commit, path=quote(path), ref=self.ref or "HEAD",
                               line_start="" if line_start is None else line_start,
                               line_end="" if end is None else end)


def split_uri(location: str) -> tuple[str, str | None]:
    """A source URI's clone URL and ref: ``git+https://h/r@v2`` is ``("https://h/r", "v2")``."""
    url = location.removeprefix("git+")
    _, at, ref = urlsplit(url).path.rpartition("@")
    if not at:
        return url, None
    return url[: len(url) - len(ref) - 1], ref or None


def address(source: SourceConfig) -> GitAddress:
    """The address of a configured git source; a bad setting is a :class:`ConfigError`
    naming it."""
    unknown = sorted(set(source.options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"source {_redact(source.path)}: unknown setting(s) {unknown} for "
                          f"a git source (it knows {', '.join(OPTIONS)})")
    for key, kind in OPTIONS.items():
        if key in source.options and not isinstance(source.options[key], kind):
            raise ConfigError(f"source {_redact(source.path)}: {key} must be a "
                              f"{kind.__name__}, not {source.options[key]!r}")
    link: str | None = source.options.get("link")
    if link is not None:
        _check_template(source.path, link)
    remote, ref = split_uri(source.path)
    parts = urlsplit(remote)
    if parts.password:
        raise ConfigError(f"source {_redact(source.path)} has a password in its URL, which "
                          "would be stored with every document; use a git credential "
                          "helper (`git config credential.helper`) instead")
    if ref is not None and _BAD_REF.search(ref):
        raise ConfigError(f"source {source.path}: {ref!r} is not a valid branch, tag or "
                          "commit name")
    local = None
    if (parts.scheme == "file" and parts.netloc in ("", "localhost")
            and not source.options.get("clone", False)):
        local = Path(unquote(parts.path))
    return GitAddress(source.path, remote, ref, local, link)


def _check_template(location: str, link: str) -> None:
    try:
        names = {name for _, name, _, _ in Formatter().parse(link) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"source {location}: link template {link!r}: {exc}") from None
    if names - LINK_FIELDS:
        raise ConfigError(f"source {location}: link template uses "
                          f"{sorted(names - LINK_FIELDS)}; it may use "
                          f"{', '.join('{' + f + '}' for f in sorted(LINK_FIELDS))}")


def _redact(location: str) -> str:
    return re.sub(r"(//[^/:@]*):[^/@]*@", r"\1:***@", location)
