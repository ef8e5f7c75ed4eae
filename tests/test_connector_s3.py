"""S3 sources, against a local S3 emulator (moto in server mode) with the real boto3 client.

The emulator counts the requests it serves, so the tests see what a sync downloads: a
re-sync lists the bucket and fetches only the objects whose ETag moved.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer import Index
from indexer.config import Config, SourceConfig
from indexer.connectors.contract import ConnectorContext
from indexer.connectors.s3 import S3Source, create
from indexer.errors import ConfigError, SourceError
from indexer.records import Skip, SourceItem
from s3server import FAKE_CREDENTIALS, S3Server


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with S3Server() as s3:
        yield s3


@pytest.fixture()
def s3(server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The emulator, with fake credentials and its endpoint in the environment, and none
    of the developer's own AWS settings."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    server.reset()
    return server


@pytest.fixture()
def bucket(s3: S3Server) -> str:
    name = f"docs-{uuid.uuid4().hex[:12]}"
    s3.client.create_bucket(Bucket=name)
    s3.reset()
    return name


def source(location: str, **settings: object) -> S3Source:
    """The connector the registry builds for ``location``."""
    max_bytes = settings.pop("max_bytes", Config.max_bytes)
    assert isinstance(max_bytes, int)
    return create(SourceConfig(location, **settings),  # type: ignore[arg-type]
                  ConnectorContext(Config(max_bytes=max_bytes)))


def uris(index: Index, query: str) -> list[str]:
    return [place.uri for hit in index.search(query, k=5) for place in hit.places]


def test_a_bucket_syncs_and_a_resync_fetches_and_embeds_only_what_changed(
        s3: S3Server, bucket: str, tmp_path: Path) -> None:
    s3.put(bucket, {
        "handbook/tea.md": "# Tea\n\nGreen tea is steeped at eighty degrees.\n",
        "handbook/bread.md": "# Bread\n\nSourdough needs a lively starter.\n",
        "handbook/logo.png": b"\x89PNG\r\n\x1a\n",
        "handbook2/other.md": "# Other\n\nA neighbouring prefix, not part of the source.\n",
    })
    s3.put(bucket, {"handbook/faq": "<html><head><title>FAQ</title></head><body>"
                                    "<h1>Kettles</h1><p>A kettle boils water.</p></body></html>"},
           ContentType="text/html")
    at = f"s3://{bucket}/handbook/"
    with Index(tmp_path / "idx", backend="local") as index:
        first = index.sync([f"s3://{bucket}/handbook"])
        faq = index.search("what boils water", k=1)[0]
        assert uris(index, "steeping green tea")[0] == at + "tea.md"
    assert first.exit_code == 0 and first.new == 3
    assert [(s.uri, s.reason) for s in first.skips] == [
        (at + "logo.png", "image (.png): no text to index")]
    assert faq.place.uri == at + "faq" and faq.text == "A kettle boils water."
    assert s3.count("GET", f"/{bucket}/handbook/logo.png") == 0

    s3.reset()
    with Index(tmp_path / "idx") as index:
        again = index.sync()
    assert (again.unchanged, again.new, again.changed, again.embedded) == (3, 0, 0, 0)
    assert s3.count() == s3.count("GET", f"/{bucket}") == 1  # one listing, no download

    s3.put(bucket, {"handbook/tea.md": "# Tea\n\nBlack tea wants boiling water, four minutes.\n"})
    s3.client.delete_object(Bucket=bucket, Key="handbook/bread.md")
    s3.reset()
    with Index(tmp_path / "idx") as index:
        third = index.sync()
        tea = index.search("black tea with boiling water", k=1)[0]
        assert at + "bread.md" not in uris(index, "sourdough starter")
    assert (third.changed, third.deleted, third.unchanged, third.embedded) == (1, 1, 1, 1)
    assert s3.count("GET") == 2 and s3.count("GET", f"/{bucket}/handbook/tea.md") == 1
    assert tea.place.uri == at + "tea.md" and "four minutes" in tea.text


def test_globs_size_limit_and_binary_names_are_decided_from_the_listing(
        s3: S3Server, bucket: str) -> None:
    s3.put(bucket, {
        "docs/guide/a.md": "# A\n\nSome text.\n", "docs/guide/drafts/b.md": "# Draft\n",
        "docs/notes.txt": "not included", "docs/big.md": "x" * 200, "docs/photo.jpg": b"\xff",
        "docs/empty.md": b"", "docs/folder/": b"", "docsier/c.md": "# C\n",
    })
    listed = source(f"s3://{bucket}/docs", include=("*.md", "*.jpg"), exclude=("drafts/",),
                    max_bytes=100)
    s3.reset()
    found = {f.uri.removeprefix(f"s3://{bucket}/docs/"):
             f.reason if isinstance(f, Skip) else f.format for f in listed.scan()}
    assert found == {
        "guide/a.md": "markdown", "big.md": "object too large: 200 bytes (max_bytes is 100)",
        "empty.md": "empty file", "photo.jpg": "image (.jpg): no text to index",
    }
    assert s3.count() == 1  # the listing: nothing is downloaded to decide


def test_listing_pages_past_1000_keys(s3: S3Server, bucket: str) -> None:
    keys = [f"many/{i:04d}.md" for i in range(1_050)]
    s3.fill(bucket, ((key, f"# Note {i}\n".encode()) for i, key in enumerate(keys)))
    items = list(source(f"s3://{bucket}/many/").scan())
    assert [i.uri for i in items] == [f"s3://{bucket}/{key}" for key in keys]
    assert all(isinstance(i, SourceItem) and i.version for i in items)
    assert s3.count("GET", f"/{bucket}") == 2  # 1,000 keys, then the 50 left


def test_an_object_gone_or_rewritten_after_the_listing_is_skipped(
        s3: S3Server, bucket: str) -> None:
    s3.put(bucket, {"a.md": "# A\n\nFirst.\n", "b.md": "# B\n\nFirst.\n"})
    connector = source(f"s3://{bucket}")
    a, b = connector.scan()
    assert isinstance(a, SourceItem) and isinstance(b, SourceItem)
    s3.client.delete_object(Bucket=bucket, Key="a.md")
    s3.put(bucket, {"b.md": "# B\n\nSecond, and longer.\n"})
    assert connector.load(a) == Skip(a.uri, "object vanished since the listing")
    rewritten = connector.load(b)
    assert isinstance(rewritten, Skip) and "changed since the listing" in rewritten.reason


def test_a_missing_bucket_fails_alone_and_deletes_nothing(
        s3: S3Server, bucket: str, tmp_path: Path) -> None:
    s3.put(bucket, {"handbook/tea.md": "# Tea\n\nGreen tea is steeped at eighty degrees.\n"})
    folder = tmp_path / "bread"
    folder.mkdir()
    (folder / "bread.md").write_text("# Bread\n\nSourdough needs a lively starter.\n")
    at = f"s3://{bucket}/handbook/"
    with Index(tmp_path / "idx", backend="local") as index:
        assert index.sync([folder, at]).exit_code == 0
    s3.client.delete_object(Bucket=bucket, Key="handbook/tea.md")
    s3.client.delete_bucket(Bucket=bucket)
    (folder / "rye.md").write_text("# Rye\n\nRye bread is dense and sour.\n")
    with Index(tmp_path / "idx") as index:
        report = index.sync()
        documents = index.status().documents
        assert at + "tea.md" in uris(index, "green tea temperature")
    assert report.exit_code == 1 and report.new == 1 and report.deleted == 0
    assert len(report.unreachable) == 1 and report.unreachable[0].startswith(at + ":")
    assert f"bucket {bucket!r} does not exist" in report.unreachable[0]
    assert documents == 3


def test_refused_credentials_no_credentials_and_a_dead_endpoint_say_what_to_do(
        s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    connector = source(f"s3://{bucket}/")
    s3.require_auth(True)
    try:
        with pytest.raises(SourceError) as denied:
            list(connector.scan())
    finally:
        s3.require_auth(False)
    message = str(denied.value)
    assert f"access to s3://{bucket} denied (InvalidAccessKeyId" in message
    assert "check the credentials" in message
    assert FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"] not in message
    assert FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in message

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries: the test stays quick
    dead = source(f"s3://{bucket}/", options={"endpoint_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(SourceError, match=f"cannot reach the S3 endpoint http://127.0.0.1:{port}"):
        list(dead.scan())

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(SourceError, match=r"no AWS credentials .* AWS_ACCESS_KEY_ID"):
        list(source(f"s3://{bucket}/").scan())


def test_settings_are_checked_when_the_source_is_built() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting.*'endpoint'.*endpoint_url"):
        source("s3://docs/", options={"endpoint": "http://minio:9000"})
    with pytest.raises(ConfigError, match="s3://BUCKET/PREFIX"):
        source("s3:///handbook")
    with pytest.raises(ConfigError, match="addressing_style"):
        source("s3://docs/", options={"addressing_style": "sideways"})
    built = source("s3://docs/handbook", options={"endpoint_url": "http://127.0.0.1:9",
                                                  "region": "eu-west-1"})
    assert (built.bucket, built.prefix, built.uri) == ("docs", "handbook", "s3://docs/handbook")


def test_the_command_line_names_the_unreachable_bucket_and_no_secret(
        s3: S3Server, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from indexer.cli import cli

    result = CliRunner().invoke(cli, ["--index", str(tmp_path / "idx"), "sync", "--backend",
                                      "local", "s3://no-such-bucket/handbook/"])
    assert result.exit_code == 1
    assert ("Error: s3://no-such-bucket/handbook/: bucket 'no-such-bucket' does not exist"
            in result.stderr)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert FAKE_CREDENTIALS[name] not in result.output + result.stderr
