"""Batch output and error files: write them (embedded backend) and parse them (every backend).

Output lines look like ``{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}``. Error lines come in two shapes: ``response: null`` with
``error: {code, message}``, or a 4xx/5xx ``response`` with the error inside its body.
A line may also carry a non-200 status with ``error: null``. Files are read line by
line, and vectors gathered a group at a time into one array, so memory does not grow
with their size.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pybase64

RETRYABLE_CODES = frozenset(
    {"batch_expired", "batch_cancelled", "rate_limit_exceeded", "server_error", "timeout"}
)


@dataclass(frozen=True)
class EmbeddingResult:
    """The outcome of one request line: a vector, or an error and whether a retry may help."""

    custom_id: str
    vector: np.ndarray | None = None
    error: str | None = None
    retryable: bool = False


@dataclass(frozen=True)
class ResultGroup:
    """Consecutive lines of one file: the vectors of ``keys`` as the rows of one float32
    array, and the lines that carry an error instead (in file order within each)."""

    keys: list[str]
    vectors: np.ndarray
    failures: list[EmbeddingResult] = field(default_factory=list)


def encode_vector(vector: np.ndarray) -> str:
    """A float32 vector as the API's base64 ``encoding_format`` (little-endian float32)."""
    return pybase64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def write_success(
    out: IO[bytes], number: int, custom_id: str, model: str, vector: np.ndarray, tokens: int
) -> None:
    """Append one successful output line in the Batch API's format (base64 vector)."""
    line = {
        "id": f"batch_req_{number:08d}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": f"req_{number:08d}",
            "body": {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": encode_vector(vector)}],
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        },
        "error": None,
    }
    out.write(orjson.dumps(line) + b"\n")


