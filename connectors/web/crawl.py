"""The crawl: which pages a site has now, fetched at most once each per sync.

:meth:`WebSource.scan` walks the site breadth first from the start URL (or the URLs of a
sitemap), fetching pages with conditional requests on a small pool of threads, in a
fixed order so a ``max_pages`` limit always takes the same pages. Each answer is read
as follows:

- ``200``: the body is stored; when its digest is new its links (or a sitemap's URLs)
  are read and it is yielded with its digest as version, so the survey loads it;
- ``304`` (or a body with the digest known): the links and version saved with the
  URL are used, nothing is parsed, and the survey finds the page unchanged;
- ``404``/``410``, a redirect out of the crawl, or a page no longer linked: the page
  is not yielded, so it leaves the index;
- a timeout, ``429`` or ``5xx``: a :class:`~indexer.records.Skip` keeps the indexed
  version, and the crawl goes on through the links saved for that page;
- ``401``, ``403`` and other refusals: a Skip that withdraws the page.

Requests are spaced by ``delay`` or the ``Crawl-delay`` of ``robots.txt`` if longer (at
most a minute). A start URL that cannot be fetched at all (no answer, an error status, forbidden by
``robots.txt``) raises :class:`~indexer.errors.SourceError`: nothing is deleted.
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from indexer.connectors import formats
from indexer.connectors.web import cache, markup
from indexer.connectors.web.address import Scope, origin
from indexer.connectors.web.cache import Bodies, Entry
from indexer.errors import SourceError
from indexer.records import Document, Skip, SourceItem

if TYPE_CHECKING:
    from indexer.connectors.web.fetch import Response


@dataclass(frozen=True)
class Settings:
    """A crawl's own settings (see the README's Web section)."""

    max_pages: int = 10_000
    delay: float = 0.0
    concurrency: int = 4
    timeout: float = 30.0
    max_bytes: int = 20_000_000


@dataclass(frozen=True)
class WebSource:
    """A web site crawled from ``start`` within ``scope``; crawl state in ``state_dir``."""

    start: str
    scope: Scope
    settings: Settings = Settings()
    state_dir: Path | None = None
    writes: bool = True
    configured: str = ""
    bodies: Bodies = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Lives as long as the source: the survey loads pages after the scan has ended.
        folder = self.state_dir / "bodies" if self.state_dir else None
        object.__setattr__(self, "bodies", Bodies(folder, self.writes))

    @property
    def uri(self) -> str:
        """The source's identity: its start URL as configured."""
        return self.configured or self.start

    def scan(self) -> Iterator[SourceItem | Skip]:
        """Every page in the crawl, fetched conditionally (see the module docstring)."""
        return _Crawl(self).run()

    def load(self, item: SourceItem) -> Document | Skip:
        """The page fetched by :meth:`scan`, read from the crawl's body store."""
        try:
            data = item.path.read_bytes()
        except OSError:
            return Skip(item.uri, "the crawl's copy of this page is gone; it is fetched "
                        "again on the next sync")
        return formats.document(item.uri, data, item.format)


