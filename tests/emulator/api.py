"""The emulated endpoints as plain operations: checked arguments in, API objects out.

HTTP, authentication and injected faults are the server's business; here each
operation reads or changes the :class:`Store` and raises :class:`ApiError` as the
service would. The caller holds the lock and has advanced the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .embedding import parse_request, response_body
from .errors import ApiError, invalid, not_found
from .faults import FaultBook
from .lifecycle import Lifecycle
from .multipart import Part
from .options import Options
from .state import BatchRecord, Store, new_id
from .vectors import estimate_tokens, input_key

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
)
BATCH_FILE_DAYS = 30
T = TypeVar("T")


def _expiry(anchor: Any, seconds: Any, param: str) -> float:
    if anchor != "created_at":
        raise invalid(
            f"Invalid value for '{param}.anchor': expected 'created_at'.", param=f"{param}.anchor"
        )
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        raise invalid(
            f"Invalid '{param}.seconds': expected an integer.", param=f"{param}.seconds"
        ) from None
    if not 3600 <= value <= 2_592_000:
        raise invalid(
            f"Invalid '{param}.seconds': must be between 3600 and 2592000, got {value}.",
            param=f"{param}.seconds",
        )
    return float(value)


def _page(
    items: Sequence[T], ident: Callable[[T], str], after: str | None, limit: int
) -> tuple[list[T], bool]:
    start = 0
    if after:
        ids = [ident(item) for item in items]
        start = ids.index(after) + 1 if after in ids else len(ids)
    page = list(items[start : start + limit])
    return page, start + limit < len(items)


def _limit(query: dict[str, str], default: int, most: int) -> int:
    try:
        limit = int(query.get("limit", default))
    except ValueError:
        raise invalid("Invalid 'limit': expected an integer.", param="limit") from None
    if not 1 <= limit <= most:
        raise invalid(f"Invalid 'limit': must be between 1 and {most}.", param="limit")
    return limit


def _listing(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _check_metadata(metadata: Any) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise invalid("Invalid 'metadata': expected an object.", param="metadata")
    if len(metadata) > 16:
        raise invalid(
            "Invalid 'metadata': too many properties. Expected an object with at most 16 "
            f"properties, but got an object with {len(metadata)} properties instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > 64:
            raise invalid(
                f"Invalid 'metadata': key '{key[:20]}...' is longer than 64 characters.",
                param="metadata",
                code="string_above_max_length",
            )
        if not isinstance(value, str) or len(value) > 512:
            raise invalid(
                f"Invalid 'metadata.{key}': expected a string of at most 512 characters.",
                param=f"metadata.{key}",
                code="string_above_max_length",
            )


class Api:
    """The Files, Batches and Embeddings operations over one store."""

    def __init__(self, store: Store, options: Options, faults: FaultBook) -> None:
        self.store = store
        self.options = options
        self.faults = faults
        self.lifecycle = Lifecycle(store, lambda: self.options)

    def create_file(self, form: dict[str, Part]) -> dict[str, Any]:
        """``POST /v1/files``."""
        upload = form.get("file")
        if upload is None or upload.filename is None:
            raise invalid(
                "Missing required parameter: 'file'.",
                param="file",
                code="missing_required_parameter",
            )
        purpose = form["purpose"].value.decode() if "purpose" in form else None
        if purpose is None:
            raise invalid(
                "Missing required parameter: 'purpose'.",
                param="purpose",
                code="missing_required_parameter",
            )
        if purpose not in PURPOSES:
            raise invalid(
                f"'{purpose}' is not one of {list(PURPOSES)} - 'purpose'", param="purpose"
            )
        if purpose == "batch" and not upload.filename.endswith(".jsonl"):
            raise invalid("Invalid file format for Batch API. Must be .jsonl", param="file")
        stored = sum(f.bytes for f in self.store.files.values())
        if stored + len(upload.value) > self.options.storage_bytes:
            raise invalid(
                "You have exceeded your file storage quota. Organizations are limited to "
                f"{self.options.storage_bytes:,} bytes of files. Please delete old files or "
                "attempt with a smaller file size."
            )
        now = self.store.now()
        expires_at: float | None = now + BATCH_FILE_DAYS * 86_400 if purpose == "batch" else None
        if "expires_after[anchor]" in form or "expires_after[seconds]" in form:
            anchor = (
                form["expires_after[anchor]"].value.decode()
                if "expires_after[anchor]" in form
                else None
            )
            seconds = (
                form["expires_after[seconds]"].value.decode()
                if "expires_after[seconds]" in form
                else None
            )
            expires_at = now + _expiry(anchor, seconds, "expires_after")
        return self.store.add_file(upload.value, upload.filename, purpose, expires_at).to_api()

    def _file(self, file_id: str) -> Any:
        record = self.store.files.get(file_id)
        if record is None:
            raise not_found("File", file_id)
        return record

    def retrieve_file(self, file_id: str) -> dict[str, Any]:
        """``GET /v1/files/{id}``."""
        return dict(self._file(file_id).to_api())

    def file_content(self, file_id: str) -> tuple[Path, int]:
        """``GET /v1/files/{id}/content``: where the bytes are and how many."""
        record = self._file(file_id)
        return self.store.blob(file_id), int(record.bytes)

    def delete_file(self, file_id: str) -> dict[str, Any]:
        """``DELETE /v1/files/{id}``."""
        self._file(file_id)
        self.store.delete_file(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    def list_files(self, query: dict[str, str]) -> dict[str, Any]:
        """``GET /v1/files``: newest first unless ``order=asc``, optional ``purpose`` filter."""
        files = [
            f for f in self.store.files.values() if f.purpose == query.get("purpose", f.purpose)
        ]
        if query.get("order", "desc") == "desc":
            files.reverse()
        page, more = _page(files, lambda f: f.id, query.get("after"), _limit(query, 10_000, 10_000))
        return _listing([f.to_api() for f in page], more)

    def create_batch(self, body: Any) -> dict[str, Any]:
        """``POST /v1/batches``: the batch starts ``validating``; the file is checked later."""
        if not isinstance(body, dict):
            raise invalid("We could not parse the JSON body of your request.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                raise invalid(
                    f"Missing required parameter: '{name}'.",
                    param=name,
                    code="missing_required_parameter",
                )
        if body["endpoint"] not in ENDPOINTS:
            raise invalid(f"Invalid value for 'endpoint': '{body['endpoint']}'.", param="endpoint")
        if body["endpoint"] != "/v1/embeddings":
            raise invalid("The emulator serves only the /v1/embeddings endpoint.", param="endpoint")
        if body["completion_window"] != "24h":
            raise invalid(
                f"Invalid value: '{body['completion_window']}'. Supported values are: '24h'.",
                param="completion_window",
                code="invalid_value",
            )
        _check_metadata(body.get("metadata"))
        output_expires = body.get("output_expires_after")
        if output_expires is not None:
            if not isinstance(output_expires, dict):
                raise invalid(
                    "Invalid 'output_expires_after': expected an object.",
                    param="output_expires_after",
                )
            _expiry(
                output_expires.get("anchor"), output_expires.get("seconds"), "output_expires_after"
            )
        record = self.store.files.get(body["input_file_id"])
        if record is None:
            raise not_found("File", body["input_file_id"], param="input_file_id")
        if record.purpose != "batch":
            raise invalid(
                f"The input file must be uploaded with purpose 'batch', not '{record.purpose}'.",
                param="input_file_id",
            )
        now = self.store.now()
        recent = sum(1 for b in self.store.batches.values() if b.created_at > now - 3600)
        if recent >= self.options.batches_per_hour:
            raise ApiError(
                429,
                "Batch creation rate limit reached: "
                f"{self.options.batches_per_hour} batches per hour.",
                type="requests",
                code="rate_limit_exceeded",
            )
        batch = BatchRecord(
            id=new_id("batch_"),
            seq=self.store.next_seq(),
            input_file_id=record.id,
            endpoint=body["endpoint"],
            completion_window="24h",
            created_at=now,
            metadata=body.get("metadata"),
            output_expires_after=output_expires,
            faults=self.faults.take_batch(),
        )
        self.store.batches[batch.id] = batch
        self.store.counters.batches_created += 1
        return batch.to_api(self.options.window_seconds)

    def _batch(self, batch_id: str) -> BatchRecord:
        batch = self.store.batches.get(batch_id)
        if batch is None or batch.faults.lost:
            raise not_found("Batch", batch_id)
        return batch

    def retrieve_batch(self, batch_id: str) -> dict[str, Any]:
        """``GET /v1/batches/{id}``."""
        return self._batch(batch_id).to_api(self.options.window_seconds)

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """``POST /v1/batches/{id}/cancel``: 409 once the batch has ended."""
        batch = self._batch(batch_id)
        if batch.status not in (
            "validating",
            "in_progress",
            "finalizing",
            "cancelling",
            "cancelled",
        ):
            raise ApiError(409, f"Cannot cancel a batch with status '{batch.status}'.")
        self.lifecycle.cancel(batch)
        return batch.to_api(self.options.window_seconds)

    def list_batches(self, query: dict[str, str]) -> dict[str, Any]:
        """``GET /v1/batches``: newest first, cursor pagination with ``after`` and ``limit``."""
        batches = sorted(
            (b for b in self.store.batches.values() if not b.faults.lost), key=lambda b: -b.seq
        )
        page, more = _page(batches, lambda b: b.id, query.get("after"), _limit(query, 20, 100))
        return _listing([b.to_api(self.options.window_seconds) for b in page], more)

    def create_embeddings(self, body: Any) -> dict[str, Any]:
        """``POST /v1/embeddings``: the same vectors a batch line gets, counted as embedded."""
        request = parse_request(body, self.options)
        counters = self.store.counters
        for item in request.inputs:
            counters.count_input(input_key(item), estimate_tokens(item))
            counters.sync_inputs += 1
        return response_body(request)
