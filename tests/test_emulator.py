"""The OpenAI emulator, driven by the real ``openai`` SDK: shapes, validation, faults, counters."""

from __future__ import annotations

import base64
import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from emulator.fixture import Emulator, run_emulator

MODEL = "text-embedding-3-small"
ENDED = ("completed", "failed", "expired", "cancelled")
LIMITS: dict[str, Any] = {
    "max_requests": 40,
    "max_inputs": 60,
    "max_file_bytes": 100_000,
    "max_inputs_per_request": 4,
    "max_input_tokens": 64,
    "token_budget": 1_000_000,
}


def line(custom_id: str, text: Any = None, **body: Any) -> dict[str, Any]:
    """One batch request line embedding ``text`` (default: a text derived from the id)."""
    text = f"text of {custom_id}" if text is None else text
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings",
            "body": {"model": MODEL, "input": text, **body}}


def lines(count: int, prefix: str = "c", **body: Any) -> list[dict[str, Any]]:
    return [line(f"{prefix}{i}", **body) for i in range(count)]


def submit(client: openai.OpenAI, requests: list[Any], **create: Any) -> Any:
    """Upload ``requests`` (dicts or raw strings) as a batch file and create the batch."""
    raw = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in requests)
    upload = client.files.create(file=("in.jsonl", raw.encode()), purpose="batch")
    return client.batches.create(input_file_id=upload.id, endpoint="/v1/embeddings",
                                 completion_window="24h", **create)


def finish(client: openai.OpenAI, batch_id: str) -> Any:
    """Retrieve until the batch has ended (instant mode: the first look)."""
    for _ in range(50):
        batch = client.batches.retrieve(batch_id)
        if batch.status in ENDED:
            return batch
    raise AssertionError(f"batch still {batch.status}")


def read(client: openai.OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    """A result file's lines by custom_id."""
    if file_id is None:
        return {}
    text = client.files.content(file_id).text
    return {r["custom_id"]: r for r in map(json.loads, text.splitlines())}


def vector_of(result: dict[str, Any]) -> np.ndarray:
    embedding = result["response"]["body"]["data"][0]["embedding"]
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.array(embedding, dtype=np.float32)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with run_emulator(tmp_path_factory.mktemp("emulator"), **LIMITS) as emulator:
        yield emulator


@pytest.fixture()
def emu(shared: Emulator) -> Iterator[Emulator]:
    """The module's emulator, with faults and settings reset after each test."""
    settings = shared.control("GET", "config")
    yield shared
    shared.clear_faults()
    shared.configure(**settings)


@pytest.fixture()
def client(emu: Emulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.base_url, api_key="test", max_retries=0)


def test_happy_path_upload_create_poll_download(client: openai.OpenAI, emu: Emulator) -> None:
    created = submit(client, lines(30, dimensions=8), metadata={"index": "docs", "shard": "3"})
    assert created.status == "validating" and created.id.startswith("batch_")
    batch = finish(client, created.id)
    assert batch.status == "completed" and batch.model == MODEL
    assert batch.request_counts is not None and batch.usage is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (30, 30)
    assert batch.usage.input_tokens == batch.usage.total_tokens > 0
    assert batch.metadata == {"index": "docs", "shard": "3"} and batch.error_file_id is None
    assert None not in (batch.in_progress_at, batch.finalizing_at, batch.completed_at)
    output_file = client.files.retrieve(batch.output_file_id or "")
    assert output_file.purpose == "batch_output" and output_file.status == "processed"
    raw = client.files.content(batch.output_file_id or "").text.splitlines()
    order = [json.loads(r)["custom_id"] for r in raw]
    in_order = [f"c{i}" for i in range(30)]
    assert sorted(order) == sorted(in_order) and order != in_order
    result = json.loads(raw[0])
    assert result["id"].startswith("batch_req_") and result["error"] is None
    assert result["response"]["status_code"] == 200
    body = result["response"]["body"]
    assert body["object"] == "list" and body["model"] == MODEL
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    vector = vector_of(result)
    assert vector.shape == (8,) and math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-5)


