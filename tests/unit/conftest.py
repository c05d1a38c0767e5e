"""Shared helpers for unit tests: a fake NVML that speaks pynvml's API, and running `inv` as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

PROJECT = Path(__file__).resolve().parents[2]
INV = [sys.executable, "-m", "invoke"]


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


def fake_nvml(gpus=(), driver="550.54.14", init_error=None):
    """A stand-in for the pynvml module: `gpus` is a list of (name, vram_mb); `init_error` an NVML error code."""

    def init():
        if init_error is not None:
            raise FakeNVMLError(init_error)

    return SimpleNamespace(
        NVMLError=FakeNVMLError,
        NVML_ERROR_LIBRARY_NOT_FOUND=12,
        NVML_ERROR_DRIVER_NOT_LOADED=9,
        NVML_ERROR_NO_PERMISSION=4,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: driver,
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetName=lambda handle: gpus[handle][0],
        nvmlDeviceGetMemoryInfo=lambda handle: SimpleNamespace(total=gpus[handle][1] * 1024**2),
    )


def run_inv(*args: str, cwd: Path = PROJECT, env: dict | None = None, stdin: str | None = None):
    """Run `inv ARGS` in a clean environment (no AI_PLATFORM_* from the caller) and return the CompletedProcess."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AI_PLATFORM_")}
    base.update(env or {})
    return subprocess.run(
        [*INV, "--search-root", str(PROJECT), *args],
        cwd=cwd,
        env=base,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def answers(tmp_path):
    """Write an answers.yaml with the given text and return its path."""

    def write(text: str, name: str = "answers.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/unit/golden/ from the current render")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")
