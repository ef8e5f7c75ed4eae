"""The search store, a Lance table, and the only package that touches Lance: the
table (:mod:`~indexer.state.store.table`), its searches
(:mod:`~indexer.state.store.reader`, through Lance alone), its repair
(:mod:`~indexer.state.store.repair`), the search filter guard
(:mod:`~indexer.state.store.filters`) and where a store lives, a folder or object
storage (:mod:`~indexer.state.store.location`).

Names are imported on first use: a command that never opens the store does not pay for
importing Lance (0.5 CPU-s).
"""

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any

# Lance's Rust log writes warnings meant for its developers straight to stderr (an index
# trained on many equal vectors, say); errors only, unless the user asks for more.
os.environ.setdefault("LANCE_LOG", "error")

if TYPE_CHECKING:
    from indexer.state.store.columns import schema
    from indexer.state.store.filters import check_filter
    from indexer.state.store.location import is_remote, point, pointed
    from indexer.state.store.reader import TABLE, Reader
    from indexer.state.store.repair import drop, inspect, migrate_schema, recorded_model, restore
    from indexer.state.store.table import Store, StoreHealth, StoreStats

_HOMES = {
    "TABLE": "reader", "Reader": "reader", "check_filter": "filters",
    "Store": "table", "StoreHealth": "table", "StoreStats": "table", "schema": "columns",
    "drop": "repair", "inspect": "repair", "migrate_schema": "repair",
    "recorded_model": "repair", "restore": "repair",
    "is_remote": "location", "point": "location", "pointed": "location",
}

__all__ = ["TABLE", "Reader", "Store", "StoreHealth", "StoreStats", "check_filter", "drop",
           "inspect", "is_remote", "migrate_schema", "point", "pointed", "recorded_model",
           "restore", "schema"]


def __getattr__(name: str) -> Any:
    """The exported ``name``, imported from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