def test_vectors_are_deterministic_across_batch_sync_and_formats(client: openai.OpenAI) -> None:
    batch = finish(client, submit(client, [line("f", "same text"),
                                           line("b", "same text", encoding_format="base64")]).id)
    results = read(client, batch.output_file_id)
    assert isinstance(results["b"]["response"]["body"]["data"][0]["embedding"], str)
    assert np.array_equal(vector_of(results["f"]), vector_of(results["b"]))
    sync = client.embeddings.create(model=MODEL, input=["same text", "other"])
    assert np.allclose(np.array(sync.data[0].embedding, dtype=np.float32), vector_of(results["f"]))
    assert len(sync.data) == 2 and len(sync.data[1].embedding) == 1536
    large = client.embeddings.create(model="text-embedding-3-large", input="x",
                                     encoding_format="float")
    assert len(large.data[0].embedding) == 3072
    short = client.embeddings.create(model="text-embedding-3-large", input="x", dimensions=256)
    cut = np.array(large.data[0].embedding[:256])
    assert np.allclose(short.data[0].embedding, cut / np.linalg.norm(cut), atol=1e-6)


def test_files_list_delete_and_expiry(client: openai.OpenAI, emu: Emulator) -> None:
    kept = client.files.create(file=("a.jsonl", b"{}\n"), purpose="batch",
                               expires_after={"anchor": "created_at", "seconds": 3600})
    other = client.files.create(file=("notes.txt", b"hi"), purpose="user_data")
    assert kept.expires_at == kept.created_at + 3600 and other.expires_at is None
    assert [f.id for f in client.files.list(purpose="user_data")] == [other.id]
    assert [f.id for f in client.files.list()][:2] == [other.id, kept.id]
    assert client.files.delete(other.id).deleted
    with pytest.raises(openai.NotFoundError) as error:
        client.files.retrieve(other.id)
    assert error.value.status_code == 404 and isinstance(error.value.body, dict)
    assert set(error.value.body) == {"message", "type", "param", "code"}
    emu.advance_clock(3601)
    with pytest.raises(openai.NotFoundError):
        client.files.content(kept.id)
    with pytest.raises(openai.BadRequestError, match="jsonl"):
        client.files.create(file=("a.txt", b"{}\n"), purpose="batch")


def test_auth_is_required(emu: Emulator) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
        request = urllib.request.Request(f"{emu.base_url}/batches", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=10)
        assert error.value.code == 401
        assert set(json.loads(error.value.read())["error"]) == {"message", "type", "param", "code"}


def test_a_configured_api_key_rejects_others(client: openai.OpenAI, emu: Emulator) -> None:
    emu.configure(api_key="sk-right")
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
        client.batches.list()
    assert emu.client(api_key="sk-right").batches.list().object == "list"


def test_create_refuses_bad_arguments_synchronously(client: openai.OpenAI) -> None:
    text = client.files.create(file=("x.jsonl", b"{}\n"), purpose="user_data")
    bad: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"input_file_id": text.id}, openai.BadRequestError, "purpose"),
        ({"input_file_id": "file-nope"}, openai.NotFoundError, "file-nope"),
        ({"completion_window": "1h"}, openai.BadRequestError, "24h"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, openai.BadRequestError, "16"),
        ({"metadata": {"k" * 65: "v"}}, openai.BadRequestError, "64"),
        ({"metadata": {"k": "v" * 513}}, openai.BadRequestError, "512"),
        ({"output_expires_after": {"anchor": "created_at", "seconds": 60}}, openai.BadRequestError,
         "3600"),
    ]
    good = client.files.create(file=("in.jsonl", json.dumps(line("a")).encode()), purpose="batch")
    for change, kind, words in bad:
        args = {"input_file_id": good.id, "endpoint": "/v1/embeddings", "completion_window": "24h",
                **change}
        with pytest.raises(kind, match=words):
            client.batches.create(**args)
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")


def test_batch_creation_rate_limit(client: openai.OpenAI, emu: Emulator) -> None:
    submit(client, [line("a")])
    emu.configure(batches_per_hour=1)
    with pytest.raises(openai.RateLimitError, match="per hour"):
        submit(client, [line("a")])


