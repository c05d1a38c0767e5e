"""`inv info` as an owner copies from it: every URL, path and secret whole (never cut with `…`, never broken over two
lines) at 80 columns at a terminal and when piped; an API key called an API key; each URL of a service with
several containers named by its container (Grafana's own local URL too)."""

from __future__ import annotations

import json
import sys

import pytest

from aiplatform.envfile import read_env

from .conftest import run_inv, run_inv_process
from .test_questionnaire import _converse

SERVICES = "monitoring,mlflow,dify,n8n"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """generated/ of a platform with multi-container services, deep enough that its paths pass 80 columns."""
    project = tmp_path_factory.mktemp("info") / "an-owner-s-project-folder-with-a-long-name" / "another-level"
    out = project / "generated"
    result = run_inv("render", "--no-input", "--out", str(out), "--root", str(project / "root"), "--set",
                     f"services={SERVICES}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def _values(out):
    """What the owner copies: each login secret, each URL, the credentials file's path."""
    credentials = read_env(out / "config/credentials.env")
    stamp = json.loads((out / ".aiplatform.json").read_text())
    urls = [url for kinds in stamp["urls"].values() for url in kinds.values()]
    secrets = [credentials[name] for name in ("ADMIN_PASSWORD", "LITELLM_MASTER_KEY")]
    return urls, secrets, str(out / "config/credentials.env")


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]


def _assert_whole(text: str, values: list[str]) -> None:
    assert "…" not in text, text
    lines = _lines(text)
    for value in values:
        assert any(value in line for line in lines), f"{value!r} is not whole on one line of:\n{text}"


def _at_80_columns(out, *flags: str) -> dict[str, str]:
    """`inv info` piped and at a real terminal (a pseudo-terminal), both 80 columns wide."""
    piped = run_inv_process("info", "--out", str(out), *flags, env={"COLUMNS": "80"})
    assert piped.returncode == 0, piped.stderr
    argv = [sys.executable, "-c", "import os, sys; os.environ['COLUMNS'] = '80'; from invoke import main; "
            "sys.argv = ['inv', *sys.argv[1:]]; main.program.run()", "info", "--out", str(out), *flags]  # fmt: skip
    code, terminal, _ = _converse(argv, [])
    assert code == 0, terminal
    return {"piped": piped.stdout, "terminal": terminal}


def test_info_shows_every_secret_url_and_path_whole_at_80_columns(rendered):
    urls, secrets, credentials = _values(rendered)
    assert len(credentials) > 80 and max(len(s) for s in secrets) > 40
    for where, text in _at_80_columns(rendered, "--show-secrets").items():
        _assert_whole(text, urls + secrets)
        key = read_env(rendered / "config/credentials.env")["LITELLM_MASTER_KEY"]
        assert any(line.split() == ["API", "key:", key] for line in _lines(text)), (where, text)
        assert not any("password" in line and key in line for line in _lines(text)), where
    hidden = run_inv_process("info", "--out", str(rendered), env={"COLUMNS": "80"}).stdout  # the file that holds them
    _assert_whole(hidden, [*urls, f"ADMIN_PASSWORD in {credentials}", f"LITELLM_MASTER_KEY in {credentials}"])
    assert not any(secret in hidden for secret in secrets)


def test_monitoring_shows_grafana_and_prometheus_each_by_name(rendered):
    result = run_inv("info", "--out", str(rendered), "--json")
    monitoring = next(s for s in json.loads(result.stdout)["services"] if s["service"] == "monitoring")
    assert monitoring["urls"]["local"] == "http://localhost:3000"  # Grafana's own, the one the login is for
    assert monitoring["urls"]["prometheus local"] == "http://localhost:9090"
    assert monitoring["main"] == "grafana" and monitoring["secret_kind"] == "password"
    text = run_inv("info", "--out", str(rendered)).stdout
    lines = _lines(text)
    start = next(i for i, line in enumerate(lines) if line.startswith("monitoring "))
    block = lines[start + 1 : next(i for i, line in enumerate(lines) if i > start and not line.startswith(" "))]
    assert [line.split() for line in block[:3]] == [
        ["grafana", "local:", "http://localhost:3000"],
        ["grafana", "public:", monitoring["urls"]["public"]],
        ["prometheus", "local:", "http://localhost:9090"],
    ]