def write_failure(out: IO[bytes], number: int, custom_id: str, code: str, message: str) -> None:
    """Append one error line (``response: null`` shape) in the Batch API's format."""
    line = {
        "id": f"batch_req_{number:08d}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }
    out.write(orjson.dumps(line) + b"\n")


def read_results(path: Path, dimensions: int) -> Iterator[EmbeddingResult]:
    """Parse an output or error file line by line into results, checking every vector.

    A malformed line without a readable ``custom_id`` cannot be attributed and is
    skipped; the caller's reconciliation finds its chunk missing and requeues it.
    """
    for custom_id, outcome in _lines(path, dimensions):
        if isinstance(outcome, EmbeddingResult):
            yield outcome
            continue
        vector = np.frombuffer(outcome, dtype="<f4").astype(np.float32)
        if not np.isfinite(vector).all():
            yield _not_finite(custom_id)
        else:
            yield EmbeddingResult(custom_id, vector=vector)


def read_groups(path: Path, dimensions: int, size: int) -> Iterator[ResultGroup]:
    """:func:`read_results` ``size`` lines at a time, the vectors of each group decoded
    straight into one ``(n, dimensions)`` float32 array (a group holds at most ``size``
    vectors and failures together)."""
    keys: list[str] = []
    failures: list[EmbeddingResult] = []
    row = 4 * dimensions
    vectors = np.empty((size, dimensions), dtype="<f4")
    rows = vectors.data.cast("B")
    for custom_id, outcome in _lines(path, dimensions):
        if isinstance(outcome, EmbeddingResult):
            failures.append(outcome)
        else:
            at = len(keys) * row
            rows[at:at + row] = outcome
            keys.append(custom_id)
        if len(keys) + len(failures) >= size:
            yield _group(keys, vectors, failures)
            keys, failures = [], []
            vectors = np.empty((size, dimensions), dtype="<f4")
            rows = vectors.data.cast("B")
    if keys or failures:
        yield _group(keys, vectors, failures)


def _group(keys: list[str], vectors: np.ndarray, failures: list[EmbeddingResult]
           ) -> ResultGroup:
    held = vectors[:len(keys)]
    finite = np.isfinite(held).all(axis=1)
    if not finite.all():
        failures.extend(_not_finite(k) for k, ok in zip(keys, finite, strict=True) if not ok)
        keys = [k for k, ok in zip(keys, finite, strict=True) if ok]
        held = held[finite]
    return ResultGroup(keys, held.astype(np.float32, copy=False), failures)


def _not_finite(custom_id: str) -> EmbeddingResult:
    return EmbeddingResult(custom_id, error="vector contains NaN or infinity", retryable=True)


_BLOCK = 512 << 10
"""Bytes read from a file at a time (lines are split out of these blocks). Under the C
heap's mmap threshold (1 MiB while the store is loaded, see ``heap``): a block of 1 MiB
was mapped, faulted in and unmapped again each time (57k lines of 1,536 dimensions read
in 1.5 CPU-s instead of 1.2)."""
_EMBEDDING = re.compile(rb'"embedding"[ \t\r\n]*:[ \t\r\n]*"')
"""Where a line's vector text opens: compact (``"embedding":"``) or with JSON's optional
spaces (``"embedding": "``, as Python's ``json.dumps`` writes it)."""


def _lines(path: Path, dimensions: int) -> Iterator[tuple[str, bytes | EmbeddingResult]]:
    """Each attributable line's ``custom_id`` and either its vector's ``dimensions * 4``
    little-endian bytes (not yet checked for NaN) or the error it stands for."""
    for block, start, end in _spans(path):
        found = _quick(block, start, end, dimensions)
        if found is not None:
            yield found
            continue
        raw = block[start:end]
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:  # the standard parser also reads NaN and Infinity (then refused)
                line = json.loads(raw)
            except ValueError:
                continue  # a blank or truncated line: reconciled as missing
        if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
            yield line["custom_id"], _outcome(line, dimensions)


def _spans(path: Path) -> Iterator[tuple[bytes, int, int]]:
    """Where each line of the file is (without its newline): ``(block, start, end)``.
    The file is read in large blocks and its lines are not copied out of them; only a
    line that straddles two blocks is put together."""
    with path.open("rb", buffering=0) as handle:
        carry: list[bytes] = []
        while block := handle.read(_BLOCK):
            start = 0
            if carry:
                start = block.find(b"\n") + 1
                if not start:
                    carry.append(block)
                    continue
                line = b"".join((*carry, block[:start - 1]))
                carry = []
                yield line, 0, len(line)
            while (end := block.find(b"\n", start)) >= 0:
                yield block, start, end
                start = end + 1
            if start < len(block):
                carry.append(block[start:])
        if carry:
            line = b"".join(carry)
            yield line, 0, len(line)


def _quick(block: bytes, start: int, end: int, dimensions: int) -> tuple[str, bytes] | None:
    """A successful base64 line read without turning its vector into a string: the
    vector's text is decoded where it lies, and the rest of the line (that string left
    empty) parsed and checked as any line is. None when the line is anything else (it
    is then read the ordinary way)."""
    found = _EMBEDDING.search(block, start, end)
    if found is None:
        return None
    opened = found.end()
    closed = block.find(b'"', opened, end)
    if closed < 0:
        return None
    view = memoryview(block)
    try:  # the alphabet excludes quotes, backslashes and control characters
        data = pybase64.b64decode(view[opened:closed], validate=True)
        line = orjson.loads(b"".join((view[start:opened], view[closed:end])))
    except (ValueError, binascii.Error):  # orjson.JSONDecodeError is a ValueError
        return None
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
        return None
    try:
        if line["response"]["body"]["data"][0]["embedding"] != "":
            return None  # the text cut out was not this vector's
    except (KeyError, IndexError, TypeError):
        return None
    outcome = _outcome(line, dimensions, data)
    return (line["custom_id"], outcome) if isinstance(outcome, bytes) else None


def _outcome(line: dict[str, Any], dimensions: int, vector: bytes | None = None
             ) -> bytes | EmbeddingResult:
    """What a parsed line stands for; ``vector``: its embedding, already decoded."""
    custom_id = line["custom_id"]
    response = line.get("response")
    error = line.get("error")
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        return EmbeddingResult(
            custom_id, error=f"{code}: {error.get('message', '')}".strip(),
            retryable=code in RETRYABLE_CODES,
        )
    if not isinstance(response, dict):
        return EmbeddingResult(custom_id, error="line has neither response nor error",
                               retryable=True)
    status = response.get("status_code")
    body = response.get("body") or {}
    if status != 200:
        detail = body.get("error", {}) if isinstance(body, dict) else {}
        message = detail.get("message", "") if isinstance(detail, dict) else str(detail)
        retryable = not isinstance(status, int) or status == 429 or status >= 500
        return EmbeddingResult(custom_id, error=f"HTTP {status}: {message}".strip(),
                               retryable=retryable)
    try:
        data = _decode(body["data"][0]["embedding"]) if vector is None else vector
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error) as exc:
        return EmbeddingResult(custom_id, error=f"unreadable embedding ({exc})", retryable=True)
    if len(data) != 4 * dimensions:
        return EmbeddingResult(
            custom_id, error=f"vector has {len(data) // 4} dimensions, expected {dimensions}",
            retryable=True,
        )
    return data


def _decode(embedding: object) -> bytes:
    """The vector's little-endian float32 bytes, from base64 or a list of numbers."""
    if isinstance(embedding, str):
        data = pybase64.b64decode(embedding, validate=True)
        if len(data) % 4:
            raise ValueError(f"{len(data)} bytes is not a whole number of float32 values")
        return data
    if isinstance(embedding, list):
        vector = np.asarray(embedding, dtype="<f4")
        if vector.ndim != 1:
            raise ValueError("embedding is not a flat list of numbers")
        return vector.tobytes()
    raise ValueError(f"embedding is a {type(embedding).__name__}")
