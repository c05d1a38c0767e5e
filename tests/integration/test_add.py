"""`inv add` and `inv remove` on a running platform (real engine, stand-in images): MLflow, JupyterHub and Milvus
added one at a time — healthy, their databases created in the running Postgres, nothing else recreated but what
the change needs (said with why) and reloads instead of restarts; a service removed with its data kept, added back
to find it, then purged; an owner's compose file and a cookiecutter service deployed with the platform's labels.

`add` ends with configure (the new service and LiteLLM's keys): LiteLLM's container is the stand-in of its key API in
front of the real LiteLLM proxy on this host, and Ollama is its stand-in (as in test_configure.py)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from aiplatform.envfile import parse_env
from tests.integration.standins.images import HOST_LITELLM_PORT
from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import OllamaStandIn

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(platform, host, tmp_path_factory):
    """The core platform and monitoring, deployed; Ollama's stand-in and the real LiteLLM up for configure."""
    platform.answer(services=["monitoring"])
    platform.render()
    models = parse_env(host.check_output(f"cat {platform.out}/config/master.env"))["DEFAULT_MODELS"].split(",")
    with (
        OllamaStandIn(models=models, host="127.0.0.1", port=11434) as ollama,
        litellm_proxy(
            Path(platform.out), tmp_path_factory.mktemp("litellm"), ollama.url, host="0.0.0.0", port=HOST_LITELLM_PORT
        ),
    ):
        platform.deploy()
        yield platform


def _change(platform, task: str, *args: str, check: bool = True):
    where = ["--answers", platform.answers, "--out", platform.out, "--root", platform.root]
    return platform.inv(task, *args, "--yes", *where, check=check)


def _flat(text: str) -> str:
    """Output with the tables' borders and wrapping taken out, to find a long value in it."""
    return re.sub(r"[\s│┃]", "", text)


def _recreated(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if name in after and after[name] != before[name]}


CATALOG_CASES = [
    # service, flags, its containers, its databases (name, user, password), recreated by IP (a port for its route)
    (
        "mlflow",
        [],
        {"mlflow"},
        [("mlflow", "mlflow", "MLFLOW_DB_PASSWORD"), ("mlflow_auth", "mlflow_auth", "MLFLOW_AUTH_DB_PASSWORD")],
        {"caddy", "postgres-init"},
    ),
    (
        "jupyterhub",
        ["--allow-privileged"],
        {"jupyterhub"},
        [("jupyterhub", "jupyterhub", "JUPYTERHUB_DB_PASSWORD")],
        {"caddy", "postgres-init"},
    ),
    ("milvus", [], {"milvus", "milvus-etcd", "milvus-minio"}, [], set()),
]


@pytest.mark.parametrize(
    ("service", "flags", "containers", "databases", "recreates"), CATALOG_CASES, ids=[c[0] for c in CATALOG_CASES]
)
def test_add_a_catalog_service_alone(running, host, service, flags, containers, databases, recreates):
    before = running.containers()
    result = _change(running, "add", service, *flags)
    after = running.containers()
    assert set(after) - set(before) == containers, result.stdout
    assert _recreated(before, after) == recreates, result.stdout
    for name in recreates:  # each named in the plan, with why
        assert re.search(rf"{name} \([a-z]", result.stdout), result.stdout
    if service == "milvus":  # a new scrape target: Prometheus re-reads its config, no restart
        assert "Reloaded without a restart: prometheus (config/prometheus/prometheus.yml)" in result.stdout
    rc, status = running.status()
    assert rc == 0, [s for s in status["services"] if not s["healthy"]]
    for database, user, secret in databases:
        login = running.psql(user, database, secret, "select current_database()")
        assert login.rc == 0 and login.stdout.strip() == database, login.stderr
    assert f"Added {service}" in result.stdout
    assert "Configure" in result.stdout and "FAILED" not in result.stdout, result.stdout + result.stderr
    if service == "jupyterhub":  # its notebooks' key to LiteLLM, registered by configure
        assert "key for jupyterhub" in result.stdout
    local = [p for c in containers for p in _published(running, c)]
    for port in local:
        assert f"http://localhost:{port}" in _flat(result.stdout)  # its URL, printed at the end
    assert service in yaml.safe_load(host.check_output(f"cat {running.answers}"))["services"]


