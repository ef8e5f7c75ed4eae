"""The embedded backend: executes batch files in-process with the local model.

It reads a shard exactly as the Batch API would (validating every line), embeds
the inputs, and writes output and error files in the Batch API's format beside it,
so the same parser ingests them. A job is finished when :meth:`LocalBackend.create`
returns; its "file ids" are local paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from indexer.backends.contract import JobFiles, JobStatus, RemoteJob, Tick
from indexer.backends.local.model import LocalModel
from indexer.batchfiles.output import write_failure, write_success
from indexer.batchfiles.requests import read_requests
from indexer.errors import BackendError

if TYPE_CHECKING:
    from indexer.config import Config

_GROUP = 64


class LocalBackend:
    """Runs shards on a :class:`LocalModel`; outputs land in ``directory``."""

    name = "local"
    max_batch_requests = 2_000
    remote = False

    def __init__(self, model: LocalModel, directory: Path) -> None:
        self._model = model
        self._directory = directory
        self.model = model.model_id
        self.dimensions = model.dimensions

    def body(self) -> dict[str, object]:
        """Lines carry the local model's id and ask for base64 vectors, like the API default."""
        return {"model": self.model, "encoding_format": "base64"}

    def upload(self, shard: Path) -> str:
        """Nothing to upload: the shard's path is its id."""
        return str(shard)

    def find(self, label: str, since: float) -> str | None:
        """A job whose output was completely written before a crash."""
        return label if self._outputs(label)[0].exists() else None

    def create(self, file_id: str, label: str, tick: Tick) -> str:
        """Embed every line of the shard now; outputs appear atomically when all is done."""
        output, errors = self._outputs(label)
        tmp_out, tmp_err = output.with_suffix(".tmp"), errors.with_suffix(".tmp")
        number = 0
        with tmp_out.open("wb") as out, tmp_err.open("wb") as err:
            group: list[tuple[str, str]] = []
            for custom_id, body in read_requests(Path(file_id)):
                number += 1
                text = body.get("input")
                if body.get("model") != self.model:
                    write_failure(err, number, custom_id, "model_mismatch",
                                  f"this backend serves {self.model}")
                elif not isinstance(text, str) or not text.strip():
                    write_failure(err, number, custom_id, "invalid_input",
                                  "input must be a non-empty string")
                else:
                    group.append((custom_id, text))
                if len(group) >= _GROUP:
                    self._embed(group, out, number - len(group), tick)
                    group = []
            self._embed(group, out, number - len(group), tick)
        tmp_err.replace(errors)
        tmp_out.replace(output)
        return label

    def _embed(self, group: list[tuple[str, str]], out: IO[bytes], first: int,
               tick: Tick) -> None:
        if not group:
            return
        try:
            vectors = self._model.embed([text for _, text in group])
        except Exception as exc:  # the runtime's errors are not ours to enumerate
            raise BackendError(f"the local model failed: {exc}") from exc
        for offset, ((custom_id, text), vector) in enumerate(zip(group, vectors, strict=True)):
            write_success(out, first + offset + 1, custom_id, self.model, vector,
                          len(text.split()))
        tick(len(group))

    def status(self, job_id: str) -> JobStatus:
        """Local jobs are complete once created."""
        output, errors = self._outputs(job_id)
        if not output.exists():
            return JobStatus("failed")
        return JobStatus("completed", output_file=str(output),
                         error_file=str(errors) if errors.exists() else None)

    def fetch(self, status: JobStatus, directory: Path, label: str) -> JobFiles:
        """The output files already sit in the batches directory."""
        return JobFiles(Path(status.output_file) if status.output_file else None,
                        Path(status.error_file) if status.error_file else None)

    def cancel(self, job_id: str) -> None:
        """Local jobs cannot be in flight."""

    def cleanup(self, file_ids: Sequence[str]) -> None:
        """Delete the shard and its outputs."""
        for file_id in file_ids:
            Path(file_id).unlink(missing_ok=True)

    def remote_files(self) -> list[tuple[str, str]]:
        """Nothing is kept anywhere but the batches directory."""
        return []

    def remote_jobs(self) -> list[RemoteJob]:
        """Local jobs never outlive the run that created them."""
        return []

    @property
    def input_limit(self) -> int:
        """The model's own input limit, in its tokens (longer inputs are truncated)."""
        return self._model.max_tokens

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Each text's length in the model's tokens, to keep chunks within its limit."""
        return self._model.count_tokens(texts)

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries with the same model as the index."""
        return self._model.embed(list(texts))

    def _outputs(self, label: str) -> tuple[Path, Path]:
        return (self._directory / f"{label}.output.jsonl",
                self._directory / f"{label}.errors.jsonl")


def create(config: Config, index_id: str, batches: Path) -> LocalBackend:
    """The registry's factory: the packaged model, or the one in ``config.model_dir``."""
    model = LocalModel.load(Path(config.model_dir) if config.model_dir else None)
    return LocalBackend(model, batches)
