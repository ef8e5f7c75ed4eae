"""Web addresses: one spelling per page, and the part of a site a crawl covers.

:func:`normalise` resolves a link against its page and writes it one way (lower-case
scheme and host, no default port, no fragment, dot segments resolved, percent escapes in
upper case), so each page is fetched and indexed once. :class:`Scope` says which of
them the crawl takes: by default the start URL's origin under its folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def normalise(link: str, base: str | None = None) -> str | None:
    """``link`` (resolved against ``base``) as an absolute http(s) URL in one spelling, or
    ``None`` for anything else (``mailto:``, ``javascript:``, a malformed address)."""
    try:
        absolute = urljoin(base, link.strip()) if base else link.strip()
        parts = urlsplit(absolute)
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    host = f"[{host}]" if ":" in host else host.lower()
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _escapes(quote(_dot_segments(parts.path or "/"), safe=_PATH_SAFE))
    query = _escapes(quote(parts.query, safe=_QUERY_SAFE))
    return urlunsplit((scheme, netloc, path, query, ""))


def _escapes(text: str) -> str:
    return _ESCAPE.sub(lambda m: m[0].upper(), text)


def _dot_segments(path: str) -> str:
    """``path`` with ``.`` and ``..`` segments resolved (RFC 3986, 5.2.4)."""
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for n, segment in enumerate(segments):
        last = n == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/".join(out) or "/"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a normalised URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def folder(url: str) -> str:
    """The prefix a start URL covers: itself when it ends in ``/``, its folder when its
    last segment names a file (``guide/index.html``), else the path as a folder
    (``/guide`` covers ``/guide/…``)."""
    parts = urlsplit(url)
    path = parts.path
    if not path.endswith("/"):
        last = path.rsplit("/", 1)[-1]
        path = path.rsplit("/", 1)[0] + "/" if "." in last else path + "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True)
class Scope:
    """The URLs a crawl takes: under one of ``allow`` (URL prefixes) and none of ``deny``.

    The start URL itself is always taken.
    """

    start: str
    allow: tuple[str, ...]
    deny: tuple[str, ...] = ()

    @classmethod
    def around(cls, start: str, allow: tuple[str, ...] = (),
               deny: tuple[str, ...] = ()) -> Scope:
        """The scope of a crawl from ``start``: ``allow`` and ``deny`` prefixes are URLs
        or paths on the start's origin (``/docs/``); no ``allow`` means the start's folder."""
        def absolute(prefix: str) -> str:
            url = normalise(prefix, start)
            if url is None:
                raise ValueError(f"{prefix!r} is not an http(s) URL or a path")
            return url

        allowed = tuple(absolute(p) for p in allow) or (folder(start),)
        return cls(start, allowed, tuple(absolute(p) for p in deny))

    def __contains__(self, url: object) -> bool:
        if not isinstance(url, str):
            return False
        if any(url.startswith(prefix) for prefix in self.deny):
            return False
        return url == self.start or any(url.startswith(prefix) for prefix in self.allow)
