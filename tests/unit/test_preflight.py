"""One preflight for deploy, add and remove: every row shown (one failure does not hide the rows after it), a dry
run that warns where only a real run needs something and still shows its plan, and add/remove checking everything
that can make the change fail before they ask anything (the menu, the new service's questions, "Apply?").

No engine is needed: DOCKER_HOST points at a socket that does not exist (what a box with a stopped engine gives),
and the host's listening ports are read through `checks.listeners`, replaced where a test needs a port taken."""

from __future__ import annotations

import shutil
import sys
from types import SimpleNamespace

import pytest

from aiplatform import paths
from aiplatform.host import checks
from aiplatform.inputs.catalog import load_catalog
from aiplatform.paths import TEMPLATES_DIR

from .conftest import run_inv
from .test_questionnaire import _converse

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
ROWS_AFTER_THE_ENGINE = ("compose v2", "generated/", "port ", "disk", "ollama api")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "USER_SERVICES_DIR", tmp_path / "services")
    monkeypatch.setattr(checks, "listeners", lambda port: [])  # every port free, whatever this box runs
    (tmp_path / "answers.yaml").write_text("domain: ''\nservices: [monitoring]\n")
    return tmp_path


def _flags(home):
    return ["--answers", str(home / "answers.yaml"), "--out", str(home / "generated"), "--root", str(home / "root")]


def _render(home):
    result = run_inv("render", "--no-input", *_flags(home))
    assert result.returncode == 0, result.stderr


def _take(monkeypatch, taken: int):
    holder = SimpleNamespace(holder="nginx (pid 4242)")
    monkeypatch.setattr(checks, "listeners", lambda port: [holder] if port == taken else [])


def test_deploy_dry_run_without_an_engine_shows_every_row(home):
    _render(home)
    result = run_inv("deploy", "--dry-run", "--out", str(home / "generated"), env=NO_ENGINE)
    assert result.returncode == 0, result.stderr
    assert "docker engine" in result.stderr and "WARN" in result.stderr
    for row in ROWS_AFTER_THE_ENGINE:
        assert row in result.stderr, row
    assert "Containers to create:" in result.stdout


def test_deploy_dry_run_warns_when_generated_is_stale_and_still_shows_the_plan(home):
    _render(home)
    (home / "answers.yaml").write_text("domain: ''\nservices: [monitoring, mlflow]\n")
    result = run_inv("deploy", "--dry-run", "--out", str(home / "generated"), env=NO_ENGINE)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stderr.splitlines() if line.lstrip("│┃ ").startswith("generated/"))
    assert "WARN" in row and "FAIL" not in result.stderr and "is stale" in result.stderr
    assert "Containers to create:" in result.stdout


def test_a_dry_run_does_not_stop_at_a_failed_check_and_exits_1_naming_it(home, monkeypatch):
    _render(home)
    monkeypatch.setattr(checks, "MIN_FREE_GB", 10**9)  # no disk has that much free: the disk check fails
    result = run_inv("deploy", "--dry-run", "--out", str(home / "generated"), env=NO_ENGINE)
    assert result.returncode == 1
    assert "ollama api" in result.stderr  # the row after the failed one
    assert "Containers to create:" in result.stdout  # and the plan
    assert "Dry run: a real run would stop at its preflight: disk: " in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_held_while_the_engine_does_not_answer_may_be_the_platforms_own(home, monkeypatch):
    _render(home)
    _take(monkeypatch, 443)
    result = run_inv("deploy", "--dry-run", "--out", str(home / "generated"), env=NO_ENGINE)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stderr.splitlines() if line.lstrip("│┃ ").startswith("port 443 "))
    assert "WARN" in row and "443 is in use by nginx" in result.stderr


def test_deploy_without_an_engine_names_every_failed_check_at_once(home, monkeypatch):
    _render(home)
    monkeypatch.setattr(checks, "MIN_FREE_GB", 10**9)
    result = run_inv("deploy", "--yes", "--out", str(home / "generated"), env=NO_ENGINE)
    assert result.returncode == 1
    said = result.stderr.split("Preflight failed:")[1]
    assert "docker engine" in said and "disk: " in said
    assert not (home / "root" / "config").exists()


def test_add_checks_the_engine_before_the_menu(home, monkeypatch):
    """At a real terminal: no menu, no question, when the change could not be made."""
    _render(home)
    for key, value in NO_ENGINE.items():
        monkeypatch.setenv(key, value)
    script = (
        "import sys; from pathlib import Path; from aiplatform import paths; "
        f"paths.USER_SERVICES_DIR = Path({str(home / 'services')!r}); "
        "from invoke import main; sys.argv = ['inv', *sys.argv[1:]]; main.program.run()"
    )
    for args in (["add"], ["add", "--new", "notes-app"], ["remove", "monitoring"]):
        # killed after 45 s: were a question asked, nothing would answer it and the test must fail, not hang
        argv = [shutil.which("timeout"), "--foreground", "-s", "KILL", "45", sys.executable, "-c", script]
        code, output, _ = _converse([*argv, *args, *_flags(home)], [])
        assert code == 1, output
        assert "Preflight failed: docker engine" in output, output
        assert "Add which" not in output and "Container image" not in output and "Apply" not in output
        for row in ROWS_AFTER_THE_ENGINE:
            assert row in output, row
        assert (
            "monitoring" in (home / "answers.yaml").read_text() and "mlflow" not in (home / "answers.yaml").read_text()
        )
        assert not (home / "services").exists()


def test_add_checks_the_ports_the_new_service_publishes_before_asking(home, monkeypatch):
    """Stand-ins: the first preflight passes (its rows are deploy's, tested above) and the engine answers with no
    container of the platform running; the host's port of the new route is taken."""
    from aiplatform.engine.docker import Docker

    _render(home)
    port = load_catalog(TEMPLATES_DIR / "services").services["mlflow"].route.ip_port
    _take(monkeypatch, port)
    monkeypatch.setattr("aiplatform.engine.deploy.preflight", _nothing_fails)
    monkeypatch.setattr(Docker, "engine_error", lambda self: None)
    monkeypatch.setattr(Docker, "containers", lambda self: [])
    result = run_inv("add", "mlflow", "--dry-run", *_flags(home), env=NO_ENGINE)
    assert result.returncode == 1
    assert f"{port} is already in use by nginx (pid 4242)" in result.stderr
    assert "Containers to create:" in result.stdout  # the preview still shows in a dry run
    assert f"a real run would stop at its preflight: port {port}" in result.stderr
    result = run_inv("add", "mlflow", "--yes", *_flags(home), env=NO_ENGINE)
    assert result.returncode == 1 and f"Preflight failed: port {port}" in result.stderr, result.stderr
    assert "mlflow" not in (home / "answers.yaml").read_text()  # refused before anything changed


def _nothing_fails(*args, **kwargs):
    """The first preflight passing (the engine not asked: the plan is made without it)."""
    return [checks.Check("docker engine", "warn", "stand-in: not asked")]
