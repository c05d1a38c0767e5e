"""A tool the host lacks is named as missing, with the command that installs it; it is never blamed on the owner's
files. The docker CLI here is a stand-in of the one a fresh box has (the client answers; no compose plugin, no
engine), written from what docker 28's CLI prints, so these tests mean the same whatever this machine has
installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aiplatform import paths
from aiplatform.engine.docker import NO_CLI, NO_COMPOSE

from .conftest import run_inv

# A stand-in for a fresh box's docker CLI: `docker compose` is an unknown command until the plugin is installed,
# and no engine answers `docker info`.
FRESH_DOCKER = """#!/bin/sh
case "$1" in
  compose) printf 'docker: unknown command: docker compose\\n\\nRun %s for more information\\n' "'docker --help'" >&2
           exit 1 ;;
  info) echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
        exit 1 ;;
  --version) echo "Docker version 28.2.2, build e6534b4" ;;
  *) echo "docker $*: not part of this stand-in" >&2; exit 1 ;;
esac
"""

COMPOSE = """\
services:
  notes:
    image: example/notes:2.1.0
    ports: ["127.0.0.1:8123:8080"]
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "USER_SERVICES_DIR", tmp_path / "services")
    (tmp_path / "answers.yaml").write_text("services: []\n")
    (tmp_path / "notes.yml").write_text(COMPOSE)
    return tmp_path


def _bin(tmp_path: Path, docker: str | None) -> str:
    """A PATH of one folder: the stand-in docker CLI in it, or nothing at all."""
    folder = tmp_path / "bin"
    folder.mkdir()
    if docker is not None:
        (folder / "docker").write_text(docker)
        os.chmod(folder / "docker", 0o755)
    return str(folder)


def _add_compose(project: Path, path: str):
    flags = ["--answers", str(project / "answers.yaml"), "--out", str(project / "generated")]
    return run_inv(
        "add", "--from-compose", str(project / "notes.yml"), "--name", "notes", "--dry-run", "--root",
        str(project / "root"), *flags, env={"PATH": path},
    )  # fmt: skip


def test_a_missing_compose_plugin_is_named_not_blamed_on_the_file(project):
    result = _add_compose(project, _bin(project, FRESH_DOCKER))
    assert result.returncode == 1, result.stdout + result.stderr
    assert NO_COMPOSE in result.stderr, result.stderr
    assert "docker-compose-plugin" in result.stderr  # how to install it
    assert "not a compose file" not in result.stderr and "Usage" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "services").exists()


def test_a_missing_docker_cli_is_named(project):
    result = _add_compose(project, _bin(project, None))
    assert result.returncode == 1
    assert NO_CLI.lower() in result.stderr.lower() and "setup" in result.stderr, result.stderr
    assert "not a compose file" not in result.stderr and "Traceback" not in result.stderr


def test_doctor_names_the_missing_plugin_with_its_fix(project):
    result = run_inv("doctor", "--root", str(project / "root"), env={"PATH": _bin(project, FRESH_DOCKER)})
    row = next(line for line in result.stdout.splitlines() if "compose v2" in line)
    assert "FAIL" in row.upper() and result.returncode == 1
    assert "docker-compose-plugin" in result.stdout