def _published(platform, container: str) -> list[str]:
    ports = platform.inspect(container)["HostConfig"]["PortBindings"] or {}
    return [binding["HostPort"] for bindings in ports.values() for binding in bindings or []]


def test_the_accepted_privilege_is_recorded_in_answers(running, host):
    answers = yaml.safe_load(host.check_output(f"cat {running.answers}"))
    assert answers["privileged_services"] == ["jupyterhub"]  # what --allow-privileged accepted, for later renders


def test_remove_keeps_the_data_and_adding_back_finds_it(running, host):
    made = running.psql(
        "mlflow", "mlflow", "MLFLOW_DB_PASSWORD", "create table kept (x int); insert into kept values (42)"
    )
    assert made.rc == 0, made.stderr
    marker = f"{running.root}/data/mlflow/artifacts/run-1/model.bin"
    host.run_expect([0], f"mkdir -p {shlex.quote(str(Path(marker).parent))} && echo weights > {shlex.quote(marker)}")
    before = running.containers()
    result = _change(running, "remove", "mlflow")
    after = running.containers()
    assert "mlflow" not in after and "kept" in result.stdout
    assert _recreated(before, after) <= {"caddy", "postgres-init"}, result.stdout  # by IP: its port goes
    assert host.file(marker).exists
    assert "MLFLOW_DB_PASSWORD=" in host.check_output(f"cat {running.root}/config/credentials.env")
    assert "mlflow" not in yaml.safe_load(host.check_output(f"cat {running.answers}"))["services"]

    _change(running, "add", "mlflow")
    back = running.psql("mlflow", "mlflow", "MLFLOW_DB_PASSWORD", "select x from kept")
    assert back.rc == 0 and back.stdout.strip() == "42", back.stderr
    assert host.file(marker).content_string.strip() == "weights"


def _postgres(host, query: str) -> str:
    return host.check_output(f"docker exec ai-platform-postgres psql -U postgres -tAc {shlex.quote(query)}")


def test_purge_lists_then_deletes_the_data(running, host):
    result = _change(running, "remove", "mlflow", "--purge")
    listed = _flat(result.stdout.split("--purge deletes, for good")[1])
    for item in ("databasemlflow(Postgres)", "databaseusermlflow(Postgres)", "secretMLFLOW_DB_PASSWORD",
                 "databasemlflow_auth(Postgres)", "secretMLFLOW_AUTH_DB_PASSWORD"):  # fmt: skip
        assert item in listed
    assert f"folder{running.root}/data/mlflow/artifacts" in re.sub(r"\d+(\.\d+)?[KMG]?B", "", listed)
    assert _postgres(host, "select count(*) from pg_database where datname = 'mlflow'") == "0"
    assert _postgres(host, "select count(*) from pg_roles where rolname = 'mlflow'") == "0"
    assert _postgres(host, "select count(*) from pg_database where datname = 'mlflow_auth'") == "0"
    assert not host.file(f"{running.root}/data/mlflow/artifacts").exists
    assert "MLFLOW_DB_PASSWORD=" not in host.check_output(f"cat {running.root}/config/credentials.env")

    result = _change(running, "remove", "milvus", "--purge")
    assert "volumeai-platform_milvus-data" in _flat(result.stdout)
    assert host.check_output("docker volume ls -q --filter label=ai-platform.service=milvus") == ""
    diff = running.inv("diff", "--out", running.out)  # generated/ stamped again without the purged secrets
    assert "stale" not in diff.stdout + diff.stderr and "by hand" not in diff.stdout + diff.stderr


NOTES = """\
services:
  notes:
    image: aiplatform-standin/mlflow:test
    environment:
      STANDIN_APP: ""  # the image's plain HTTP stand-in, not its MLflow protocol one (which needs MLflow's settings)
      STANDIN_PORT: "8080"
      STANDIN_HEALTH_PATH: /health
      NOTES_TOKEN: ${NOTES_TOKEN}
    ports: ["127.0.0.1:18123:8080"]
    volumes: ["./uploads:/srv/uploads"]
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8080/health')"]
"""


