"""Fake embeddings: deterministic unit vectors, and the byte-based token estimate.

A vector depends only on (model, input): the same text gives the same vector in a
batch, in a re-run and in a synchronous call. For ``text-embedding-3-*`` a shorter
``dimensions`` is the full vector cut and renormalised, as the real models do.
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np

NATIVE_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
"""The embedding models the emulator serves and their full vector length."""


def supports_dimensions(model: str) -> bool:
    """Whether the model accepts a ``dimensions`` parameter."""
    return model.startswith("text-embedding-3-")


def estimate_tokens(item: str | list[int]) -> int:
    """The service's token estimate for one input: a quarter token per UTF-8 byte, rounded up."""
    if isinstance(item, list):
        return len(item)
    return (len(item.encode("utf-8")) + 3) // 4


def input_key(item: str | list[int]) -> str:
    """A stable hash naming one input (text or token array) in the emulator's counters."""
    raw = (
        item.encode("utf-8")
        if isinstance(item, str)
        else ("tokens:" + ",".join(map(str, item))).encode()
    )
    return hashlib.sha256(raw).hexdigest()


def embed(model: str, item: str | list[int], dimensions: int | None = None) -> np.ndarray:
    """The unit float32 vector the emulator returns for ``item`` under ``model``."""
    native = NATIVE_DIMENSIONS[model]
    seed = hashlib.sha256(f"{model}\0{input_key(item)}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:16], "little"))
    vector = rng.standard_normal(native)[: dimensions or native]
    return (vector / np.linalg.norm(vector)).astype("<f4")


def encode(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """The ``embedding`` field: a float list, or base64 of little-endian float32."""
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector.tolist()]
