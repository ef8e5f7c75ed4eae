"""The OpenAI backend: Files + Batches API for indexing, Embeddings API for queries.

The only module that imports ``openai``. Every call that creates something remote is
made once (``max_retries=0``) and, when its answer is lost, followed by a lookup
(:meth:`OpenAIBackend.find`, by the batch's metadata) before any new attempt: the
API has no idempotency key, so a blind retry could pay for the same shard twice.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai

from indexer.backends.contract import JobError, JobFiles, JobStatus, RemoteJob, Tick
from indexer.config import Config
from indexer.errors import BackendError, BackendUnavailable, ConfigError

DEFAULT_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_TRANSIENT = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)
_READ_BYTES = 256 * 1024
"""How much the SDK's transport asks the socket for at a time (its default is 64 KiB).
A batch's output is ~120 MB a 15,000-line file, and each read costs a round of h11's
and the transport's Python: 256 KiB reads cut a download's CPU by about a third. Kept
under glibc's 1 MiB mmap threshold (see ``indexer.state.store.heap``)."""


def _read_larger_blocks() -> None:
    """Raise the SDK's HTTP/1.1 read size (a class attribute of its transport, which has
    no option for it); an SDK on another transport keeps its own."""
    try:
        from httpcore2 import HTTP11Connection
    except ImportError:
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", 0) < _READ_BYTES:
        HTTP11Connection.READ_NUM_BYTES = _READ_BYTES


_read_larger_blocks()


@dataclass(frozen=True)
class OpenAISettings:
    """How the index talks to OpenAI (or a compatible service at ``base_url``).

    Every request gives up after ``timeout`` seconds without an answer (connecting,
    sending or reading) and is retried at most ``max_retries`` times by the SDK, so a
    hung endpoint costs at most about ``(max_retries + 1) * timeout`` seconds per call.
    """

    index_id: str
    model: str = "text-embedding-3-small"
    dimensions: int | None = None
    encoding_format: str = "base64"
    base_url: str | None = None
    file_expiry_seconds: int = 7 * 24 * 3600
    output_expiry_seconds: int = 7 * 24 * 3600
    max_retries: int = 2
    timeout: float = Config.timeout
    create_attempts: int = 4
    download_attempts: int = 3


class OpenAIBackend:
    """Embeds shards through the Batch API; see :class:`indexer.backends.contract.Backend`."""

    name = "openai"
    max_batch_requests = 50_000
    remote = True

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
        """Upload a shard with ``purpose="batch"`` and an expiry; return the file id.

        A refusal for lack of storage says how to free some (``indexer gc``)."""
        name = f"{self.settings.index_id}-{shard.name}"
        try:
            with shard.open("rb") as handle, _api("upload the batch file",
                                                        self.settings.timeout):
                uploaded = self._client.files.create(
                    file=(name, handle), purpose="batch",
                    expires_after={"anchor": "created_at",
                                   "seconds": self.settings.file_expiry_seconds})
        except BackendError as exc:
            cause = exc.__cause__
            if isinstance(cause, openai.APIStatusError) and cause.status_code in (400, 403) \
                    and ("quota" in str(exc).lower() or "storage" in str(exc).lower()):
                raise BackendError(f"{exc}; free storage (`indexer gc` deletes the files this "
                                   "index no longer needs), then run again") from cause
            raise
        return uploaded.id

    def find(self, label: str, since: float) -> str | None:
        """The batch this index created for ``label`` (newest first, back to ``since``)."""
        with _api("list batches", self.settings.timeout):
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
        with _api("list batches", self.settings.timeout):
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
                    raise BackendUnavailable(
                        f"could not create the batch for {label} "
                        f"({self.settings.create_attempts} attempts): "
                        f"{_describe(exc, self.settings.timeout)}; "
                        "the next sync looks for it, then tries again") from exc
                time.sleep(min(2.0 ** attempt, 30.0))
            except openai.AuthenticationError as exc:
                raise BackendError(f"OpenAI rejected the API key while trying to create the "
                                   f"batch for {label}; check OPENAI_API_KEY") from exc
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
        completed = counts.completed if counts else 0
        usage: Any = getattr(batch, "usage", None)
        tokens: int | None = getattr(usage, "input_tokens", None)
        if not tokens and completed:
            tokens = None  # lines were delivered, so a usage of 0 (or none) says nothing
        return JobStatus(
            batch.status,
            completed=completed,
            failed=counts.failed if counts else 0,
            total=counts.total if counts else 0,
            output_file=batch.output_file_id, error_file=batch.error_file_id,
            errors=errors, tokens=tokens,
        )

    def fetch(self, status: JobStatus, directory: Path, label: str) -> JobFiles:
        """Download the output and error files to ``directory``, each checked whole.

        Raises :class:`BackendError` when a file is still short (or ends mid-line) after
        ``download_attempts``: nothing of the job is ingested and the next sync tries again.
        """
        output = self._download(status.output_file, directory / f"{label}.output.jsonl",
                                f"output file of batch {label}")
        errors = self._download(status.error_file, directory / f"{label}.errors.jsonl",
                                f"error file of batch {label}")
        return JobFiles(output, errors)

    def _download(self, file_id: str | None, target: Path, what: str,
                  then: str = "nothing of it was ingested and the remote file is kept, so the "
                              "next sync downloads it again") -> Path | None:
        if not file_id:
            return None
        with _api(f"look up the {what} ({file_id})"):
            expected = self._client.files.retrieve(file_id).bytes
        part = target.with_suffix(".part")
        got = 0
        for attempt in range(self.settings.download_attempts):
            if attempt:
                time.sleep(min(0.25 * 2 ** attempt, 5.0))
            try:
                with self._client.files.with_streaming_response.content(file_id) as response, \
                        part.open("wb") as out:
                    for block in response.iter_bytes():  # as received: no copy to regroup
                        out.write(block)
            except Exception:  # a cut stream surfaces as the transport's own error type
                pass  # what arrived is checked below
            got = part.stat().st_size if part.exists() else 0
            if got == expected and _ends_whole(part):
                part.replace(target)
                return target
        part.unlink(missing_ok=True)
        detail = (f"got {got} of {expected} bytes" if got != expected
                  else "the file ends in the middle of a line")
        raise BackendError(
            f"could not download the {what} ({file_id}) whole: {detail} after "
            f"{self.settings.download_attempts} attempts; {then}")

    def download_input(self, file_id: str, target: Path) -> Path:
        """Save a batch's input file as ``target`` (to learn its keys when a lost ledger is
        rebuilt); the copy must be whole, or :class:`BackendError` is raised."""
        saved = self._download(file_id, target, "batch input file",
                               "run `indexer doctor --repair` again")
        assert saved is not None
        return saved

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
        """``(file id, filename)`` of this index's batch input files still stored remotely,
        and of every batch result file (their names do not say whose they are: the
        ledger knows which ones this index's jobs produced)."""
        prefix = f"{self.settings.index_id}-"
        with _api("list files"):
            inputs = [(f.id, f.filename) for f in self._client.files.list(purpose="batch")
                      if f.filename.startswith(prefix)]
            results = [(f.id, f.filename)
                       for f in self._client.files.list(purpose="batch_output")]
        return inputs + results

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries with the synchronous endpoint, same model and dimensions."""
        extra: dict[str, Any] = {}
        if self.settings.dimensions:
            extra["dimensions"] = self.settings.dimensions
        with _api("embed the query"):
            response = self._client.embeddings.create(
                model=self.model, input=list(texts), encoding_format="float", **extra)
        return np.asarray([d.embedding for d in response.data], dtype=np.float32)


def create(config: Config, index_id: str, batches: Path) -> OpenAIBackend:
    """The registry's factory: the OpenAI backend for an index (needs ``OPENAI_API_KEY``)."""
    if not os.environ.get("OPENAI_API_KEY"):
        raise ConfigError("this index embeds with OpenAI: set OPENAI_API_KEY "
                          "(or use another index directory for the local model)")
    return OpenAIBackend(OpenAISettings(
        index_id=index_id, model=config.model, dimensions=config.dimensions,
        encoding_format=config.encoding_format, base_url=config.base_url,
        timeout=config.timeout))


