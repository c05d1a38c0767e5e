"""Nothing a real app started outlives its test: `mlflow server` starts uvicorn and a job runner (its huey consumers)
as children that keep running when only it is stopped (tests/serving.py stops the process it started), and some start
sessions of their own. Every process given the environment below carries its marker, children too; at the end each
process whose environment holds it is stopped (SIGTERM, then SIGKILL), found by the marker, never by a name."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

MARKER = "AI_PLATFORM_APPS_RUN"


def marked(marker: str) -> list[int]:
    """The processes whose environment holds MARKER=marker (ours: the test runs as root, or as their owner)."""
    wanted = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


@contextlib.contextmanager
def leaving_nothing(environ: dict[str, str], timeout: float = 20.0) -> Iterator[dict[str, str]]:
    """`environ` with a fresh marker; every process started with it (and its descendants) is stopped at the end."""
    marker = uuid.uuid4().hex
    try:
        yield {**environ, MARKER: marker}
    finally:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            left = marked(marker)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while left and time.monotonic() < deadline:
                time.sleep(0.2)
                left = marked(marker)
            if not left:
                break
        if left := marked(marker):
            raise RuntimeError(f"processes still running after SIGKILL: {left}")
