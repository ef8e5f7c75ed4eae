"""Search latency at 10k and 100k passages: warm (Python API, server) and a cold CLI process.

Builds an index with the embedded model from a few small documents, then adds N synthetic
passages straight into its LanceDB table (embedding 100k passages with the model would
take most of an hour on two cores): each passage is a sentence of random words from a
small vocabulary; its vector is a normalised mix of two of 512 real embeddings of such
sentences plus noise, so the vectors are spread like real ones. A share of the rows
(``--hidden``, 2%) has no places, like vectors paid for but not yet published. Then
``optimize()`` builds the full-text index and, past ``vector_index_rows``, the vector
index, as a sync would.

Prints, per size, p50/p95 of wall time and the process CPU time per query for:
warm ``Index.search`` (vector and hybrid, query embedding included), warm HTTP through
``indexer serve`` (one keep-alive connection; CPU: the server process's threads, from
``/proc``), and ``indexer search`` in a new process (wall and user+sys CPU of the child).
On a shared machine wall times swell with the load; CPU times much less.

    python benchmarks/search_latency.py [--sizes 10000 100000] [--queries 50] [--cold 5]

The server and the CLI run as ``python -m indexer`` with ``PYTHONSAFEPATH=1``: the code
they time is the code this script imports (``PYTHONPATH=OTHER python -P ...`` times
another checkout), never the working folder's copy ``-m`` would put first.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from indexer import Index
from indexer.records import Place, StoreRow
from indexer.state.layout import Layout
from indexer.state.store import Store

WORDS = (
    "batch", "index", "vector", "search", "model", "token", "chunk", "ledger", "store",
    "shard", "budget", "cost", "retry", "expire", "cancel", "upload", "download", "parse",
    "ingest", "publish", "flush", "compact", "cluster", "window", "latency", "server",
    "client", "query", "answer", "passage", "heading", "document", "folder", "config",
    "mirror", "schema", "column", "filter", "score", "rank", "fusion", "keyword", "meaning",
    "network", "socket", "thread", "cache")
QUERIES = ("how do I cancel a batch", "token budget for a shard", "rank fusion of keyword "
           "and vector scores", "where is the ledger stored", "compact the store",
           "server latency under load", "retry an expired upload", "filter by column")

CORPUS_QUERIES = ("how do I read a file line by line", "parse command line arguments",
                  "compress data with gzip", "format a date as a string",
                  "run a function in a thread pool", "regular expression match groups",
                  "set a timeout on a socket", "encode a dictionary as json")
"""Questions about the standard library, asked of passages from ``--corpus``."""
PASSAGE_WORDS = 100
"""Words in a passage taken from ``--corpus`` (a 200-token chunk holds about as many)."""

SAFE_PATH = {**os.environ, "PYTHONSAFEPATH": "1"}
"""The subprocesses' environment: ``-m`` then imports the code this script does."""