@contextmanager
def _api(action: str, timeout: float | None = None) -> Iterator[None]:
    """Turn the SDK's errors into :class:`BackendError` saying what failed and what to do:
    :class:`BackendUnavailable` when the same call may work later (no answer, 429, 5xx)."""
    try:
        yield
    except openai.AuthenticationError as exc:
        raise BackendError(f"OpenAI rejected the API key while trying to {action}; "
                           "check OPENAI_API_KEY") from exc
    except _TRANSIENT as exc:
        if _code(exc) == "insufficient_quota":
            raise BackendError(f"could not {action}: {_describe(exc, timeout)}; check the "
                               "organisation's billing") from exc
        if isinstance(exc, openai.APITimeoutError):
            advice = "the service did not answer; run again later"
        elif isinstance(exc, openai.APIConnectionError):
            advice = "check the network and run again"
        else:
            advice = "the service is busy or failing; run again later"
        raise BackendUnavailable(f"could not {action}: {_describe(exc, timeout)}; {advice}") \
            from exc
    except openai.APIStatusError as exc:
        raise BackendError(f"could not {action}: {_message(exc)}") from exc
    except openai.APIError as exc:
        raise BackendError(f"could not {action}: {exc}") from exc


def _describe(exc: openai.APIError, timeout: float | None = None) -> str:
    """What went wrong with a call, in words: the HTTP error, or the silence."""
    if isinstance(exc, openai.APITimeoutError):
        if timeout:
            return f"no answer within {timeout:g} s (the `timeout` setting)"
        return "no answer within the `timeout` setting"
    if isinstance(exc, openai.APIStatusError):
        return _message(exc)
    return f"{exc} (no connection to {exc.request.url.host}:{exc.request.url.port or ''})"


def _code(exc: openai.APIError) -> str | None:
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = body.get("error", body) if isinstance(body, dict) else {}
    code = detail.get("code") if isinstance(detail, dict) else None
    return code if isinstance(code, str) else None


def _ends_whole(path: Path) -> bool:
    """Whether the file's last line is complete: it ends with a newline, or it parses."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            return True
        handle.seek(max(0, size - 1))
        if handle.read(1) == b"\n":
            return True
    last = path.read_bytes().rsplit(b"\n", 1)[-1]
    try:
        json.loads(last)
    except ValueError:
        return False
    return True


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = body.get("error", body) if isinstance(body, dict) else {}
    message = detail.get("message") if isinstance(detail, dict) else None
    return f"HTTP {exc.status_code}: {message or exc.message}"
