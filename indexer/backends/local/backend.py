"""The embedded backend: executes batch files in-process with the local model.

It reads a shard exactly as the Batch API would (validating every line), embeds
the inputs, and writes output and error files in the Batch API's format beside it,
so the same parser ingests them. A job is finished when :meth:`LocalBackend.create`
returns; its "file ids" are local paths.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from indexer.backends.contract import JobFiles, JobStatus, RemoteJob, Tick
from indexer.backends.local.model import LocalModel
from indexer.batchfiles.requests import read_requests
from indexer.errors import BackendError, Interrupted

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
        self._resumed: dict[str, int] = {}

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
        """Embed every line of the shard now; the outputs appear when all is done.

        Finished lines are checkpointed as they go (appended to ``<output>.part``, a group
        at a time): a run stopped midway (Ctrl-C, a kill) loses none of them, and calling
        ``create`` again for the same label embeds only the lines not yet there. A Ctrl-C
        surfaces as :class:`~indexer.errors.Interrupted` counting what the checkpoint holds.
        """
        from indexer.batchfiles.output import write_failure  # not loaded by a search

        output, errors = self._outputs(label)
        part_out, part_err = _part(output), _part(errors)
        done = _finished(part_out) | _finished(part_err)
        self._resumed[label] = len(done)
        if done:
            tick(len(done))
        written = len(done)
        number = 0
        try:
            with part_out.open("ab") as out, part_err.open("ab") as err:
                group: list[tuple[str, str]] = []
                for custom_id, body in read_requests(Path(file_id)):
                    number += 1
                    if custom_id in done:
                        continue
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
                        written += self._embed(group, out, err, number - len(group), tick)
                        group = []
                written += self._embed(group, out, err, number - len(group), tick)
        except KeyboardInterrupt:
            raise Interrupted(checkpointed=written) from None
        part_err.replace(errors)
        part_out.replace(output)
        return label

    def _embed(self, group: list[tuple[str, str]], out: IO[bytes], err: IO[bytes],
               first: int, tick: Tick) -> int:
        """Embed one group and checkpoint it (its lines, and the error lines before it,
        reach the files before the next group starts); returns how many lines it wrote."""
        if group:
            from indexer.batchfiles.output import write_success

            try:
                vectors = self._model.embed([text for _, text in group])
            except Exception as exc:  # the runtime's errors are not ours to enumerate
                raise BackendError(f"the local model failed: {exc}") from exc
            lines = io.BytesIO()
            for offset, ((custom_id, text), vector) in enumerate(
                    zip(group, vectors, strict=True)):
                write_success(lines, first + offset + 1, custom_id, self.model, vector,
                              len(text.split()))
            out.write(lines.getvalue())  # whole lines in one write
        err.flush()
        out.flush()
        tick(len(group))
        return len(group)

    def status(self, job_id: str) -> JobStatus:
        """Local jobs are complete once created (``resumed`` counts the lines an
        interrupted run had already checkpointed)."""
        output, errors = self._outputs(job_id)
        if not output.exists():
            return JobStatus("failed")
        return JobStatus("completed", output_file=str(output),
                         error_file=str(errors) if errors.exists() else None,
                         resumed=self._resumed.get(job_id, 0))

    def fetch(self, status: JobStatus, directory: Path, label: str) -> JobFiles:
        """The output files already sit in the batches directory."""
        return JobFiles(Path(status.output_file) if status.output_file else None,
                        Path(status.error_file) if status.error_file else None)

    def cancel(self, job_id: str) -> None:
        """Local jobs cannot be in flight."""

    def cleanup(self, file_ids: Sequence[str]) -> None:
        """Delete the shard and its outputs (and any checkpoint left beside them)."""
        for file_id in file_ids:
            Path(file_id).unlink(missing_ok=True)
            _part(Path(file_id)).unlink(missing_ok=True)

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


def _part(path: Path) -> Path:
    """The checkpoint an output file grows in until its job is done."""
    return path.with_name(path.name + ".part")


def _finished(part: Path) -> set[str]:
    """The custom_ids of the whole lines in a checkpoint; a line cut short by a kill is
    cut off, so appending starts on a line boundary."""
    if not part.exists():
        return set()
    data = part.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with part.open("r+b") as file:
            file.truncate(end)
    found: set[str] = set()
    for raw in data[:end].splitlines():
        try:
            custom_id = json.loads(raw).get("custom_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(custom_id, str):
            found.add(custom_id)
    return found


def create(config: Config, index_id: str, batches: Path) -> LocalBackend:
    """The registry's factory: the packaged model, or the one in ``config.model_dir``."""
    model = LocalModel.load(Path(config.model_dir) if config.model_dir else None)
    return LocalBackend(model, batches)