@pytest.mark.parametrize(("content", "code", "line_no"), [
    (["{not json"], "invalid_json_line", 1),
    ([line("a"), line("a")], "duplicate_custom_id", 2),
    ([line("a"), {**line("b"), "custom_id": None}], "missing_required_parameter", 2),
    ([{**line("a"), "url": "/v1/chat/completions"}], "url_mismatch", 1),
    ([{**line("a"), "method": "GET"}], "invalid_method", 1),
    ([line("a"), line("b", model="text-embedding-3-large")], "model_mismatch", 2),
    ([], "empty_file", None),
    ([line(f"r{i}") for i in range(41)], "too_many_tasks", None),
    ([line(f"r{i}", ["x", "y", "z", "w"]) for i in range(16)], "too_many_tasks", None),
    ([line("big", "x" * 120_000)], "file_too_large", None),
])
def test_validation_fails_the_batch_later(client: openai.OpenAI, content: list[Any], code: str,
                                          line_no: int | None) -> None:
    created = submit(client, content)
    assert created.status == "validating"
    batch = finish(client, created.id)
    assert batch.status == "failed" and batch.failed_at is not None and batch.errors is not None
    assert batch.errors.object == "list" and batch.errors.data
    assert (batch.errors.data[0].code, batch.errors.data[0].line) == (code, line_no)
    assert batch.output_file_id is None


def test_custom_id_pattern_and_injected_validation_errors(client: openai.OpenAI,
                                                         emu: Emulator) -> None:
    emu.configure(custom_id_pattern="[a-z]+")
    batch = finish(client, submit(client, [line("ok"), line("Bad-1"), line("fine")]).id)
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data
    assert [(e.code, e.line, e.param) for e in batch.errors.data] == [
        ("invalid_value", 2, "custom_id")]
    assert "[a-z]+" in (batch.errors.data[0].message or "")
    emu.configure(custom_id_pattern="")
    emu.fault_batches(validation_error="invalid_request", validation_line=None)
    emu.fault_batches(validation_error="invalid_json_line", validation_line=3)
    whole = finish(client, submit(client, lines(3)).id)
    named = finish(client, submit(client, lines(3)).id)
    assert whole.errors is not None and named.errors is not None
    assert [(e.code, e.line) for e in whole.errors.data or []] == [("invalid_request", None)]
    assert [(e.code, e.line) for e in named.errors.data or []] == [("invalid_json_line", 3)]
    assert finish(client, submit(client, lines(3)).id).status == "completed"


def test_file_storage_quota_refuses_uploads(client: openai.OpenAI, emu: Emulator) -> None:
    used = sum(f.bytes for f in client.files.list())
    emu.configure(storage_bytes=used + 500)
    client.files.create(file=("a.jsonl", b"x" * 400), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="file storage quota"):
        client.files.create(file=("b.jsonl", b"x" * 400), purpose="batch")


def test_bad_bodies_become_4xx_error_lines(client: openai.OpenAI) -> None:
    batch = finish(client, submit(client, [
        line("empty", ""), line("many", ["a", "b", "c", "d", "e"]), line("long", "x" * 400),
        line("dims", "ok", dimensions=0), line("fine", "ok"),
    ]).id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 4)
    errors = read(client, batch.error_file_id)
    assert set(errors) == {"empty", "many", "long", "dims"}
    for result in errors.values():
        assert result["error"] is None and result["response"]["status_code"] == 400
        assert set(result["response"]["body"]["error"]) == {"message", "type", "param", "code"}
    assert set(read(client, batch.output_file_id)) == {"fine"}
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.embeddings.create(model=MODEL, input="x" * 400)


def test_enqueued_token_budget(client: openai.OpenAI, emu: Emulator) -> None:
    emu.configure(token_budget=100, speed=0)
    held = submit(client, lines(10))  # 30 estimated tokens, held in progress by speed 0
    assert client.batches.retrieve(held.id).status == "in_progress"
    over = finish(client, submit(client, [line("x", "y" * 300)]).id)  # 75 more: 105 > 100
    assert over.errors is not None and over.errors.data is not None
    assert over.errors.data[0].code == "token_limit_exceeded" and over.errors.data[0].line is None
    client.batches.cancel(held.id)
    assert finish(client, held.id).status == "cancelled"
    again = submit(client, [line("x", "y" * 300)])
    assert client.batches.retrieve(again.id).status == "in_progress"
    client.batches.cancel(again.id)
    alone = finish(client, submit(client, [line("huge", "z" * 500)]).id)
    assert alone.errors is not None and alone.errors.data is not None
    assert alone.errors.data[0].code == "token_limit_exceeded"


