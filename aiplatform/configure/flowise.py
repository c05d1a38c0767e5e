"""Flowise: after its first account (a declared step in service.yaml), a session (the `token` cookie plus the express
session cookie `connect.sid`, with `x-request-from: internal`, as Flowise 3.1 wants it) and an OpenAI credential
holding Flowise's own LiteLLM key (a Flowise credential has no base URL: its ChatOpenAI nodes take
http://litellm:4000/v1 as their base path), read back decrypted so that a lost encryption key shows; a rotated key
is put into it again (pushed.py keeps a fingerprint of the key it was given).

Under TLS Flowise's APP_URL is https and its session cookie Secure; express-session sets a Secure cookie only on a
request that came over https, and Flowise trusts its proxy's X-Forwarded-Proto (Caddy's): configure's calls to the
plain-HTTP port on 127.0.0.1 say they did, as Caddy would."""

from __future__ import annotations

from aiplatform.commands import INV
from aiplatform.configure import pushed
from aiplatform.configure.facts import LITELLM_BASE, Facts
from aiplatform.configure.http import Api
from aiplatform.configure.model import Outcome, StepFailed, already, done, ok
from aiplatform.configure.steps import Step, StepContext
from aiplatform.inputs.secrets import litellm_key_name

CREDENTIAL = "AI Platform LiteLLM"
KEY_FIELD = "openAIApiKey"


def _api(ctx: StepContext) -> Api:
    """The app's API client, shared by its steps."""
    return ctx.api("Flowise", "flowise")


def steps(facts: Facts) -> list[Step]:
    return [("admin signs in", login), ("LiteLLM credential", credential)]


def login(ctx: StepContext) -> Outcome:
    api, facts = _api(ctx), ctx.facts
    api.headers["X-Forwarded-Proto"] = "https"  # see the module docstring
    answer = api.post("/api/v1/auth/login", json={"email": facts.admin_email, "password": facts.admin_password})
    if answer.status_code in (400, 401, 404):
        raise api.password_refused(answer, facts.admin_email)
    api.json(answer)
    missing = [name for name in ("token", "connect.sid") if name not in api.cookies]
    if missing:
        raise StepFailed(
            f"Flowise's login set no {' and no '.join(missing)} cookie (its session needs both).",
            "Flowise must trust its proxy's X-Forwarded-Proto (TRUST_PROXY unset or true in "
            "docker/docker-compose.flowise.yml); `docker logs ai-platform-flowise` may say more.",
        )
    api.headers["x-request-from"] = "internal"
    return ok(f"{facts.admin_email} (a session)")


def credential(ctx: StepContext) -> Outcome:
    """Ours is found by name. Flowise never shows a stored key again (GET redacts it), so it gets the current key when
    configure's record says it holds another one (a rotated LITELLM_KEY_FLOWISE) or has no record of it:
    PUT /api/v1/credentials/<id> (services/credentials updateCredential merges plainDataObj into the stored one)."""
    api = _api(ctx)
    key, name = ctx.facts.secret(litellm_key_name("flowise")), litellm_key_name("flowise")
    body = {"name": CREDENTIAL, "credentialName": "openAIApi", "plainDataObj": {KEY_FIELD: key}}
    listed = api.json(api.get("/api/v1/credentials", params={"credentialName": "openAIApi"}))
    found = next((item for item in listed if item.get("name") == CREDENTIAL), None)
    if found is None:
        ctx.act(f"add the credential {CREDENTIAL!r}")
        made = api.json(api.post("/api/v1/credentials", json=body))
        readable(api, made["id"])
        pushed.remember(ctx, "flowise", {made["id"]: key})
        return done(f"{CREDENTIAL!r} with {name} (base path {LITELLM_BASE} in its nodes)")
    readable(api, found["id"])
    stale = pushed.held(ctx, "flowise", found["id"], key)
    if not stale:
        return already(f"{CREDENTIAL!r} with {name} (Flowise decrypts it)")
    ctx.act(f"put the current {name} into the credential {CREDENTIAL!r}")
    path = f"/api/v1/credentials/{found['id']}"
    api.json(api.request("PUT", path, json=body))
    readable(api, found["id"])
    pushed.remember(ctx, "flowise", {found["id"]: key})
    return done(f"{CREDENTIAL!r} now holds {name} ({stale})")


def readable(api: Api, ident: str) -> None:
    """GET /api/v1/credentials/<id> is the call that decrypts (services/credentials getCredentialById): a key field
    comes back (redacted) only when Flowise's encryption key is the one the credential was stored with."""
    answer = api.get(f"/api/v1/credentials/{ident}")
    try:
        plain = answer.json().get("plainDataObj") if answer.is_success else None
    except (ValueError, AttributeError):
        plain = None
    if isinstance(plain, dict) and KEY_FIELD in plain:
        return
    raise StepFailed(
        f"Flowise cannot decrypt its credential {CREDENTIAL!r} (GET /api/v1/credentials/{ident} answered HTTP "
        f"{answer.status_code}): its encryption key is not the one the credential was stored with, so every "
        "credential stored before is unreadable too.",
        "The key is FLOWISE_ENCRYPTION_KEY in credentials.env (kept by backups). If a backup holds the old key, "
        f"`sudo {INV} restore BACKUP` puts it back; otherwise delete {CREDENTIAL!r} in Flowise (Credentials) and run "
        f"`sudo {INV} configure` again, and enter the keys of your own credentials again.",
    )
