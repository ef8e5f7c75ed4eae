"""Documents in an S3 bucket (or any S3-compatible store: MinIO, Cloudflare R2, Ceph…).

``s3://bucket/prefix`` names every object under ``prefix``: a prefix that does not end
in ``/`` is a folder (``handbook`` takes ``handbook/…``, not ``handbook2/…``) or the one
object of that exact key. :meth:`S3Source.scan` pages through ``ListObjectsV2`` (1,000
keys a request) and decides from the listing alone what to load: include and exclude
globs relative to the prefix, binary kinds by key name, empty objects and objects larger
than ``max_bytes`` are left out before anything is downloaded. An object's fingerprint
is its ETag with its size and last-modified time, so a re-sync that finds nothing
changed costs the listing requests and no download. :meth:`S3Source.load` fetches one
object by key (``If-Match`` its listed ETag) and picks its format from the object's
``Content-Type`` and key name. An object's URI is ``s3://bucket/key`` and its
:attr:`~indexer.records.SourceItem.path` is its key: there is no file to read.

The client is **boto3**. It resolves credentials exactly as the AWS CLI does (the
``AWS_*`` variables, ``AWS_PROFILE`` and ``~/.aws`` files, SSO, assumed roles, web
identity, container and instance roles) and honours ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` and the config file's ``endpoint_url``. obstore is smaller and
quicker to import, but its native credentials are the environment, web identity and
container or instance roles only: profiles and SSO need its boto3 credential provider,
so boto3 anyway. boto3's cost, about 35 MB installed and ~0.3 s to import plus ~0.3 s to
build a client, is paid only by a sync that has an S3 source: the registry imports this
module on first use, and nothing else imports boto3 (an import-linter contract keeps it
so).

Secrets never reach a message: errors are written from the S3 error code and message
alone, with any credential value scrubbed out, and nothing here logs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from pathspec import GitIgnoreSpec

from indexer.config import Config, SourceConfig
from indexer.connectors import formats
from indexer.connectors.contract import ConnectorContext
from indexer.connectors.formats import format_of
from indexer.errors import ConfigError, SourceError
from indexer.records import Document, Skip, SourceItem

OPTIONS = ("endpoint_url", "region", "profile", "addressing_style")
"""The keys an ``s3://`` source's ``[[sources]]`` entry may set besides the common ones."""

_URI = re.compile(r"^s3://([^/?#]+)/?(.*)$", re.IGNORECASE)
_MISSING = frozenset({"NoSuchBucket"})
_DENIED = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem",
    "UnrecognizedClientException", "403",
})
_GONE = frozenset({"NoSuchKey", "404"})
_MOVED = frozenset({"PreconditionFailed", "412"})


