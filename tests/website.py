"""A small web site on 127.0.0.1 for crawl tests and benchmarks: a real HTTP server in a
thread that answers conditional requests and counts every request it gets."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Page:
    """What the server answers for one path: a body, or a status (and a redirect)."""

    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None
    etag: bool = True
    last_modified: str | None = None
    length: bool = True


@dataclass
class Site:
    """The pages by path, and the log of requests: (host, path, status)."""

    pages: dict[str, Page] = field(default_factory=dict)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    down: bool = False
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, path: str) -> list[int]:
        """The statuses answered for ``path``, in order."""
        with self.lock:
            return [status for _, p, status in self.log if p == path]

    def hosts(self) -> set[str]:
        with self.lock:
            return {host for host, _, _ in self.log}


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:16] + '"'


class _Handler(BaseHTTPRequestHandler):
    site: Site
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        """Control routes for a server in another process: ``/_edit/<path>`` replaces a
        page's body, ``/_log`` answers the request log (and clears it)."""
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        site = self.site
        if self.path.startswith("/_edit/"):
            site.pages[self.path.removeprefix("/_edit")].body = body
            body = b"{}"
        else:
            with site.lock:
                body, site.log[:] = json.dumps(site.log).encode(), []
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        site = self.site
        page = site.pages.get(self.path.split("?")[0])
        status, headers, body = self.answer(page)
        with site.lock:
            site.log.append((self.headers.get("Host", ""), self.path, status))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def answer(self, page: Page | None) -> tuple[int, dict[str, str], bytes]:
        if self.site.down:
            return 503, {"Content-Length": "0"}, b""
        if page is None:
            return 404, {"Content-Length": "9"}, b"not found"
        if page.location is not None:
            return page.status, {"Location": page.location, "Content-Length": "0"}, b""
        if page.status != 200:
            return page.status, {"Content-Length": "5"}, b"error"
        headers = {"Content-Type": page.content_type}
        if page.length:
            headers["Content-Length"] = str(len(page.body))
        else:
            headers["Connection"] = "close"
            self.close_connection = True
        if page.etag:
            headers["ETag"] = _etag(page.body)
            if self.headers.get("If-None-Match") == headers["ETag"]:
                return 304, {"ETag": headers["ETag"]}, b""
        if page.last_modified:
            headers["Last-Modified"] = page.last_modified
            if self.headers.get("If-Modified-Since") == page.last_modified:
                return 304, {}, b""
        return 200, headers, page.body


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up early (a crawl refusing a huge page) is no error


@contextmanager
def serve(site: Site) -> Iterator[Site]:
    """Serve ``site`` on 127.0.0.1 (its ``url`` set) until the block ends."""
    handler = type("Handler", (_Handler,), {"site": site})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
