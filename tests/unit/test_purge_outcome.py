"""`inv remove SERVICE --purge` judged by what it leaves behind, on the stand-in engine (tests/unit/engine_standin.py):
the service's volumes, data folders, databases, roles and secrets gone, everything else's kept byte for byte, a
secret another service references never deleted, and nothing purged at all when the deploy before it failed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from aiplatform.engine import deploy as deploying
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.inputs.catalog import Catalog
from aiplatform.inputs.secrets import service_secrets
from aiplatform.manage import changes
from aiplatform.paths import CREDENTIALS_ENV

from .engine_standin import Deployed, EngineDocker, RecordedRunner, deployed
from .test_render import _ctx

SERVICES = ["mlflow", "n8n", "flowise"]
MLFLOW_SECRETS = {"MLFLOW_FLASK_SERVER_SECRET_KEY", "MLFLOW_DB_PASSWORD", "MLFLOW_AUTH_DB_PASSWORD"}


@pytest.fixture
def platform(tmp_path, monkeypatch) -> Deployed:
    monkeypatch.setattr(changes, "Docker", EngineDocker)
    return deployed(tmp_path, _ctx, SERVICES)


def _runner(platform: Deployed) -> RecordedRunner:
    return RecordedRunner(echo=lambda _: None, engine=platform.engine)


def _state(platform: Deployed) -> dict[str, object]:
    """What the owner has: databases, roles, volumes, files under data/, both credentials files."""
    data = platform.root / "data"
    return {
        "databases": dict(platform.engine.databases),
        "roles": set(platform.engine.roles),
        "volumes": set(platform.engine.volumes),
        "files": {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()},
        "credentials": read_env(platform.root / CREDENTIALS_ENV),
        "generated credentials": read_env(platform.out / CREDENTIALS_ENV),
    }


def _purge(platform: Deployed, service: str, catalog: Catalog | None = None) -> RecordedRunner:
    runner = _runner(platform)
    spec = (catalog or platform.catalog).services[service]
    ctx = SimpleNamespace(catalog=catalog or platform.catalog)
    plan = changes.purge_plan(spec, platform.root, EngineDocker(runner), ctx)
    changes.purge_service(plan, platform.root, platform.out, EngineDocker(runner), runner)
    return runner


def test_purge_deletes_the_services_data_and_secrets_and_nothing_else(platform):
    before = _state(platform)
    _purge(platform, "mlflow")
    after = _state(platform)
    assert set(before["databases"]) - set(after["databases"]) == {"mlflow", "mlflow_auth"}
    assert after["databases"] == {k: v for k, v in before["databases"].items() if not k.startswith("mlflow")}
    assert before["roles"] - after["roles"] == {"mlflow", "mlflow_auth"}
    assert after["files"] == {k: v for k, v in before["files"].items() if not k.startswith("mlflow/")}
    assert any(k.startswith("mlflow/") for k in before["files"])
    assert after["volumes"] == before["volumes"]
    for name in ("credentials", "generated credentials"):
        kept = {k: v for k, v in before[name].items() if k not in MLFLOW_SECRETS}
        assert after[name] == kept and set(before[name]) >= MLFLOW_SECRETS
    assert (platform.root / CREDENTIALS_ENV).stat().st_mode & 0o777 == 0o600


def test_purge_removes_the_services_volumes_only(platform):
    before = _state(platform)
    runner = _purge(platform, "n8n")
    assert runner.commands("docker", "volume", "rm") == [["docker", "volume", "rm", "--force", "ai-platform_n8n-data"]]
    assert set(before["volumes"]) - set(_state(platform)["volumes"]) == {"ai-platform_n8n-data"}
    assert set(before["databases"]) - set(_state(platform)["databases"]) == {"n8n"}


def test_a_secret_or_role_another_service_references_is_never_purged(platform):
    """A service of the owner's sharing mlflow's key and its database user: both stay; ADMIN_PASSWORD (the platform's,
    which mlflow names here too) always does."""
    mlflow = platform.catalog.services["mlflow"]
    twin = mlflow.model_copy(update={"name": "reports", "databases": [mlflow.databases[1].model_copy(
        update={"name": "reports"})], "secrets": [mlflow.secrets[0]]})  # fmt: skip
    admin = mlflow.secrets[0].model_copy(update={"name": "ADMIN_PASSWORD"})
    mlflow = mlflow.model_copy(update={"secrets": [*mlflow.secrets, admin]})
    catalog = platform.catalog.model_copy(
        update={"services": {**platform.catalog.services, "mlflow": mlflow, "reports": twin}}
    )
    shared = {s.name for s in service_secrets(twin)}
    assert shared & MLFLOW_SECRETS == {"MLFLOW_FLASK_SERVER_SECRET_KEY", "MLFLOW_AUTH_DB_PASSWORD"}
    before = _state(platform)
    _purge(platform, "mlflow", catalog)
    after = _state(platform)
    assert set(before["credentials"]) - set(after["credentials"]) == {"MLFLOW_DB_PASSWORD"}
    assert before["roles"] - after["roles"] == {"mlflow"}  # mlflow_auth: reports' user too
    assert "ADMIN_PASSWORD" in after["credentials"]


class _UI:
    """Answers every question of change_services' UI with nothing (yes is given)."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def _remove_with_purge(platform: Deployed, monkeypatch, outcome: str) -> RecordedRunner:
    """`remove mlflow --purge --yes` whose deploy succeeds, reports a failure, or raises."""
    real_deploy = deploying.deploy

    def deploy(options, runner, stale, ui):
        if options.dry_run:  # the preview
            return real_deploy(options, runner, stale, ui)
        if outcome == "raises":
            raise UserError("docker compose up failed: the engine went away.")
        failures = [deploying.Failure("litellm", "unhealthy", [], "")] if outcome == "unhealthy" else []
        return deploying.DeployResult(plan=None, root=options.root, failures=failures)

    monkeypatch.setattr(deploying, "deploy", deploy)
    monkeypatch.setattr(changes, "preflight", lambda *args: [])  # stands for a host where every check passes
    runner = _runner(platform)

    def context(answers: Path | None):
        return _ctx(platform.root.parent) if answers is None else _with_answers(platform.root.parent, answers)

    if outcome == "raises":
        with pytest.raises(UserError, match="engine went away"):
            changes.change_services(context, platform.out, runner, _UI(), remove="mlflow", purge=True, yes=True)
    else:
        changes.change_services(context, platform.out, runner, _UI(), remove="mlflow", purge=True, yes=True)
    return runner


