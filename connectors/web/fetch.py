"""HTTP for the web crawl: the one module that talks to httpx.

:meth:`Fetcher.get` sends one conditional ``GET`` (``If-None-Match``,
``If-Modified-Since``) and follows redirects itself, hop by hop, only while they stay
inside the crawl. A body is streamed into the crawl's :class:`~indexer.connectors.web.
cache.Bodies` while it is hashed, and given up as soon as it passes ``max_bytes``, so a
huge page never sits in memory whole. Requests are spaced by the politeness delay across
all threads. Every outcome is a :class:`Response`, never an exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from urllib.parse import urljoin

import httpx

from indexer.connectors.web.address import normalise
from indexer.connectors.web.cache import Bodies
from indexer.connectors.web.markup import AGENT

MAX_REDIRECTS = 5


def _user_agent() -> str:
    try:
        release = version("batch-indexer")
    except PackageNotFoundError:
        release = "dev"
    return f"{AGENT}/{release} (document search indexer; honours robots.txt)"


USER_AGENT = _user_agent()


@dataclass(frozen=True)
class Response:
    """What one fetch came to.

    ``status`` is the HTTP status (0 when no answer came: ``error`` says why); ``url``
    the address that answered, after redirects. A 200 has its body in the crawl's store
    under ``digest`` (its SHA-256). ``error`` is set for every failure: a network error or
    timeout, an HTTP error status, a redirect out of the crawl, a body over the limit.
    """

    url: str
    status: int
    media_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    digest: str | None = None
    size: int = 0
    error: str | None = None
    too_large: bool = False

    @property
    def transient(self) -> bool:
        """A failure worth trying again later: no answer, a timeout, 429 or 5xx."""
        return self.status == 0 or self.status in (408, 429) or self.status >= 500


Validators = Callable[[str], tuple[str | None, str | None]]
"""The ETag and Last-Modified remembered for a URL (``(None, None)`` when none)."""


class Fetcher:
    """A pooled HTTP client for one crawl (use it as a context manager)."""

    def __init__(self, bodies: Bodies, max_bytes: int, timeout: float, delay: float,
                 concurrency: int) -> None:
        self.bodies, self.max_bytes, self.delay = bodies, max_bytes, delay
        self.client = httpx.Client(
            headers={"User-Agent": USER_AGENT}, timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=concurrency,
                                max_keepalive_connections=concurrency))
        self.requests = 0
        self._lock = threading.Lock()
        self._next = 0.0

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.client.close()

    def text(self, url: str) -> tuple[int, str | None, str | None]:
        """A small text resource (``robots.txt``): status, text, and why it failed."""
        self._pace()
        try:
            answer = self.client.get(url)
        except httpx.HTTPError as exc:
            return 0, None, _why(exc)
        return answer.status_code, answer.text[:500_000], None

    def get(self, url: str, validators: Validators,
            allowed: Callable[[str], bool]) -> Response:
        """Fetch ``url`` conditionally, following redirects while ``allowed`` says yes."""
        for _ in range(MAX_REDIRECTS + 1):
            etag, modified = validators(url)
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
            self._pace()
            try:
                with self.client.stream("GET", url, headers=headers) as answer:
                    if not answer.has_redirect_location:
                        return self._answer(url, answer)
                    target = normalise(urljoin(url, answer.headers.get("location", "")))
                    if target is None or not allowed(target):
                        return Response(url, answer.status_code,
                                        error=f"redirects to {target}, outside the crawl")
                    url = target
            except httpx.HTTPError as exc:
                return Response(url, 0, error=_why(exc))
        return Response(url, 0, error=f"more than {MAX_REDIRECTS} redirects")

    def _answer(self, url: str, answer: httpx.Response) -> Response:
        status = answer.status_code
        etag = answer.headers.get("etag")
        modified = answer.headers.get("last-modified")
        media = answer.headers.get("content-type")
        if status == 304:
            return Response(url, status, media, etag, modified)
        if not 200 <= status < 300:
            return Response(url, status, media, error=f"HTTP {status} {answer.reason_phrase}")
        declared = answer.headers.get("content-length", "")
        too_large = Response(url, status, media, etag, modified, error="page too large: over "
                             f"max_bytes ({self.max_bytes} bytes)", too_large=True)
        if declared.isdigit() and int(declared) > self.max_bytes:
            return too_large
        with self.bodies.writer() as body:
            for block in answer.iter_bytes():
                body.write(block)
                if body.size > self.max_bytes:
                    return too_large
            digest = body.keep()
        return Response(url, status, media, etag, modified, digest, body.size)

    def _pace(self) -> None:
        """Wait for this request's turn: at most one request per ``delay`` seconds."""
        with self._lock:
            self.requests += 1
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.delay
        if start > now:
            time.sleep(start - now)


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})"
    return f"{type(exc).__name__}: {exc}"
