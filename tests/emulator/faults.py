"""Fault injection: what to break, for how many calls or batches, and per-line choices.

Route faults hit the next ``count`` calls of one SDK method (``"batches.create"``,
``"files.content"`` ... or ``"*"``). Batch faults shape how the next ``count``
created batches (``count: null``: every later batch) run and what their files hold.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

ROUTES = (
    "files.create",
    "files.retrieve",
    "files.content",
    "files.delete",
    "files.list",
    "batches.create",
    "batches.retrieve",
    "batches.cancel",
    "batches.list",
    "embeddings.create",
)
ACTIONS = ("error", "drop", "hang", "truncate")


@dataclass(frozen=True)
class RouteFault:
    """Break the next ``count`` calls of ``route``.

    ``action``: ``error`` answers ``status`` (429/500/503...) with OpenAI's error body;
    ``drop`` closes the connection without an answer; ``hang`` holds it for ``seconds``
    then closes it; ``truncate`` (for ``files.content``) sends ``fraction`` of the bytes
    under a full Content-Length and closes. With ``after`` the call takes effect first
    (the batch or file exists) and only the answer is lost or replaced by the error.
    """

    route: str
    action: str = "error"
    status: int = 500
    count: int = 1
    after: bool = False
    retry_after_ms: int | None = None
    fraction: float = 0.5
    seconds: float = 30.0


@dataclass(frozen=True)
class BatchFaults:
    """How one batch misbehaves. Rates pick lines at random, seeded per batch content and line."""

    fail_rate: float = 0.0
    """Lines that fail with a 500: half as ``response.status_code`` 500, half as ``error``."""
    missing_rate: float = 0.0
    """Lines counted as completed but written to neither file."""
    non200_rate: float = 0.0
    """Lines in the output file with ``status_code`` 500 and ``error: null``."""
    nan_rate: float = 0.0
    wrong_dims_rate: float = 0.0
    expire_after_lines: int | None = None
    """Expire the batch once this many lines are done; the rest go to the error file."""
    cancel_after_lines: int | None = None
    """Cancel the batch (as if from elsewhere) once this many lines are done."""
    stall_after_lines: int | None = None
    """Stop processing after this many lines until the batch is cancelled or expires."""
    no_output_file: bool = False
    """Complete with ``output_file_id`` null: the succeeded lines are delivered nowhere."""
    lost: bool = False
    """After ``create`` answers, the batch is gone: 404 on retrieve, absent from lists.
    Bound to an existing batch id, ``lost: false`` brings a lost batch back."""
    no_usage: bool = False
    """The batch object carries ``usage: null`` (the service reported no token usage)."""
    stray_lines: int = 0
    """Extra output lines whose ``custom_id`` was in no input line (copies of a real one)."""
    validation_error: str | None = None
    """Fail validation with this code (``errors.data``), whatever the file holds."""
    validation_line: int | None = None
    """The input line the ``validation_error`` names (none: the whole file)."""

    def line_fault(self, seed: int, batch_key: str, number: int) -> str | None:
        """This line's fault (failed_response, failed_error, missing, non200, nan, wrong_dims)."""
        rates = (
            self.fail_rate,
            self.missing_rate,
            self.non200_rate,
            self.nan_rate,
            self.wrong_dims_rate,
        )
        if not any(rates):
            return None
        rng = random.Random(f"{seed}:{batch_key}:{number}")
        draw = rng.random()
        for name, rate in zip(
            ("failed", "missing", "non200", "nan", "wrong_dims"), rates, strict=True
        ):
            if draw < rate:
                if name == "failed":
                    return "failed_response" if rng.random() < 0.5 else "failed_error"
                return name
            draw -= rate
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchFaults:
        """Build from JSON, refusing unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown batch fault(s): {', '.join(unknown)}")
        return cls(**data)


def _route_fault(data: dict[str, Any]) -> RouteFault:
    known = {f.name for f in fields(RouteFault)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown route fault field(s): {', '.join(unknown)}")
    fault = RouteFault(**data)
    if fault.route != "*" and fault.route not in ROUTES:
        raise ValueError(f"unknown route {fault.route!r}; known: {', '.join(ROUTES)}")
    if fault.action not in ACTIONS:
        raise ValueError(f"unknown action {fault.action!r}; known: {', '.join(ACTIONS)}")
    return fault


class FaultBook:
    """The faults waiting to happen; safe to use from many request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: list[list[Any]] = []
        self._pending: list[BatchFaults] = []
        self._every: BatchFaults | None = None

    def apply(self, spec: dict[str, Any]) -> list[tuple[str, BatchFaults]]:
        """Add the faults of a control request; return the ones bound to existing batch ids.

        ``spec`` is ``{"routes": [RouteFault...], "batches": BatchFaults + count/batch_id,
        or a list of those}``.
        """
        unknown = sorted(set(spec) - {"routes", "batches"})
        if unknown:
            raise ValueError(f"unknown fault group(s): {', '.join(unknown)}")
        routes = [_route_fault(r) for r in spec.get("routes", [])]
        batches = spec.get("batches", [])
        bound: list[tuple[str, BatchFaults]] = []
        pending: list[BatchFaults] = []
        every: BatchFaults | None = None
        for entry in [batches] if isinstance(batches, dict) else batches:
            entry = dict(entry)
            count = entry.pop("count", 1)
            batch_id = entry.pop("batch_id", None)
            faults = BatchFaults.from_dict(entry)
            if batch_id is not None:
                bound.append((batch_id, faults))
            elif count is None:
                every = faults
            else:
                pending.extend([faults] * int(count))
        with self._lock:
            self._routes.extend([fault, fault.count] for fault in routes)
            self._pending.extend(pending)
            if every is not None:
                self._every = every
        return bound

    def clear(self) -> None:
        """Forget every fault not yet applied."""
        with self._lock:
            self._routes.clear()
            self._pending.clear()
            self._every = None

    def take_route(self, route: str, after: bool) -> RouteFault | None:
        """Consume and return the first fault for this call of ``route`` at this stage, if any."""
        with self._lock:
            for entry in self._routes:
                fault: RouteFault = entry[0]
                if entry[1] > 0 and fault.route in (route, "*") and fault.after == after:
                    entry[1] -= 1
                    self._routes = [e for e in self._routes if e[1] > 0]
                    return fault
        return None

    def take_batch(self) -> BatchFaults:
        """The faults for a batch being created now."""
        with self._lock:
            if self._pending:
                return self._pending.pop(0)
            return self._every or BatchFaults()

    def describe(self) -> dict[str, Any]:
        """What is still waiting, as JSON."""
        with self._lock:
            return {
                "routes": [{**asdict(f), "count": n} for f, n in self._routes],
                "batches": [asdict(f) for f in self._pending],
                "every_batch": asdict(self._every) if self._every else None,
            }
