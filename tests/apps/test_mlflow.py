"""The real MLflow (tests/apps/mlflow.py: the catalog's release from the registry) started with the rendered command
and environment, its tracking store and its basic-auth app's users in the real Postgres: a request without
credentials (or with a wrong password, or for a Host name it was not told) is refused, the admin with the rendered
ADMIN_PASSWORD creates an experiment and a run, reads them back, uploads an artifact through the server, and all of
it lands in Postgres and the artifacts folder; configure's MLflow step passes against it twice and changes nothing,
and fails with its fix when the admin's password in MLflow is not ADMIN_PASSWORD."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiplatform.configure.model import Report
from aiplatform.configure.run import run_configure
from aiplatform.envfile import format_env, read_env
from aiplatform.host.runner import Runner
from tests.apps.mlflow import MLflow, mlflow_server
from tests.apps.postgres import Postgres, postgres_for
from tests.configure_platform import StandIns, deploy_files, facts_for

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=10"


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[tuple[Path, Postgres, MLflow]]:
    work = tmp_path_factory.mktemp("mlflow")
    _, root = deploy_files(work, services=["mlflow"])
    with postgres_for(root, work / "postgres") as postgres, mlflow_server(root, postgres, work / "server") as server:
        yield root, postgres, server


@pytest.fixture(scope="module")
def credentials(platform) -> dict[str, str]:
    return read_env(platform[0] / "config/credentials.env")


def admin(credentials: dict[str, str]) -> tuple[str, str]:
    return ("admin", credentials["ADMIN_PASSWORD"])


def sql(postgres: Postgres, database: str, password: str, query: str) -> list[list[str]]:
    """Rows of `query` in `database`, as the rendered user of that database (its name)."""
    done = subprocess.run(
        ["psql", "-h", postgres.host, "-p", str(postgres.port), "-U", database, "-d", database, "-At", "-F", "|",
         "-c", query],
        env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [line.split("|") for line in done.stdout.splitlines()]


def test_without_credentials_every_request_but_health_is_refused(platform, credentials):
    server = platform[2]
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200  # the container's healthcheck
    for auth in (None, ("admin", "not-the-password-1234"), ("nobody", credentials["ADMIN_PASSWORD"])):
        answer = httpx.get(server.url + SEARCH, auth=auth, timeout=30)
        assert answer.status_code == 401, (auth and auth[0], answer.status_code, answer.text[:200])
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="mlflow"'


def test_a_host_name_mlflow_was_not_told_is_refused(platform, credentials):
    # MLFLOW_SERVER_ALLOWED_HOSTS (compose.yml.j2): the DNS-rebinding guard answers 403 before any sign-in.
    server = platform[2]
    answer = httpx.get(server.url + SEARCH, auth=admin(credentials), headers={"Host": "evil.example"}, timeout=30)
    assert answer.status_code == 403, answer.text[:200]
    assert httpx.get(server.url + SEARCH, auth=admin(credentials), timeout=30).status_code == 200


def test_the_admin_creates_an_experiment_and_a_run_stored_in_postgres(platform, credentials):
    _, postgres, server = platform
    with httpx.Client(base_url=server.url + "/api/2.0", auth=admin(credentials), timeout=60) as api:
        made = api.post("/mlflow/experiments/create", json={"name": "apps-session"})
        assert made.status_code == 200, made.text
        experiment = made.json()["experiment_id"]
        read = api.get("/mlflow/experiments/get", params={"experiment_id": experiment})
        assert read.status_code == 200 and read.json()["experiment"]["name"] == "apps-session", read.text
        run = api.post("/mlflow/runs/create", json={"experiment_id": experiment, "run_name": "first"})
        assert run.status_code == 200, run.text
        info = run.json()["run"]["info"]
        logged = api.post("/mlflow/runs/log-metric", json={"run_id": info["run_id"], "key": "loss", "value": 0.25,
                                                             "timestamp": 1, "step": 0})  # fmt: skip
        assert logged.status_code == 200, logged.text
        # --serve-artifacts: the run's artifacts go through the server (mlflow-artifacts:/) into
        # --artifacts-destination
        assert info["artifact_uri"].startswith("mlflow-artifacts:/"), info["artifact_uri"]
        where = info["artifact_uri"].removeprefix("mlflow-artifacts:/").lstrip("/")
        upload = api.put(f"/mlflow-artifacts/artifacts/{where}/note.txt", content=b"kept by MLflow")
        assert upload.status_code == 200, upload.text
    assert (server.artifacts / where / "note.txt").read_bytes() == b"kept by MLflow"
    password = credentials["MLFLOW_DB_PASSWORD"]
    assert sql(postgres, "mlflow", password, f"select name from experiments where experiment_id = {experiment}") == [
        ["apps-session"]
    ]
    assert sql(postgres, "mlflow", password, f"select key, value from metrics where run_uuid = '{info['run_id']}'") == [
        ["loss", "0.25"]
    ]
    # the auth app's users in their own database: the admin it created at its first start
    users = sql(postgres, "mlflow_auth", credentials["MLFLOW_AUTH_DB_PASSWORD"], "select username, is_admin from users")
    assert users == [["admin", "t"]]


def configure(root: Path, url: str) -> Report:
    """configure's MLflow steps, with the real MLflow at `url` as the mlflow container's endpoint."""
    return run_configure(facts_for(root, StandIns(), mlflow=url), Runner(echo=lambda _: None), lambda step: None,
                         ["mlflow"])  # fmt: skip


def test_configure_checks_the_admin_twice_and_changes_nothing(platform):
    root, _, server = platform
    for _ in range(2):
        report = configure(root, server.url)
        steps = [(s.service, s.step, s.result) for s in report.steps]
        assert steps == [("mlflow", "MLflow admin signs in", "ok")], report.steps
        assert report.ok and not report.changed


def test_an_admin_password_changed_after_the_first_start_is_not_mlflows_and_configure_says_how(platform, tmp_path):
    """MLflow takes MLFLOW_AUTH_ADMIN_PASSWORD only when it creates its admin: restarted with a new ADMIN_PASSWORD
    it keeps the first one, configure's step fails with its fix, and the fix (update-password) makes it pass."""
    root, postgres, _ = platform
    env_file = root / "config/credentials.env"
    kept = env_file.read_text()
    first = read_env(env_file)["ADMIN_PASSWORD"]
    rotated = first + "-rotated"
    env_file.write_text(format_env({**read_env(env_file), "ADMIN_PASSWORD": rotated}))
    try:
        with mlflow_server(root, postgres, tmp_path / "restarted") as server:
            assert server.environ["MLFLOW_AUTH_ADMIN_PASSWORD"] == rotated
            current = server.url + "/api/2.0/mlflow/users/current"
            assert httpx.get(current, auth=("admin", rotated), timeout=30).status_code == 401
            assert httpx.get(current, auth=("admin", first), timeout=30).status_code == 200
            step = configure(root, server.url).steps[0]
            assert step.result == "FAILED" and "HTTP 401" in step.detail, step
            # the fix, as it says
            body = {"username": "admin", "password": rotated, "current_password": first}
            fixed = httpx.patch(server.url + "/api/2.0/mlflow/users/update-password", json=body,
                                auth=("admin", first), timeout=30)  # fmt: skip
            assert "users/update-password" in step.fix and fixed.status_code == 200, fixed.text
            assert configure(root, server.url).steps[0].result == "ok"
    finally:
        env_file.write_text(kept)
