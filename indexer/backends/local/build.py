"""The build of a local embedding model: optimise an ONNX encoder for CPU, check it, cache it.

Recipe (per source model, once per machine): onnxruntime constant folding, attention
fusion into ``com.microsoft.Attention`` (:mod:`indexer.backends.local.attention`), then dynamic
int8 quantisation with per-channel weights. The candidate must embed fixed sample
sentences like the source model does (mean cosine >= 0.99); otherwise the next,
more conservative candidate is tried, ending with the source model as it is.
Cache files are written atomically under content-derived names, so concurrent
builders or a kill never leave a file that a later load would trust.

A cached build is then *prepared* once: saved as onnxruntime's optimiser leaves it, with
its weights in a file of their own that onnxruntime maps into memory instead of reading
and copying, so a new process opens its session about three times faster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.backends.local.digests import sha256_of
from indexer.errors import ConfigError

#: Bump whenever the build below would produce a different file.
RECIPE_VERSION = "fold-fuse-int8pc/1"
#: Bump whenever :func:`prepared` would produce different files.
PREPARED_VERSION = "extended-mapped/1"
_WEIGHTS = "weights.bin"
MIN_MEAN_COSINE = 0.99
MIN_COSINE = 0.95

Encode = Callable[[Sequence[str]], list[list[int]]]

SAMPLES = (
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Le conseil municipal a voté le budget pour l'année prochaine.",
    "def merge(a, b):\n    return sorted(a + b)",
    "Shares fell sharply after the company reported lower than expected quarterly earnings.",
    "battery life of electric cars in winter",
    " ".join(["The committee reviewed the proposal, discussed its costs and benefits at length,"
              " and asked the authors to clarify how the system recovers from failures."] * 12),
)


@dataclass(frozen=True)
class BuildInfo:
    """What :func:`build` produced: ``variant`` is ``int8``, ``fp32`` (fused, not
    quantised) or ``asis`` (the source model unchanged); ``note`` says why a more
    conservative variant was chosen, and the cosines are the self-check's."""

    variant: str
    source_sha256: str
    model_sha256: str
    mean_cosine: float
    min_cosine: float
    note: str = ""


def build(source: Path, source_sha: str, encode: Encode,
          cache: Path) -> tuple[bytes | str, BuildInfo]:
    """The optimised model for ``source`` (whose sha256 is ``source_sha``): its bytes or
    its path, to load, and how it was built; from ``cache`` when it holds a valid build,
    else built now and stored there."""
    import onnxruntime

    key = hashlib.sha256("\n".join([
        source_sha, RECIPE_VERSION, onnxruntime.__version__, *SAMPLES,
        str(MIN_MEAN_COSINE), str(MIN_COSINE)]).encode()).hexdigest()[:32]
    record = cache / "models" / f"{key}.json"
    cached = _load_cached(record, source, cache)
    if cached is not None:
        return prepared(cached[0], cached[1].model_sha256, encode, cache), cached[1]
    try:
        source_bytes = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {source} ({exc.strerror or exc})") from exc
    try:
        reference_session = session(source_bytes)
    except Exception as exc:  # onnxruntime reports a bad file with its own exception types
        raise ConfigError(f"{source} is not a loadable ONNX model ({exc}); "
                          "replace or reinstall it") from exc
    reference = _embed(reference_session, encode)
    data, info = source_bytes, None
    notes: list[str] = []
    candidates = _candidates(source_bytes)
    try:
        for variant, candidate in candidates:
            cosines = (_embed(session(candidate), encode) * reference).sum(axis=1)
            mean, low = float(cosines.mean()), float(cosines.min())
            if mean >= MIN_MEAN_COSINE and low >= MIN_COSINE:
                data = candidate
                info = BuildInfo(variant, source_sha, hashlib.sha256(candidate).hexdigest(),
                                 round(mean, 5), round(low, 5), "; ".join(notes))
                break
            notes.append(f"{variant} rejected: cosine mean {mean:.4f}, min {low:.4f}")
    except Exception as exc:  # any failure of the optimisers leaves the source usable
        notes.append(f"build failed: {type(exc).__name__}: {exc}")
    finally:
        candidates.close()
    if info is None:
        info = BuildInfo("asis", source_sha, source_sha, 1.0, 1.0, "; ".join(notes))
    _store(record, data, info)
    return data, info


