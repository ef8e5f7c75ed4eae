"""Where a search store lives: a local folder, or a prefix in object storage that Lance
reaches by itself (``s3://``, ``gs://``, ``az://``), and opening, creating and dropping
the Lance datasets (tables) kept there.

Credentials are never handled here: Lance's object store reads the standard
environment itself (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``/
``AWS_ENDPOINT_URL_S3``, ``AWS_ALLOW_HTTP``; ``GOOGLE_*`` and ``AZURE_*`` likewise). The
only option passed is ``allow_http`` when the endpoint the environment names is plain
HTTP (an emulator), and the values of secret variables are scrubbed from every message.

An index that keeps its store in object storage writes, beside its generations'
tables (``URI/g1/chunks.lance``, ``URI/g2/…``), a one-table pointer (``URI/index.lance``,
one row per key): the live generation and the index's identity (backend, model,
dimensions, model settings). A reader given only the URI reads it to find the table and
the model to embed its query with; it needs no ledger and no index folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from indexer.errors import ConfigError, IndexMismatch, StateError

Location = Path | str
"""A store's place: a local folder, or an object-storage URI (see :func:`is_remote`)."""

POINTER = "index"
"""The table at an object-storage root naming the live generation and the identity."""
GENERATION = "generation"
_ENDPOINTS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")
_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "GOOGLE_SERVICE_ACCOUNT_KEY", "AZURE_STORAGE_ACCOUNT_KEY",
            "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_SECRET")
_POINTER_SCHEMA = pa.schema([pa.field("key", pa.string()), pa.field("value", pa.string())])


def is_remote(location: Location) -> bool:
    """True for an object-storage URI (no local file to look at or delete)."""
    return isinstance(location, str) and "://" in location


def uri(location: Location, name: str) -> str:
    """Where the table ``name`` of the store at ``location`` lives (``LOCATION/name.lance``,
    the layout LanceDB gave it)."""
    return f"{str(location).rstrip('/')}/{name}.lance"


def open_table(location: Location, name: str, version: int | None = None) -> Any:
    """The Lance dataset ``name`` at ``location``, at its latest version or ``version``
    (the environment provides credentials); None when there is none. A local folder
    holding ``name.lance`` has the table even when it cannot be read (then this raises)."""
    import lance

    if not is_remote(location):
        if not Path(uri(location, name)).is_dir():
            return None
        return lance.dataset(uri(location, name), version=version)
    try:
        return lance.dataset(uri(location, name), version=version,
                             storage_options=storage_options())
    except ValueError as exc:
        if "was not found" in str(exc):
            return None
        raise


def create_table(location: Location, name: str, data: Any, schema: pa.Schema,
                 mode: str = "create") -> Any:
    """Write ``data`` as the table ``name`` at ``location`` (``mode`` ``"create"``, or
    ``"overwrite"``: a new version replacing every row) and return it."""
    import lance

    return lance.write_dataset(data, uri(location, name), schema=schema, mode=mode,
                               storage_options=_options(location))


def drop_table(location: Location, name: str) -> None:
    """Delete the table ``name`` at ``location`` and every file under it (a local folder
    is removed whatever it holds; in object storage it must be a readable table)."""
    import lance

    if not is_remote(location):
        shutil.rmtree(uri(location, name), ignore_errors=False)
        return
    lance.LanceDataset.drop(uri(location, name), storage_options(), ignore_not_found=True)


def _options(location: Location) -> dict[str, str]:
    return storage_options() if is_remote(location) else {}


def storage_options(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The options Lance does not take from the environment by itself: ``allow_http``
    when the endpoint named there is plain HTTP (an emulator or a private gateway), and
    the region (Lance refuses a bucket name with dots unless it is given)."""
    options = {}
    endpoint = next((environ[name] for name in _ENDPOINTS if environ.get(name)), "")
    if endpoint.lower().startswith("http://"):
        options["allow_http"] = "true"
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        options["aws_region"] = region
    return options


def scrub(text: str, environ: Mapping[str, str] = os.environ) -> str:
    """``text`` with the value of every credential variable set replaced by ``***``."""
    for name in _SECRETS:
        value = environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def point(root: str, generation: str, identity: Mapping[str, str],
          replace: bool = False) -> None:
    """Record at ``root`` that ``generation`` is live, built as ``identity`` (written
    only when it changed: one small commit). A root another index (another ``index_id``)
    already writes to is refused, unless ``replace`` (a rebuild swapped in)."""
    wanted = {**identity, GENERATION: generation}
    try:
        import lance

        found = _read_pointer(lance, uri(root, POINTER))
        if found == wanted:
            return
        if found and not replace and found.get("index_id") != wanted.get("index_id"):
            raise IndexMismatch(
                f"{root} holds the search store of another index (id {found.get('index_id')}"
                f", {found.get('model')}); one index writes to a store: give this one another "
                "store_uri")
        rows = pa.Table.from_pylist([{"key": k, "value": v} for k, v in sorted(wanted.items())],
                                    schema=_POINTER_SCHEMA)
        create_table(root, POINTER, rows, _POINTER_SCHEMA, mode="overwrite")
    except (OSError, ValueError, RuntimeError) as exc:
        raise StateError(f"cannot record the live generation in {root}: "
                         f"{scrub(_first_line(exc))}; check the credentials and endpoint in "
                         "the environment (AWS_*)") from exc


def pointed(root: str) -> dict[str, str]:
    """What :func:`point` recorded at ``root``: the identity, with ``generation``. A root
    holding no index is a :class:`ConfigError` naming it. Read through Lance alone: a
    search never imports LanceDB."""
    import lance

    try:
        found = _read_pointer(lance, uri(root, POINTER))
    except (OSError, ValueError, RuntimeError) as exc:
        raise StateError(f"cannot read the search store at {root}: "
                         f"{scrub(_first_line(exc))}; check the URI and the credentials and "
                         "endpoint in the environment (AWS_*)") from exc
    if not found or GENERATION not in found:
        raise ConfigError(f"no index store at {root}: give the store_uri an index syncs to "
                          "(its config.toml [index] store_uri)")
    return found


def _read_pointer(lance: Any, location: str) -> dict[str, str] | None:
    """The pointer table at ``location`` as a mapping; None when there is none."""
    try:
        dataset = lance.dataset(location, storage_options=storage_options())
    except ValueError as exc:
        if "was not found" in str(exc):
            return None
        raise
    return {str(r["key"]): str(r["value"]) for r in dataset.to_table().to_pylist()}


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]
