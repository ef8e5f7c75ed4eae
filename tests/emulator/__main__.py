"""Run the emulator: ``python -m tests.emulator --port 0 --state-dir DIR [--instant] ...``.

The first line on stdout is the API's base URL (``http://127.0.0.1:PORT/v1``);
request logs go to stderr. SIGTERM, SIGINT or ``POST /_control/shutdown`` stop it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from .options import INSTANT, Options, option_kinds
from .server import EmulatorServer


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--state-dir", type=Path, help="keep files and a state snapshot here (survives restarts)"
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="keep no state snapshot (each call rewrites it: slow past ~100k inputs)",
    )
    parser.add_argument(
        "--instant", action="store_true", help="batches finish on the first look after creation"
    )
    parser.add_argument(
        "--faults", action="append", default=[], help="JSON as for POST /_control/faults"
    )
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the parent process dies"
    )
    for name, kind in option_kinds().items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    return parser.parse_args(argv)


def _watch_parent(server: EmulatorServer) -> None:
    parent = os.getppid()
    while not server.stopping.wait(0.5):
        if os.getppid() != parent:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve until stopped; return the exit status."""
    args = _arguments(argv)
    changes = {
        name: getattr(args, name) for name in option_kinds() if getattr(args, name) is not None
    }
    options = Options().updated({**(INSTANT if args.instant else {}), **changes})
    scratch = None if args.state_dir else Path(tempfile.mkdtemp(prefix="openai-emulator-"))
    root = args.state_dir or scratch
    assert root is not None
    snapshot = root / "state.json" if args.state_dir and not args.no_snapshot else None
    server = EmulatorServer((args.host, args.port), options, root / "files", snapshot)
    for spec in args.faults:
        server.faults.apply(json.loads(spec))

    def stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(server,), daemon=True).start()
    print(server.url, flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
        with server.lock:
            server.api.store.save()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
