"""What an index's vectors are: the backend, model and settings it was built with.

An index keeps the model it was built with. These helpers record that identity, read
the configuration back as it was then, and refuse (with one message) a configuration
or a ``--backend`` that no longer matches the stored vectors.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.backends import registry
from indexer.errors import IndexMismatch

if TYPE_CHECKING:
    from indexer.backends.contract import Backend
    from indexer.config import Config


def new(backend_name: str, backend: Backend, config: Config, index_id: str) -> dict[str, str]:
    """The identity a new index records: backend, model, dimensions, id, model settings."""
    return {"backend": backend_name, "model": backend.model,
            "dimensions": str(backend.dimensions), "index_id": index_id,
            "config_model": config.model,
            "config_dimensions": str(config.dimensions or ""),
            "config_model_dir": config.model_dir or "",
            "store_uri": config.store_uri or ""}


def check(meta: dict[str, str], asked: str | None, config: Config | None) -> None:
    """Refuse a ``--backend`` (``asked``) and, given ``config``, model settings that differ
    from what the index (``meta``) was built with."""
    if asked not in (None, "auto") and meta.get("backend") not in (None, asked):
        raise IndexMismatch(
            f"this index was built with the {meta['backend']} backend ({meta.get('model')}),"
            f" not {asked}; run `indexer sync --rebuild --backend {asked}` to switch, or "
            "use another index directory (--index)")
    backend = meta.get("backend")
    if config is not None and backend:
        spec = registry.get(backend)
        wanted = spec.describe(config)
        if spec.describe(recorded(config, meta)) != wanted:
            raise changed(meta, wanted)


def recorded(config: Config, meta: dict[str, str]) -> Config:
    """``config`` with the model settings the index was built with (when it exists)."""
    if "config_model" not in meta:
        return config
    return replace(config, model=meta["config_model"],
                   dimensions=int(meta["config_dimensions"] or 0) or None,
                   model_dir=meta["config_model_dir"] or None)


def changed(meta: dict[str, str], wanted: str) -> IndexMismatch:
    """The one message for a configuration that no longer matches the index's vectors."""
    return IndexMismatch(
        f"this index holds vectors of {meta.get('model')} ({meta.get('dimensions')} "
        f"dimensions) but the configuration now asks for {wanted}; run `indexer sync "
        "--rebuild` to build the new model's table beside the old one (search keeps working "
        "until it is swapped in), or restore the previous setting")


def lost_ledger(path: Path, what: str) -> str:
    """The refusal for a ledger that is gone while the index it belongs to is not."""
    return (f"the ledger {path} {what}, but the index it belongs to is still there (its "
            "search store or identity.json); run `indexer doctor --repair` to rebuild the "
            "ledger from the store and the batch service (nothing already embedded is paid "
            "for again)")