def test_an_owners_compose_file_is_imported_and_deployed_with_the_platforms_keys(running, host):
    source = f"{running.base}/notes.yml"
    running.write(source, NOTES)
    result = _change(running, "add", "--from-compose", source, "--name", "notes")
    assert host.file(f"{running.user_services}/notes/service.yaml").exists, result.stdout
    notes = running.inspect("notes")
    labels = notes["Config"]["Labels"]
    assert labels["ai-platform.managed"] == "true" and labels["ai-platform.service"] == "notes"
    assert "ai-platform" in notes["NetworkSettings"]["Networks"]
    assert notes["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert notes["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert notes["State"]["Health"]["Status"] == "healthy"
    assert any(m["Source"] == f"{running.root}/data/notes/uploads" for m in notes["Mounts"])
    token = running.credentials()["NOTES_TOKEN"]
    assert f"NOTES_TOKEN={token}" in notes["Config"]["Env"] and token not in result.stdout
    assert host.socket("tcp://127.0.0.1:18123").is_listening
    # Imported with `auth: caddy`: the real Caddy asks for the platform's admin before the route reaches it (the
    # hash through credentials.env, compose's interpolation and the Caddyfile's {$CADDY_ADMIN_HASH}).
    assert "auth: caddy" in " ".join((result.stdout + result.stderr).split())
    port = yaml.safe_load(host.check_output(f"cat {running.user_services}/notes/service.yaml"))["route"]["ip_port"]
    site = f"https://{parse_env(host.check_output(f'cat {running.root}/config/master.env'))['HOST_IP']}:{port}/health"

    def status(*auth: str) -> str:
        return host.check_output(f"curl -sk -o /dev/null -w '%{{http_code}}' {shlex.join(auth)} {shlex.quote(site)}")

    assert status() == "401"
    assert status("-u", "admin:Not-The-Password-1") == "401"
    assert status("-u", f"admin:{running.credentials()['ADMIN_PASSWORD']}") == "200"


def test_a_refused_compose_file_changes_nothing(running, host):
    source = f"{running.base}/risky.yml"
    running.write(
        source, NOTES.replace("  notes:", "  risky:").replace("    ports:", "    privileged: true\n    ports:")
    )
    answers = host.check_output(f"cat {running.answers}")
    result = _change(running, "add", "--from-compose", source, "--name", "risky", check=False)
    assert result.rc == 1 and "service risky: it asks for privileged" in result.stderr
    assert not host.file(f"{running.user_services}/risky").exists
    assert host.check_output(f"cat {running.answers}") == answers


def test_add_new_bakes_the_cookiecutter_and_deploys_it(running, host):
    # The template's default image, made here from a stand-in (no registry): port 8000, health /health, curl.
    # STANDIN_APP="": the image's plain HTTP stand-in, not its MLflow protocol one
    dockerfile = (
        'FROM aiplatform-standin/mlflow:test\nENV STANDIN_APP="" STANDIN_PORT=8000 STANDIN_HEALTH_PATH=/health\n'
    )
    host.run_expect([0], f"printf %s {shlex.quote(dockerfile)} | docker build -q -t vendor/myservice:1.0.0 -")
    try:
        result = _change(running, "add", "--new", "notes-app")
        spec = yaml.safe_load(host.check_output(f"cat {running.user_services}/notes-app/service.yaml"))
        assert spec["containers"]["notes-app"]["image"] == "vendor/myservice:1.0.0"
        made = running.inspect("notes-app")
        assert made["State"]["Health"]["Status"] == "healthy", result.stdout
        assert made["Config"]["Labels"]["ai-platform.service"] == "notes-app"
        status = json.loads(running.inv("status", "--out", running.out, "--json").stdout)
        assert {s["service"] for s in status["services"]} >= {"notes", "notes-app"}
    finally:
        host.run("docker image rm -f vendor/myservice:1.0.0")
