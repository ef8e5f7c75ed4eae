"""The one exception tree of batch-indexer.

::

    IndexerError                  anything this library raises on purpose
    ├── ConfigError               bad settings, a missing or corrupt model file
    ├── SourceError               a source cannot be crawled at all (missing folder)
    ├── BackendError              the embedding backend failed (API, local model)
    │   └── BackendUnavailable    no answer, or busy (429, 5xx, timeout): may work later
    ├── StateError                the index directory or ledger is unusable, or locked
    │   ├── LockedError           another run holds the index's writer lock
    │   └── DamageError           the ledger or the store is missing or damaged:
    │                             `indexer doctor --repair` mends it
    └── IndexMismatch             the index was built with another model or dimension
    KeyboardInterrupt
    └── Interrupted               Ctrl-C: what the run embedded is kept (stored or
                                  checkpointed); the next sync resumes

Per-document problems (an unreadable file, a corrupt PDF) are not raised: they are
recorded as skips and reported, and the run goes on.
"""

from __future__ import annotations


class IndexerError(Exception):
    """Base class of every error batch-indexer raises on purpose."""


class ConfigError(IndexerError):
    """Settings are invalid, or a configured model is missing or corrupt."""


class SourceError(IndexerError):
    """A source as a whole cannot be crawled (for example, the folder does not exist)."""


class BackendError(IndexerError):
    """The embedding backend failed in a way the run cannot work around."""


class BackendUnavailable(BackendError):
    """The service did not answer, or answered that it is busy or failing (429, 5xx,
    a timeout, a dropped connection): the same call may succeed later."""


class StateError(IndexerError):
    """The index directory, its ledger or its store cannot be used."""


class LockedError(StateError):
    """Another run holds the index's single-writer lock."""


class DamageError(StateError):
    """The ledger or the search store is missing or damaged; ``indexer doctor --repair``
    rebuilds or restores it (never spending: what is lost is embedded on the next sync)."""


class IndexMismatch(IndexerError):
    """The index was built with a different model or dimension than requested."""


class Interrupted(KeyboardInterrupt):
    """The user stopped a run (Ctrl-C). Nothing done is lost: ``stored`` embeddings went
    into the store during the run, ``checkpointed`` wait in a job's checkpoint for the
    next sync, which resumes where this one stopped. (A :class:`KeyboardInterrupt`, so
    code that stops on Ctrl-C stops on it too.)"""

    def __init__(self, stored: int = 0, checkpointed: int = 0) -> None:
        super().__init__(stored, checkpointed)
        self.stored, self.checkpointed = stored, checkpointed

    @property
    def kept(self) -> int:
        """Every embedding the interrupted run computed (none is computed again)."""
        return self.stored + self.checkpointed