def test_progress_is_time_driven(client: openai.OpenAI, emu: Emulator) -> None:
    emu.configure(speed=1, validating_seconds=5, finalizing_seconds=5)
    batch = submit(client, lines(20))
    assert client.batches.retrieve(batch.id).status == "validating"
    emu.advance_clock(8)
    seen = client.batches.retrieve(batch.id)
    assert seen.status == "in_progress" and seen.request_counts is not None
    assert 0 < seen.request_counts.completed < 20 and seen.request_counts.total == 20
    emu.advance_clock(20)
    assert client.batches.retrieve(batch.id).status == "finalizing"
    emu.advance_clock(5)
    assert client.batches.retrieve(batch.id).status == "completed"


def test_list_batches_newest_first_with_cursor(client: openai.OpenAI) -> None:
    ids = [submit(client, [line("a")]).id for _ in range(3)]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[::-1][:2] and first.has_more
    rest = client.batches.list(limit=2, after=first.data[-1].id)
    assert rest.data[0].id == ids[0]


def test_route_errors_are_retried_by_the_sdk(client: openai.OpenAI, emu: Emulator) -> None:
    batch = submit(client, [line("a")])
    before = emu.stats()["calls"].get("batches.retrieve", 0)
    emu.fail_route("batches.retrieve", status=503, count=2, retry_after_ms=1)
    patient = openai.OpenAI(base_url=emu.base_url, api_key="test", max_retries=2)
    assert patient.batches.retrieve(batch.id).id == batch.id
    assert emu.stats()["calls"]["batches.retrieve"] == before + 3
    emu.fail_route("batches.list", status=429)
    with pytest.raises(openai.RateLimitError):
        client.batches.list()
    emu.fail_route("files.create", status=500)
    with pytest.raises(openai.InternalServerError):
        client.files.create(file=("a.jsonl", b"{}"), purpose="batch")


def test_lost_create_response_can_create_twice(client: openai.OpenAI, emu: Emulator) -> None:
    upload = client.files.create(file=("in.jsonl", json.dumps(line("a")).encode()), purpose="batch")
    count = len(client.batches.list(limit=100).data)
    emu.fail_route("batches.create", action="drop", after=True)
    with pytest.raises(openai.APIConnectionError):
        client.batches.create(input_file_id=upload.id, endpoint="/v1/embeddings",
                              completion_window="24h", metadata={"shard": "s1"})
    listed = client.batches.list(limit=100).data
    assert len(listed) == count + 1 and listed[0].metadata == {"shard": "s1"}
    emu.fail_route("batches.create", status=500, after=True, retry_after_ms=1)
    retrying = openai.OpenAI(base_url=emu.base_url, api_key="test", max_retries=1)
    retrying.batches.create(input_file_id=upload.id, endpoint="/v1/embeddings",
                            completion_window="24h")
    assert len(client.batches.list(limit=100).data) == count + 3


def test_hanging_call_times_out(client: openai.OpenAI, emu: Emulator) -> None:
    emu.fail_route("batches.list", action="hang", seconds=2)
    with pytest.raises(openai.APITimeoutError):
        client.batches.list(timeout=0.3)


def test_truncated_download(client: openai.OpenAI, emu: Emulator) -> None:
    batch = finish(client, submit(client, lines(5)).id)
    emu.fail_route("files.content", action="truncate", fraction=0.5)
    with pytest.raises(openai.APIConnectionError):
        client.files.content(batch.output_file_id or "")
    assert len(read(client, batch.output_file_id)) == 5


def test_expired_batch_keeps_finished_lines(client: openai.OpenAI, emu: Emulator) -> None:
    emu.fault_batches(expire_after_lines=3)
    batch = finish(client, submit(client, lines(8)).id)
    assert batch.status == "expired" and batch.expired_at is not None
    assert len(read(client, batch.output_file_id)) == 3
    errors = read(client, batch.error_file_id)
    assert len(errors) == 5
    assert {e["error"]["code"] for e in errors.values()} == {"batch_expired"}
    assert all(e["response"] is None for e in errors.values())
    emu.configure(speed=0)
    slow = submit(client, lines(4))
    emu.advance_clock(86_401)
    ended = finish(client, slow.id)
    assert ended.status == "expired" and len(read(client, ended.error_file_id)) == 4