class _Crawl:
    """One scan: the frontier, the saved and new crawl state, the robots rules."""

    def __init__(self, source: WebSource) -> None:
        self.source, self.scope, self.settings = source, source.scope, source.settings
        folder = source.state_dir
        self.old = cache.read(folder)
        self.new: dict[str, Entry] = {}
        self.bodies = source.bodies
        self.robots: dict[str, RobotFileParser] = {}
        self.seen: set[str] = set()
        self.emitted: set[str] = set()
        self.queue: deque[str] = deque()
        self.fetched = 0

    def run(self) -> Iterator[SourceItem | Skip]:
        from indexer.connectors.web.fetch import Fetcher  # httpx loads only for a crawl

        settings = self.settings
        with Fetcher(self.bodies, settings.max_bytes, settings.timeout, settings.delay,
                     settings.concurrency) as fetcher:
            self.fetcher = fetcher
            start = self.source.start
            if not self.allowed(start):
                raise SourceError(f"robots.txt of {origin(start)} forbids crawling {start}")
            self.seen.add(start)
            self.fetched += 1
            first = self.fetch(start)
            if first.error is not None and not first.too_large:
                raise SourceError(f"cannot fetch the start page {start}: {first.error}; "
                                  "check the URL and that the site is up")
            yield from self.visit(start, first)
            with ThreadPoolExecutor(settings.concurrency, "crawl") as pool:
                running: deque[tuple[str, Future[Response]]] = deque()
                try:
                    while self.queue or running:
                        while self.queue and len(running) < settings.concurrency and (
                                self.fetched < settings.max_pages):
                            url = self.queue.popleft()
                            self.fetched += 1  # counted here, so the limit is exact
                            running.append((url, pool.submit(self.fetch, url)))
                        if not running:
                            break
                        url, future = running.popleft()
                        yield from self.visit(url, future.result())
                finally:
                    for _, future in running:
                        future.cancel()
        if self.source.writes and self.source.state_dir is not None:
            cache.write(self.source.state_dir, self.new)
            self.bodies.prune(entry.digest for entry in self.new.values())

    def fetch(self, url: str) -> Response:
        return self.fetcher.get(url, self.validators, self.follows)

    def validators(self, url: str) -> tuple[str | None, str | None]:
        entry = self.old.get(url)
        if entry is None or (entry.kind != "large" and not self.bodies.has(entry.digest)):
            return None, None
        return entry.etag, entry.last_modified

    def follows(self, url: str) -> bool:
        """A redirect is followed to a URL in the crawl that robots.txt allows."""
        return url in self.scope and self.allowed(url)

    def allowed(self, url: str) -> bool:
        host = origin(url)
        rules = self.robots.get(host)
        if rules is None:
            status, text, error = self.fetcher.text(host + "/robots.txt")
            if status == 0 or status >= 500:
                raise SourceError(f"cannot fetch {host}/robots.txt: "
                                  f"{error or f'HTTP {status}'}; check that the site is up")
            rules = markup.robots_rules(text if 200 <= status < 300 else None)
            self.robots[host] = rules
            wait = rules.crawl_delay(markup.AGENT)
            if wait is not None:  # the site's own pace, when slower than ours
                self.fetcher.delay = max(self.fetcher.delay, min(float(wait), 60.0))
        return rules.can_fetch(markup.AGENT, url)

    def visit(self, url: str, answer: Response) -> Iterator[SourceItem | Skip]:
        """Yield what one answer means for the index and queue the links it leads to."""
        old = self.old.get(answer.url) or self.old.get(url)
        if answer.error is not None:
            if answer.too_large and (answer.etag or answer.last_modified):
                # its validators spare the next sync the download: a 304 says it is as big
                self.new[answer.url] = Entry(
                    uri=old.uri if old else answer.url, digest="", kind="large",
                    etag=answer.etag, last_modified=answer.last_modified,
                    links=old.links if old else ())
            if answer.transient or answer.too_large:
                if old is not None:
                    self.new.setdefault(url, old)
                    self.follow(old.links)
                if old is None or old.kind in ("page", "large"):
                    yield Skip(old.uri if old else answer.url, answer.error)
            elif answer.status not in (404, 410) and not answer.error.startswith("redirects"):
                yield Skip(old.uri if old else answer.url, answer.error, withdraw=True)
            return
        if answer.url != url and (answer.url in self.seen or answer.url in self.emitted):
            return  # a redirect to a page the crawl already has
        self.seen.add(answer.url)
        entry = self.entry(answer, self.old.get(answer.url))
        if entry is None:
            yield Skip(answer.url, "answered 304 Not Modified to a request without validators")
            return
        self.new[answer.url] = entry
        self.follow(entry.links)
        if entry.kind == "large":
            yield Skip(entry.uri, "page too large: over max_bytes "
                       f"({self.settings.max_bytes} bytes), unchanged")
        elif entry.kind == "other" or (entry.kind == "page" and entry.format is None):
            yield Skip(entry.uri, f"not a document: {entry.media_type or 'no content type'}")
        elif entry.kind == "page" and not entry.noindex and entry.uri not in self.emitted:
            self.emitted.add(entry.uri)
            self.seen.add(entry.uri)
            yield SourceItem(uri=entry.uri, path=self.bodies.path(entry.digest),
                             size=entry.size, mtime_ns=0, format=entry.format or "text",
                             version=f"sha256:{entry.digest}")

    def entry(self, answer: Response, old: Entry | None) -> Entry | None:
        """The crawl state of a page after ``answer``: read again only when it changed."""
        if answer.status == 304 or answer.digest is None:
            return old and replace(old, etag=answer.etag or old.etag,
                                   last_modified=answer.last_modified or old.last_modified)
        if old is not None and old.digest == answer.digest:
            return replace(old, etag=answer.etag, last_modified=answer.last_modified)
        body = self.bodies.path(answer.digest).read_bytes()
        name = posixpath.basename(urlsplit(answer.url).path)
        fmt = formats.format_for(answer.media_type, name)
        kind = "page"
        links: tuple[str, ...] = ()
        uri, noindex = answer.url, False
        if fmt == "html":
            found = markup.page_links(answer.url, body)
            links, noindex = found.links, found.noindex
            if found.canonical and found.canonical in self.scope:
                uri = found.canonical
        elif fmt not in ("pdf", "markdown", "rst") and markup.is_sitemap(body):
            kind, links = "sitemap", markup.sitemap_links(answer.url, body)
        return Entry(uri=uri, digest=answer.digest, kind=kind, format=fmt,
                     media_type=answer.media_type, etag=answer.etag,
                     last_modified=answer.last_modified, links=links, size=answer.size,
                     noindex=noindex)

    def follow(self, links: tuple[str, ...]) -> None:
        for link in links:
            if link in self.seen or link not in self.scope:
                continue
            self.seen.add(link)
            name = posixpath.basename(urlsplit(link).path)
            if name and formats.format_of(name) is None:
                continue  # an image, an archive: not worth a request
            if self.allowed(link):
                self.queue.append(link)
