"""What the emulator remembers: files, batches and the billing counters.

Everything lives in memory for the process's life. With a state directory, file
bytes are kept there and the rest is snapshotted to ``state.json`` after every
change, so a restarted emulator (same ``--state-dir``) carries on where it was.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .faults import BatchFaults

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
"""Statuses of a batch whose tokens count against the enqueued budget."""


def new_id(prefix: str) -> str:
    """An id in the service's style: ``file-`` + 22 alphanumerics, ``batch_`` + 32 hex."""
    if prefix == "file-":
        alphabet = string.ascii_letters + string.digits
        return prefix + "".join(secrets.choice(alphabet) for _ in range(22))
    return prefix + secrets.token_hex(16)


@dataclass
class FileRecord:
    """An uploaded or generated file."""

    id: str
    bytes: int
    created_at: float
    filename: str
    purpose: str
    expires_at: float | None = None

    def to_api(self) -> dict[str, Any]:
        """The file object as the API returns it."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": int(self.created_at),
            "expires_at": None if self.expires_at is None else int(self.expires_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass
class BatchRecord:
    """A batch and the emulator's bookkeeping for it (``done`` lines, progress credit)."""

    id: str
    seq: int
    input_file_id: str
    endpoint: str
    completion_window: str
    created_at: float
    metadata: dict[str, str] | None = None
    output_expires_after: dict[str, Any] | None = None
    status: str = "validating"
    times: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    faults: BatchFaults = field(default_factory=BatchFaults)
    enqueued_tokens: int = 0
    enqueued_requests: int = 0
    done: int = 0
    credit: float = 0.0
    cursor: float = 0.0

    def to_api(self, window_seconds: float) -> dict[str, Any]:
        """The batch object exactly as ``openai.types.Batch`` reads it."""

        def stamp(name: str) -> int | None:
            value = self.times.get(name)
            return None if value is None else int(value)

        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created_at),
            "in_progress_at": stamp("in_progress_at"),
            "expires_at": int(self.created_at + window_seconds),
            "finalizing_at": stamp("finalizing_at"),
            "completed_at": stamp("completed_at"),
            "failed_at": stamp("failed_at"),
            "expired_at": stamp("expired_at"),
            "cancelling_at": stamp("cancelling_at"),
            "cancelled_at": stamp("cancelled_at"),
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
            "usage": None
            if self.faults.no_usage
            else {
                "input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 0,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.input_tokens,
            },
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchRecord:
        """Rebuild from a snapshot."""
        return cls(**{**data, "faults": BatchFaults(**data["faults"])})


@dataclass
class Counters:
    """What was embedded (and so billed), to prove a client never paid twice."""

    inputs: int = 0
    tokens: int = 0
    sync_inputs: int = 0
    batches_created: int = 0
    by_custom_id: dict[str, int] = field(default_factory=dict)
    by_text: dict[str, int] = field(default_factory=dict)
    faulted: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def count_input(self, text_key: str, tokens: int) -> None:
        """Record one embedded input."""
        self.inputs += 1
        self.tokens += tokens
        self.by_text[text_key] = self.by_text.get(text_key, 0) + 1

    def report(self) -> dict[str, Any]:
        """The counters as JSON, with the keys embedded more than once listed apart."""
        return {
            **asdict(self),
            "twice": {
                "custom_ids": sorted(k for k, n in self.by_custom_id.items() if n > 1),
                "texts": sorted(k for k, n in self.by_text.items() if n > 1),
            },
        }


class Store:
    """The emulator's whole state. Not thread-safe: the server serialises access."""

    def __init__(self, blob_dir: Path, snapshot: Path | None) -> None:
        self.blob_dir = blob_dir
        self.snapshot = snapshot
        self.clock_offset = 0.0
        self.seq = 0
        self.files: dict[str, FileRecord] = {}
        self.batches: dict[str, BatchRecord] = {}
        self.counters = Counters()
        blob_dir.mkdir(parents=True, exist_ok=True)
        if snapshot is not None and snapshot.exists():
            self._load(json.loads(snapshot.read_text()))

    def now(self) -> float:
        """The emulator's clock: wall time plus whatever the control API advanced it by."""
        return time.time() + self.clock_offset

    def blob(self, file_id: str) -> Path:
        """Where a file's bytes are kept."""
        return self.blob_dir / file_id

    def add_file(
        self, data: bytes, filename: str, purpose: str, expires_at: float | None
    ) -> FileRecord:
        """Store new file bytes and return the file's record."""
        record = FileRecord(new_id("file-"), len(data), self.now(), filename, purpose, expires_at)
        self.blob(record.id).write_bytes(data)
        self.files[record.id] = record
        return record

    def adopt_file(
        self, path: Path, filename: str, purpose: str, expires_after: dict[str, Any] | None
    ) -> str:
        """Turn a finished scratch file into a stored file; return its id."""
        now = self.now()
        expires_at = None if expires_after is None else now + float(expires_after["seconds"])
        record = FileRecord(
            new_id("file-"), path.stat().st_size, now, filename, purpose, expires_at
        )
        path.replace(self.blob(record.id))
        self.files[record.id] = record
        return record.id

    def drop_expired_files(self) -> None:
        """Forget files whose ``expires_at`` has passed, as the service does."""
        now = self.now()
        for record in [
            f for f in self.files.values() if f.expires_at is not None and f.expires_at <= now
        ]:
            self.delete_file(record.id)

    def delete_file(self, file_id: str) -> None:
        """Forget a file; keep its bytes while an unfinished batch still reads them."""
        del self.files[file_id]
        if not any(
            b.input_file_id == file_id and b.status in ACTIVE for b in self.batches.values()
        ):
            self.blob(file_id).unlink(missing_ok=True)

    def next_seq(self) -> int:
        """A strictly increasing number ordering batches by creation."""
        self.seq += 1
        return self.seq

    def save(self) -> None:
        """Write the snapshot (atomically) if a state directory was given."""
        if self.snapshot is None:
            return
        data = {
            "clock_offset": self.clock_offset,
            "seq": self.seq,
            "files": {k: asdict(v) for k, v in self.files.items()},
            "batches": {k: asdict(v) for k, v in self.batches.items()},
            "counters": asdict(self.counters),
        }
        tmp = self.snapshot.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.snapshot)

    def _load(self, data: dict[str, Any]) -> None:
        self.clock_offset = data["clock_offset"]
        self.seq = data["seq"]
        self.files = {k: FileRecord(**v) for k, v in data["files"].items()}
        self.batches = {k: BatchRecord.from_dict(v) for k, v in data["batches"].items()}
        self.counters = Counters(**data["counters"])