@dataclass(frozen=True)
class S3Source:
    """Every object under ``prefix`` in ``bucket``.

    ``include`` and ``exclude`` are gitignore-style globs matched against a key relative
    to the prefix (``guides/*.md``); ``exclude`` always wins. ``endpoint_url`` and
    ``region`` override what the environment says (``AWS_ENDPOINT_URL``,
    ``AWS_REGION``); ``profile`` picks a named AWS profile; ``addressing_style``
    (``auto``, ``path`` or ``virtual``) is ``path`` by default for a custom endpoint, as
    most S3-compatible stores expect.
    """

    location: str
    bucket: str
    prefix: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_bytes: int = Config.max_bytes
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: str | None = None

    @property
    def uri(self) -> str:
        """The source's identity in the ledger: its ``s3://`` URI as configured."""
        return self.location

    @cached_property
    def _session(self) -> Any:
        try:
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        except BotoCoreError as exc:  # an unknown profile
            raise SourceError(f"{_scrub(str(exc), ())}; check AWS_PROFILE, the source's "
                              "`profile` and ~/.aws/config") from exc

    @cached_property
    def _client(self) -> Any:
        endpoint = self.endpoint_url or _endpoint_from(os.environ)
        style = self.addressing_style or ("path" if endpoint else "auto")
        # Retries stay boto3's own (standard mode, 3 attempts, AWS_MAX_ATTEMPTS); a host
        # that drops packets is given up after 10 s an attempt rather than 60.
        config = BotoConfig(connect_timeout=10, s3={"addressing_style": style})
        try:
            return self._session.client("s3", endpoint_url=self.endpoint_url, config=config)
        except (BotoCoreError, ValueError) as exc:
            raise SourceError(f"cannot set up the S3 client ({self._scrub(str(exc))}); check "
                              "endpoint_url, region and AWS_ENDPOINT_URL") from exc

    @cached_property
    def _secrets(self) -> tuple[str, ...]:
        """Credential values that must never appear in a message (empty when none)."""
        try:
            credentials = self._session.get_credentials()
            frozen = credentials.get_frozen_credentials() if credentials else None
        except Exception:  # resolving them failed: the error says so elsewhere
            return ()
        if frozen is None:
            return ()
        return tuple(v for v in (frozen.access_key, frozen.secret_key, frozen.token) if v)

    def _scrub(self, text: str) -> str:
        return _scrub(text, self._secrets)

    def scan(self) -> Iterator[SourceItem | Skip]:
        """List every object under the prefix, in key order, from the listing alone.

        Yields a :class:`~indexer.records.Skip` for an object that is binary by name,
        empty or too large. Raises :class:`~indexer.errors.SourceError` when the bucket
        cannot be listed (missing, access denied, no credentials, endpoint unreachable),
        also part-way through: nothing of the source is then deleted.
        """
        folder = self.prefix if not self.prefix or self.prefix.endswith("/") else self.prefix + "/"
        include = GitIgnoreSpec.from_lines(self.include) if self.include else None
        exclude = GitIgnoreSpec.from_lines(self.exclude) if self.exclude else None
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for entry in page.get("Contents", ()):
                    key: str = entry["Key"]
                    if key == self.prefix:
                        rel = key.rsplit("/", 1)[-1]
                    elif key.startswith(folder):
                        rel = key[len(folder):]
                    else:
                        continue
                    if not rel or key.endswith("/"):
                        continue  # a "folder" marker object
                    if exclude is not None and exclude.match_file(rel):
                        continue
                    if include is not None and not include.match_file(rel):
                        continue
                    yield self._item(key, entry)
        except (ClientError, BotoCoreError) as exc:
            raise self._unreachable(exc) from exc

    def _item(self, key: str, entry: Mapping[str, Any]) -> SourceItem | Skip:
        uri = self.object_uri(key)
        fmt = format_of(key.rsplit("/", 1)[-1])
        size = int(entry.get("Size", 0))
        if fmt is None:
            return Skip(uri, formats.skipped_kind(key.rsplit("/", 1)[-1]))
        if size == 0:
            return Skip(uri, "empty file", empty=True)
        if size > self.max_bytes:
            return Skip(uri, f"object too large: {size} bytes (max_bytes is {self.max_bytes})")
        modified = entry.get("LastModified")
        mtime_ns = (int(modified.replace(microsecond=0).timestamp()) * 1_000_000_000
                    + modified.microsecond * 1_000) if modified is not None else 0
        etag = str(entry.get("ETag", "")).strip('"')
        return SourceItem(uri=uri, path=Path(key), size=size, mtime_ns=mtime_ns, format=fmt,
                          version=f"{etag}:{size}:{mtime_ns}")

    def object_uri(self, key: str) -> str:
        """The URI that names the object ``key`` in the index: ``s3://bucket/key``."""
        return f"s3://{self.bucket}/{key}"

    def load(self, item: SourceItem) -> Document | Skip:
        """Download one listed object and extract its text; a per-object problem (gone,
        changed or refused since the listing, a dropped connection) becomes a Skip."""
        key = item.uri.removeprefix(f"s3://{self.bucket}/")
        etag = (item.version or "").split(":", 1)[0]
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if etag:
            request["IfMatch"] = f'"{etag}"'
        try:
            response = self._client.get_object(**request)
            length = int(response.get("ContentLength", 0))
            if length > self.max_bytes:
                response["Body"].close()
                return Skip(item.uri, f"object too large: {length} bytes "
                                      f"(max_bytes is {self.max_bytes})")
            data = response["Body"].read()
        except ClientError as exc:
            code = _code(exc)
            if code in _GONE:
                return Skip(item.uri, "object vanished since the listing")
            if code in _MOVED:
                return Skip(item.uri, "object changed since the listing; the next sync takes "
                                      "the new version")
            return Skip(item.uri, f"could not download: {self._describe(exc)}")
        except BotoCoreError as exc:
            return Skip(item.uri, f"could not download: {self._scrub(str(exc))}")
        fmt = formats.format_for(response.get("ContentType"), key.rsplit("/", 1)[-1])
        if fmt is None:
            return Skip(item.uri, f"binary file ({response.get('ContentType')})")
        return formats.document(item.uri, data, fmt)

    def _describe(self, exc: ClientError) -> str:
        error = exc.response.get("Error", {})
        message = error.get("Message") or ""
        return self._scrub(f"{_code(exc)}" + (f": {message}" if message else ""))

    def _unreachable(self, exc: Exception) -> SourceError:
        """What went wrong listing the bucket, and what to do about it."""
        where = f"s3://{self.bucket}"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return SourceError(
                f"no AWS credentials for {where}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (see `aws configure`, `aws sso login`)")
        if isinstance(exc, EndpointConnectionError | ConnectionError):
            endpoint = self._scrub(str(self._client.meta.endpoint_url))
            return SourceError(
                f"cannot reach the S3 endpoint {endpoint} for {where}: check the network, "
                "and AWS_ENDPOINT_URL or the source's endpoint_url if you use one")
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in _MISSING:
                return SourceError(f"bucket {self.bucket!r} does not exist at "
                                   f"{self._client.meta.endpoint_url}: check the name, the "
                                   "region and AWS_ENDPOINT_URL")
            if code in _DENIED:
                return SourceError(
                    f"access to {where} denied ({self._describe(exc)}): check the credentials "
                    f"and that they may s3:ListBucket and s3:GetObject on {self.bucket!r}")
            return SourceError(f"listing {where} failed ({self._describe(exc)}); "
                               "try again, or check the bucket's settings")
        return SourceError(f"listing {where} failed ({self._scrub(str(exc))}); try again, "
                           "or check the endpoint and credentials")


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(error.get("Code") or status or "error")