def test_cancel_delivers_partial_output(client: openai.OpenAI, emu: Emulator) -> None:
    emu.fault_batches(stall_after_lines=3)
    batch = submit(client, lines(10))
    assert client.batches.retrieve(batch.id).status == "in_progress"
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    ended = finish(client, batch.id)
    assert ended.status == "cancelled" and ended.cancelled_at is not None
    assert len(read(client, ended.output_file_id)) == 3 and ended.error_file_id is None
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(finish(client, submit(client, [line("z")]).id).id)
    emu.fault_batches(cancel_after_lines=2)
    other = finish(client, submit(client, lines(6)).id)
    assert other.status == "cancelled" and len(read(client, other.output_file_id)) == 2


def test_failed_missing_and_odd_lines(client: openai.OpenAI, emu: Emulator) -> None:
    emu.configure(max_requests=200, max_inputs=200)
    emu.fault_batches(fail_rate=0.3, missing_rate=0.2, non200_rate=0.1, nan_rate=0.1,
                      wrong_dims_rate=0.1)
    batch = finish(client, submit(client, lines(200, prefix="odd", dimensions=4)).id)
    assert batch.status == "completed" and batch.request_counts is not None
    output, errors = read(client, batch.output_file_id), read(client, batch.error_file_id)
    faulted = emu.stats()["faulted"]
    missing = {c for c, kind in faulted.items() if kind == "missing" and c.startswith("odd")}
    assert missing and not missing & (set(output) | set(errors))
    assert len(output) + len(errors) + len(missing) == 200
    assert batch.request_counts.failed == len(errors) + sum(
        1 for r in output.values() if r["response"]["status_code"] != 200)
    shapes = {("response" if e["response"] else "error") for e in errors.values()}
    assert shapes == {"response", "error"}
    odd = [r for r in output.values() if r["response"]["status_code"] != 200]
    assert odd and all(r["error"] is None for r in odd)
    vectors = [vector_of(r) for r in output.values() if r["response"]["status_code"] == 200]
    assert any(np.isnan(v).any() for v in vectors) and any(len(v) == 3 for v in vectors)


def test_completed_without_output_file_and_lost_batch(client: openai.OpenAI, emu: Emulator) -> None:
    emu.fault_batches(no_output_file=True)
    batch = finish(client, submit(client, lines(3)).id)
    assert batch.status == "completed" and batch.output_file_id is None
    assert batch.request_counts is not None and batch.request_counts.completed == 3
    emu.fault_batches(lost=True)
    lost = submit(client, lines(2))
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve(lost.id)
    assert lost.id not in {b.id for b in client.batches.list(limit=100)}


def test_counters_show_what_was_paid_twice(client: openai.OpenAI, emu: Emulator) -> None:
    before = emu.stats()
    finish(client, submit(client, [line("once", "alpha"), line("twice", "beta")]).id)
    finish(client, submit(client, [line("twice", "beta")]).id)
    client.embeddings.create(model=MODEL, input="alpha")
    stats = emu.stats()
    assert stats["by_custom_id"]["twice"] == 2 and "twice" in stats["twice"]["custom_ids"]
    assert stats["inputs"] - before["inputs"] == 4
    assert stats["sync_inputs"] - before["sync_inputs"] == 1
    assert len(stats["twice"]["texts"]) >= 2


def test_state_survives_a_killed_emulator(tmp_path: Path) -> None:
    with run_emulator(tmp_path, faults={"batches": {"count": None, "fail_rate": 1.0}}) as emulator:
        client = emulator.client()
        batch = finish(client, submit(client, lines(2)).id)
        assert batch.request_counts is not None and batch.request_counts.failed == 2
        emulator.clear_faults()
        done = finish(client, submit(client, lines(3)).id)
        emulator.restart(kill=True)
        client = emulator.client()
        assert client.batches.retrieve(done.id).status == "completed"
        assert len(read(client, done.output_file_id)) == 3
        assert emulator.stats()["batches_created"] == 2
        process = emulator
    assert not process.running


@pytest.mark.slow
def test_without_a_snapshot_a_restart_forgets(tmp_path: Path) -> None:
    with run_emulator(tmp_path, snapshot=False) as emulator:
        client = emulator.client()
        done = finish(client, submit(client, lines(3)).id)
        assert len(read(client, done.output_file_id)) == 3
        assert not (emulator.state_dir / "state.json").exists()
        emulator.restart(kill=True)
        with pytest.raises(openai.NotFoundError):
            emulator.client().batches.retrieve(done.id)
