"""Sources of documents: list them cheaply, then load the ones that changed.

:mod:`~indexer.connectors.contract` says what a connector offers the pipeline;
:mod:`~indexer.connectors.registry` picks one by the source's URI scheme (plugins
register under the ``batch_indexer.connectors`` entry points);
:mod:`~indexer.connectors.formats` extracts text from bytes for every connector.
:class:`FilesystemSource` is the built-in folder connector.
"""

from indexer.connectors.filesystem import FilesystemSource, load

__all__ = ["FilesystemSource", "load"]
