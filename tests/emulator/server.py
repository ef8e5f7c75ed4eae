"""The HTTP face of the emulator: routing, auth, injected faults, and the control API.

``/v1/...`` answers like api.openai.com for Files, Batches and Embeddings;
``/_control/...`` (no auth) lets tests read counters, inject faults, change
settings and move the clock. One lock serialises every state change.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from .api import Api
from .errors import ApiError, invalid
from .faults import FaultBook, RouteFault
from .multipart import parse_form
from .options import Options
from .state import Store

CHUNK = 1 << 20
API_ROUTES = (
    ("POST", r"/v1/files", "files.create"),
    ("GET", r"/v1/files", "files.list"),
    ("GET", r"/v1/files/(?P<id>[^/]+)", "files.retrieve"),
    ("DELETE", r"/v1/files/(?P<id>[^/]+)", "files.delete"),
    ("GET", r"/v1/files/(?P<id>[^/]+)/content", "files.content"),
    ("POST", r"/v1/batches", "batches.create"),
    ("GET", r"/v1/batches", "batches.list"),
    ("GET", r"/v1/batches/(?P<id>[^/]+)", "batches.retrieve"),
    ("POST", r"/v1/batches/(?P<id>[^/]+)/cancel", "batches.cancel"),
    ("POST", r"/v1/embeddings", "embeddings.create"),
)
STATUS_ERRORS = {
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    404: ("No such object: it was not found.", "invalid_request_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


class EmulatorServer(ThreadingHTTPServer):
    """A threading HTTP server holding the emulator's state, faults and lock."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], options: Options, blob_dir: Path, snapshot: Path | None
    ) -> None:
        super().__init__(address, Handler)
        self.lock = threading.Lock()
        self.faults = FaultBook()
        self.api = Api(Store(blob_dir, snapshot), options, self.faults)
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        """The API's base URL, ending in ``/v1``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def stop(self) -> None:
        """Stop serving from any thread (not the serving one); the caller then saves and exits."""
        self.stopping.set()
        threading.Thread(target=self.shutdown, daemon=True).start()


def _fault_error(fault: RouteFault) -> ApiError:
    message, kind, code = STATUS_ERRORS.get(fault.status, ("Injected error.", "server_error", None))
    headers = {} if fault.retry_after_ms is None else {"retry-after-ms": str(fault.retry_after_ms)}
    return ApiError(fault.status, message, type=kind, code=code, headers=headers)


class Handler(BaseHTTPRequestHandler):
    """One connection's requests."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: EmulatorServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Log to stderr (the fixture sends it to a file)."""
        print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(
        self,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        fraction: float = 1.0,
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
        self.send_header("openai-processing-ms", "1")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data[: int(len(data) * fraction)])
        if fraction < 1.0:
            self.close_connection = True

    def _send_error(self, error: ApiError) -> None:
        self._send(error.status, error.body(), error.headers)

    def _stream(self, handle: IO[bytes], size: int, fraction: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
        self.end_headers()
        left = int(size * fraction)
        with handle:
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
        if fraction < 1.0:
            self.close_connection = True

    def _inflict(self, fault: RouteFault) -> None:
        if fault.action == "error":
            self._send_error(_fault_error(fault))
            return
        if fault.action == "hang":
            deadline = time.monotonic() + fault.seconds
            while time.monotonic() < deadline and not self.server.stopping.wait(0.05):
                pass
        self.close_connection = True

    def _handle(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
            body = self._read_body()
            query = dict(parse_qsl(url.query))
            if url.path.startswith("/_control/"):
                self._control(method, url.path.removeprefix("/_control/"), body)
                return
            for route_method, pattern, route in API_ROUTES:
                match = re.fullmatch(pattern, url.path)
                if match and route_method == method:
                    self._api(route, match.groupdict().get("id", ""), body, query)
                    return
            self._send_error(ApiError(404, f"Invalid URL ({method} {url.path})"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _refusal(self) -> ApiError | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        wanted = self.server.api.options.api_key
        if wanted and token.strip() != wanted:
            return ApiError(
                401,
                f"Incorrect API key provided: {token.strip()[:3]}***. You can find your API key "
                "at https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return None

    def _api(self, route: str, object_id: str, body: bytes, query: dict[str, str]) -> None:
        refusal = self._refusal()
        if refusal is not None:
            self._send_error(refusal)
            return
        server = self.server
        with server.lock:
            calls = server.api.store.counters.calls
            calls[route] = calls.get(route, 0) + 1
        before = server.faults.take_route(route, after=False)
        if before is not None and before.action != "truncate":
            self._inflict(before)
            return
        try:
            with server.lock:
                server.api.lifecycle.advance_all()
                try:
                    result = self._dispatch(route, object_id, body, query)
                finally:
                    server.api.store.save()
        except ApiError as error:
            self._send_error(error)
            return
        after = server.faults.take_route(route, after=True)
        if after is not None and after.action != "truncate":
            if route == "files.content":
                result[0].close()
            self._inflict(after)
            return
        fraction = next((f.fraction for f in (before, after) if f is not None), 1.0)
        if route == "files.content":
            self._stream(result[0], result[1], fraction)
        else:
            self._send(200, result, fraction=fraction)

    def _dispatch(self, route: str, object_id: str, body: bytes, query: dict[str, str]) -> Any:
        api = self.server.api
        if route == "files.create":
            return api.create_file(parse_form(self.headers.get("Content-Type", ""), body))
        if route == "files.list":
            return api.list_files(query)
        if route == "files.retrieve":
            return api.retrieve_file(object_id)
        if route == "files.delete":
            return api.delete_file(object_id)
        if route == "files.content":
            path, size = api.file_content(object_id)
            return path.open("rb"), size
        if route == "batches.list":
            return api.list_batches(query)
        if route == "batches.retrieve":
            return api.retrieve_batch(object_id)
        if route == "batches.cancel":
            return api.cancel_batch(object_id)
        payload = _json(body)
        return (
            api.create_batch(payload)
            if route == "batches.create"
            else api.create_embeddings(payload)
        )

    def _control(self, method: str, action: str, body: bytes) -> None:
        server = self.server
        api = server.api
        try:
            payload = _json(body) if body else {}
            with server.lock:
                api.lifecycle.advance_all()
                result = self._control_action(method, action, payload)
                api.store.save()
        except (ValueError, TypeError) as error:
            self._send_error(invalid(str(error)))
            return
        except ApiError as error:
            self._send_error(error)
            return
        self._send(200, result)
        if action == "shutdown":
            server.stop()

    def _control_action(self, method: str, action: str, payload: Any) -> Any:
        api = self.server.api
        store = api.store
        if (method, action) == ("GET", "health"):
            return {"ok": True, "url": self.server.url}
        if (method, action) == ("GET", "stats"):
            batches = {b.id: b.status for b in store.batches.values()}
            return {**store.counters.report(), "batches": batches, "files": len(store.files)}
        if (method, action) == ("GET", "faults"):
            return self.server.faults.describe()
        if (method, action) == ("POST", "faults"):
            for batch_id, faults in self.server.faults.apply(payload):
                if batch_id not in store.batches:
                    raise ValueError(f"unknown batch {batch_id!r}")
                store.batches[batch_id].faults = faults
            return self.server.faults.describe()
        if (method, action) == ("DELETE", "faults"):
            self.server.faults.clear()
            return self.server.faults.describe()
        if (method, action) == ("GET", "config"):
            return asdict(api.options)
        if (method, action) == ("POST", "config"):
            api.options = api.options.updated(payload)
            return asdict(api.options)
        if (method, action) == ("POST", "clock"):
            store.clock_offset += float(payload.get("advance", 0))
            api.lifecycle.advance_all()
            return {"now": store.now(), "offset": store.clock_offset}
        if (method, action) == ("POST", "shutdown"):
            return {"ok": True}
        raise ApiError(404, f"Invalid URL ({method} /_control/{action})")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise invalid("We could not parse the JSON body of your request.") from None
