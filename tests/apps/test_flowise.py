"""configure against the real Flowise (tests/apps/flowise.py: npm's flowise at the catalog's release, 3.1.4, on Node 24,
with the rendered container environment and the real Postgres), the real LiteLLM proxy with the Ollama stand-in
behind it, and the protocol stand-ins of the other apps (tests/configure_platform.py, named so there). The first run
makes the first account (Flowise 3.x's organisation setup: POST /api/v1/account/register) and the OpenAI credential
holding Flowise's own LiteLLM key; the second changes nothing; a rotated key is put into the same credential. The end
state is read back from Flowise itself: a fresh sign-in, its credentials API, and the credential's row decrypted."""

from __future__ import annotations

import secrets as tokens

import httpx

from aiplatform.configure.run import run_configure
from aiplatform.envfile import format_env, read_env
from aiplatform.host.runner import Runner
from aiplatform.inputs.secrets import CREDENTIALS_HEADER
from tests.apps.flowise import RELEASE, flowise
from tests.apps.postgres import postgres_for
from tests.configure_platform import MODELS, deploy_files, facts_for, stand_ins
from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import OllamaStandIn

QUIET = Runner(echo=lambda _: None)
CREDENTIAL = "AI Platform LiteLLM"
REDACTED = "_FLOWISE_BLANK_07167752-1a71-43b1-bf8f-4f32252165db"  # packages/server utils REDACTED_CREDENTIAL_VALUE
STEPS = ("admin account", "admin signs in", "LiteLLM credential")


def configure(root, services, app, only=None, ok=True):
    report = run_configure(facts_for(root, services, flowise=app.url), QUIET, lambda step: None, only)
    assert report.ok is ok, [s for s in report.steps if s.result == "FAILED"]
    return report, {s.step: s for s in report.steps if s.service == "flowise"}


def write_credentials(root, values: dict[str, str]) -> None:
    (root / "config/credentials.env").write_text(format_env(dict(sorted(values.items())), CREDENTIALS_HEADER))


def resolve(app) -> str:
    """Where Flowise's sign-in page sends a browser: /organization-setup until the first account exists."""
    return httpx.post(f"{app.url}/api/v1/auth/resolve", timeout=10, trust_env=False).json()["redirectUrl"]


def ours(client: httpx.Client) -> list[dict]:
    listed = client.get("/api/v1/credentials", params={"credentialName": "openAIApi"})
    listed.raise_for_status()
    return [item for item in listed.json() if item["name"] == CREDENTIAL]


def test_configure_sets_up_the_real_flowise_and_a_second_run_changes_nothing(tmp_path):
    assert RELEASE == "3.1.4"  # the catalog's image tag; npm has the same release
    out, root = deploy_files(tmp_path)
    secrets, master = read_env(root / "config/credentials.env"), read_env(root / "config/master.env")
    with (
        OllamaStandIn(models=MODELS) as ollama,
        litellm_proxy(out, tmp_path / "litellm", ollama.url) as litellm,
        postgres_for(root, tmp_path / "postgres") as postgres,
        stand_ins(root, litellm, skip=("flowise",)) as services,
    ):
        with flowise(root, secrets, postgres, tmp_path / "flowise") as app:
            ident, rotated = first_runs(root, services, app, secrets, master)
        # the same database under another encryption key (FLOWISE_ENCRYPTION_KEY lost, changed on purpose here):
        # Flowise's own decrypt fails, and configure says every stored credential is unreadable, adding none
        other = tokens.token_hex(32)
        with flowise(root, secrets, postgres, tmp_path / "flowise-other-key", FLOWISE_SECRETKEY_OVERWRITE=other) as app:
            _, lost = configure(root, services, app, only=["flowise"], ok=False)
            step = lost["LiteLLM credential"]
            assert step.result == "FAILED" and "cannot decrypt" in step.detail, step
            assert "FLOWISE_ENCRYPTION_KEY" in step.fix, step
            assert app.psql("select id from credential") == ident
            assert app.stored_credential(ident, key=secrets["FLOWISE_ENCRYPTION_KEY"]) == {"openAIApiKey": rotated}


