"""The index's ``config.toml``: its sources, backend, model, chunking, budget and prices.

Settings resolve in this order: command-line flags, then ``INDEXER_*`` environment
variables (``INDEXER_CHUNK_TOKENS=300``), then the file, then the defaults below.
Secrets never live here: the OpenAI key comes from ``OPENAI_API_KEY`` only. The file
is edited with tomlkit, so the comments ``indexer init`` writes survive later edits.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from indexer.errors import ConfigError

FILENAME = "config.toml"
ENV_PREFIX = "INDEXER_"

SYNC_PRICE_PER_MILLION = {
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
    "text-embedding-ada-002": 0.10,
}
"""Synchronous prices in dollars per million input tokens; the Batch API halves them."""


@dataclass(frozen=True)
class SourceConfig:
    """A source the index crawls: a folder (or file) path or a URI (``git+https://…``,
    ``https://…``, ``s3://…``), with its include/exclude globs and whether symbolic links
    that lead outside a folder are followed (``follow_links``, off by default).

    ``options`` holds every other key of the source's ``[[sources]]`` entry, for its
    connector to read and check (a git source's ``link``, a web crawl's ``max_pages``).
    """

    path: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    follow_links: bool = False
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Config:
    """Everything the index remembers between runs (see ``indexer init`` for each field)."""

    backend: str = "auto"
    model_dir: str | None = None
    model: str = "text-embedding-3-small"
    dimensions: int | None = None
    encoding_format: str = "base64"
    base_url: str | None = None
    token_budget: int = 2_400_000
    timeout: float = 120.0
    poll_seconds: float = 5.0
    outage_seconds: float = 1800.0
    price_per_million: float | None = None
    max_cost: float | None = None
    version_retention_seconds: float = 60.0
    max_versions: int = 20
    vector_index_rows: int = 5_000
    refine_factor: int = 2
    max_bytes: int = 20_000_000
    chunk_tokens: int = 200
    chunk_context: bool = True
    max_attempts: int = 3
    group_size: int = 2_000
    lost_after_seconds: float = 300.0
    store_uri: str | None = None
    sources: tuple[SourceConfig, ...] = field(default_factory=tuple)

    def batch_price(self, model: str) -> float:
        """Dollars per million tokens through the Batch API (0 for unknown or local models)."""
        price = self.price_per_million or SYNC_PRICE_PER_MILLION.get(model, 0.0)
        return price / 2

    def with_source(self, source: SourceConfig) -> Config:
        """This config with ``source`` added, or replacing the one at the same path."""
        others = tuple(s for s in self.sources if s.path != source.path)
        return replace(self, sources=(*others, source))


_FIELDS = {f.name: f for f in fields(Config) if f.name != "sources"}
_UNSHOWN = {"store_uri"}
"""Settings whose refused value is not echoed (it may hold a credential put there by
mistake)."""


def read(directory: Path, environ: Mapping[str, str] = os.environ) -> Config:
    """The config of the index in ``directory``, with ``INDEXER_*`` overrides applied.

    Every field of :class:`Config` but ``sources`` can be set in the file's ``[index]``
    table and as ``INDEXER_<NAME>``; an error names where the bad value came from (the
    file, or the environment variable)."""
    path = directory / FILENAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        values = dict(data.get("index", {}))
        unknown = set(values) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)} in [index]")
        for name, value in values.items():
            _check(name, value)
        sources = tuple(_source(s) for s in data.get("sources", ()))
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}; fix the setting or delete the file") from exc
    values.update(environment(environ))
    return Config(**values, sources=sources)


def environment(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """The settings ``INDEXER_<NAME>`` variables set, checked; a bad one is a
    :class:`ConfigError` naming the variable."""
    values: dict[str, object] = {}
    for name in _FIELDS:
        variable = ENV_PREFIX + name.upper()
        raw = environ.get(variable)
        if raw is None:
            continue
        try:
            values[name] = _parse(name, raw)
            _check(name, values[name])
        except ValueError as exc:
            shown = variable if name in _UNSHOWN else f"{variable}={raw!r}"
            raise ConfigError(f"environment variable {shown}: {exc}; fix or unset it") from exc
    return values


_SOURCE_KEYS = ("path", "include", "exclude", "follow_links")


def _source(entry: Mapping[str, Any]) -> SourceConfig:
    follow = entry.get("follow_links", False)
    if not isinstance(follow, bool):
        raise ValueError(f"follow_links must be true or false, not {follow!r}")
    options = {k: v for k, v in entry.items() if k not in _SOURCE_KEYS}
    return SourceConfig(entry["path"], tuple(entry.get("include", ())),
                        tuple(entry.get("exclude", ())), follow, options)


def remember_source(directory: Path, source: SourceConfig) -> None:
    """Add or replace one ``[[sources]]`` entry, keeping the file's comments."""
    import tomlkit  # only writers need it: reading the config stays cheap

    path = directory / FILENAME
    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else None
    if document is None:
        document = tomlkit.document()
        document["index"] = tomlkit.table()
    entries = tomlkit.aot()
    for entry in document.get("sources", []):
        if entry.get("path") != source.path:
            entries.append(entry)
    item = tomlkit.table()
    item["path"] = source.path
    if source.include:
        item["include"] = list(source.include)
    if source.exclude:
        item["exclude"] = list(source.exclude)
    if source.follow_links:
        item["follow_links"] = True
    for key, value in source.options.items():
        item[key] = value
    entries.append(item)
    document["sources"] = entries
    _save(path, tomlkit.dumps(document))


def forget_source(directory: Path, location: str) -> bool:
    """Remove the ``[[sources]]`` entries whose path is ``location``, keeping every comment
    (those between entries stay where they were). Returns False when none was there."""
    path = directory / FILENAME
    if not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    entries = tomllib.loads(text).get("sources", [])
    wanted = [entry for entry in entries if entry.get("path") != location]
    if len(wanted) == len(entries):
        return False
    edited = _without_entries(text, location)
    if edited is None or tomllib.loads(edited).get("sources", []) != wanted:
        edited = _without_entries_parsed(text, location)  # unusual layout: tomlkit decides
    _save(path, edited)
    return True


_HEADER = re.compile(r"\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(?:#.*)?")


def _without_entries(text: str, location: str) -> str | None:
    """``text`` without the lines of the ``[[sources]]`` entries for ``location``, from
    their header to their last setting: the comments after it (which introduce what
    follows) stay. None if an entry's path cannot be read from its lines."""
    lines = text.splitlines(keepends=True)
    headers = [n for n, line in enumerate(lines) if _HEADER.fullmatch(line.rstrip("\r\n"))]
    drop: set[int] = set()
    for start, end in zip(headers, [*headers[1:], len(lines)], strict=True):
        header = _HEADER.fullmatch(lines[start].rstrip("\r\n"))
        if header is None or header[1] != "sources" or "[[" not in lines[start]:
            continue
        try:
            entry = tomllib.loads("".join(lines[start + 1:end]))
        except tomllib.TOMLDecodeError:
            return None
        if entry.get("path") == location:
            last = max(n for n in range(start, end)
                        if lines[n].strip() and not lines[n].lstrip().startswith("#"))
            drop.update(range(start, last + 1))
    return "".join(line for n, line in enumerate(lines) if n not in drop)


def _without_entries_parsed(text: str, location: str) -> str:
    import tomlkit

    document = tomlkit.parse(text)
    entries: Any = document["sources"]
    for index in reversed(range(len(entries))):
        if entries[index].get("path") == location:
            del entries[index]
    if not len(entries):
        del document["sources"]
    return tomlkit.dumps(document)


def write_template(directory: Path, settings: Mapping[str, Any]) -> Path:
    """Write a commented ``config.toml`` for a new index; refuses to overwrite one."""
    path = directory / FILENAME
    if path.exists():
        raise ConfigError(f"{path} exists already; edit it, or remove it to start over")
    chosen = {name: value for name, value in settings.items() if value is not None}
    try:
        for name, value in chosen.items():
            _check(name, value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    import tomlkit

    document = tomlkit.parse(TEMPLATE)
    index: Any = document["index"]
    for name, value in chosen.items():
        index[name] = value
    directory.mkdir(parents=True, exist_ok=True)
    _save(path, tomlkit.dumps(document))
    return path


def _parse(name: str, raw: str) -> object:
    kind = str(_FIELDS[name].type)
    try:
        if kind == "bool":
            if not raw:
                return None
            if raw.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return raw.strip().lower() in ("1", "true", "yes", "on")
            raise ValueError(raw)
        if "int" in kind:
            return int(raw) if raw else None
        if "float" in kind:
            return float(raw) if raw else None
    except ValueError:
        raise ValueError(f"{name} must be {kind.replace(' | None', '')}, not {raw!r}") from None
    return raw or None


def _check(name: str, value: object) -> None:
    if name not in _FIELDS:
        raise ValueError(f"unknown setting {name!r}")
    kind = str(_FIELDS[name].type)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return
    allowed: tuple[type, ...] = (str,)
    if "int" in kind:
        allowed = (int,)
    elif "float" in kind:
        allowed = (int, float)
    if value is None and "None" in kind:
        return
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise ValueError(f"{name} must be {kind.replace(' | None', '')}, not {value!r}")
    if name in ("group_size", "max_attempts", "chunk_tokens", "token_budget", "max_bytes",
                "max_versions") and isinstance(value, int) and value < 1:
        raise ValueError(f"{name} must be 1 or more, not {value!r}")
    if name == "store_uri" and isinstance(value, str):
        check_store_uri(value)
    if name == "encoding_format" and value not in ("base64", "float"):
        raise ValueError("encoding_format must be 'base64' or 'float'")
    if name in ("timeout", "poll_seconds") and isinstance(value, int | float) and value <= 0:
        raise ValueError(f"{name} must be more than 0 seconds, not {value!r}")
    if name == "outage_seconds" and isinstance(value, int | float) and value < 0:
        raise ValueError(f"outage_seconds must be 0 seconds or more, not {value!r}")


_STORE_URI = re.compile(r"[a-z][a-z0-9+.-]*://[^/@?#\s]+(/[^?#\s]*)?")


def check_store_uri(value: str) -> None:
    """Refuse (:class:`ValueError`) what is not an object-storage URI LanceDB opens
    (``s3://bucket/prefix``, ``gs://``, ``az://``), or one carrying credentials: they come
    from the environment."""
    if "@" in value.split("://", 1)[-1].split("/", 1)[0] or "?" in value:
        raise ValueError("store_uri must not carry credentials or options; set them in the "
                         "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                         "AWS_ENDPOINT_URL...)")
    if not _STORE_URI.fullmatch(value) or value.startswith("file://"):
        raise ValueError(f"store_uri must be an object-storage URI such as "
                         f"s3://bucket/prefix, not {value!r}")


def _save(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


TEMPLATE = '''\
# batch-indexer configuration. Command-line flags override these settings, then
# INDEXER_<NAME> environment variables (for example INDEXER_CHUNK_TOKENS=300).
# Secrets never go here: the OpenAI API key is read from OPENAI_API_KEY.

[index]
# Which embedder: "auto" (OpenAI when OPENAI_API_KEY is set, else the embedded model),
# "local" (offline, all-MiniLM-L6-v2, no cost) or "openai" (the Batch API, half price).
backend = "auto"

# The embedded model: a directory with model.onnx and tokenizer.json, instead of the
# packaged all-MiniLM-L6-v2.
# model_dir = "/path/to/model"

# The OpenAI model and, for text-embedding-3 models, optional shorter vectors.
# Changing either later needs `indexer sync --rebuild`.
model = "text-embedding-3-small"
# dimensions = 512

# How OpenAI returns vectors: "base64" (about a quarter the size, faster to parse) or "float".
encoding_format = "base64"

# An OpenAI-compatible service (also OPENAI_BASE_URL or --base-url).
# base_url = "https://api.openai.com/v1"

# Tokens (cl100k_base) per chunk, heading context included. The embedded model reads
# at most 256 word pieces, so keep this near 200 for it; 300-500 suit OpenAI models.
chunk_tokens = 200

# Prepend each chunk's heading path ("Title › Section") to the text embedded: better
# matches for terse passages, at the price of those tokens (`indexer plan` shows the share).
# Changing it re-embeds every chunk.
chunk_context = true

# Estimated tokens allowed in flight at once: your organisation's enqueued-token limit
# for the model (tier 1: about 3,000,000 for text-embedding-3). Lowered automatically
# when the service answers token_limit_exceeded.
token_budget = 2400000

# Refuse to submit a sync estimated above this many dollars (also --max-cost).
# max_cost = 5.0

# Dollars per million tokens at the synchronous price (the Batch API halves it);
# defaults: 0.02 for text-embedding-3-small, 0.13 for -large, 0.10 for ada-002.
# price_per_million = 0.02

# Attempts per chunk before it is recorded as failed.
max_attempts = 3

# Rows handled at once when ingesting output, checking the store and publishing: memory
# stays bounded by this, not by the corpus.
group_size = 2000

# A batch the service answers "not found" for is given up (its chunks queued again) only
# after 3 such answers in a row spanning at least this many seconds, and only if the
# batch list does not show it either.
lost_after_seconds = 300.0

# Seconds between polls of batches in flight with `sync --wait` (growing to 2 minutes).
poll_seconds = 5.0

# Seconds an API request may go without an answer (connecting, sending or reading)
# before it is given up; each request is retried at most twice, so a hung service holds
# a call for at most about three times this long.
timeout = 120.0

# With `sync --wait`, how long to keep trying through service errors in a row (429,
# 5xx, no answer, no network) before giving up with exit 3; without --wait a sync
# stops at the first such error and the next sync resumes.
outage_seconds = 1800.0

# Store upkeep: superseded table versions are kept for readers still on them for at
# most this many seconds and at most this many versions; past vector_index_rows rows an
# approximate vector index (IVF-RQ) replaces exhaustive search, re-ranking refine_factor
# times k candidates exactly (at least 10 on an index of 1-bit codes, as earlier releases
# built it).
version_retention_seconds = 60.0
max_versions = 20
vector_index_rows = 5000
refine_factor = 2

# Files larger than this many bytes are skipped (and reported).
max_bytes = 20000000

# Keep the search table in object storage (s3://bucket/prefix, gs://, az://) instead of
# this folder; the ledger and batch files stay here. Credentials come from the
# environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL),
# never from this file. Any machine then searches it: `indexer search --store URI`.
# store_uri = "s3://bucket/prefix"

# Folders to index; `indexer sync PATH` adds them.
# [[sources]]
# path = "/absolute/path/to/docs"
# include = ["*.md"]
# exclude = ["drafts/"]
# follow_links = true  # also index what symbolic links outside the folder point to
'''
