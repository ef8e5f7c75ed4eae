"""``indexer eval``: read judged queries, rank documents for each in every mode asked,
and average the measures of :mod:`indexer.search.metrics`.

Queries are JSON lines ``{"_id": ..., "text": ...}`` (BEIR's ``queries.jsonl``);
judgments are a qrels TSV, BEIR's (``query-id  corpus-id  score``, with or without that
header) or TREC's (``qid  0  docid  rel``). A judged document id names an indexed
document by its URI or its file stem (``guides/batches.md`` is ``batches``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from indexer.errors import ConfigError
from indexer.search import metrics

DEPTH = 100
"""Documents ranked per query (Recall@100 needs that many)."""


@dataclass(frozen=True)
class Judged:
    """Queries with their judgments: ``queries`` by id, ``qrels[query][doc] = grade``."""

    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]


def read_queries(path: Path) -> dict[str, str]:
    """``{_id: text}`` from a JSONL file; a bad line is refused with its number."""
    queries: dict[str, str] = {}
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            queries[str(record["_id"])] = str(record["text"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}:{number}: expected a JSON object with _id and text, "
                              f"got {line[:80]!r}") from None
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``{query: {doc: grade}}`` from a BEIR or TREC qrels file."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(_lines(path), start=1):
        fields = line.split()
        if not fields or (number == 1 and fields[0].lower() in ("query-id", "query_id",
                                                                 "qid")):
            continue
        if len(fields) not in (3, 4):
            raise ConfigError(f"{path}:{number}: expected 'query doc grade' (BEIR) or "
                              f"'query 0 doc grade' (TREC), got {line[:80]!r}")
        query, doc, grade = fields[0], fields[-2], fields[-1]
        try:
            qrels.setdefault(query, {})[doc] = int(float(grade))
        except ValueError:
            raise ConfigError(f"{path}:{number}: the grade {grade!r} is not a number") \
                from None
    return qrels


def load(queries: Path, qrels: Path) -> Judged:
    """The judged queries: those with judgments and text (others cannot be measured)."""
    texts, judged = read_queries(queries), read_qrels(qrels)
    usable = {q: texts[q] for q in judged if q in texts}
    if not usable:
        raise ConfigError(f"no query of {queries} has judgments in {qrels}: check that "
                          "their ids match")
    return Judged(usable, {q: judged[q] for q in usable})


def document_names(uri: str) -> tuple[str, ...]:
    """The ids a judged document may use for ``uri``: the URI itself and its file stem."""
    path = urlsplit(uri).path if "://" in uri else uri
    return (uri, PurePosixPath(path).stem)


def ranking(uris: Sequence[str], judged: Mapping[str, int]) -> list[str]:
    """Ranked document URIs as judged ids: a URI's own name when judged, else its stem;
    each id once."""
    names = []
    for uri in uris:
        uri_id, stem = document_names(uri)
        names.append(uri_id if uri_id in judged else stem)
    return list(dict.fromkeys(names))


def evaluate(judged: Judged, modes: Sequence[str],
             rank: Callable[[str, str], list[str]]) -> dict[str, dict[str, float]]:
    """Mean measures by mode; ``rank(text, mode)`` gives document URIs, best first."""
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        per_query = [metrics.measure(ranking(rank(text, mode), judged.qrels[query]),
                                     judged.qrels[query])
                     for query, text in judged.queries.items()]
        results[mode] = metrics.mean(per_query)
    return results


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
