"""Batch output and error files: write them (embedded backend) and parse them (every backend).

Output lines look like ``{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}``. Error lines come in two shapes: ``response: null`` with
``error: {code, message}``, or a 4xx/5xx ``response`` with the error inside its body.
A line may also carry a non-200 status with ``error: null``. Files are read line by
line so memory does not grow with their size.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

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


def encode_vector(vector: np.ndarray) -> str:
    """A float32 vector as the API's base64 ``encoding_format`` (little-endian float32)."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


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
    out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")


def write_failure(out: IO[bytes], number: int, custom_id: str, code: str, message: str) -> None:
    """Append one error line (``response: null`` shape) in the Batch API's format."""
    line = {
        "id": f"batch_req_{number:08d}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }
    out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")


def read_results(path: Path, dimensions: int) -> Iterator[EmbeddingResult]:
    """Parse an output or error file line by line into results, checking every vector.

    A malformed line without a readable ``custom_id`` cannot be attributed and is
    skipped; the caller's reconciliation finds its chunk missing and requeues it.
    """
    with path.open("rb") as lines:
        for raw in lines:
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a truncated last line: reconciled as missing
            if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
                yield _result(line, dimensions)


def _result(line: dict[str, Any], dimensions: int) -> EmbeddingResult:
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
        embedding = body["data"][0]["embedding"]
        vector = _decode(embedding)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        return EmbeddingResult(custom_id, error=f"unreadable embedding ({exc})", retryable=True)
    if vector.shape != (dimensions,):
        return EmbeddingResult(
            custom_id, error=f"vector has {vector.shape[0]} dimensions, expected {dimensions}",
            retryable=True,
        )
    if not np.isfinite(vector).all():
        return EmbeddingResult(custom_id, error="vector contains NaN or infinity", retryable=True)
    return EmbeddingResult(custom_id, vector=vector)


def _decode(embedding: object) -> np.ndarray:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding, validate=True), dtype="<f4").astype(
            np.float32
        )
    if isinstance(embedding, list):
        return np.asarray(embedding, dtype=np.float32)
    raise ValueError(f"embedding is a {type(embedding).__name__}")
