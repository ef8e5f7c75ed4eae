"""The index's ``config.toml``: its sources, backend and chunking. Never a secret.

Keys (the OpenAI API key) come from the environment only.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import tomli_w

from indexer.errors import ConfigError

FILENAME = "config.toml"

SYNC_PRICE_PER_MILLION = {
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
    "text-embedding-ada-002": 0.10,
}
"""Synchronous prices in dollars per million input tokens; the Batch API halves them."""


@dataclass(frozen=True)
class SourceConfig:
    """A folder (or file) the index crawls, with its include/exclude globs."""

    path: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """Everything the index remembers between runs."""

    backend: str = "auto"
    model_dir: str | None = None
    model: str = "text-embedding-3-small"
    dimensions: int | None = None
    base_url: str | None = None
    token_budget: int = 2_400_000
    timeout: float = 120.0
    price_per_million: float | None = None
    max_cost: float | None = None
    version_retention_seconds: float = 60.0
    vector_index_rows: int = 100_000
    poll_seconds: float = 5.0
    chunk_tokens: int = 200
    max_attempts: int = 3
    sources: tuple[SourceConfig, ...] = field(default_factory=tuple)

    def batch_price(self, model: str) -> float:
        """Dollars per million tokens through the Batch API (0 for unknown or local models)."""
        price = self.price_per_million or SYNC_PRICE_PER_MILLION.get(model, 0.0)
        return price / 2

    def with_source(self, source: SourceConfig) -> Config:
        """This config with ``source`` added, or replacing the one at the same path."""
        others = tuple(s for s in self.sources if s.path != source.path)
        return replace(self, sources=(*others, source))


def read(directory: Path) -> Config:
    """The config of the index in ``directory`` (defaults when there is none yet)."""
    path = directory / FILENAME
    if not path.exists():
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        index = data.get("index", {})
        sources = tuple(
            SourceConfig(s["path"], tuple(s.get("include", ())), tuple(s.get("exclude", ())))
            for s in data.get("sources", ())
        )
        known = {f.name for f in fields(Config)} - {"sources"}
        unknown = set(index) - known
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)} in [index]")
        return Config(**index, sources=sources)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a valid config: {exc}; fix or delete it") from exc


def write(directory: Path, config: Config) -> None:
    """Save ``config`` to ``directory/config.toml`` (atomically)."""
    index = {k: v for k, v in asdict(config).items() if k != "sources" and v is not None}
    data = {
        "index": index,
        "sources": [
            {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(s).items()}
            for s in config.sources
        ],
    }
    path = directory / FILENAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    tmp.replace(path)
