"""The ``--source`` and ``--path`` shortcuts: store filter conditions built from a source
and a glob (trusted SQL, added to the user's ``--where`` and applied before ranking)."""

from __future__ import annotations

from collections.abc import Sequence

_LITERAL = {"^": "[]^]", "\\": "."}
"""Characters a regex class cannot hold literally without a backslash, which LanceDB's
SQL strings would read as an escape: ``^`` also admits ``]``, ``\\`` any character."""


def glob_regex(glob: str) -> str:
    """A regular expression matching URIs by ``glob``.

    ``**`` matches across folders, ``*`` and ``?`` within one, ``[...]`` a character of
    the set. A glob starting with ``/`` or holding ``://`` is anchored at the URI's start;
    any other matches from a folder boundary (``*.md``: Markdown files anywhere,
    ``guides/*.md``: Markdown files directly in any folder named ``guides``). A trailing
    ``/`` means everything under the folder.
    """
    pattern = glob + "**" if glob.endswith("/") else glob
    parts: list[str] = ["^" if pattern.startswith("/") or "://" in pattern else "(^|/)"]
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            parts.append("(.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            parts.append(".*")
            i += 2
            continue
        closing = pattern.find("]", i + 2) if char == "[" else -1
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif closing > 0:
            body = pattern[i + 1:closing].replace("\\", "")
            parts.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = closing
        elif char.isalnum() or char in "/_-~ %,=@:":
            parts.append(char)
        else:
            parts.append(_LITERAL.get(char, f"[{char}]"))
        i += 1
    return "".join(parts) + "$"


def path_condition(glob: str) -> str:
    """The store filter keeping passages whose document URI matches ``glob``."""
    return f"regexp_like(uri, {_quote(glob_regex(glob))})"


def source_condition(prefix: str, outside: Sequence[str]) -> str:
    """The store filter keeping the passages of one source: URIs under ``prefix`` and
    the source's documents named otherwise (``outside``)."""
    condition = f"starts_with(uri, {_quote(prefix)})"
    if outside:
        condition += f" OR uri IN ({', '.join(_quote(uri) for uri in outside)})"
    return condition


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
