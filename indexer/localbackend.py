"""The embedded backend: executes batch files in-process with the local model.

It reads a shard exactly as the Batch API would (validating every line), embeds
the inputs, and writes output and error files in the Batch API's format, so the
same parser ingests them. A job is finished when :meth:`LocalBackend.submit` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexer.backend import JobFiles, JobStatus, Tick
from indexer.batchfile import read_requests
from indexer.batchoutput import write_failure, write_success
from indexer.errors import BackendError
from indexer.localmodel import LocalModel

_GROUP = 64


class LocalBackend:
    """Runs shards on a :class:`LocalModel`; outputs land beside the shard."""

    name = "local"
    max_batch_requests = 2_000

    def __init__(self, model: LocalModel) -> None:
        self._model = model
        self.model = model.model_id
        self.dimensions = model.dimensions

    def body(self) -> dict[str, object]:
        """Lines carry the local model's id and ask for base64 vectors, like the API default."""
        return {"model": self.model, "encoding_format": "base64"}

    def submit(self, shard: Path, label: str, tick: Tick) -> str:
        """Embed every line of ``shard`` now; the output replaces any partial earlier one."""
        output, errors = _outputs(shard)
        tmp_out, tmp_err = output.with_suffix(".tmp"), errors.with_suffix(".tmp")
        number = 0
        with tmp_out.open("wb") as out, tmp_err.open("wb") as err:
            group: list[tuple[str, str]] = []
            for custom_id, body in read_requests(shard):
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
        tmp_out.replace(output)
        tmp_err.replace(errors)
        return shard.stem

    def _embed(self, group: list[tuple[str, str]], out: object, first: int, tick: Tick) -> None:
        if not group:
            return
        try:
            vectors = self._model.embed([text for _, text in group])
        except Exception as exc:  # the runtime's errors are not ours to enumerate
            raise BackendError(f"the local model failed: {exc}") from exc
        for offset, ((custom_id, text), vector) in enumerate(zip(group, vectors, strict=True)):
            write_success(out, first + offset + 1, custom_id, self.model, vector,  # type: ignore[arg-type]
                          len(text.split()))
        tick(len(group))

    def status(self, job_id: str) -> JobStatus:
        """Local jobs are complete once submitted."""
        return JobStatus("completed")

    def fetch(self, job_id: str, directory: Path) -> JobFiles:
        """The output files already sit in the batches directory."""
        output, errors = _outputs(directory / f"{job_id}.jsonl")
        if not output.exists():
            raise BackendError(f"local job {job_id} has no output; it will be run again")
        return JobFiles(output, errors if errors.exists() else None)

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries with the same model as the index."""
        return self._model.embed(list(texts))


def _outputs(shard: Path) -> tuple[Path, Path]:
    return (shard.with_name(f"{shard.stem}.output.jsonl"),
            shard.with_name(f"{shard.stem}.errors.jsonl"))
