"""Sources of documents: list them cheaply, then load the ones that changed.

:mod:`~indexer.connectors.contract` says what a connector offers the pipeline;
:mod:`~indexer.connectors.registry` picks one by the source's URI scheme (plugins
register under the ``batch_indexer.connectors`` entry points);
:mod:`~indexer.connectors.formats` extracts text from bytes for every connector.
:class:`FilesystemSource` is the built-in folder connector.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from indexer.connectors.filesystem import FilesystemSource, load

__all__ = ["FilesystemSource", "load"]


def __getattr__(name: str) -> Any:
    """The folder connector's names, imported on first use: a search reads the registry
    only, and the folder connector's imports (text formats, ignore files) cost it time."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from indexer.connectors import filesystem

    return getattr(filesystem, name)
