"""The SQLite ledger: the pipeline's source of truth, and the only package that touches SQLite.

It records every document (fingerprint, content hash, status), every chunk of the
live and the pending version of each document (and the retired one of a document that
was emptied, which keeps its vectors but is never shown), every content key and its state
(``pending`` → ``queued`` in a job → ``embedded`` or ``failed``), every batch job,
the keys whose store rows must be rewritten (``dirty``), and the writer lock.
"""

from indexer.state.ledger.connection import damaged, set_aside
from indexer.state.ledger.core import Ledger, install
from indexer.state.ledger.records import (
    OPEN_JOB_STATES,
    DocumentState,
    Job,
    KeyRow,
    RestoredJob,
    Settled,
    SourceRecord,
)
from indexer.state.ledger.sources import ORPHANED

__all__ = ["OPEN_JOB_STATES", "ORPHANED", "DocumentState", "Job", "KeyRow", "Ledger",
           "RestoredJob", "Settled", "SourceRecord", "damaged", "install", "set_aside"]
