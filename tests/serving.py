"""A real server a test starts: its output logged to a file, waited for until a health URL answers 200 (bounded, and
failing with the log when it exits or never answers), and always stopped afterwards."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest


@contextlib.contextmanager
def serving(
    name: str, argv: list[str], health_url: str, log_path: Path, *, env: Mapping[str, str], cwd: Path, timeout: float
) -> Iterator[None]:
    """Run `argv` until the block ends; `name` says which server failed to start."""
    with log_path.open("w") as log:
        process = subprocess.Popen(argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    pytest.fail(f"{name} exited ({process.returncode}):\n{log_path.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(health_url, timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"{name} did not answer in {timeout:g} s:\n{log_path.read_text()}")
                time.sleep(0.3)
            yield
        finally:
            stop(process)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a process a test started: SIGTERM, then SIGKILL after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