def first_runs(root, services, app, secrets, master) -> tuple[str, str]:
    """Two runs, a rotated key, a refused password; returns the credential's id and the key it holds."""
    email, password = master["ADMIN_EMAIL"], secrets["ADMIN_PASSWORD"]
    assert resolve(app) == "/organization-setup"  # a fresh Flowise: no account yet
    # the secrets the template sets are the ones Flowise reads (utils getEncryptionKey, enterprise/utils/authSecrets):
    # it wrote no key file of its own for them, only the issuer and audience it makes when none is set
    assert sorted(path.name for path in (app.home / ".flowise").glob("*.key")) == ["jwt_audience.key", "jwt_issuer.key"]
    _, first = configure(root, services, app)
    assert [first[step].result for step in STEPS] == ["done", "ok", "done"], first
    assert resolve(app) == "/signin"

    # the account: the admin signs in with the platform's password and owns the only organization
    owner, me = app.session(email, password)
    try:
        assert (me["email"], me["name"], me["isOrganizationAdmin"]) == (email, master["ADMIN_NAME"], True), me
        made = ours(owner)
        assert len(made) == 1 and made[0]["credentialName"] == "openAIApi", made
        ident = made[0]["id"]
        shown = owner.get(f"/api/v1/credentials/{ident}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["plainDataObj"] == {"openAIApiKey": REDACTED}  # decrypted, the key redacted
    finally:
        owner.close()
    assert app.psql("select count(*) from organization") == "1"
    assert app.psql(f"select name from \"user\" where email = '{email}'") == master["ADMIN_NAME"]
    # what the credential holds: Flowise's own LiteLLM key, never the master key
    assert app.stored_credential(ident) == {"openAIApiKey": secrets["LITELLM_KEY_FLOWISE"]}
    assert secrets["LITELLM_MASTER_KEY"] not in app.stored_credential(ident).values()

    again, second = configure(root, services, app)
    assert not again.changed, [(s.service, s.step) for s in again.changed]
    assert [second[step].result for step in STEPS] == ["already done", "ok", "already done"], second
    # known from the read-only call service.yaml declares (`already_if`), the registration not sent again
    assert second["admin account"].detail == "POST /api/v1/auth/resolve: redirectUrl is '/signin'"
    assert app.psql("select count(*) from credential") == "1"
    stamp = app.psql(f"select \"updatedDate\" from credential where id = '{ident}'")

    # a rotated LITELLM_KEY_FLOWISE is put into the same credential (PUT), once
    rotated = "sk-" + tokens.token_urlsafe(24)
    write_credentials(root, {**secrets, "LITELLM_KEY_FLOWISE": rotated})
    _, third = configure(root, services, app)
    assert third["LiteLLM credential"].result == "done" and "older key" in third["LiteLLM credential"].detail
    assert app.psql("select id from credential") == ident
    assert app.stored_credential(ident) == {"openAIApiKey": rotated}
    assert app.psql(f"select \"updatedDate\" from credential where id = '{ident}'") != stamp
    again, fourth = configure(root, services, app)
    assert not again.changed, [(s.service, s.step) for s in again.changed]
    assert fourth["LiteLLM credential"].result == "already done"

    # an admin password changed in Flowise by hand: the sign-in is refused (HTTP 401) and configure says so
    write_credentials(root, {**secrets, "LITELLM_KEY_FLOWISE": rotated, "ADMIN_PASSWORD": password + "x"})
    _, refused = configure(root, services, app, only=["flowise"], ok=False)
    signin = refused["admin signs in"]
    assert signin.result == "FAILED" and "HTTP 401" in signin.detail and "ADMIN_PASSWORD" in signin.fix, signin
    write_credentials(root, {**secrets, "LITELLM_KEY_FLOWISE": rotated})
    return ident, rotated
