"""configure's n8n steps against the n8n stand-in (tests/integration/standins/image/apps.py, following the real n8n
2.41.1 that tests/apps/test_n8n.py runs): what the real app's paging and filters mean for finding the platform's key."""

from __future__ import annotations

import httpx

from aiplatform.configure.run import run_configure
from aiplatform.envfile import read_env
from aiplatform.host.runner import Runner
from tests.configure_platform import deploy_files, facts_for, litellm_like, stand_ins

QUIET = Runner(echo=lambda _: None)


def test_the_platforms_api_key_is_found_among_more_than_a_page_of_newer_keys(tmp_path):
    """GET /rest/api-keys answers 10 keys unless told (newest first): ten keys the owner made after configure's must
    not hide it, or configure would make a second one with the same label (a 500 in n8n) on every run."""
    _, root = deploy_files(tmp_path)
    master, secrets = read_env(root / "config/master.env"), read_env(root / "config/credentials.env")
    with litellm_like() as litellm, stand_ins(root, litellm.url) as services:
        assert run_configure(facts_for(root, services), QUIET, lambda step: None, ["n8n"]).ok
        n8n = services.apps["n8n"]
        with httpx.Client(base_url=n8n.url, timeout=10, trust_env=False) as owner:
            login = {"emailOrLdapLoginId": master["ADMIN_EMAIL"], "password": secrets["ADMIN_PASSWORD"]}
            cookie = {"Cookie": f"n8n-auth={owner.post('/rest/login', json=login).cookies['n8n-auth']}"}
            for number in range(10):
                body = {"label": f"mine {number}", "scopes": ["workflow:read"], "expiresAt": None}
                assert owner.post("/rest/api-keys", json=body, headers=cookie).status_code == 200
            assert "ai-platform" not in str(owner.get("/rest/api-keys", headers=cookie).json())  # off the first page
        again = run_configure(facts_for(root, services), QUIET, lambda step: None, ["n8n"])
        steps = {s.step: s for s in again.steps if s.service == "n8n"}
        assert again.ok, steps
        assert steps["API key for the platform"].result == "already done", steps["API key for the platform"]
        assert len(n8n.state["api_keys"]) == 11
