"""Sources of documents: list them cheaply, then load the ones that changed.

:class:`FilesystemSource` walks a folder (``scan``); :func:`load` reads one listed
file into a :class:`~indexer.records.Document`, or a :class:`~indexer.records.Skip`
that says why it cannot be indexed.
"""

from indexer.connectors.filesystem import FilesystemSource, load

__all__ = ["FilesystemSource", "load"]
