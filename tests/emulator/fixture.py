"""Start the emulator as a subprocess for a test, talk to its control API, stop it.

::

    with run_emulator(tmp_path, token_budget=1000) as emu:
        client = openai.OpenAI(base_url=emu.base_url, api_key="test", max_retries=0)
        emu.fail_route("batches.create", status=500, count=2)
        ...
        assert emu.stats()["twice"]["custom_ids"] == []
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PACKAGE = __package__ or "emulator"
IMPORT_ROOT = Path(__file__).resolve().parents[PACKAGE.count(".") + 1]
STARTUP_SECONDS = 15.0
STOP_SECONDS = 5.0


class EmulatorError(RuntimeError):
    """The emulator process did not start, or a control call failed."""


class Emulator:
    """A running emulator process: its URLs, its control API, and how to stop it."""

    def __init__(self, state_dir: Path, log_path: Path, argv: list[str]) -> None:
        self.state_dir = state_dir
        self.log_path = log_path
        self._argv = argv
        self._process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self._start(port=0)

    @property
    def root_url(self) -> str:
        """The server's root, without ``/v1``."""
        return self.base_url.removesuffix("/v1")

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def _start(self, port: int) -> None:
        command = [
            sys.executable,
            "-m",
            PACKAGE,
            "--port",
            str(port),
            "--state-dir",
            str(self.state_dir),
            "--exit-with-parent",
            *self._argv,
        ]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(IMPORT_ROOT), os.environ.get("PYTHONPATH")])
            ),
        }
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=env)
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], STARTUP_SECONDS)
        line = self._process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http"):
            self.kill()
            raise EmulatorError(
                f"emulator did not start; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}"
            )
        self.base_url = line

    def stop(self) -> None:
        """Stop gracefully (SIGTERM; state is saved), killing it if it does not exit in time."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(STOP_SECONDS)
        self._close()

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would; the last snapshot survives in ``state_dir``."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(STOP_SECONDS)
        self._close()

    def _close(self) -> None:
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def restart(self, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same port with the same state directory."""
        port = int(self.root_url.rsplit(":", 1)[1])
        self.kill() if kill else self.stop()
        self._start(port)

    def client(self, **kwargs: Any) -> Any:
        """An ``openai.OpenAI`` client for this emulator (``max_retries=0`` unless given)."""
        import openai

        return openai.OpenAI(
            **{"base_url": self.base_url, "api_key": "test", "max_retries": 0, **kwargs}
        )

    def control(self, method: str, action: str, payload: Any = None) -> Any:
        """Call ``/_control/<action>`` and return its JSON answer."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.root_url}/_control/{action}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise EmulatorError(
                f"{method} /_control/{action}: {error.code} {error.read().decode()}"
            ) from None

    def stats(self) -> dict[str, Any]:
        """Counters: inputs embedded per custom_id and per text, calls per route, faulted lines."""
        return dict(self.control("GET", "stats"))

    def inject(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add faults (``{"routes": [...], "batches": {...}}``, see ``faults.py``)."""
        return dict(self.control("POST", "faults", spec))

    def fail_route(self, route: str, status: int = 500, count: int = 1, **fields: Any) -> None:
        """Make the next ``count`` calls of ``route`` fail (``action="drop"`` etc.: ``fields``)."""
        self.inject({"routes": [{"route": route, "status": status, "count": count, **fields}]})

    def fault_batches(self, count: int | None = 1, **faults: Any) -> None:
        """Give the next ``count`` created batches these faults (``None``: every later one)."""
        self.inject({"batches": {"count": count, **faults}})

    def clear_faults(self) -> None:
        """Drop every fault not yet applied."""
        self.control("DELETE", "faults")

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change settings of the running emulator (speed, limits, token budget...)."""
        return dict(self.control("POST", "config", options))

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (completion windows, file expiry)."""
        self.control("POST", "clock", {"advance": seconds})


@contextmanager
def run_emulator(
    tmp_path: Path,
    *,
    instant: bool = True,
    faults: dict[str, Any] | None = None,
    state_dir: Path | None = None,
    snapshot: bool = True,
    **options: Any,
) -> Iterator[Emulator]:
    """Run an emulator for the duration of the ``with`` block; it never outlives it.

    ``options`` are :class:`~.options.Options` fields (``speed=50``, ``token_budget=1000``);
    ``instant`` (default) makes batches finish on the first look after creation.
    ``snapshot=False`` keeps no state snapshot (a restart forgets everything): every call
    rewrites the snapshot, billing counters included, so benchmarks of a million inputs
    turn it off.
    """
    state_dir = state_dir or tmp_path / "emulator-state"
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = ["--instant"] if instant else []
    if not snapshot:
        argv.append("--no-snapshot")
    for name, value in options.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    if faults:
        argv += ["--faults", json.dumps(faults)]
    emulator = Emulator(state_dir, tmp_path / "emulator.log", argv)
    try:
        yield emulator
    finally:
        emulator.stop()
