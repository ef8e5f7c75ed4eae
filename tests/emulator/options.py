"""The emulator's settings: service limits, pacing and seeds, one flat frozen record.

Every field is also a command-line flag (``speed`` is ``--speed``), a keyword of
:func:`tests.emulator.fixture.run_emulator`, and a key of ``POST /_control/config``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Options:
    """Limits default to the real service's; tests shrink them to exercise each one cheaply."""

    speed: float = 1000.0
    """Request lines processed per second while a batch is ``in_progress`` (``inf``: at once)."""
    validating_seconds: float = 0.2
    finalizing_seconds: float = 0.2
    cancelling_seconds: float = 0.2
    window_seconds: float = 86_400.0
    """The ``24h`` completion window; an unfinished batch expires at its end."""
    max_requests: int = 50_000
    max_inputs: int = 50_000
    max_file_bytes: int = 200_000_000
    max_inputs_per_request: int = 2048
    max_input_tokens: int = 8192
    max_request_tokens: int = 300_000
    token_budget: int = 3_000_000
    """Enqueued tokens allowed per model (summed over unfinished batches, estimated)."""
    request_budget: int = 1_000_000
    """Enqueued requests allowed per model."""
    batches_per_hour: int = 2000
    storage_bytes: int = 100_000_000_000
    """The organisation's file storage quota: uploads past it are refused (400)."""
    api_key: str = ""
    """The one API key accepted (401 ``invalid_api_key`` for others); empty: any key."""
    custom_id_pattern: str = ""
    """A regular expression every ``custom_id`` must match (``invalid_value``); empty: any."""
    seed: int = 0
    """Seeds output order and random faults; the same seed gives the same files."""

    @property
    def instant(self) -> bool:
        """Whether batches finish on the first look after creation."""
        return (
            math.isinf(self.speed) and self.validating_seconds == 0 and self.finalizing_seconds == 0
        )

    def updated(self, changes: dict[str, Any]) -> Options:
        """A copy with ``changes`` applied, each coerced to its field's type; unknown keys raise."""
        kinds = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(changes) - set(kinds))
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}")
        coerced: dict[str, Any] = {k: _KINDS[kinds[k]](v) for k, v in changes.items()}
        return replace(self, **coerced)


INSTANT: dict[str, Any] = {
    "speed": math.inf,
    "validating_seconds": 0.0,
    "finalizing_seconds": 0.0,
    "cancelling_seconds": 0.0,
}
"""The settings ``--instant`` stands for."""


_KINDS: dict[Any, type] = {"float": float, "int": int, "str": str}


def option_kinds() -> dict[str, type]:
    """Each option's name and Python type, for building command-line flags."""
    return {f.name: _KINDS[f.type] for f in fields(Options)}
