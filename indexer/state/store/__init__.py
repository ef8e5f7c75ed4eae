"""The LanceDB search store, and the only package that touches LanceDB: the table
(:mod:`~indexer.state.store.table`), its repair (:mod:`~indexer.state.store.repair`),
the search filter guard (:mod:`~indexer.state.store.filters`) and where a store lives,
a folder or object storage (:mod:`~indexer.state.store.location`)."""

import os

# LanceDB's Rust log writes warnings meant for its developers straight to stderr (an
# index trained on many equal vectors, say); errors only, unless the user asks for more.
os.environ.setdefault("LANCEDB_LOG", "error")

from indexer.state.store.filters import check_filter
from indexer.state.store.location import is_remote, point, pointed
from indexer.state.store.repair import drop, inspect, migrate_schema, recorded_model, restore
from indexer.state.store.table import TABLE, Store, StoreHealth, StoreStats, schema

__all__ = ["TABLE", "Store", "StoreHealth", "StoreStats", "check_filter", "drop", "inspect",
           "is_remote", "migrate_schema", "point", "pointed", "recorded_model", "restore",
           "schema"]
