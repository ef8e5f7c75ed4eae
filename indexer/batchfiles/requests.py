"""Batch input files: content keys, `/v1/embeddings` request lines and shards under every limit.

A shard is a JSONL file in OpenAI's batch input format, one embedding input per
line, so a line's ``custom_id`` maps 1:1 to a chunk text. The same writer serves
every backend: the embedded model executes exactly the files the Batch API would.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from indexer.errors import BackendError

ENDPOINT = "/v1/embeddings"


@dataclass(frozen=True)
class BatchLimits:
    """The Batch API's limits for one embeddings batch (DESIGN.md §5), with margins.

    ``max_bytes`` keeps a margin under the documented 200 MB; ``max_shard_tokens``
    optionally caps a shard's estimated tokens so it fits an enqueued-token budget.
    """

    max_requests: int = 50_000
    max_inputs: int = 50_000
    max_bytes: int = 190_000_000
    max_input_tokens: int = 8_192
    max_request_tokens: int = 300_000
    max_shard_tokens: int | None = None


@dataclass(frozen=True)
class Request:
    """One text to embed under its content key, with its token count from the chunker."""

    custom_id: str
    text: str
    tokens: int


@dataclass(frozen=True)
class Shard:
    """A written batch input file and what it holds."""

    path: Path
    requests: int
    tokens: int
    size: int
    custom_ids: tuple[str, ...] = field(repr=False, default=())


def normalize_text(text: str) -> str:
    """The canonical form of a text to embed: NFC, no NULs, no surrounding whitespace."""
    return unicodedata.normalize("NFC", text.replace("\x00", "")).strip()


def content_key(model: str, dimensions: int | None, text: str) -> str:
    """The ``custom_id`` of a text: the same (model, dimensions, text) always has the same key.

    43 characters of URL-safe base64 (``[A-Za-z0-9_-]``) of a SHA-256 digest.
    """
    material = f"{model}\n{dimensions or ''}\n{normalize_text(text)}".encode()
    digest = hashlib.sha256(material).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def estimate_tokens(text: str, tokens: int) -> int:
    """Tokens the server will count for ``text``: the larger of tiktoken's count and bytes/4."""
    size = len(text) if text.isascii() else len(text.encode())  # isascii() reads a flag
    return max(tokens, -(-size // 4))


def request_line(request: Request, body: dict[str, object]) -> bytes:
    """One compact JSONL request line, UTF-8 (non-ASCII text is not escaped: that would
    inflate it)."""
    line = {
        "custom_id": request.custom_id,
        "method": "POST",
        "url": ENDPOINT,
        "body": {**body, "input": request.text},
    }
    return orjson.dumps(line) + b"\n"


def write_shards(
    requests: Iterable[Request],
    body: dict[str, object],
    directory: Path | None,
    prefix: str,
    limits: BatchLimits = BatchLimits(),
) -> list[Shard]:
    """Write ``requests`` into as few shard files as every limit in ``limits`` allows.

    With ``directory=None`` nothing is written: the shards are only measured (for a
    plan). Raises :class:`BackendError` for a request that no shard can hold (an
    empty text or one over the per-input token limit): the chunker never makes one.
    """
    return list(iter_shards(requests, body, directory, prefix, limits))


def iter_shards(
    requests: Iterable[Request],
    body: dict[str, object],
    directory: Path | None,
    prefix: str,
    limits: BatchLimits = BatchLimits(),
) -> Iterator[Shard]:
    """:func:`write_shards`, each shard handed on as soon as its file is complete: lines go
    straight to the file, so what is held at once is one line and one shard's keys."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    writer = _ShardWriter(body, directory, prefix, limits)
    try:
        for request in requests:
            if writer.add(request):
                yield writer.flush()
        if writer.count:
            yield writer.flush()
    finally:
        writer.discard()


class _ShardWriter:
    def __init__(
        self, body: dict[str, object], directory: Path | None, prefix: str, limits: BatchLimits
    ) -> None:
        self.body, self.directory, self.prefix, self.limits = body, directory, prefix, limits
        self.written = 0
        self.count = 0
        self._out: IO[bytes] | None = None
        self._pending: tuple[bytes, str, int] | None = None  # the line that opens the next
        self._ids: list[str] = []
        self._tokens = 0
        self._size = 0

    def add(self, request: Request) -> bool:
        """Take one request; True when the shard in progress is full and must be flushed
        before it (the request then opens the next one)."""
        limits = self.limits
        if not request.text or request.text.isspace():  # strip() would copy the text
            raise BackendError(f"refusing to embed an empty input ({request.custom_id})")
        estimate = estimate_tokens(request.text, request.tokens)
        if request.tokens > limits.max_input_tokens or estimate > limits.max_request_tokens:
            raise BackendError(
                f"input {request.custom_id} has {request.tokens} tokens, over the "
                f"{limits.max_input_tokens}-token limit per input"
            )
        line = request_line(request, self.body)
        if len(line) > limits.max_bytes:
            raise BackendError(
                f"input {request.custom_id} alone exceeds the batch file size limit")
        full = (
            self.count + 1 > min(limits.max_requests, limits.max_inputs)
            or self._size + len(line) > limits.max_bytes
            or (
                limits.max_shard_tokens is not None
                and self._tokens + estimate > limits.max_shard_tokens
            )
        )
        if full and self.count:
            self._pending = (line, request.custom_id, estimate)
            return True
        self._append(line, request.custom_id, estimate)
        return False

    def _append(self, line: bytes, custom_id: str, estimate: int) -> None:
        if self.directory is not None:
            if self._out is None:
                self._out = self._path().with_suffix(".tmp").open("wb")
            self._out.write(line)
        self._ids.append(custom_id)
        self.count += 1
        self._tokens += estimate
        self._size += len(line)

    def _path(self) -> Path:
        name = f"{self.prefix}-{self.written:04d}.jsonl"
        return self.directory / name if self.directory is not None else Path(name)

    def flush(self) -> Shard:
        """Complete the shard in progress (its file renamed into place) and start the next
        with the request that did not fit, if any."""
        path = self._path()
        if self._out is not None:
            self._out.close()
            self._out = None
            path.with_suffix(".tmp").replace(path)
        shard = Shard(path, self.count, self._tokens, self._size, tuple(self._ids))
        self.written += 1
        self._ids, self.count, self._tokens, self._size = [], 0, 0, 0
        if self._pending is not None:
            self._append(*self._pending)
            self._pending = None
        return shard

    def discard(self) -> None:
        """Remove a shard left incomplete (the requests stopped with an error)."""
        if self._out is not None:
            self._out.close()
            self._out = None
            self._path().with_suffix(".tmp").unlink(missing_ok=True)


def read_requests(path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    """Yield ``(custom_id, body)`` from a shard, validating it as the Batch API would.

    Raises :class:`BackendError` naming the line for invalid JSON, a missing or
    duplicate ``custom_id``, a wrong method or URL, or a model that changes mid-file.
    """
    seen: set[str] = set()
    model: object = None
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = orjson.loads(raw)
            except ValueError as exc:
                raise BackendError(f"{path.name} line {number}: invalid JSON ({exc})") from exc
            if not isinstance(line, dict):
                raise BackendError(f"{path.name} line {number}: invalid JSON line "
                                   "(not an object)")
            custom_id = line.get("custom_id")
            if not isinstance(custom_id, str) or not custom_id:
                raise BackendError(f"{path.name} line {number}: missing custom_id")
            if custom_id in seen:
                raise BackendError(f"{path.name} line {number}: duplicate custom_id {custom_id}")
            if line.get("method") != "POST" or line.get("url") != ENDPOINT:
                raise BackendError(f"{path.name} line {number}: not a POST to {ENDPOINT}")
            body = line.get("body")
            if not isinstance(body, dict):
                raise BackendError(f"{path.name} line {number}: missing body")
            if model is None:
                model = body.get("model")
            elif body.get("model") != model:
                raise BackendError(f"{path.name} line {number}: model differs from line 1")
            seen.add(custom_id)
            yield custom_id, body


def check_shard(path: Path, body: dict[str, object], keys: Collection[str], model: str,
                dimensions: int | None) -> str | None:
    """What is wrong with a written shard, or None: it must still be exactly what was
    planned, so check it right before it is sent anywhere.

    Beyond :func:`read_requests`'s checks, every line must carry ``body`` and an input
    whose content key is its ``custom_id`` (the text was not edited), and the lines must
    be exactly ``keys``, each once.
    """
    expected, seen = set(keys), 0
    try:
        for number, (custom_id, line_body) in enumerate(read_requests(path), start=1):
            seen += 1
            text = line_body.get("input")
            options = {k: v for k, v in line_body.items() if k != "input"}
            if custom_id not in expected:
                return f"line {number}: custom_id {custom_id} is not one of this job's chunks"
            if options != body:
                return f"line {number}: request options {options} differ from {body}"
            if not isinstance(text, str) or content_key(model, dimensions, text) != custom_id:
                return f"line {number}: the input is not the text of {custom_id}"
    except BackendError as exc:
        return str(exc).removeprefix(f"{path.name} ")
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if seen != len(expected):
        return f"{seen} line(s) for {len(expected)} chunk(s)"
    return None


_CUSTOM_ID = re.compile(rb'"custom_id"\s*:\s*"([A-Za-z0-9_-]+)"')


def line_ids(path: Path) -> dict[int, str]:
    """``{line number: custom_id}`` of a shard, without validating it (for error messages):
    a line that is not valid JSON still gives the ``custom_id`` it spells out."""
    found: dict[int, str] = {}
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                custom_id = orjson.loads(raw).get("custom_id")
            except (ValueError, AttributeError):
                match = _CUSTOM_ID.search(raw)
                custom_id = match.group(1).decode() if match else None
            if isinstance(custom_id, str):
                found[number] = custom_id
    return found
