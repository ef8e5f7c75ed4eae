"""The LanceDB search store, and the only package that touches LanceDB: the table
(:mod:`~indexer.state.store.table`), its repair (:mod:`~indexer.state.store.repair`) and
the search filter guard (:mod:`~indexer.state.store.filters`)."""

import os

# LanceDB's Rust log writes warnings meant for its developers straight to stderr (an
# index trained on many equal vectors, say); errors only, unless the user asks for more.
os.environ.setdefault("LANCEDB_LOG", "error")

from indexer.state.store.filters import check_filter
from indexer.state.store.repair import inspect, migrate_schema, recorded_model, restore
from indexer.state.store.table import TABLE, Store, StoreHealth, StoreStats, schema

__all__ = ["TABLE", "Store", "StoreHealth", "StoreStats", "check_filter", "inspect",
           "migrate_schema", "recorded_model", "restore", "schema"]