def _endpoint_from(environ: Mapping[str, str]) -> str | None:
    """A custom endpoint the environment sets for S3 (the config file's is left to boto3)."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def parse(location: str) -> tuple[str, str]:
    """The bucket and the key prefix an ``s3://bucket/prefix`` URI names."""
    match = _URI.match(location)
    if match is None or not match[1]:
        raise ConfigError(f"source {location}: an S3 source is s3://BUCKET/PREFIX, "
                          "e.g. s3://team-docs/handbook/")
    return match[1], match[2]


def create(source: SourceConfig, context: ConnectorContext) -> S3Source:
    """The registry's factory: an ``s3://`` source with its globs and settings. Nothing is
    contacted here: an unreachable bucket fails its scan, not the run."""
    unknown = sorted(set(source.options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"source {source.path}: unknown setting(s) {unknown} for an S3 "
                          f"source; it takes {', '.join(OPTIONS)}")
    for key, value in source.options.items():
        if not isinstance(value, str):
            raise ConfigError(f"source {source.path}: {key} must be a string, not {value!r}")
    style = source.options.get("addressing_style")
    if style not in (None, "auto", "path", "virtual"):
        raise ConfigError(f"source {source.path}: addressing_style must be auto, path or "
                          f"virtual, not {style!r}")
    if source.follow_links:
        raise ConfigError(f"source {source.path}: follow_links is for folders, not S3")
    bucket, prefix = parse(source.path)
    return S3Source(source.path, bucket, prefix, include=source.include,
                    exclude=source.exclude, max_bytes=context.config.max_bytes,
                    endpoint_url=source.options.get("endpoint_url"),
                    region=source.options.get("region"), profile=source.options.get("profile"),
                    addressing_style=style)
