"""Batch input files: keys, exact request format, and shards under every limit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from indexer.batchfiles.requests import (
    BatchLimits,
    Request,
    check_shard,
    content_key,
    line_ids,
    read_requests,
    request_line,
    write_shards,
)
from indexer.errors import BackendError

BODY = {"model": "text-embedding-3-small", "encoding_format": "base64"}


def requests(n: int, text: str = "passage {i}") -> list[Request]:
    return [Request(content_key("m", None, text.format(i=i)), text.format(i=i), 3)
            for i in range(n)]


def test_content_key_is_short_safe_and_stable() -> None:
    key = content_key("text-embedding-3-small", 512, "Hello world")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key)
    assert key == content_key("text-embedding-3-small", 512, "  Hello world\n")
    assert key != content_key("text-embedding-3-small", 256, "Hello world")
    assert key != content_key("text-embedding-3-large", 512, "Hello world")
    assert key != content_key("text-embedding-3-small", 512, "Hello World")


def test_request_line_is_openai_batch_format_without_ascii_escapes() -> None:
    line = request_line(Request("abc", "naïve café — 東京", 5), BODY)
    assert line.endswith(b"\n")
    assert "東京".encode() in line
    assert json.loads(line) == {
        "custom_id": "abc", "method": "POST", "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-small", "encoding_format": "base64",
                 "input": "naïve café — 東京"},
    }


def test_shards_split_at_request_limit(tmp_path: Path) -> None:
    shards = write_shards(requests(25), BODY, tmp_path, "s", BatchLimits(max_requests=10))
    assert [s.requests for s in shards] == [10, 10, 5]
    ids = [cid for s in shards for cid, _ in read_requests(s.path)]
    assert ids == [r.custom_id for r in requests(25)]


def test_shards_split_at_input_limit(tmp_path: Path) -> None:
    shards = write_shards(requests(7), BODY, tmp_path, "s", BatchLimits(max_inputs=3))
    assert [s.requests for s in shards] == [3, 3, 1]


def test_shards_split_at_byte_limit(tmp_path: Path) -> None:
    shards = write_shards(requests(20), BODY, tmp_path, "s", BatchLimits(max_bytes=600))
    assert len(shards) > 1
    for shard in shards:
        assert shard.path.stat().st_size == shard.size <= 600


def test_shards_split_at_token_budget_counting_bytes(tmp_path: Path) -> None:
    # 40 bytes of text but "3 tokens": the server's bytes/4 estimate (10) must win
    reqs = requests(6, "x" * 36 + "{i:04d}")
    shards = write_shards(reqs, BODY, tmp_path, "s", BatchLimits(max_shard_tokens=25))
    assert [s.requests for s in shards] == [2, 2, 2]
    assert all(s.tokens <= 25 for s in shards)


def test_oversized_or_empty_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="8192"):
        write_shards([Request("a", "text", 9000)], BODY, tmp_path, "s", BatchLimits())
    with pytest.raises(BackendError, match="empty"):
        write_shards([Request("a", "  ", 0)], BODY, tmp_path, "s", BatchLimits())


def test_read_requests_validates_like_the_api(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = request_line(Request("a", "x", 1), BODY)
    path.write_bytes(good + good)
    with pytest.raises(BackendError, match="duplicate custom_id"):
        list(read_requests(path))
    path.write_bytes(good + b"{not json\n")
    with pytest.raises(BackendError, match="line 2: invalid JSON"):
        list(read_requests(path))
    other = request_line(Request("b", "x", 1), {**BODY, "model": "other"})
    path.write_bytes(good + other)
    with pytest.raises(BackendError, match="model"):
        list(read_requests(path))


def test_a_shard_is_checked_against_what_was_planned(tmp_path: Path) -> None:
    (shard,) = write_shards(requests(4), BODY, tmp_path, "s")
    keys = [r.custom_id for r in requests(4)]
    assert check_shard(shard.path, BODY, keys, "m", None) is None
    original = shard.path.read_bytes()
    lines = original.splitlines(keepends=True)

    shard.path.write_bytes(b"".join([lines[0], lines[1].replace(b"passage", b"edited")]))
    assert "line 2: the input is not the text of" in (
        check_shard(shard.path, BODY, keys, "m", None) or "")
    shard.path.write_bytes(original[:-30])
    assert "line 4: invalid JSON" in (check_shard(shard.path, BODY, keys, "m", None) or "")
    shard.path.write_bytes(b"".join([*lines, b"[1, 2]\n"]))
    assert "line 5: invalid JSON line" in (check_shard(shard.path, BODY, keys, "m", None) or "")
    shard.path.write_bytes(b"".join(lines[:3]))
    assert check_shard(shard.path, BODY, keys, "m", None) == "3 line(s) for 4 chunk(s)"
    shard.path.write_bytes(original)
    assert "differ" in (check_shard(shard.path, {**BODY, "dimensions": 8}, keys, "m", None)
                        or "")
    assert "not one of this job's chunks" in (
        check_shard(shard.path, BODY, keys[1:], "m", None) or "")
    shard.path.unlink()
    assert "cannot read it" in (check_shard(shard.path, BODY, keys, "m", None) or "")


def test_line_ids_recover_the_key_of_a_broken_line(tmp_path: Path) -> None:
    (shard,) = write_shards(requests(2), BODY, tmp_path, "s")
    lines = shard.path.read_bytes().splitlines(keepends=True)
    shard.path.write_bytes(lines[0] + lines[1][:-20] + b"\n")
    assert line_ids(shard.path) == {1: requests(2)[0].custom_id, 2: requests(2)[1].custom_id}
