"""Flowise's first account (the declared step in templates/services/flowise/service.yaml) against the Flowise protocol
stand-in (tests/integration/standins/image/apps.py, following Flowise 3.1.4's enterprise/utils/validation.util.ts; the
real app is run by tests/apps/test_flowise.py): an email Flowise refuses is named in the fix, not only the password."""

from __future__ import annotations

from aiplatform.configure.run import run_configure
from aiplatform.envfile import format_env, read_env
from aiplatform.host.runner import Runner
from tests.configure_platform import deploy_files, facts_for, litellm_like, stand_ins


def test_an_admin_email_flowise_refuses_is_named_in_the_fix(tmp_path):
    _, root = deploy_files(tmp_path)
    master = read_env(root / "config/master.env")
    (root / "config/master.env").write_text(format_env({**master, "ADMIN_EMAIL": "admin@localhost"}))
    with litellm_like() as litellm, stand_ins(root, litellm.url) as services:
        report = run_configure(facts_for(root, services), Runner(echo=lambda _: None), lambda step: None, ["flowise"])
        step = {s.step: s for s in report.steps}["admin account"]
        assert step.result == "FAILED" and "Invalid User Email" in step.detail, step
        assert "admin@localhost" in step.fix and "dot and two or more letters" in step.fix, step.fix
        assert services.apps["flowise"].state["organization"] is None
