"""render → deploy → status → cleanup on a real Docker engine, with stand-in images (tests/integration/standins).

The rendered compose files are used as they are, healthchecks included; only `images:` points at the stand-ins,
which run real Postgres, Redis, Caddy, Prometheus and node-exporter and HTTP stand-ins for the rest. The tests run
in file order and share one platform: each step starts from where the previous one left it.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

HOLDER_PORT = 8080  # Open WebUI's host port


def test_dry_run_changes_nothing(platform, host):
    platform.render()
    result = platform.deploy("--dry-run")
    assert "Containers to create:" in result.stdout and "Dry run: nothing was changed in" in result.stdout
    assert not host.file(platform.root).exists
    assert platform.containers() == {}


def test_preflight_names_the_process_holding_a_port(platform, host):
    holder = host.run(f"python3 -m http.server {HOLDER_PORT} --bind 127.0.0.1 >/dev/null 2>&1 & echo $!")
    pid = holder.stdout.strip()
    try:
        host.run_expect([0], f"for i in $(seq 50); do ss -ltn | grep -q ':{HOLDER_PORT} ' && exit 0; sleep 0.1; done")
        result = platform.deploy(check=False)
        assert result.rc == 1
        assert f"{HOLDER_PORT} is already in use by python3 (pid {pid})" in result.stderr
        assert "Traceback" not in result.stderr
        assert platform.containers() == {}  # nothing was started
    finally:
        host.run(f"kill {pid}")


def test_deploy_brings_every_service_up_healthy(platform, host):
    result = platform.deploy()
    assert "did not become healthy" not in result.stdout
    expected = platform.expected()
    assert set(platform.containers()) == set(expected)
    for name in expected:
        container = host.docker(f"ai-platform-{name}")
        state = platform.inspect(name)["State"]
        if platform.inspect(name)["HostConfig"]["RestartPolicy"]["Name"] == "no":  # a one-shot
            assert state["Status"] == "exited" and state["ExitCode"] == 0, name
        else:
            assert container.is_running, name
            if "Health" in state:
                assert state["Health"]["Status"] == "healthy", name


def test_networks_exist_with_the_label(platform, host):
    for name, internal in (("ai-platform", False), ("ai-backend", True)):
        network = json.loads(host.check_output(f"docker network inspect {name}"))[0]
        assert network["Labels"]["ai-platform.managed"] == "true"
        assert network["Internal"] is internal
    postgres = platform.inspect("postgres")
    assert list(postgres["NetworkSettings"]["Networks"]) == ["ai-backend"]  # databases on the backend only


def test_only_caddy_listens_on_all_interfaces(platform, host):
    for port in (80, 443):
        assert host.socket(f"tcp://0.0.0.0:{port}").is_listening
    for port in (4000, 8080):
        assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    for name in platform.expected():
        bindings = platform.inspect(name)["HostConfig"]["PortBindings"] or {}
        for binding in (b for group in bindings.values() for b in group or []):
            if name != "caddy":
                assert binding["HostIp"] == "127.0.0.1", (name, binding)


def test_root_files_and_credentials(platform, host):
    for path in (
        "config/master.env",
        "config/litellm/config.yaml",
        "config/caddy/Caddyfile",
        "docker/docker-compose.postgres.yml",
        ".aiplatform.json",
    ):
        assert host.file(f"{platform.root}/{path}").is_file, path
    credentials = host.file(f"{platform.root}/config/credentials.env")
    assert credentials.mode == 0o600
    assert credentials.user == "root"
    for folder in ("data", "logs", "backups", "scripts"):
        assert host.file(f"{platform.root}/{folder}").is_directory


def test_redis_runs_with_its_memory_limit_and_privileges_are_only_the_declared_ones(platform, host):
    # The real Redis of the stand-in was started with the rendered command line.
    policy = host.check_output("docker exec ai-platform-redis redis-cli CONFIG GET maxmemory-policy")
    limit = host.check_output("docker exec ai-platform-redis redis-cli CONFIG GET maxmemory")
    assert policy.split() == ["maxmemory-policy", "volatile-lru"]
    assert limit.split() == ["maxmemory", str(512 * 1024 * 1024)]
    assert platform.inspect("node-exporter")["HostConfig"]["PidMode"] == "host"
    for name in platform.expected():
        if name != "node-exporter":
            config = platform.inspect(name)["HostConfig"]
            assert not config["Privileged"] and config["PidMode"] != "host", name


def test_postgres_init_created_each_database_and_user(platform, host):
    # The real Postgres in the stand-in ran the rendered init scripts: each service's user logs in to its database.
    for database, user, secret in (
        ("litellm", "litellm", "LITELLM_DB_PASSWORD"),
        ("openwebui", "openwebui", "OPENWEBUI_DB_PASSWORD"),
    ):
        result = platform.psql(user, database, secret, "select current_user")
        assert result.rc == 0 and result.stdout.strip() == user, result.stderr


def test_second_deploy_recreates_nothing(platform):
    before = platform.containers()
    result = platform.deploy()
    assert "no container was recreated" in result.stdout
    assert platform.containers() == before


def test_one_changed_setting_recreates_only_that_service(platform):
    before = platform.containers()
    platform.answer(models=["llama3.2:3b", "nomic-embed-text", "phi3:mini"])  # only LiteLLM's config.yaml changes
    platform.render()
    platform.deploy()
    after = platform.containers()
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed == ["litellm"]


def test_a_service_that_never_becomes_healthy_fails_the_deploy(platform, standins):
    before = platform.containers()
    platform.answer(
        models=["llama3.2:3b", "nomic-embed-text", "phi3:mini"], images={"grafana": standins["broken"]["grafana"]}
    )
    platform.render()
    result = platform.deploy("--timeout", "20", check=False)
    assert result.rc == 1
    assert "grafana did not become healthy" in result.stdout
    assert "grafana: stand-in" in result.stdout  # its own log lines are shown
    assert "Health log" in result.stdout
    after = platform.containers()
    assert set(after) == set(before)  # nothing was deleted
    rc, status = platform.status()
    assert rc == 1
    unhealthy = [s["container"] for s in status["services"] if not s["healthy"]]
    assert unhealthy == ["grafana"]  # the rest stays up
    platform.answer(models=["llama3.2:3b", "nomic-embed-text", "phi3:mini"])
    platform.render()
    platform.deploy()


def test_status_reports_health_drift_and_orphans(platform, host):
    rc, status = platform.status()
    assert rc == 0 and status["healthy"]
    assert not any(s["drift"] for s in status["services"])
    # a hand edit in generated/: LiteLLM's config no longer matches what runs
    host.run_expect([0], f"echo '# hand edit' >> {platform.out}/config/litellm/config.yaml")
    rc, status = platform.status()
    assert [s["container"] for s in status["services"] if s["drift"]] == ["litellm"]
    assert "changed config/litellm/config.yaml" in status["root_differs_from_generated"]
    # a labelled container that generated/ does not define
    image = platform.images["cadvisor"]
    host.run_expect([0], f"docker run -d --name ai-platform-orphan --label ai-platform.managed=true {image}")
    rc, status = platform.status()
    assert [o["name"] for o in status["orphans"]] == ["ai-platform-orphan"]
    # something enabled is down: non-zero exit
    host.run_expect([0], "docker stop ai-platform-redis")
    rc, status = platform.status()
    assert rc == 1 and not status["healthy"]
    platform.render()  # undo the hand edit


def test_cleanup_keeps_data_then_purge_removes_it_and_nothing_else(platform, host):
    host.run_expect([0], "docker network create aip-it-unrelated && docker volume create aip-it-unrelated")
    host.run_expect([0], f"docker run -d --name aip-it-unrelated {platform.images['cadvisor']}")
    try:
        labelled_volumes = "docker volume ls -q --filter label=ai-platform.managed=true"
        volumes_before = host.check_output(labelled_volumes).split()
        assert volumes_before
        result = platform.inv("cleanup", "--yes", "--root", platform.root)
        assert "Verified: nothing labelled" in result.stdout
        assert platform.containers() == {}
        assert host.check_output("docker network ls -q --filter label=ai-platform.managed=true") == ""
        assert host.check_output(labelled_volumes).split() == volumes_before
        assert host.file(f"{platform.root}/data/postgres").is_directory
        result = platform.inv("cleanup", "--yes", "--purge", "--root", platform.root)
        assert host.check_output(labelled_volumes) == ""
        assert not host.file(platform.root).exists
        assert host.docker("aip-it-unrelated").is_running
        assert host.run("docker network inspect aip-it-unrelated").rc == 0
        assert host.run("docker volume inspect aip-it-unrelated").rc == 0
        assert host.check_output("docker ps -aq --filter label=ai-platform.managed=true") == ""
    finally:
        host.run("docker rm -f aip-it-unrelated; docker network rm aip-it-unrelated; docker volume rm aip-it-unrelated")