def sentence(rng: random.Random, n: int = 30) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def corpus_passages(corpus: Path) -> Iterator[str]:
    """Consecutive :data:`PASSAGE_WORDS`-word windows of the Markdown and reStructuredText
    files under ``corpus``, in path order (real text: words as often as a docs site
    uses them, where the synthetic passages draw each word from 48)."""
    for path in sorted(corpus.rglob("*")):
        if path.suffix in (".md", ".rst"):
            words = path.read_text(encoding="utf-8", errors="replace").split()
            for start in range(0, len(words) - PASSAGE_WORDS // 2, PASSAGE_WORDS):
                yield " ".join(words[start:start + PASSAGE_WORDS])


def build(root: Path, size: int, hidden: float, corpus: Path | None = None) -> Path:
    """An index at ``root / idx`` whose table holds ``size`` synthetic passages (with
    ``corpus``: passages of its real text, vectors still synthetic)."""
    docs, index_dir = root / "docs", root / "idx"
    docs.mkdir(parents=True)
    rng = random.Random(size)
    for i in range(5):
        (docs / f"page{i}.md").write_text(f"# Page {i}\n\n{sentence(rng, 60)}\n")
    with Index(index_dir, backend="local") as index:
        index.sync([docs])
        backend = index._open_backend()
        basis = np.asarray(backend.embed_query([sentence(rng) for _ in range(512)]))
        status = index.status()
    store = Store(Layout(index_dir).current / "lancedb", status.model, status.dimensions)
    np_rng = np.random.default_rng(size)
    texts = corpus_passages(corpus) if corpus else None
    step = 20_000
    for start in range(0, size, step):
        n = min(step, size - start)
        mix = (basis[np_rng.integers(0, 512, n)] + 0.6 * basis[np_rng.integers(0, 512, n)]
               + 0.25 * np_rng.standard_normal((n, basis.shape[1])) / basis.shape[1] ** 0.5)
        mix /= np.linalg.norm(mix, axis=1, keepdims=True)
        rows = []
        for j in range(n):
            i = start + j
            places = () if rng.random() < hidden else (
                Place(f"/synthetic/doc{i // 20:05d}.md", f"Section {i % 20}", None,
                      1 + (i % 20) * 5, 5 + (i % 20) * 5),)
            text = next(texts, None) if texts else sentence(rng)
            if text is None:
                raise SystemExit(f"{corpus} holds fewer than {size} passages")
            rows.append(StoreRow(f"synthetic-{i:07d}", text, f"Section {i % 20}",
                                 places, mix[j].astype(np.float32)))
        store.put(rows)
    store.optimize()
    print(f"  built {size} rows: {store.stats()}", flush=True)
    return index_dir


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"p50 {statistics.median(values) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms"


def query_text(q: int) -> str:
    """The ``q``-th query: one of :data:`QUERIES` (or :data:`CORPUS_QUERIES` with
    ``--corpus``), past the first few with one more word."""
    asked = CORPUS_QUERIES if ASKED["corpus"] else QUERIES
    return asked[q % len(asked)] + ("" if q < len(asked) else f" {WORDS[q % len(WORDS)]}")


ASKED = {"corpus": False}
"""Whether the tables hold ``--corpus`` passages (then :data:`CORPUS_QUERIES` are asked)."""


def timed(call: object, queries: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for q in range(queries):
        text = query_text(q)
        wall, cpu = time.perf_counter(), time.process_time()
        call(text)  # type: ignore[operator]
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def report(label: str, walls: list[float], cpus: list[float]) -> None:
    print(f"  {label:<28} wall {percentiles(walls)}   cpu {percentiles(cpus)}", flush=True)


def warm_api(index_dir: Path, queries: int) -> None:
    with Index(index_dir) as index:
        for mode in ("vector", "hybrid"):
            index.search("warm up", k=10, mode=mode)
            report(f"API {mode}", *timed(lambda q, m=mode: index.search(q, k=10, mode=m),
                                         queries))
        recall(index, queries)


def recall(index: Index, queries: int) -> None:
    """Recall@10 of vector search against the exact top 10 of the published rows."""
    import lance

    table = lance.dataset(str(Layout(index.path).current / "lancedb" / "chunks.lance"))
    rows = table.to_table(columns=["custom_id", "vector", "n_places"])
    matrix = rows["vector"].combine_chunks().flatten().to_numpy().reshape(len(rows), -1)
    keys = np.asarray(rows["custom_id"].to_pylist())
    hidden = rows["n_places"].to_numpy() == 0
    backend = index._open_backend()
    found = []
    for q in range(queries):
        text = query_text(q)
        similarity = matrix @ backend.embed_query([text])[0]
        similarity[hidden] = -2
        exact = set(keys[np.argsort(-similarity)[:10]])
        hits = index.search(text, k=10, mode="vector")
        found.append(len(exact & {h.custom_id for h in hits}) / 10)
    print(f"  vector recall@10 against the exact scan: {np.mean(found):.3f} "
          f"(min {min(found):.1f}; {len(rows)} rows)", flush=True)


def warm_server(index_dir: Path, queries: int) -> None:
    server = subprocess.Popen([sys.executable, "-m", "indexer", "--index", str(index_dir),
                               "serve", "--port", "0"], stderr=subprocess.PIPE, text=True,
                              env=SAFE_PATH)
    try:
        assert server.stderr is not None
        for line in server.stderr:
            found = re.search(r"http://([\d.]+):(\d+)", line)
            if found:
                break
        else:
            raise SystemExit("the server did not start")
        conn = http.client.HTTPConnection(found.group(1), int(found.group(2)))

        def ask(text: str, mode: str) -> None:
            path = "/search?" + urllib.parse.urlencode({"q": text, "k": 10, "mode": mode})
            conn.request("GET", path)
            response = conn.getresponse()
            body = json.loads(response.read())
            assert response.status == 200 and body, body

        for mode in ("vector", "hybrid"):
            ask("warm up", mode)
            walls: list[float] = []
            cpus: list[float] = []

            def measured(text: str, m: str = mode, walls: list[float] = walls,
                         cpus: list[float] = cpus) -> None:
                before = server_cpu(server.pid)  # read outside the request's wall time
                started = time.perf_counter()
                ask(text, m)
                walls.append(time.perf_counter() - started)
                cpus.append(server_cpu(server.pid) - before)

            timed(measured, queries)
            report(f"server {mode}", walls, cpus)
    finally:
        server.terminate()
        server.wait()


def server_cpu(pid: int) -> float:
    """CPU seconds the process's live threads have run (Linux ``schedstat``, ns)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that just ended
    return total / 1e9


def cold_cli(index_dir: Path, runs: int) -> None:
    if runs < 1:
        return
    walls, cpus = [], []
    for q in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "indexer", "--index", str(index_dir), "search",
                        query_text(q), "--json"], check=True,
                       stdout=subprocess.DEVNULL, env=SAFE_PATH)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    report("cold `indexer search`", walls, cpus)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--hidden", type=float, default=0.02)
    parser.add_argument("--keep", type=Path, default=None,
                        help="build each size's index under this folder once and reuse it")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="take the passages' text from this folder's .md/.rst files "
                             "(e.g. one built by corpus.py) and ask questions about it")
    args = parser.parse_args()
    ASKED["corpus"] = args.corpus is not None
    print(f"cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{size} passages", flush=True)
            name = f"{size}-{args.hidden}" + ("-corpus" if args.corpus else "")
            root = args.keep / name if args.keep else Path(tmp)
            index_dir = root / "idx"
            if not index_dir.exists():
                index_dir = build(root, size, args.hidden, args.corpus)
            warm_api(index_dir, args.queries)
            warm_server(index_dir, args.queries)
            cold_cli(index_dir, args.cold)
        print(f"  load after: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
