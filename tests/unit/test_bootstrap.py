"""./bootstrap says what it is doing (the virtualenv, the install) and installs only when pyproject.toml asks for
something .venv does not hold yet; the command it is given still runs with its arguments and exit code.

The project's bootstrap and pyproject.toml run in a scratch folder whose .venv/bin/python and .venv/bin/inv are
stand-ins (shell scripts that record how they were called): no virtualenv is made and nothing is downloaded."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .conftest import PROJECT


def _project(tmp_path: Path) -> Path:
    shutil.copy2(PROJECT / "bootstrap", tmp_path / "bootstrap")
    shutil.copy2(PROJECT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, body in {"python": 'echo "python $*" >>"$LOG"', "inv": 'echo "inv $*" >>"$LOG"; exit 3'}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return tmp_path


def _run(home: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = home / "calls"
    log.unlink(missing_ok=True)
    done = subprocess.run(["sh", str(home / "bootstrap"), *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "LOG": str(log)}, check=False)  # fmt: skip
    return done, log.read_text().splitlines() if log.exists() else []


def test_bootstrap_says_what_it_installs_then_runs_the_command(tmp_path):
    home = _project(tmp_path)
    done, calls = _run(home, "inv", "render", "--no-input")
    assert "bootstrap: installing AI Platform and its packages into .venv with pip" in done.stderr
    assert "bootstrap: installed in " in done.stderr
    assert calls[0].startswith("python -m pip install") and calls[0].endswith(
        "--editable . --config-settings editable_mode=compat"
    )
    assert calls[1:] == ["inv render --no-input"]
    assert done.returncode == 3  # the command's own exit code


def test_a_second_run_starts_the_command_at_once_until_pyproject_changes(tmp_path):
    home = _project(tmp_path)
    _run(home, "inv", "--list")
    done, calls = _run(home, "inv", "--list")
    assert calls == ["inv --list"] and done.stderr == ""
    done, calls = _run(home, "nox")  # the test tools: installed once more, with [dev]
    assert "with the test tools" in done.stderr and calls[0].endswith(
        "--editable .[dev] --config-settings editable_mode=compat"
    )
    done, calls = _run(home, "inv", "--list")  # what the test tools' install holds is enough
    assert calls == ["inv --list"]
    with (home / "pyproject.toml").open("a") as file:
        file.write("\n# changed\n")
    done, calls = _run(home, "inv", "--list")
    assert calls[0].startswith("python -m pip install") and "installing" in done.stderr
