"""Where an index keeps its files: the config, and generations behind a ``CURRENT`` pointer.

::

    .indexer/
      config.toml      sources, backend, model, chunking (never a secret)
      CURRENT          the name of the live generation, e.g. "g1"
      NEXT             a generation being rebuilt (model change), until it is swapped in
      g1/state.db      the ledger
      g1/identity.json the index's identity (backend, model, index id), kept apart from the
                       ledger so a lost ledger can be rebuilt
      g1/lancedb/      the search store (with ``store_uri`` set: STORE_URI/g1/ in object
                       storage, and STORE_URI/index.lance names the live generation)
      g1/batches/      scratch batch files
      sources/<id>/    a connector's own state for one source (a crawl's ETags, a clone),
                       shared by generations: it describes the source, not the vectors

A rebuild (``sync --rebuild``) fills a new generation beside the live one; swapping
is one atomic rename of ``CURRENT``, so readers see the old index or the new one,
never a mix of vector spaces.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

CURRENT = "CURRENT"
NEXT = "NEXT"
IDENTITY = "identity.json"


class Layout:
    """The files of the index rooted at ``root``."""

    @staticmethod
    def ledger(generation: Path) -> Path:
        """The generation's ledger file."""
        return generation / "state.db"

    @staticmethod
    def store(generation: Path) -> Path:
        """The generation's LanceDB directory."""
        return generation / "lancedb"

    @staticmethod
    def store_location(generation: Path, store_uri: str | None) -> Path | str:
        """Where the generation's search store lives: its LanceDB folder, or with
        ``store_uri`` (object storage) the generation's prefix under that URI."""
        if not store_uri:
            return Layout.store(generation)
        return f"{store_uri.rstrip('/')}/{generation.name}"

    @staticmethod
    def batches(generation: Path) -> Path:
        """The generation's scratch directory for batch files."""
        return generation / "batches"

    @staticmethod
    def source_state(root: Path, source: str) -> Path:
        """The folder a connector keeps its state in for ``source`` (not created here)."""
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
        return root / "sources" / digest

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def current(self) -> Path:
        """The live generation's directory (``g1`` for a new index)."""
        return self.root / (_read(self.root / CURRENT) or "g1")

    @property
    def rebuilding(self) -> Path | None:
        """The generation being rebuilt, if any."""
        name = _read(self.root / NEXT)
        return self.root / name if name else None

    def exists(self) -> bool:
        """True once a sync has created the live generation (its ledger, identity or store)."""
        return self.ledger(self.current).exists() or self.holds_index(self.current)

    @staticmethod
    def holds_index(generation: Path) -> bool:
        """True when ``generation`` has an identity or a search table: a ledger missing
        there was lost, it is not a new index."""
        return (generation / IDENTITY).exists() or Layout.has_table(generation)

    @staticmethod
    def has_table(generation: Path) -> bool:
        """True when ``generation``'s search store has a table (seen without opening it)."""
        return any(Layout.store(generation).glob("*.lance"))

    @staticmethod
    def identity(generation: Path) -> dict[str, str] | None:
        """The identity recorded in ``generation`` (backend, model, dimensions, index id)."""
        try:
            found = json.loads((generation / IDENTITY).read_text())
        except (OSError, ValueError):
            return None
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None

    @staticmethod
    def record_identity(generation: Path, values: dict[str, str]) -> None:
        """Keep the index's identity beside its ledger (written atomically)."""
        _write(generation / IDENTITY, json.dumps(values, indent=2, sort_keys=True))

    def start_rebuild(self) -> Path:
        """The generation a rebuild fills (created on first use, resumed afterwards)."""
        if self.rebuilding is not None:
            return self.rebuilding
        taken = {p.name for p in self.root.glob("g*") if p.is_dir()} | {self.current.name}
        number = 1 + max((int(n[1:]) for n in taken if n[1:].isdigit()), default=0)
        name = f"g{number}"
        _write(self.root / NEXT, name)
        return self.root / name

    def swap(self) -> Path:
        """Make the rebuilt generation live; return the one it replaced."""
        rebuilt = self.rebuilding
        if rebuilt is None:
            raise RuntimeError("no rebuild to swap in")
        old = self.current
        if not (self.root / CURRENT).exists():
            _write(self.root / CURRENT, old.name)
        _write(self.root / CURRENT, rebuilt.name)
        (self.root / NEXT).unlink()
        return old

    def retired(self) -> list[Path]:
        """Generations neither live nor being rebuilt (removable by ``gc``)."""
        keep = {self.current, self.rebuilding}
        return sorted(p for p in self.root.glob("g*") if p.is_dir() and p not in keep)

    def remove(self, generation: Path) -> None:
        """Delete a retired generation."""
        shutil.rmtree(generation, ignore_errors=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def _write(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(value + "\n")
    os.replace(tmp, path)
