"""Shared helpers for unit tests: a fake NVML that speaks pynvml's API, running `inv` as a user would (in this
process, or in a child process where the process boundary is what a test is about), and golden files."""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
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


@dataclass
class Ran:
    """What one `inv` run gave, shaped like subprocess.CompletedProcess."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def _clean_environ(env: dict | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AI_PLATFORM_")}
    base.update(env or {})
    return base


def run_inv(*args: str, cwd: Path = PROJECT, env: dict | None = None, stdin: str | None = None) -> Ran:
    """Run `inv ARGS` in this process, as the `inv` program would: a clean environment (no AI_PLATFORM_* from the
    caller), stdin that is not a terminal, stdout and stderr captured, exit code from invoke's Exit; an exception
    that escapes is printed as the traceback a user would see."""
    from invoke import Collection, Program

    import tasks

    program = Program(namespace=Collection.from_module(tasks), binary="inv")
    out, err = io.StringIO(), io.StringIO()
    code = 0
    saved_env, saved_stdin, saved_cwd = dict(os.environ), sys.stdin, Path.cwd()
    clean = _clean_environ(env)  # read before the clear below
    os.environ.clear()
    os.environ.update(clean)
    sys.stdin = io.StringIO(stdin or "")
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                program.run(["inv", *args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception:
                err.write(traceback.format_exc())
                code = 1
    finally:
        os.chdir(saved_cwd)
        sys.stdin = saved_stdin
        os.environ.clear()
        os.environ.update(saved_env)
    return Ran(["inv", *args], code, out.getvalue(), err.getvalue())


def run_inv_process(*args: str, cwd: Path = PROJECT, env: dict | None = None, stdin: str | None = None, timeout=120):
    """Run `inv ARGS` as a child process: for what only a real process shows (signals, a terminal, argv[0])."""
    return subprocess.run(
        [*INV, "--search-root", str(PROJECT), *args],
        cwd=cwd,
        env=_clean_environ(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def answers(tmp_path):
    """Write an answers.yaml with the given text and return its path."""

    def write(text: str, name: str = "answers.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


# --- golden files ------------------------------------------------------------------------------------------------

GOLDEN_CHANGES: list[str] = []


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/unit/golden/ from the current render")


class Golden:
    """Compare files with a golden folder, or (with --update-golden) rewrite it and record the diff to show."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, folder: Path, files: dict[str, bytes]) -> None:
        golden = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        if self.update:
            for path in sorted(set(golden) | set(files)):
                old, new = golden.get(path), files.get(path)
                if old == new:
                    continue
                GOLDEN_CHANGES.append(_golden_diff(folder / path, old, new))
                target = folder / path
                if new is None:
                    target.unlink()
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(new)
            return
        fix = "refresh on purpose with `nox -s unit -- --update-golden` (it prints what it changed)"
        assert sorted(golden) == sorted(files), f"files differ from the golden tree {folder}: {fix}"
        for path, data in files.items():
            if data != golden[path]:
                diff = _golden_diff(folder / path, golden[path], data)
                pytest.fail(f"{path} differs from {folder / path} ({fix}):\n{diff}")


def _golden_diff(path: Path, old: bytes | None, new: bytes | None) -> str:
    shown = path.relative_to(PROJECT) if path.is_relative_to(PROJECT) else path
    lines = difflib.unified_diff(
        (old or b"").decode(errors="replace").splitlines(keepends=True),
        (new or b"").decode(errors="replace").splitlines(keepends=True),
        fromfile=f"{shown} (golden)" if old is not None else "/dev/null",
        tofile=f"{shown} (rendered)" if new is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@pytest.fixture
def golden(request) -> Golden:
    return Golden(request.config.getoption("--update-golden"))


def pytest_terminal_summary(terminalreporter):
    if GOLDEN_CHANGES:
        terminalreporter.section("golden files refreshed: review this diff before committing")
        for diff in GOLDEN_CHANGES:
            terminalreporter.write(diff)


@pytest.fixture(autouse=True)
def _ports_held_by_this_test_only(monkeypatch):
    """Preflight's port checks see only sockets this process holds: a unit test's verdict never depends on what
    else listens on this machine (a Caddy or a platform of another test run on 80/443). Tests that hold a port bind
    it in this process; `inv` run in a child process still sees the machine as it is."""
    from aiplatform.host import checks

    real = checks.listeners
    mine = f"(pid {os.getpid()})"
    monkeypatch.setattr(checks, "listeners", lambda port: [held for held in real(port) if mine in held.holder])