def _with_answers(home: Path, answers: Path):
    ctx = _ctx(home)
    return type(ctx)(answers=answers, flags=ctx.flags, environ=ctx.environ, nvml=ctx.nvml)


@pytest.mark.parametrize("outcome", ["unhealthy", "raises"])
def test_purge_never_runs_after_a_failed_deploy(platform, monkeypatch, outcome):
    before = _state(platform)
    runner = _remove_with_purge(platform, monkeypatch, outcome)
    after = _state(platform)
    assert after["databases"] == before["databases"] and after["roles"] == before["roles"]
    assert after["files"] == before["files"] and after["credentials"] == before["credentials"]
    assert not any("DROP" in " ".join(argv) for argv in runner.commands("docker", "exec"))
    assert not runner.commands("docker", "volume", "rm")
    assert not any(entry[:2] == ["rm", "-r"] and "/data/" in entry[2] for entry in runner.history)


def test_purge_runs_once_the_deploy_succeeded(platform, monkeypatch):
    """The same remove with a deploy that came up healthy: the control for the test above."""
    before = _state(platform)
    _remove_with_purge(platform, monkeypatch, "ok")
    after = _state(platform)
    assert set(before["databases"]) - set(after["databases"]) == {"mlflow", "mlflow_auth"}
    assert not (platform.root / "data" / "mlflow" / "artifacts").exists()
    assert after["files"] == {k: v for k, v in before["files"].items() if not k.startswith("mlflow/")}
    assert not MLFLOW_SECRETS & set(after["credentials"])
    assert after["credentials"]["ADMIN_PASSWORD"] == before["credentials"]["ADMIN_PASSWORD"]
