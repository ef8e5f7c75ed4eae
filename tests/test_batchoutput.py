"""Parsing batch output and error files in every shape the Batch API produces."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from indexer.batchfiles.output import (
    encode_vector,
    read_groups,
    read_results,
    write_failure,
    write_success,
)


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def ok(custom_id: str, embedding: object) -> dict[str, object]:
    return {"id": "r", "custom_id": custom_id, "error": None,
            "response": {"status_code": 200, "request_id": "q",
                         "body": {"data": [{"index": 0, "embedding": embedding}]}}}


def test_base64_and_float_vectors_parse(tmp_path: Path) -> None:
    vector = np.array([0.5, -0.25, 1.0], dtype=np.float32)
    path = write_lines(tmp_path / "out.jsonl",
                       [ok("a", encode_vector(vector)), ok("b", vector.tolist())])
    results = {r.custom_id: r for r in read_results(path, 3)}
    assert np.array_equal(results["a"].vector, vector)
    assert np.array_equal(results["b"].vector, vector)


def test_both_error_shapes_and_non_200_with_null_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "err.jsonl", [
        {"id": "r", "custom_id": "expired", "response": None,
         "error": {"code": "batch_expired", "message": "not completed in time"}},
        {"id": "r", "custom_id": "bad", "error": None,
         "response": {"status_code": 400, "body": {"error": {"message": "too long"}}}},
        {"id": "r", "custom_id": "busy", "error": None,
         "response": {"status_code": 500, "body": {"error": {"message": "oops"}}}},
    ])
    results = {r.custom_id: r for r in read_results(path, 3)}
    assert results["expired"].retryable and "batch_expired" in (results["expired"].error or "")
    assert not results["bad"].retryable and "too long" in (results["bad"].error or "")
    assert results["busy"].retryable


def test_wrong_length_nan_and_truncated_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text(
        json.dumps(ok("short", [1.0, 2.0])) + "\n"
        + json.dumps(ok("nan", [1.0, float("nan"), 0.0])) + "\n"
        + json.dumps(ok("cut", [1.0, 2.0, 3.0]))[:30]
    )
    results = {r.custom_id: r for r in read_results(path, 3)}
    assert set(results) == {"short", "nan"}
    assert "expected 3" in (results["short"].error or "")
    assert "NaN" in (results["nan"].error or "")
    assert results["short"].vector is None and results["nan"].vector is None


def test_written_lines_round_trip(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    write_success(buffer, 1, "a", "m", np.ones(4, dtype=np.float32), 3)
    write_failure(buffer, 2, "b", "invalid_input", "empty")
    path = tmp_path / "o.jsonl"
    path.write_bytes(buffer.getvalue())
    results = list(read_results(path, 4))
    assert results[0].vector is not None and results[0].vector.tolist() == [1.0] * 4
    assert results[1].error == "invalid_input: empty" and not results[1].retryable


def compact(path: Path, lines: list[dict[str, object]], spaced: bool = False) -> Path:
    """Lines without spaces, or (``spaced``) as Python's ``json.dumps`` writes them, as
    the emulator does: ``"embedding": "..."``."""
    separators = (", ", ": ") if spaced else (",", ":")
    path.write_bytes(b"".join(json.dumps(line, separators=separators).encode() + b"\n"
                              for line in lines))
    return path


def test_lines_across_the_reads_of_a_large_file_are_read_whole(tmp_path: Path) -> None:
    vectors = np.random.default_rng(7).standard_normal((600, 1536)).astype(np.float32)
    path = compact(tmp_path / "out.jsonl",
                   [ok(f"k{n}", encode_vector(v)) for n, v in enumerate(vectors)])
    assert path.stat().st_size > 4 << 20  # several blocks are read
    groups = list(read_groups(path, 1536, 250))
    assert [key for group in groups for key in group.keys] == [f"k{n}" for n in range(600)]
    assert np.array_equal(np.concatenate([group.vectors for group in groups]), vectors)


@pytest.mark.parametrize("spaced", [False, True])
def test_a_vector_is_taken_only_from_where_the_format_puts_it(tmp_path: Path,
                                                              spaced: bool) -> None:
    real = np.array([0.5, -0.25, 1.0], dtype=np.float32)
    text = encode_vector(real)
    decoy = {"embedding": encode_vector(np.zeros(3, np.float32)), **ok("decoy", text)}
    failed = {**ok("failed", text), "error": {"code": "server_error", "message": "down"}}
    refused = ok("refused", text)
    refused["response"]["status_code"] = 500  # type: ignore[index]
    escaped = ok("escaped", "\\u00" + f"{ord(text[0]):02x}" + text[1:])
    path = compact(tmp_path / "out.jsonl", [
        decoy, failed, refused, ok("long", encode_vector(np.ones(4, np.float32))), escaped],
        spaced)
    path.write_bytes(path.read_bytes().replace(b"\\\\u00", b"\\u00"))  # a JSON escape
    results = {r.custom_id: r for r in read_results(path, 3)}
    assert np.array_equal(results["decoy"].vector, real)
    assert results["failed"].vector is None and results["failed"].retryable
    assert results["refused"].vector is None and "HTTP 500" in (results["refused"].error or "")
    assert "expected 3" in (results["long"].error or "")
    assert np.array_equal(results["escaped"].vector, real)
