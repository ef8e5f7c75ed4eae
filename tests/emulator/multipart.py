"""A small ``multipart/form-data`` reader for file uploads (the stdlib ``cgi`` is going away)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import invalid


@dataclass(frozen=True)
class Part:
    """One form field: its value and, for a file, its filename."""

    name: str
    value: bytes
    filename: str | None


def _params(header: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for piece in header.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        params[key.lower()] = value.strip('"')
    return params


def parse_form(content_type: str, body: bytes) -> dict[str, Part]:
    """Split a form body into its parts by name; raise a 400 if it is not multipart."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise invalid("Expected a multipart/form-data request body.")
    boundary = _params(content_type).get("boundary")
    if not boundary:
        raise invalid("The multipart request has no boundary.")
    parts: dict[str, Part] = {}
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, value = chunk.partition(b"\r\n\r\n")
        headers = {}
        for raw in head.decode("utf-8", "replace").split("\r\n"):
            key, _, text = raw.partition(":")
            if key:
                headers[key.strip().lower()] = text.strip()
        disposition = _params(headers.get("content-disposition", ""))
        name = disposition.get("name")
        if name is not None:
            parts[name] = Part(name, value.removesuffix(b"\r\n"), disposition.get("filename"))
    return parts
