"""deploy → configure on the real engine: the apps' containers are protocol stand-ins of their setup APIs
(standins/image/apps.py), LiteLLM's container is the stand-in of its key API in front of the real LiteLLM proxy that
runs on this host from PyPI (tests/real_litellm.py, without a database: its database mode downloads engines at run
time, from no registry), and Ollama is its stand-in (no registry ships Ollama) on port 11434 of this host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiplatform.envfile import parse_env
from tests.integration.standins.images import HOST_LITELLM_PORT
from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import OllamaStandIn

pytestmark = pytest.mark.integration

SERVICES = ["dify", "n8n", "flowise", "monitoring"]


@pytest.fixture(scope="module")
def models(platform, host):
    platform.answer(services=SERVICES)
    platform.render()
    master = parse_env(host.check_output(f"cat {platform.out}/config/master.env"))
    return master["DEFAULT_MODELS"].split(",")


@pytest.fixture(scope="module")
def gateway(platform, models, tmp_path_factory):
    """Ollama's stand-in on this host, and the real LiteLLM proxy where the LiteLLM container's key API forwards."""
    with (
        OllamaStandIn(models=models, host="127.0.0.1", port=11434) as ollama,
        litellm_proxy(
            Path(platform.out), tmp_path_factory.mktemp("litellm"), ollama.url, host="0.0.0.0", port=HOST_LITELLM_PORT
        ),
    ):
        yield ollama


def _table(output: str) -> dict[str, str]:
    return {f"{row['service']} / {row['step']}": row["result"] for row in json.loads(output)["steps"]}


def test_deploy_ends_with_configure_and_every_step_is_done(platform, gateway, models):
    result = platform.deploy(configure=True)
    assert "Configure" in result.stdout and "FAILED" not in result.stdout, result.stdout + result.stderr
    for line in ("key for open-webui", "first-run setup", "LiteLLM credential", "Prometheus data source answers"):
        assert line in result.stdout
    # the chat went through the real LiteLLM to Ollama: it is in the stand-in's log, with what LiteLLM sends
    chats = [call for call in gateway.chats if call.endpoint == "/api/chat"]
    assert chats and chats[0].model == models[0] and chats[0].body["messages"][-1]["role"] == "user"
    # Dify checked its model through its plugin path: the call reached LiteLLM with Dify's own key and then Ollama
    assert len(chats) >= 2, [c.model for c in gateway.chats]


def test_a_second_configure_changes_nothing(platform, gateway):
    again = platform.inv("configure", "--out", platform.out, "--json")
    table = _table(again.stdout)
    assert set(table.values()) == {"already done", "ok", "skipped"}, table
    assert [step for step, result in table.items() if result == "skipped"] == [
        "tailscale / tailnet joined",
        "tailscale / Open WebUI served",
    ]


def test_info_prints_urls_and_logins(platform):
    shown = platform.inv("info", "--out", platform.out, "--json")
    services = {s["service"]: s for s in json.loads(shown.stdout)["services"]}
    assert services["n8n"]["urls"]["local"] == "http://localhost:5678"
    assert services["monitoring"]["user"] == "admin"
    assert services["open-webui"]["password"].startswith("ADMIN_PASSWORD in ")


# What each upstream image runs as (its Dockerfile's USER at the catalog's pin), and where it writes: the stand-ins
# run the same way, so these folders must be writable for that user on a real box too.
UPSTREAM_USERS = {
    "dify-api": ("1001", "/app/api/storage"),  # langgenius/dify-api: USER dify
    "dify-worker": ("1001", "/app/api/storage"),
    "grafana": ("472", "/var/lib/grafana"),  # grafana/grafana: USER 472 (group root)
    "n8n": ("1000", "/home/node/.n8n"),  # n8nio/n8n: USER node
    "flowise": ("1000", "/home/node/.flowise"),  # flowiseai/flowise: USER node
}


def test_the_apps_run_as_their_images_users_and_write_where_those_write(platform, host):
    for container, (uid, folder) in UPSTREAM_USERS.items():
        name = f"ai-platform-{container}"
        assert host.check_output(f"docker exec {name} id -u") == uid, container
        assert host.run(f"docker exec {name} test -w {folder}").rc == 0, f"{container}: {folder} not writable"
    # Dify's setup (configure's first step) wrote the workspace's private key into storage as uid 1001, and Grafana
    # made its database: what the permission one-shot and the image's folders allow.
    keys = host.check_output("docker exec ai-platform-dify-api find /app/api/storage/privkeys -name private.pem")
    assert keys.strip(), "no privkeys/<tenant>/private.pem in Dify's storage"
    owner = host.check_output(f"docker exec ai-platform-dify-api stat -c %u {keys.split()[0]}")
    assert owner == "1001"
    assert host.run("docker exec ai-platform-grafana test -f /var/lib/grafana/grafana.db").rc == 0
