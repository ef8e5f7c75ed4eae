"""The OpenAI backend: Files + Batches API for indexing, Embeddings API for queries.

The only module that imports ``openai``. Every call that creates something remote is
made once (``max_retries=0``) and, when its answer is lost, followed by a lookup
(:meth:`OpenAIBackend.find`, by the batch's metadata) before any new attempt: the
API has no idempotency key, so a blind retry could pay for the same shard twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai

from indexer.backend import JobError, JobFiles, JobStatus, RemoteJob, Tick
from indexer.errors import BackendError, ConfigError

DEFAULT_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_TRANSIENT = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)


@dataclass(frozen=True)
class OpenAISettings:
    """How the index talks to OpenAI (or a compatible service at ``base_url``)."""

    index_id: str
    model: str = "text-embedding-3-small"
    dimensions: int | None = None
    encoding_format: str = "base64"
    base_url: str | None = None
    file_expiry_seconds: int = 7 * 24 * 3600
    output_expiry_seconds: int = 7 * 24 * 3600
    max_retries: int = 4
    timeout: float = 120.0
    create_attempts: int = 4


class OpenAIBackend:
    """Embeds shards through the Batch API; see :class:`indexer.backend.Backend`."""

    name = "openai"
    max_batch_requests = 50_000

    def __init__(self, settings: OpenAISettings, client: openai.OpenAI | None = None) -> None:
        self.settings = settings
        try:
            self._client = client or openai.OpenAI(
                base_url=settings.base_url, max_retries=settings.max_retries,
                timeout=settings.timeout)
        except openai.OpenAIError as exc:
            raise ConfigError(f"cannot set up the OpenAI client: {exc}") from exc
        self.model = settings.model
        self.dimensions = settings.dimensions or DEFAULT_DIMENSIONS.get(settings.model) or 0
        if not self.dimensions:
            self.dimensions = len(self.embed_query(["dimension probe"])[0])

    def body(self) -> dict[str, object]:
        """Model, encoding and (text-embedding-3 only) explicit dimensions."""
        body: dict[str, object] = {"model": self.model,
                                   "encoding_format": self.settings.encoding_format}
        if self.settings.dimensions:
            body["dimensions"] = self.settings.dimensions
        return body

    def upload(self, shard: Path) -> str:
        """Upload a shard with ``purpose="batch"`` and an expiry; return the file id."""
        name = f"{self.settings.index_id}-{shard.name}"
        with shard.open("rb") as handle, _api("upload the batch file"):
            uploaded = self._client.files.create(
                file=(name, handle), purpose="batch",
                expires_after={"anchor": "created_at",
                               "seconds": self.settings.file_expiry_seconds})
        return uploaded.id

    def find(self, label: str, since: float) -> str | None:
        """The batch this index created for ``label`` (newest first, back to ``since``)."""
        with _api("list batches"):
            for batch in self._client.batches.list(limit=100):
                if batch.created_at < since - 600:
                    return None
                meta = batch.metadata or {}
                if (meta.get("indexer_index"), meta.get("indexer_shard")) == (
                        self.settings.index_id, label):
                    return batch.id
        return None

    def remote_jobs(self) -> list[RemoteJob]:
        """Every batch whose ``indexer_index`` metadata names this index, newest first."""
        found: list[RemoteJob] = []
        with _api("list batches"):
            for batch in self._client.batches.list(limit=100):
                meta = batch.metadata or {}
                if meta.get("indexer_index") == self.settings.index_id:
                    found.append(RemoteJob(batch.id, meta.get("indexer_shard", ""),
                                           batch.status, batch.input_file_id,
                                           float(batch.created_at)))
        return found

    def create(self, file_id: str, label: str, tick: Tick) -> str:
        """Create the batch once; after a lost answer, look for it before trying again."""
        since = time.time()
        client = self._client.with_options(max_retries=0)
        for attempt in range(self.settings.create_attempts):
            try:
                batch = client.batches.create(
                    input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h",
                    metadata={"indexer_index": self.settings.index_id, "indexer_shard": label},
                    output_expires_after={"anchor": "created_at",
                                          "seconds": self.settings.output_expiry_seconds})
                return batch.id
            except _TRANSIENT as exc:
                found = self.find(label, since)
                if found:
                    return found
                if attempt + 1 == self.settings.create_attempts:
                    raise BackendError(f"could not create the batch for {label}: {exc}; "
                                       "the next sync tries again") from exc
                time.sleep(min(2.0 ** attempt, 30.0))
            except openai.APIStatusError as exc:
                raise BackendError(f"OpenAI refused the batch for {label}: {_message(exc)}") \
                    from exc
        raise AssertionError("unreachable")

    def status(self, job_id: str) -> JobStatus:
        """The batch's state, counts, files, validation errors and token usage."""
        try:
            with _api("check the batch"):
                batch = self._client.batches.retrieve(job_id)
        except BackendError as exc:
            if isinstance(exc.__cause__, openai.NotFoundError):
                return JobStatus("lost")
            raise
        counts = batch.request_counts
        errors = tuple(
            JobError(e.code or "error", e.message or "", e.line)
            for e in (batch.errors.data or [] if batch.errors else [])
        )
        usage: Any = getattr(batch, "usage", None)
        return JobStatus(
            batch.status,
            completed=counts.completed if counts else 0,
            failed=counts.failed if counts else 0,
            total=counts.total if counts else 0,
            output_file=batch.output_file_id, error_file=batch.error_file_id,
            errors=errors, tokens=int(getattr(usage, "input_tokens", 0) or 0),
        )

    def fetch(self, status: JobStatus, directory: Path, label: str) -> JobFiles:
        """Stream the output and error files to ``directory`` (retrying truncated downloads)."""
        output = self._download(status.output_file, directory / f"{label}.output.jsonl")
        errors = self._download(status.error_file, directory / f"{label}.errors.jsonl")
        return JobFiles(output, errors)

    def _download(self, file_id: str | None, target: Path) -> Path | None:
        if not file_id:
            return None
        with _api("look up the result file"):
            expected = self._client.files.retrieve(file_id).bytes
        part = target.with_suffix(".part")
        for _ in range(3):
            try:
                with self._client.files.with_streaming_response.content(file_id) as response, \
                        part.open("wb") as out:
                    for block in response.iter_bytes(1 << 20):
                        out.write(block)
            except Exception:  # a cut stream surfaces as the transport's own error type
                pass  # what arrived is checked below
            if part.exists() and part.stat().st_size >= expected:
                break
        if not part.exists():
            raise BackendError(f"could not download {file_id}; the next sync tries again")
        part.replace(target)  # a still-short file keeps its whole lines; the rest requeues
        return target

    def download_input(self, file_id: str, target: Path) -> Path:
        """Save a batch's input file as ``target`` (to learn its keys when a lost ledger is
        rebuilt); the copy must be whole, or :class:`BackendError` is raised."""
        with _api("look up the batch input file"):
            expected = self._client.files.retrieve(file_id).bytes
        part = target.with_name(target.name + ".part")
        for _ in range(3):
            try:
                with self._client.files.with_streaming_response.content(file_id) as response, \
                        part.open("wb") as out:
                    for block in response.iter_bytes(1 << 20):
                        out.write(block)
            except Exception:  # a cut stream surfaces as the transport's own error type
                continue
            if part.stat().st_size == expected:
                part.replace(target)
                return target
        part.unlink(missing_ok=True)
        raise BackendError(f"could not download the batch input file {file_id} whole; "
                           "run `indexer doctor --repair` again")

    def cancel(self, job_id: str) -> None:
        """Ask OpenAI to cancel; finished lines are still delivered and ingested."""
        try:
            with _api("cancel the batch"):
                self._client.batches.cancel(job_id)
        except BackendError as exc:
            if not isinstance(exc.__cause__, openai.NotFoundError | openai.ConflictError):
                raise

    def cleanup(self, file_ids: Sequence[str]) -> None:
        """Delete remote files; already-deleted or expired ones are fine."""
        for file_id in file_ids:
            try:
                self._client.files.delete(file_id)
            except openai.NotFoundError:
                pass
            except openai.APIError:
                pass  # left for `indexer gc`

    def remote_files(self) -> list[tuple[str, str]]:
        """``(file id, filename)`` of this index's batch files still stored remotely."""
        prefix = f"{self.settings.index_id}-"
        with _api("list files"):
            return [(f.id, f.filename) for f in self._client.files.list(purpose="batch")
                    if f.filename.startswith(prefix)]

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries with the synchronous endpoint, same model and dimensions."""
        extra: dict[str, Any] = {}
        if self.settings.dimensions:
            extra["dimensions"] = self.settings.dimensions
        with _api("embed the query"):
            response = self._client.embeddings.create(
                model=self.model, input=list(texts), encoding_format="float", **extra)
        return np.asarray([d.embedding for d in response.data], dtype=np.float32)


@contextmanager
def _api(action: str) -> Iterator[None]:
    """Turn the SDK's errors into :class:`BackendError` saying what failed and what to do."""
    try:
        yield
    except openai.AuthenticationError as exc:
        raise BackendError(f"OpenAI rejected the API key while trying to {action}; "
                           "check OPENAI_API_KEY") from exc
    except openai.APIStatusError as exc:
        raise BackendError(f"could not {action}: {_message(exc)}") from exc
    except openai.APIError as exc:
        raise BackendError(f"could not {action}: {exc}; check the network and run again") \
            from exc


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = body.get("error", body) if isinstance(body, dict) else {}
    message = detail.get("message") if isinstance(detail, dict) else None
    return f"HTTP {exc.status_code}: {message or exc.message}"
