"""inv doctor against a stand-in for Ollama's HTTP API (tests/standins/ollama_api.py), and setup's root check."""

from __future__ import annotations

import json

import pytest

from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.host.setup import SetupOptions, run_setup
from tests.standins.ollama_api import OllamaStandIn, free_port

from .conftest import run_inv


def doctor(url: str, tmp_path, env: dict | None = None) -> dict:
    result = run_inv(
        "doctor",
        "--ollama-url",
        url,
        "--json",
        "--root",
        str(tmp_path / "root"),
        "--out",
        str(tmp_path / "generated"),
        env=env,
    )
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    data["rc"] = result.returncode
    data["by_name"] = {check["name"]: check for check in data["checks"]}
    return data


def ollama(data: dict, number: int) -> dict:
    return next(c for name, c in data["by_name"].items() if name.startswith(f"ollama {number}:"))


def test_stand_in_answering_passes_all_ollama_steps(tmp_path):
    with OllamaStandIn(version="0.6.5") as server:
        data = doctor(server.url, tmp_path)
    assert ollama(data, 2)["status"] == "ok"
    assert ollama(data, 3)["status"] == "ok" and "0.6.5" in ollama(data, 3)["detail"]


def test_nothing_on_the_port_fails_step_2_with_its_hint(tmp_path):
    port = free_port()
    data = doctor(f"http://127.0.0.1:{port}", tmp_path)
    assert ollama(data, 2)["status"] == "fail"
    assert f"nothing listens on port {port}" in ollama(data, 2)["detail"]
    assert ollama(data, 2)["fix"]
    assert data["rc"] == 1 and not data["ok"]


def test_api_answering_500_fails_step_3_naming_the_status(tmp_path):
    with OllamaStandIn(version_status=500) as server:
        data = doctor(server.url, tmp_path)
    assert ollama(data, 2)["status"] == "ok"
    assert ollama(data, 3)["status"] == "fail" and "HTTP 500" in ollama(data, 3)["detail"]
    assert data["rc"] == 1


def test_slow_start_within_the_budget_passes(tmp_path):
    server = OllamaStandIn()
    server.start(delay=1.5)
    try:
        data = doctor(server.url, tmp_path)
    finally:
        server.stop()
    assert ollama(data, 2)["status"] == "ok" and ollama(data, 3)["status"] == "ok"


def test_legacy_root_of_the_old_scripts_is_reported(tmp_path):
    (tmp_path / "home" / "ai-platform").mkdir(parents=True)
    with OllamaStandIn() as server:
        data = doctor(server.url, tmp_path, env={"HOME": str(tmp_path / "home")})
    legacy = data["by_name"]["legacy root"]
    assert legacy["status"] == "warn" and str(tmp_path / "home" / "ai-platform") in legacy["detail"]
    assert "inv cleanup --root" in legacy["fix"]


def test_setup_refuses_to_run_without_root(monkeypatch, tmp_path):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(UserError, match="must run as root") as caught:
        run_setup(None, SetupOptions(), Runner(), ui=None, yes=True, models=None, skip_models=True)
    assert "--dry-run" in caught.value.fix
