"""The sha256 of model files, remembered by the file's identity and modification time.

Hashing the ~90 MB shipped model on every load costs a quarter of a second, most of a
one-off ``indexer search``. A digest is recorded beside the built models with the file's
device, inode, size and modification and change times; while all five still match, the
recorded digest is the file's. Any write to the file changes them (a file changed in the
last few seconds is not recorded: its times may not have moved yet), and a record that
cannot be read or written only costs hashing the file again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

_SETTLED_NS = 5_000_000_000
"""How long a file must be left alone before its digest is recorded: file times tick
coarsely, so a rewrite of the same size just after hashing could keep them."""


def sha256_of(path: Path, cache: Path) -> str:
    """The sha256 (hex) of the file at ``path``, hashed only when it changed since it was
    last hashed (records live under ``cache``). Raises :class:`OSError` when the file
    cannot be read."""
    fingerprint = _fingerprint(path)
    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    record = cache / "digests" / f"{name}.json"
    try:
        known = json.loads(record.read_text(encoding="utf-8"))
        if known["fingerprint"] == fingerprint and isinstance(known["sha256"], str):
            return str(known["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    settled = time.time_ns() - max(fingerprint[3:]) > _SETTLED_NS
    if settled and fingerprint == _fingerprint(path):  # not rewritten while hashed
        _remember(record, {"fingerprint": fingerprint, "sha256": digest})
    return digest


def _fingerprint(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _remember(record: Path, value: dict[str, object]) -> None:
    temporary = record.with_name(f".{record.name}.{uuid.uuid4().hex}.tmp")
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(value), encoding="utf-8")
        os.replace(temporary, record)
    except OSError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
