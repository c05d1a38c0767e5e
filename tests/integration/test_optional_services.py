"""Enabling Dify, n8n and Flowise on a running platform: their compose files work on a real engine, the running
Postgres gets their databases (the init job runs again) and nothing already running is recreated."""

from __future__ import annotations

import shlex

import pytest

pytestmark = pytest.mark.integration

OPTIONAL = ["dify", "n8n", "flowise"]


def test_core_then_optional_services(platform, host):
    platform.answer(services=[])
    platform.render()
    platform.deploy()
    core = platform.containers()
    assert "n8n" not in core and "postgres" in core

    platform.answer(services=OPTIONAL)
    platform.render()
    result = platform.deploy()
    after = platform.containers()
    assert set(after) >= {
        "n8n",
        "flowise",
        "dify-api",
        "dify-worker",
        "dify-web",
        "dify-sandbox",
        "dify-plugin-daemon",
        "dify-permissions",
    }
    # Caddy gets new routes (and ports, reached by IP) so it is recreated; nothing else that ran is.
    for name in ("postgres", "redis", "qdrant", "litellm", "open-webui"):
        assert after[name] == core[name], f"{name} was recreated by enabling other services"
    assert "did not become healthy" not in result.stdout
    rc, status = platform.status()
    assert rc == 0, [s for s in status["services"] if not s["healthy"]]

    for database, user, secret in (
        ("n8n", "n8n", "N8N_DB_PASSWORD"),
        ("flowise", "flowise", "FLOWISE_DB_PASSWORD"),
        ("dify", "dify", "DIFY_DB_PASSWORD"),
        ("dify_plugin", "dify", "DIFY_DB_PASSWORD"),
    ):
        login = platform.psql(user, database, secret, "select current_database()")
        assert login.rc == 0 and login.stdout.strip() == database, login.stderr

    storage = platform.inspect("dify-api")["Mounts"]
    volume = next(m for m in storage if m["Destination"] == "/app/api/storage")
    owner = host.check_output(f"stat -c %u:%g {shlex.quote(volume['Source'])}")
    assert owner == "1001:1001"  # the permissions one-shot ran before the api started


def test_switching_a_service_off_removes_its_containers_and_keeps_its_data(platform, host):
    before = platform.containers()
    platform.answer(services=["dify", "flowise"])
    platform.render()
    result = platform.deploy()
    assert "Containers to remove" in result.stdout and "n8n" in result.stdout
    after = platform.containers()
    assert "n8n" not in after
    for name in ("postgres", "litellm", "flowise", "dify-api"):
        assert after[name] == before[name], f"{name} was recreated by switching n8n off"
    volumes = host.check_output("docker volume ls -q --filter label=ai-platform.service=n8n").split()
    assert volumes == ["ai-platform_n8n-data"]
    credentials = host.check_output(f"cat {platform.root}/config/credentials.env")
    assert "N8N_ENCRYPTION_KEY=" in credentials  # kept for when n8n comes back to its data
