"""How a batch moves: validating, in_progress, finalizing, then a final status with files.

Progress is driven by the emulator's clock: each look at the state (any request)
first advances every batch to "now", processing ``speed`` lines per elapsed second.
What a line yields is a pure function of the seed, the batch id and the line, so
the output files can be written in one go when the batch ends.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .embedding import parse_request, response_body
from .errors import ApiError
from .options import Options
from .state import ACTIVE, BatchRecord, Store
from .validation import BatchLine, validate_file
from .vectors import estimate_tokens, input_key

SERVER_ERROR = {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": None,
    "code": None,
}


def _hex(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:32]


class Lifecycle:
    """Advances batches and writes their output and error files."""

    def __init__(self, store: Store, options: Callable[[], Options]) -> None:
        self.store = store
        self.options = options
        self._lines: dict[str, tuple[BatchLine, ...]] = {}
        self._order: dict[str, list[int]] = {}
        self._content: dict[str, str] = {}

    def advance_all(self) -> None:
        """Bring every batch (oldest first) and every file up to the current time."""
        now = self.store.now()
        self.store.drop_expired_files()
        for batch in sorted(self.store.batches.values(), key=lambda b: b.seq):
            if not batch.faults.lost:
                self._advance(batch, now)

    def cancel(self, batch: BatchRecord) -> None:
        """Start cancelling; the finished lines are delivered once the batch is ``cancelled``."""
        if batch.status in ("validating", "in_progress", "finalizing"):
            batch.status = "cancelling"
            batch.times["cancelling_at"] = self.store.now()

    def _advance(self, batch: BatchRecord, now: float) -> None:
        options = self.options()
        while True:
            if batch.status == "validating":
                at = batch.created_at + options.validating_seconds
                if now < at:
                    return
                self._validate(batch, at, options)
            elif batch.status == "in_progress":
                if not self._progress(batch, now, options):
                    return
            elif batch.status in ("finalizing", "cancelling"):
                delay = (
                    options.finalizing_seconds
                    if batch.status == "finalizing"
                    else options.cancelling_seconds
                )
                at = batch.times[f"{batch.status}_at"] + delay
                if now < at:
                    return
                self._finish(
                    batch, "completed" if batch.status == "finalizing" else "cancelled", at, options
                )
            else:
                return

    def _validate(self, batch: BatchRecord, at: float, options: Options) -> None:
        blob = self.store.blob(batch.input_file_id)
        validation = validate_file(
            blob.read_bytes() if blob.exists() else b"", batch.endpoint, options
        )
        batch.model = validation.model
        if validation.errors:
            self._fail(batch, list(validation.errors), at)
            return
        if batch.faults.validation_error is not None:
            line = batch.faults.validation_line
            where = f"Line {line}" if line is not None else "The input file"
            error = {
                "code": batch.faults.validation_error,
                "line": line,
                "message": f"{where} failed validation (injected).",
                "param": None,
            }
            self._fail(batch, [error], at)
            return
        others = [
            b
            for b in self.store.batches.values()
            if b is not batch
            and b.status in ACTIVE
            and b.model == batch.model
            and not b.faults.lost
        ]
        tokens = sum(b.enqueued_tokens for b in others) + validation.tokens
        requests = sum(b.enqueued_requests for b in others) + len(validation.lines)
        if tokens > options.token_budget or requests > options.request_budget:
            kind, limit = (
                ("token", options.token_budget)
                if tokens > options.token_budget
                else ("request", options.request_budget)
            )
            message = (
                f"Enqueued {kind} limit reached for {batch.model} in organization org-emulator. "
                f"Limit: {limit:,} enqueued {kind}s. "
                "Please try again once some in_progress batches have been completed."
            )
            self._fail(
                batch,
                [
                    {
                        "code": f"{kind}_limit_exceeded",
                        "line": None,
                        "message": message,
                        "param": None,
                    }
                ],
                at,
            )
            return
        batch.status = "in_progress"
        batch.times["in_progress_at"] = at
        batch.total = len(validation.lines)
        batch.enqueued_tokens = validation.tokens
        batch.enqueued_requests = len(validation.lines)
        batch.cursor = at
        self._lines[batch.id] = validation.lines

    def _fail(self, batch: BatchRecord, errors: list[dict[str, Any]], at: float) -> None:
        batch.status = "failed"
        batch.errors = errors
        batch.times["failed_at"] = at

    def _lines_of(self, batch: BatchRecord) -> tuple[BatchLine, ...]:
        if batch.total == 0:
            return ()
        if batch.id not in self._lines:
            data = self.store.blob(batch.input_file_id).read_bytes()
            self._lines[batch.id] = validate_file(data, batch.endpoint, self.options()).lines
        return self._lines[batch.id]

    def _order_of(self, batch: BatchRecord) -> list[int]:
        if batch.id not in self._order:
            order = list(range(batch.total))
            random.Random(f"{self.options().seed}:{batch.id}:order").shuffle(order)
            self._order[batch.id] = order
        return self._order[batch.id]

    def _progress(self, batch: BatchRecord, now: float, options: Options) -> bool:
        """Process the lines due by ``now``; return whether the status changed."""
        faults = batch.faults
        window_end = batch.created_at + options.window_seconds
        horizon = min(now, window_end)
        stops = [
            n
            for n in (
                faults.expire_after_lines,
                faults.cancel_after_lines,
                faults.stall_after_lines,
            )
            if n is not None
        ]
        target = min([batch.total, *stops])
        if math.isinf(options.speed):
            due = target - batch.done
        else:
            batch.credit = min(
                batch.credit + max(0.0, horizon - batch.cursor) * options.speed, batch.total
            )
            due = min(int(batch.credit), target - batch.done)
            batch.credit -= max(due, 0)
        batch.cursor = max(batch.cursor, horizon)
        for _ in range(max(due, 0)):
            self._process(batch, self._order_of(batch)[batch.done], options)
            batch.done += 1
        if batch.done >= batch.total:
            batch.status = "finalizing"
            batch.times["finalizing_at"] = horizon
        elif faults.expire_after_lines is not None and batch.done >= faults.expire_after_lines:
            self._finish(batch, "expired", horizon, options)
        elif faults.cancel_after_lines is not None and batch.done >= faults.cancel_after_lines:
            batch.status = "cancelling"
            batch.times["cancelling_at"] = horizon
        elif horizon >= window_end:
            self._finish(batch, "expired", window_end, options)
        else:
            return False
        return True

    def _outcome(self, batch: BatchRecord, line: BatchLine, options: Options) -> tuple[str, Any]:
        """What a line yields: ("ok" or its fault, the request), or ("invalid", the ApiError)."""
        try:
            request = parse_request(line.body, options)
        except ApiError as error:
            return "invalid", error
        draw = f"{self._content_key(batch)}:{line.custom_id}"
        return batch.faults.line_fault(options.seed, draw, line.number) or "ok", request

    def _content_key(self, batch: BatchRecord) -> str:
        """A digest of the batch's custom_ids: the same input file draws the same line faults
        in every run (a batch id is random), while a retry of some of its lines draws anew."""
        if batch.id not in self._content:
            ids = "\n".join(line.custom_id for line in self._lines_of(batch))
            self._content[batch.id] = hashlib.sha256(ids.encode()).hexdigest()[:16]
        return self._content[batch.id]

    def _process(self, batch: BatchRecord, index: int, options: Options) -> None:
        line = self._lines_of(batch)[index]
        outcome, request = self._outcome(batch, line, options)
        counters = self.store.counters
        if outcome != "ok" and outcome != "invalid":
            counters.faulted[line.custom_id] = outcome
        if outcome in ("invalid", "failed_response", "failed_error", "non200"):
            batch.failed += 1
            return
        batch.completed += 1
        if outcome == "missing" or batch.faults.no_output_file:
            return
        batch.input_tokens += request.tokens
        counters.by_custom_id[line.custom_id] = counters.by_custom_id.get(line.custom_id, 0) + 1
        for item in request.inputs:
            counters.count_input(input_key(item), estimate_tokens(item))

    def _result_line(
        self, batch: BatchRecord, line: BatchLine, options: Options
    ) -> tuple[str, dict[str, Any]]:
        """The line to write and which file it goes to ("output", "error" or "none")."""
        outcome, request = self._outcome(batch, line, options)
        head = {"id": f"batch_req_{_hex(batch.id, line.number)}", "custom_id": line.custom_id}
        request_id = f"req_{_hex(batch.id, line.number, 'request')}"
        if outcome == "missing":
            return "none", head
        if outcome == "failed_error":
            return "error", {
                **head,
                "response": None,
                "error": {"code": "server_error", "message": SERVER_ERROR["message"]},
            }
        if outcome in ("invalid", "failed_response", "non200"):
            status, body = (
                (request.status, request.body())
                if outcome == "invalid"
                else (500, {"error": SERVER_ERROR})
            )
            where = "output" if outcome == "non200" else "error"
            return where, {
                **head,
                "response": {"status_code": status, "request_id": request_id, "body": body},
                "error": None,
            }
        body = response_body(request, corrupt=None if outcome == "ok" else outcome)
        line_json = {
            **head,
            "response": {"status_code": 200, "request_id": request_id, "body": body},
            "error": None,
        }
        return ("none" if batch.faults.no_output_file else "output"), line_json

    def _finish(self, batch: BatchRecord, status: str, at: float, options: Options) -> None:
        lines = self._lines_of(batch)
        order = self._order_of(batch)
        scratch = {
            name: self.store.blob_dir / f"{batch.id}.{name}.part" for name in ("output", "error")
        }
        written = {"output": 0, "error": 0}
        with scratch["output"].open("w") as out, scratch["error"].open("w") as err:
            sinks: dict[str, IO[str]] = {"output": out, "error": err}
            model_line: dict[str, Any] | None = None
            for index in order[: batch.done]:
                where, line_json = self._result_line(batch, lines[index], options)
                if where != "none":
                    sinks[where].write(json.dumps(line_json) + "\n")
                    written[where] += 1
                if where == "output" and model_line is None:
                    model_line = line_json
            for number in range(batch.faults.stray_lines):
                if model_line is None:
                    break
                stray = {**model_line, "custom_id": f"stray-{batch.id[-8:]}-{number}"}
                out.write(json.dumps(stray) + "\n")
                written["output"] += 1
            if status == "expired":
                for index in order[batch.done :]:
                    expired = {
                        "id": f"batch_req_{_hex(batch.id, lines[index].number)}",
                        "custom_id": lines[index].custom_id,
                        "response": None,
                        "error": {
                            "code": "batch_expired",
                            "message": "This request could not be executed "
                            "before the completion window expired.",
                        },
                    }
                    err.write(json.dumps(expired) + "\n")
                    written["error"] += 1
                    batch.failed += 1
        batch.output_file_id = self._keep(batch, scratch["output"], "output", written["output"])
        batch.error_file_id = self._keep(batch, scratch["error"], "error", written["error"])
        batch.status = status
        batch.times[f"{status}_at"] = at
        self._lines.pop(batch.id, None)
        self._order.pop(batch.id, None)

    def _keep(self, batch: BatchRecord, path: Path, kind: str, count: int) -> str | None:
        if count == 0:
            path.unlink()
            return None
        return self.store.adopt_file(
            path, f"{batch.id}_{kind}.jsonl", "batch_output", batch.output_expires_after
        )
