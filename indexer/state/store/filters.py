"""The ``--where`` filter: one self-contained SQL expression that can only narrow the
published rows, and one-line errors when it is refused or fails."""


from __future__ import annotations

import re

from indexer.errors import StateError

_PANICS = frozenset({"PanicException", "RustPanic"})
"""How a Rust panic inside LanceDB reaches Python (pyo3_runtime, pyo3_async_runtimes)."""


def check_filter(where: str) -> str:
    """``where`` itself, once checked to be one self-contained filter expression.

    Search runs ``n_places > 0 AND (where)``. With its parentheses balanced, its quotes
    closed and no comment or ``;``, the filter is one group under that ``AND`` and can
    only narrow the published rows (``1=1) OR (n_places = 0`` is refused). Also refused:
    backslashes (an escape inside LanceDB's strings, so a way to hide a quote from this
    check), placeholders (``?``, ``$1``, ``:name``) and prefixed strings (``N'a'``), on
    which LanceDB panics. Raises :class:`StateError` naming the problem.
    """
    depth, quote, i = 0, "", 0
    while i < len(where):
        char = where[i]
        if char == "\\":
            raise StateError(_refused(where, "backslashes are not allowed"))
        if quote:
            if char == quote and where.startswith(quote * 2, i):
                i += 1  # a doubled quote stands for itself
            elif char == quote:
                quote = ""
        elif char in "'\"`":
            before = where[i - 1] if i else " "
            if char == "'" and (where.startswith("'" * 3, i) or before.isalnum()
                                or before in "_&"):
                raise StateError(_refused(where, "prefixed or triple-quoted strings are not "
                                                 "supported (put a space before a quote)"))
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise StateError(_refused(where, f"the ')' at character {i + 1} closes "
                                                 "nothing"))
        elif where.startswith(("--", "/*"), i):
            raise StateError(_refused(where, "comments are not allowed"))
        elif char == ";":
            raise StateError(_refused(where, "';' is not allowed: give one expression"))
        elif char in "?$" or (char == ":" and "::" not in where[max(i - 1, 0):i + 2]):
            raise StateError(_refused(where, f"{char!r} (a placeholder) is not supported"))
        i += 1
    if quote:
        raise StateError(_refused(where, f"a {quote} quote is never closed"))
    if depth:
        raise StateError(_refused(where, "a '(' is never closed"))
    return where


def panicked(exc: BaseException) -> bool:
    """True when LanceDB or Lance stopped on a Rust panic (Lance reports one on its
    background thread as an aborted task)."""
    return type(exc).__name__ in _PANICS or (
        isinstance(exc, RuntimeError) and str(exc).startswith("Task was aborted"))


def _refused(where: str, problem: str) -> str:
    return f"the --where filter {where!r} is refused: {problem}"


def _filter_failed(where: str, exc: BaseException) -> str:
    """One line saying why LanceDB could not run a filter (without its source paths)."""
    lines = str(exc).splitlines()
    detail = re.sub(r",? /\S+\.rs:\d+:\d+", "", lines[0] if lines else "")
    detail = detail.replace("Invalid input, ", "")
    if panicked(exc):
        detail = f"LanceDB stopped on an internal error ({detail or 'panic'})"
    return (f"the --where filter {where!r} failed: {detail[:300]}; check its syntax and "
            "columns (uri, heading, page, line_start, line_end, text, context)")