def session(model: bytes | str, threads: int | None = None) -> Any:
    """An onnxruntime CPU session using ``threads`` (default: :func:`usable_cpus`) per run."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or usable_cpus()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def prepared(model: str, model_sha: str, encode: Encode, cache: Path) -> str:
    """The model file at ``model`` (sha256 ``model_sha``) prepared for a quick start: its
    graph as onnxruntime optimises it (what every session would do again on opening), its
    weights in a file onnxruntime maps instead of copying. Made once per model and
    onnxruntime version under ``cache``, checked by digest on every use, and used only
    when it embeds :data:`SAMPLES` exactly as ``model`` does; else ``model`` itself."""
    import onnxruntime

    key = hashlib.sha256("\n".join([model_sha, PREPARED_VERSION,
                                    onnxruntime.__version__]).encode()).hexdigest()[:32]
    folder = cache / "models" / f"{key}.prepared"
    try:
        meta = json.loads((folder / "prepared.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        meta = None  # not made yet (another process may be making it: never delete it then)
    except (OSError, ValueError):
        meta = {}
    if meta is not None:
        try:
            if not meta["same"]:
                return model
            if all(sha256_of(folder / name, cache) == digest
                   for name, digest in meta["files"].items()):
                return str(folder / "model.onnx")
        except (OSError, KeyError, TypeError, AttributeError):
            pass
        shutil.rmtree(folder, ignore_errors=True)  # damaged: made again
    scratch = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.tmp")
    try:
        same = _prepare(model, encode, scratch)
        scratch.rename(folder)  # whole or not at all; a folder another process made wins
    except Exception:  # a full disk, onnxruntime's own errors: the build itself still works
        return model
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return str(folder / "model.onnx") if same else model


def _prepare(model: str, encode: Encode, folder: Path) -> bool:
    """Write the prepared model and its record into the new ``folder``; True when it
    embeds the samples exactly as ``model`` does."""
    import onnxruntime as ort

    folder.mkdir(parents=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(folder / "model.onnx")
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", _WEIGHTS)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    options.log_severity_level = 3
    ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    files = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
             for name in ("model.onnx", _WEIGHTS)}
    same = bool(np.array_equal(_embed(session(model, threads=1), encode),
                               _embed(session(str(folder / "model.onnx"), threads=1), encode)))
    if not same:  # keep only the verdict, so the next load does not try again
        for name in files:
            (folder / name).unlink()
    _atomic_write(folder / "prepared.json", json.dumps(
        {"recipe": PREPARED_VERSION, "same": same, "files": files}, indent=2).encode())
    return same


def _candidates(source: bytes) -> Generator[tuple[str, bytes], None, None]:
    """Candidate builds of the model ``source``, fastest first."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from indexer.backends.local.attention import fuse_attention

    _remove_stale_temporaries(Path(tempfile.gettempdir()), "indexer-build-*")
    with tempfile.TemporaryDirectory(prefix="indexer-build-") as scratch:
        folded, fused = Path(scratch) / "folded.onnx", Path(scratch) / "fused.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        options.log_severity_level = 3
        ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        model = onnx.load(str(folded))
        fuse_attention(model)
        onnx.save(model, str(fused))
        del model
        for variant, reduce_range in (("int8", False), ("int8", True)):
            quantized = Path(scratch) / f"int8-{reduce_range}.onnx"
            with _quiet_root_logger():
                quantize_dynamic(fused, quantized, weight_type=QuantType.QInt8,
                                 per_channel=True, reduce_range=reduce_range)
            yield variant, quantized.read_bytes()
        yield "fp32", fused.read_bytes()


def _embed(model_session: Any, encode: Encode) -> np.ndarray:
    return vectors(model_session, encode(SAMPLES))


def _load_cached(record: Path, source: Path, cache: Path) -> tuple[str, BuildInfo] | None:
    """The cached build ``record`` names (its path, checked against its digest), if valid."""
    try:
        meta = json.loads(record.read_text(encoding="utf-8"))
        info = BuildInfo(**meta["info"])
        if info.variant == "asis":
            return str(source), info
        built = record.parent / meta["file"]
        if sha256_of(built, cache) != info.model_sha256:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(built), info


def _store(record: Path, data: bytes, info: BuildInfo) -> None:
    """Write the model then its record; an unwritable cache only costs a rebuild next time."""
    meta: dict[str, Any] = {"info": asdict(info), "recipe": RECIPE_VERSION}
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(record.parent, ".*.tmp")
        if info.variant != "asis":
            meta["file"] = f"{info.model_sha256[:32]}.onnx"
            _atomic_write(record.parent / meta["file"], data)
        _atomic_write(record, json.dumps(meta, indent=2).encode())
    except OSError:
        pass


def _remove_stale_temporaries(directory: Path, pattern: str) -> None:
    """Delete what a killed build left behind in ``directory`` (older than an hour)."""
    for leftover in directory.glob(pattern):
        with suppress(OSError):
            if time.time() - leftover.stat().st_mtime > 3600:
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def vectors(session: Any, token_ids: Sequence[list[int]],
            pool: Executor | None = None) -> np.ndarray:
    """Embed tokenised texts with an onnxruntime ``session``, one text per run (on
    ``pool`` when given): mean-pooled, L2-normalised, float32, in the order given."""
    inputs = {i.name for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    output = "last_hidden_state" if "last_hidden_state" in names else names[0]

    def one(ids: list[int]) -> np.ndarray:
        row = np.asarray([ids], dtype=np.int64)
        feed = {"input_ids": row, "attention_mask": np.ones_like(row),
                "token_type_ids": np.zeros_like(row)}
        hidden = session.run([output], {k: v for k, v in feed.items() if k in inputs})[0][0]
        vector = np.asarray(hidden.mean(axis=0) if hidden.ndim == 2 else hidden, np.float32)
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    rows = list(pool.map(one, token_ids)) if pool else [one(ids) for ids in token_ids]
    return np.stack(rows)


def usable_cpus() -> int:
    """The CPUs this process may use, capped at 8: the embedding worker count."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Drop the quantiser's advice to run pre-processing, logged on the root logger."""

    def drop(record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()

    logging.getLogger().addFilter(drop)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(drop)
