"""``indexer serve``: search over HTTP with JSON, and the only module that imports the web
framework (FastAPI on uvicorn).

``GET /search?q=…`` takes every parameter of :meth:`Index.search` as a query parameter
(``k``, ``mode``, ``where``, …) and answers the array ``search --json`` prints;
``GET /status`` answers ``status --json``; ``GET /healthz`` says the process is up.
The schema is at ``/openapi.json``, a docs page at ``/docs``.

It binds 127.0.0.1 unless told otherwise; any other address needs a bearer token,
which every request but ``/healthz`` and the docs must then carry
(``Authorization: Bearer TOKEN``), and so does every request on loopback when a token is
given.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError, create_model

from indexer.errors import ConfigError, IndexerError
from indexer.serve.searcher import Searcher, parameters

DEFAULT_HOST = "127.0.0.1"
TOKEN_ENV = "INDEXER_TOKEN"
_BEARER = HTTPBearer(auto_error=False, description="the token given to `indexer serve`")


def is_loopback(host: str) -> bool:
    """True when ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(searcher: Searcher, token: str | None = None) -> FastAPI:
    """The HTTP application answering from ``searcher``; ``token``, when given, is
    required as a bearer token on every request but ``/healthz`` and the docs."""
    app = FastAPI(title="batch-indexer", summary="Semantic search over an indexer store.",
                  version=_version())

    @app.exception_handler(IndexerError)
    async def refused(request: Request, exc: IndexerError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/healthz", summary="The server is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # no token: no dependency at all (resolving even an empty one costs ~0.2 ms a request)
    guarded = [] if token is None else [Depends(_authorised(token))]

    @app.get("/status", summary="What the index holds (as `indexer status --json`)",
             dependencies=guarded)
    def status() -> dict[str, Any]:
        return searcher.status()

    endpoint, described = _search_endpoint(searcher)
    app.add_api_route("/search", endpoint, methods=["GET"],
                      summary="Passages that answer q (as `indexer search --json`)",
                      dependencies=guarded, response_class=JSONResponse,
                      response_model=list[dict[str, Any]], openapi_extra=described)
    return app


def _authorised(token: str) -> Callable[..., Awaitable[None]]:
    """The dependency that refuses a request without ``token`` as its bearer token."""

    async def authorised(  # async: checked on the event loop, not on a pooled thread
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "a bearer token is required (Authorization: Bearer …)",
                                headers={"WWW-Authenticate": "Bearer"})

    return authorised


def _search_endpoint(searcher: Searcher) -> tuple[Callable[..., Awaitable[Response]],
                                                  dict[str, Any]]:
    """``GET /search``: ``q`` plus every parameter of :meth:`Index.search`, and the
    OpenAPI parameters that describe those.

    FastAPI reads ``q``; the others are read and checked by one model made from the
    signature, as FastAPI would check them (a bad value is a 422 in its form), because
    its handling costs ~30 µs a parameter a request. The search waits on the searcher's
    worker from the event loop (no thread of the framework's pool in between) and sends
    the JSON rendered there, as is (the hits are plain dicts: re-encoding and validating
    them cost more than the rest of the request)."""
    declared = parameters()
    names = [p.name for p in declared]
    fields: dict[str, Any] = {p.name: (p.annotation, p.default) for p in declared}
    model = create_model("SearchParameters", **fields)  # other parameters are ignored

    async def search(request: Request, q: str = Query(min_length=1,
                                                      description="the query text")
                     ) -> Response:
        try:
            given = model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise RequestValidationError([
                {**error, "loc": ("query", *error["loc"])}
                for error in exc.errors(include_url=False)]) from None
        options = {name: getattr(given, name) for name in names}
        body = await asyncio.wrap_future(searcher.submit(
            lambda index: json.dumps(searcher.render(index, q, options)).encode()))
        return Response(body, media_type="application/json")

    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    described = [{"name": name, "in": "query", "required": name in required, "schema": field}
                 for name, field in schema["properties"].items()]
    return search, {"parameters": described}


def serve(path: str | Path | None, host: str = DEFAULT_HOST, port: int = 0,
          token: str | None = None, ready: Callable[[str], None] = lambda url: None,
          store: str | None = None) -> None:
    """Serve the index at ``path`` (or only its search store at the object-storage URI
    ``store``: ``/status`` is then refused) until interrupted; ``ready`` is told the
    bound URL (``port`` 0 picks a free port). Binding anything but loopback without a
    ``token`` is refused."""
    if not token and not is_loopback(host):
        raise ConfigError(f"binding {host} lets other machines search this index: give a "
                          f"token with --token or {TOKEN_ENV} (clients send "
                          "`Authorization: Bearer TOKEN`), or bind 127.0.0.1")
    searcher = Searcher(path, store)
    try:
        searcher.warm()
        listener = _bind(host, port)
        bound_host, bound_port = listener.getsockname()[:2]
        server = uvicorn.Server(uvicorn.Config(create_app(searcher, token or None),
                                               log_level="warning", access_log=False))
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        ready(f"http://{shown}:{bound_port}")
        server.run(sockets=[listener])
    finally:
        searcher.close()


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another "
                          "--port or --host") from None
    listener.listen(128)
    return listener


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("batch-indexer")
    except PackageNotFoundError:
        return "0"
