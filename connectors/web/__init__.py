"""Web sites: a crawl from a start URL or a sitemap, with conditional requests.

The package's modules each have one job: :mod:`.address` (URL normalisation and the
crawl's scope), :mod:`.markup` (links, canonical URLs, sitemaps, ``robots.txt``),
:mod:`.fetch` (HTTP, the only module that talks to httpx), :mod:`.cache` (what a crawl
keeps between runs) and :mod:`.crawl` (the crawl itself, :class:`.crawl.WebSource`).
"""

from __future__ import annotations

from typing import Any

from indexer.config import SourceConfig
from indexer.connectors.contract import ConnectorContext
from indexer.connectors.web.address import Scope, normalise
from indexer.connectors.web.crawl import Settings, WebSource
from indexer.errors import ConfigError

_LIMITS: dict[str, tuple[type, float, float]] = {
    "max_pages": (int, 1, 10_000_000), "delay": (float, 0, 3600),
    "concurrency": (int, 1, 64), "timeout": (float, 0.1, 3600),
}


def create(source: SourceConfig, context: ConnectorContext) -> WebSource:
    """The registry's factory: a crawl of ``source.path`` with the source's settings
    (``allow``, ``deny``, ``max_pages``, ``delay``, ``concurrency``, ``timeout``)."""
    start = normalise(source.path)
    if start is None:
        raise ConfigError(f"source {source.path} is not an http(s) URL")
    if source.include or source.exclude:
        raise ConfigError(f"source {source.path}: a web source takes `allow` and `deny` "
                          "URL prefixes, not include/exclude globs")
    options = dict(source.options)
    unknown = sorted(set(options) - set(_LIMITS) - {"allow", "deny"})
    if unknown:
        raise ConfigError(f"source {source.path}: unknown setting(s) {unknown} for a web "
                          f"source (known: allow, deny, {', '.join(_LIMITS)})")
    numbers = {name: _number(source.path, name, options[name]) for name in _LIMITS
               if name in options}
    try:
        scope = Scope.around(start, _prefixes(source.path, options, "allow"),
                             _prefixes(source.path, options, "deny"))
    except ValueError as exc:
        raise ConfigError(f"source {source.path}: {exc}") from exc
    settings = Settings(max_bytes=context.config.max_bytes, **numbers)
    return WebSource(start, scope, settings, context.state_dir, context.writes, source.path)


def _prefixes(path: str, options: dict[str, Any], name: str) -> tuple[str, ...]:
    value = options.get(name, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"source {path}: {name} must be a list of URL prefixes")
    return tuple(value)


def _number(path: str, name: str, value: object) -> Any:
    kind, low, high = _LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            kind is int and not isinstance(value, int)) or not low <= value <= high:
        raise ConfigError(f"source {path}: {name} must be a {kind.__name__} between "
                          f"{low:g} and {high:g}, not {value!r}")
    return kind(value)
