"""The sources of an index as a user sees them: each configured source joined to what the
ledger records under its URI, and the sources the ledger still holds documents of that
``config.toml`` no longer names (orphans).

A source's documents are recorded under its connector's :attr:`Connector.uri` (a folder's
resolved path; a URI as the connector spells it), which need not be the text
``config.toml`` holds, so every lookup builds the connector (cheap: nothing is listed).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from indexer.config import Config, SourceConfig
from indexer.connectors.contract import ConnectorContext
from indexer.connectors.registry import connector_for, spec_of
from indexer.errors import IndexerError
from indexer.report import SourceInfo
from indexer.state.ledger import ORPHANED, SourceRecord

ContextFor = Callable[[SourceConfig], ConnectorContext]
"""The context a source's connector is built with (read-only for a listing)."""


def root_of(source: SourceConfig, context: ConnectorContext) -> str:
    """The URI ``source``'s documents are recorded under."""
    return connector_for(source, context).uri


def configured_roots(config: Config, context_for: ContextFor) -> set[str] | None:
    """The URIs of every configured source, or None if one cannot be told (its plugin is
    not installed, its settings are wrong): then no source counts as an orphan."""
    roots = set()
    for source in config.sources:
        try:
            roots.add(root_of(source, context_for(source)))
        except IndexerError:
            return None
    return roots


def listing(config: Config, records: Mapping[str, SourceRecord],
            context_for: ContextFor) -> tuple[SourceInfo, ...]:
    """Every configured source, then every orphan that still has documents."""
    shown: list[SourceInfo] = []
    matched: set[str] = set()
    for source in config.sources:
        uri, problem = source.path, None
        try:
            uri = root_of(source, context_for(source))
        except IndexerError as exc:
            problem = str(exc)
        matched.add(uri)
        record = records.get(uri, SourceRecord(uri))
        error = problem or record.error
        advice = ("" if error or record.synced_at is not None
                  else "not synced yet: run `indexer sync`")
        shown.append(_info(source.path, uri, True, record, error, advice))
    for uri, record in records.items():
        if uri in matched or not record.counts:
            continue
        in_search = sum(n for status, n in record.counts.items() if status != ORPHANED)
        fate = (f"{in_search} document(s) leave search at the next sync" if in_search
                else f"{record.counts.get(ORPHANED, 0)} document(s) out of search")
        advice = (f"not in config.toml: {fate}; `indexer remove {uri}` forgets them, or add "
                  "it back to config.toml to restore them without embedding again")
        shown.append(_info(uri, uri, False, record, record.error, advice))
    return tuple(shown)


def find(config: Config, records: Collection[str], names: Collection[str],
         context_for: ContextFor) -> tuple[SourceConfig | None, str | None]:
    """The configured source called by one of ``names`` (its config text or its URI) and
    the URI its documents are under; for an orphan, ``(None, uri)``; ``(None, None)``
    when no source answers to them."""
    for source in config.sources:
        try:
            uri = root_of(source, context_for(source))
        except IndexerError:
            uri = source.path
        if source.path in names or uri in names:
            return source, uri
    return None, next((name for name in names if name in records), None)


def kind_of(location: str) -> str:
    """The name of the connector that crawls ``location`` ("?" when none is installed)."""
    try:
        spec = spec_of(location)
    except IndexerError:
        spec = None
    return spec.name if spec is not None else "?"


def _info(source: str, uri: str, configured: bool, record: SourceRecord, error: str | None,
          advice: str) -> SourceInfo:
    counts = record.counts
    return SourceInfo(source=source, kind=kind_of(source), uri=uri, configured=configured,
                      synced_at=record.synced_at, documents=counts.get("indexed", 0),
                      pending=counts.get("pending", 0), skipped=counts.get("skipped", 0),
                      withdrawn=counts.get(ORPHANED, 0), error=error,
                      failed_at=record.failed_at if error == record.error else None,
                      advice=advice)
