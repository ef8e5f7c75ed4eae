"""The kinds of source this installation can crawl, chosen by the source's URI scheme.

A plain path (or ``file://``) is a folder or file on disk. A third-party connector is a
package that exposes a :class:`ConnectorSpec` under the entry point group
``batch_indexer.connectors``; its ``schemes`` say which sources it serves::

    [project.entry-points."batch_indexer.connectors"]
    notion = "indexer_notion:SPEC"
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from indexer.errors import SourceError

if TYPE_CHECKING:
    from indexer.config import SourceConfig
    from indexer.connectors.contract import Connector, ConnectorContext

ENTRY_POINTS = "batch_indexer.connectors"
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9.-]*)(?:\+[a-zA-Z0-9.-]+)?://")


@dataclass(frozen=True)
class ConnectorSpec:
    """A kind of source: its name, the URI schemes it serves, and its factory.

    ``factory`` names ``"module:function"``, called as ``function(source, context)`` with
    the source's :class:`~indexer.config.SourceConfig` (its own settings in
    ``source.options``) and a :class:`~indexer.connectors.contract.ConnectorContext`. The
    module is imported only when such a source is synced. ``cites`` says its connectors
    implement :class:`~indexer.connectors.contract.Cites` (a search asks only those for
    the origin of its hits, so a search never imports the other connectors).
    """

    name: str
    schemes: tuple[str, ...]
    factory: str
    cites: bool = False

    def create(self, source: SourceConfig, context: ConnectorContext) -> Connector:
        """Build the connector for ``source``."""
        module, _, name = self.factory.partition(":")
        connector: Connector = getattr(importlib.import_module(module), name)(source, context)
        return connector


BUILTIN = (
    ConnectorSpec("filesystem", ("file",), "indexer.connectors.filesystem:create"),
    ConnectorSpec("s3", ("s3",), "indexer.connectors.s3:create"),
    ConnectorSpec("git", ("git",), "indexer.connectors.git:create", cites=True),
    ConnectorSpec("web", ("http", "https"), "indexer.connectors.web:create"),
)


_BUILTIN = {scheme: spec for spec in BUILTIN for scheme in spec.schemes}


@cache
def specs() -> Mapping[str, ConnectorSpec]:
    """Every known connector by URI scheme: built-ins first, then installed plugins (their
    entry points are read once per process, and only when a scheme is not a built-in
    one)."""
    from importlib.metadata import entry_points

    found = dict(_BUILTIN)
    for point in entry_points(group=ENTRY_POINTS):
        spec = point.load()
        if not isinstance(spec, ConnectorSpec):
            raise SourceError(f"the plugin {point.value!r} registered under {ENTRY_POINTS} "
                              "is not a ConnectorSpec")
        for scheme in spec.schemes:
            found.setdefault(scheme, spec)
    return found


def scheme_of(location: str) -> str:
    """The URI scheme of a source (``git+https://…`` is ``git``); ``file`` for a path."""
    match = _SCHEME.match(location)
    return match[1].lower() if match else "file"


def spec_of(location: str) -> ConnectorSpec | None:
    """The kind of source at ``location`` (by its URI scheme), or None if none is
    installed. A built-in scheme is found without reading the plugins' entry points: a
    plugin cannot take it."""
    scheme = scheme_of(location)
    return _BUILTIN.get(scheme) or specs().get(scheme)


def spec_for(source: SourceConfig) -> ConnectorSpec | None:
    """The kind of ``source`` (by its URI scheme), or None if none is installed."""
    return spec_of(source.path)


def connector_for(source: SourceConfig, context: ConnectorContext) -> Connector:
    """The connector that crawls ``source``; an unknown scheme lists what is installed."""
    scheme = scheme_of(source.path)
    spec = spec_of(source.path)
    if spec is None:
        kinds = ", ".join(sorted(specs()))
        raise SourceError(f"no connector for {scheme}:// sources ({source.path}); installed: "
                          f"{kinds} (plugins register under the {ENTRY_POINTS!r} entry points)")
    return spec.create(source, context)
