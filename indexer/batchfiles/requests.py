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
    return max(tokens, -(-len(text.encode()) // 4))


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
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    writer = _ShardWriter(body, directory, prefix, limits)
    for request in requests:
        writer.add(request)
    return writer.close()


class _ShardWriter:
    def __init__(
        self, body: dict[str, object], directory: Path | None, prefix: str, limits: BatchLimits
    ) -> None:
        self.body, self.directory, self.prefix, self.limits = body, directory, prefix, limits
        self.shards: list[Shard] = []
        self._lines: list[bytes] = []
        self._ids: list[str] = []
        self._tokens = 0
        self._size = 0

    def add(self, request: Request) -> None:
        limits = self.limits
        if not request.text.strip():
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
            len(self._lines) + 1 > min(limits.max_requests, limits.max_inputs)
            or self._size + len(line) > limits.max_bytes
            or (
                limits.max_shard_tokens is not None
                and self._tokens + estimate > limits.max_shard_tokens
            )
        )
        if full and self._lines:
            self._flush()
        self._lines.append(line)
        self._ids.append(request.custom_id)
        self._tokens += estimate
        self._size += len(line)

    def close(self) -> list[Shard]:
        if self._lines:
            self._flush()
        return self.shards

    def _flush(self) -> None:
        name = f"{self.prefix}-{len(self.shards):04d}.jsonl"
        path = self.directory / name if self.directory is not None else Path(name)
        if self.directory is not None:
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as out:
                out.writelines(self._lines)
            tmp.replace(path)
        self.shards.append(
            Shard(path, len(self._lines), self._tokens, self._size, tuple(self._ids)))
        self._lines, self._ids, self._tokens, self._size = [], [], 0, 0


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
