"""configure's MLflow step (service.yaml `setup:`): the admin signs in with ADMIN_PASSWORD. MLflow takes
MLFLOW_AUTH_ADMIN_PASSWORD only when it first creates its admin, so a password changed later is not MLflow's: the step
fails and says how to set it. Against MLflow's protocol stand-in (tests/integration/standins/image/apps.py, seeded
from the rendered container environment); tests/apps/test_mlflow.py runs the same against the real MLflow."""

from __future__ import annotations

from aiplatform.configure.run import run_configure
from aiplatform.envfile import read_env
from aiplatform.host.runner import Runner
from tests.configure_platform import StandIns, apps, deploy_files, facts_for, rendered_environ


def _mlflow(root, **changes):
    settings = apps.settings_from_environ("mlflow", rendered_environ(root, read_env(root / "config/credentials.env"),
                                                                     "mlflow", "mlflow"))  # fmt: skip
    # the stand-in listens on a free port, not one of the rendered Host names: its Host guard is left out here
    return apps.AppStandIn("mlflow", **{**settings, "allowed_hosts": None, **changes})


def _configure(root, url):
    report = run_configure(facts_for(root, StandIns(), mlflow=url), Runner(echo=lambda _: None), lambda s: None,
                           ["mlflow"])  # fmt: skip
    return {s.step: s for s in report.steps}, report


def test_the_admin_signs_in_and_a_second_run_changes_nothing(tmp_path):
    _, root = deploy_files(tmp_path, services=["mlflow"])
    with _mlflow(root) as app:
        for _ in range(2):
            steps, report = _configure(root, app.url)
            assert steps["MLflow admin signs in"].result == "ok" and report.ok and not report.changed
        assert app.requests == [("GET", "/api/2.0/mlflow/users/current")] * 2


def test_an_admin_password_mlflow_does_not_have_fails_and_says_how_to_set_it(tmp_path):
    _, root = deploy_files(tmp_path, services=["mlflow"])
    with _mlflow(root, admin_password="the-first-password") as app:
        steps, report = _configure(root, app.url)
    step = steps["MLflow admin signs in"]
    assert step.result == "FAILED" and "HTTP 401" in step.detail and not report.ok
    assert "/api/2.0/mlflow/users/update-password" in step.fix and "current_password" in step.fix
