"""A local S3 emulator (moto in server mode, on 127.0.0.1) that counts the requests it serves.

The connector under test talks to it over HTTP with the real boto3 client, exactly as it
would to AWS or MinIO; the test fills buckets through a client of its own::

    with S3Server() as s3:
        s3.client.create_bucket(Bucket="docs")
        ...
        assert s3.count("GET", "/docs/guide.md") == 1
"""

from __future__ import annotations

import logging
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0001",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-never-shown-0001",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""What a test puts in the environment: moto accepts any key, and no real one is near."""


class S3Server:
    """moto's S3 on a free port of 127.0.0.1, with a per-request counter."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.requests: Counter[tuple[str, str]] = Counter()

    def __enter__(self) -> S3Server:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
        self._server.start()
        wsgi: Any = self._server._server
        wsgi.app = self._counting(wsgi.app)
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.client: Any = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}))
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def _counting(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def counted(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
            self.requests[(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))] += 1
            return app(environ, start)
        return counted

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests served since the last :meth:`reset`, narrowed by method and path."""
        return sum(n for (m, p), n in self.requests.items()
                   if (method is None or m == method) and (path is None or p == path))

    def reset(self) -> None:
        """Forget the requests counted so far."""
        self.requests.clear()

    def put(self, bucket: str, objects: dict[str, bytes | str], **extra: Any) -> None:
        """Write ``objects`` (key -> content) into ``bucket``."""
        for key, body in objects.items():
            data = body.encode() if isinstance(body, str) else body
            self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)

    def fill(self, bucket: str, objects: Iterable[tuple[str, bytes]]) -> None:
        """Write many objects straight into the emulator's store, skipping HTTP: a quick
        setup for tests of listing, where thousands of PUTs would take a minute."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
        for key, data in objects:
            backend.put_object(bucket, key, data)

    def require_auth(self, on: bool) -> None:
        """Make the emulator check every request's credentials against its IAM users (there
        are none, so each is refused as an unknown access key), or stop checking."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=b"0" if on else b"inf",
            method="POST", headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=10).close()
