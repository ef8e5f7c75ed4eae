"""Validation of a batch input file, as the service runs it after ``batches.create``.

Structural problems fail the whole batch (``errors.data``); a body the embeddings
endpoint would refuse does not: it becomes a 4xx line of the error file later.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .embedding import count_inputs, estimate_body_tokens
from .options import Options

MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True)
class BatchLine:
    """One request of a batch input file, structurally valid."""

    number: int
    custom_id: str
    body: Any
    tokens: int
    inputs: int


@dataclass(frozen=True)
class Validation:
    """The outcome of validating an input file: its lines, its model, or what is wrong."""

    lines: tuple[BatchLine, ...]
    model: str | None
    errors: tuple[dict[str, Any], ...]

    @property
    def tokens(self) -> int:
        """Estimated tokens the batch would enqueue."""
        return sum(line.tokens for line in self.lines)


def _error(
    code: str, message: str, line: int | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"code": code, "line": line, "message": message, "param": param}


def _check_line(
    number: int, raw: bytes, endpoint: str, seen: set[str], model: str | None, pattern: str
) -> tuple[BatchLine | None, dict[str, Any] | None]:
    try:
        request = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        request = None
    if not isinstance(request, dict):
        return None, _error(
            "invalid_json_line", "This line is not parseable as valid JSON.", number
        )
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return None, _error(
            "missing_required_parameter",
            "Missing required parameter: 'custom_id'.",
            number,
            "custom_id",
        )
    if pattern and not re.fullmatch(pattern, custom_id):
        return None, _error(
            "invalid_value",
            f"Invalid 'custom_id': string does not match pattern. Expected a string that "
            f"matches the pattern '{pattern}'.",
            number,
            "custom_id",
        )
    if custom_id in seen:
        return None, _error(
            "duplicate_custom_id",
            "The custom_id for this request is a duplicate of another request. "
            "The custom_id parameter must be unique for each request in a batch.",
            number,
            "custom_id",
        )
    seen.add(custom_id)
    if request.get("method") != "POST":
        return None, _error(
            "invalid_method",
            "Only the POST method is supported for batch requests.",
            number,
            "method",
        )
    if request.get("url") != endpoint:
        return None, _error(
            "url_mismatch",
            f"The provided URL '{request.get('url')}' does not match the batch endpoint "
            f"'{endpoint}'.",
            number,
            "url",
        )
    body = request.get("body")
    line_model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(line_model, str):
        return None, _error(
            "missing_required_parameter",
            "Missing required parameter: 'body.model'.",
            number,
            "body.model",
        )
    if model is not None and line_model != model:
        return None, _error(
            "model_mismatch",
            f"The provided model '{line_model}' does not match the model '{model}' of other "
            "requests in the file. Each batch may use only one model.",
            number,
            "body.model",
        )
    return BatchLine(number, custom_id, body, estimate_body_tokens(body), count_inputs(body)), None


def validate_file(data: bytes, endpoint: str, options: Options) -> Validation:
    """Validate a batch input file against ``endpoint`` and the limits in ``options``."""
    if len(data) > options.max_file_bytes:
        message = (
            f"The input file is {len(data)} bytes; the maximum is {options.max_file_bytes} bytes."
        )
        return Validation((), None, (_error("file_too_large", message),))
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1].strip() == b"":
        raw_lines.pop()
    if not raw_lines:
        return Validation((), None, (_error("empty_file", "The batch input file is empty."),))
    if len(raw_lines) > options.max_requests:
        message = f"The batch has {len(raw_lines)} requests; the maximum is {options.max_requests}."
        return Validation((), None, (_error("too_many_tasks", message),))
    lines: list[BatchLine] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None
    for number, raw in enumerate(raw_lines, start=1):
        line, error = _check_line(
            number, raw.rstrip(b"\r"), endpoint, seen, model, options.custom_id_pattern
        )
        if error is not None:
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append(error)
            continue
        assert line is not None
        model = model or line.body["model"]
        lines.append(line)
    inputs = sum(line.inputs for line in lines)
    if not errors and inputs > options.max_inputs:
        message = f"The batch has {inputs} embedding inputs; the maximum is {options.max_inputs}."
        errors.append(_error("too_many_tasks", message))
    return Validation(tuple(lines), model, tuple(errors))
