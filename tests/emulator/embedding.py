"""The ``/v1/embeddings`` request: its checks, and the response body it earns.

The same code serves the synchronous endpoint and each line of a batch, so a body
that fails here fails the same way in both (a 4xx answer, or a 4xx error-file line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ApiError, invalid
from .options import Options
from .vectors import NATIVE_DIMENSIONS, embed, encode, estimate_tokens, supports_dimensions

Input = str | list[int]
_KNOWN_PARAMS = {"model", "input", "dimensions", "encoding_format", "user"}


@dataclass(frozen=True)
class EmbeddingRequest:
    """A checked embeddings request body."""

    model: str
    inputs: tuple[Input, ...]
    dimensions: int | None
    encoding_format: str

    @property
    def tokens(self) -> int:
        """Estimated prompt tokens, as billed and as reported in ``usage``."""
        return sum(estimate_tokens(item) for item in self.inputs)


def count_inputs(body: Any) -> int:
    """How many inputs a (possibly invalid) body carries, for the per-batch input cap."""
    raw = body.get("input") if isinstance(body, dict) else None
    if isinstance(raw, list) and raw and not all(isinstance(x, int) for x in raw):
        return len(raw)
    return 1


def estimate_body_tokens(body: Any) -> int:
    """Estimated tokens of a (possibly invalid) body, for the enqueued-token budget."""
    raw = body.get("input") if isinstance(body, dict) else None
    items = (
        raw if isinstance(raw, list) and raw and not all(isinstance(x, int) for x in raw) else [raw]
    )
    return sum(estimate_tokens(x) for x in items if isinstance(x, (str, list)))


def _inputs(raw: Any) -> tuple[Input, ...]:
    bad = invalid(
        "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        param="input",
    )
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif (
        isinstance(raw, list)
        and raw
        and all(isinstance(x, int) and not isinstance(x, bool) for x in raw)
    ):
        items = [raw]
    elif isinstance(raw, list) and raw:
        items = raw
    else:
        raise bad
    for item in items:
        if isinstance(item, str) and item:
            continue
        if (
            isinstance(item, list)
            and item
            and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
        ):
            continue
        raise bad
    return tuple(items)


def parse_request(body: Any, options: Options) -> EmbeddingRequest:
    """Check an embeddings body the way the service does; raise :class:`ApiError` if it fails."""
    if not isinstance(body, dict):
        raise invalid("We could not parse the JSON body of your request.")
    unknown = sorted(set(body) - _KNOWN_PARAMS)
    if unknown:
        raise invalid(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("you must provide a model parameter", param="model")
    if model not in NATIVE_DIMENSIONS:
        raise ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    if "input" not in body:
        raise invalid(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    inputs = _inputs(body["input"])
    if len(inputs) > options.max_inputs_per_request:
        raise invalid(
            f"'$.input' is invalid: at most {options.max_inputs_per_request} inputs per request.",
            param="input",
        )
    for item in inputs:
        tokens = estimate_tokens(item)
        if tokens > options.max_input_tokens:
            raise invalid(
                f"This model's maximum context length is {options.max_input_tokens} tokens, "
                f"however you requested {tokens} tokens ({tokens} in your prompt; "
                "0 for the completion). "
                "Please reduce your prompt; or completion length.",
                code="context_length_exceeded",
            )
    total = sum(estimate_tokens(item) for item in inputs)
    if total > options.max_request_tokens:
        raise invalid(
            f"Requested {total} tokens, max {options.max_request_tokens} tokens per request",
            param="input",
            code="max_tokens_per_request",
        )
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if not supports_dimensions(model):
            raise invalid("This model does not support specifying dimensions.", param="dimensions")
        if not isinstance(dimensions, int) or isinstance(dimensions, bool):
            raise invalid("'$.dimensions' is invalid: expected an integer.", param="dimensions")
        if not 1 <= dimensions <= NATIVE_DIMENSIONS[model]:
            raise invalid(
                f"Invalid value for 'dimensions' = {dimensions}. "
                f"Must be between 1 and {NATIVE_DIMENSIONS[model]}.",
                param="dimensions",
            )
    encoding_format = body.get("encoding_format", "float")
    if encoding_format not in ("float", "base64"):
        raise invalid(
            f"Invalid value for 'encoding_format' = {encoding_format}. "
            "Supported values are: 'float' and 'base64'.",
            param="encoding_format",
        )
    return EmbeddingRequest(model, inputs, dimensions, encoding_format)


def response_body(request: EmbeddingRequest, corrupt: str | None = None) -> dict[str, Any]:
    """The body the service answers ``request`` with.

    ``corrupt`` is a fault: ``"nan"`` puts a NaN in each vector, ``"wrong_dims"``
    drops each vector's last component.
    """
    data = []
    for index, item in enumerate(request.inputs):
        vector = embed(request.model, item, request.dimensions)
        if corrupt == "nan":
            vector[len(vector) // 2] = float("nan")
        elif corrupt == "wrong_dims":
            vector = vector[:-1]
        data.append(
            {
                "object": "embedding",
                "index": index,
                "embedding": encode(vector, request.encoding_format),
            }
        )
    tokens = request.tokens
    return {
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
