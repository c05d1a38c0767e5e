"""n8n: after its owner account (a declared step in service.yaml), a session, an API key for the platform (kept in
credentials.env as N8N_API_KEY: n8n shows a key's value only when it makes it) and an OpenAI credential that points
at LiteLLM with n8n's own key (public API, as n8n 2.41 answers it: controllers/api-keys, public-api/v1); a rotated
key is put into that credential again (pushed.py keeps a fingerprint of the key it was given)."""

from __future__ import annotations

from aiplatform.commands import INV
from aiplatform.configure import pushed
from aiplatform.configure.facts import LITELLM_BASE, Facts
from aiplatform.configure.http import Api
from aiplatform.configure.model import Outcome, StepFailed, already, done, ok
from aiplatform.configure.secrets import store_secret
from aiplatform.configure.steps import Step, StepContext
from aiplatform.inputs.secrets import litellm_key_name

KEY_LABEL = "ai-platform"
KEY_NAME = "N8N_API_KEY"
CREDENTIAL = "AI Platform LiteLLM"
SCOPES = ["credential:create", "credential:list", "credential:read", "credential:update", "credential:delete"]


def _api(ctx: StepContext) -> Api:
    """The app's API client, shared by its steps."""
    return ctx.api("n8n", "n8n")


def steps(facts: Facts) -> list[Step]:
    return [("admin signs in", login), ("API key for the platform", api_key), ("LiteLLM credential", credential)]


def login(ctx: StepContext) -> Outcome:
    api, facts = _api(ctx), ctx.facts
    answer = api.post("/rest/login", json={"emailOrLdapLoginId": facts.admin_email, "password": facts.admin_password})
    if answer.status_code in (400, 401, 429):
        raise api.password_refused(answer, facts.admin_email)
    api.json(answer)
    if "n8n-auth" not in api.cookies:
        raise StepFailed(
            "n8n's login set no n8n-auth cookie.",
            f"`{INV} status` shows whether ai-platform-n8n runs the catalog's image (another n8n may name its session "
            "cookie otherwise); `docker logs ai-platform-n8n` may say more.",
        )
    return ok(f"{facts.admin_email} (a session)")


def _public(ctx: StepContext, key: str) -> Api:
    api = Api("n8n", "n8n", ctx.facts.local_url("n8n"))
    api.headers["X-N8N-API-KEY"] = key
    return api


def api_key(ctx: StepContext) -> Outcome:
    api, facts = _api(ctx), ctx.facts
    # the owner's own keys with our label (n8n lists 10 a page unless told, newest first: ours, made once, would fall
    # off the first page once ten newer keys exist; an owner also sees other users' keys)
    query = {"label": KEY_LABEL, "ownership": "mine", "take": 250}
    listed = api.json(api.get("/rest/api-keys", params=query)).get("data") or {}
    items = listed.get("items", []) if isinstance(listed, dict) else listed
    ours = [item for item in items if item.get("label") == KEY_LABEL]
    kept = facts.secrets.get(KEY_NAME, "")
    if ours and kept and _public(ctx, kept).get("/api/v1/credentials", params={"limit": 1}).status_code == 200:
        return already(f"{KEY_LABEL} ({KEY_NAME})")
    ctx.act(f"make n8n's API key {KEY_LABEL} and keep it as {KEY_NAME}")
    for item in ours:  # its value is lost (or no longer works): replace it (n8n keeps one label per user)
        api.json(api.request("DELETE", f"/rest/api-keys/{item['id']}"))
    made = (
        api.json(api.post("/rest/api-keys", json={"label": KEY_LABEL, "scopes": SCOPES, "expiresAt": None})).get("data")
        or {}
    )
    if not made.get("rawApiKey"):
        raise StepFailed(
            "n8n made an API key but did not return its value.",
            f"n8n shows a key's value only when it makes it: delete the key {KEY_LABEL!r} in n8n (Settings, n8n API), "
            "then run configure again.",
        )
    store_secret(ctx, KEY_NAME, made["rawApiKey"])
    return done(f"{KEY_LABEL}, kept as {KEY_NAME}" + (" (replaced one whose value was lost)" if ours else ""))


def credential(ctx: StepContext) -> Outcome:
    """Ours is found by name; it gets n8n's current key when configure's record says it holds another one (a rotated
    LITELLM_KEY_N8N) or has no record of it: PATCH /api/v1/credentials/<id> (credentials.public.controller), the
    whole `data` replaced."""
    facts = ctx.facts
    stored = facts.secrets.get(KEY_NAME, "")  # the one the step before made, if it made one
    public = _public(ctx, stored)
    listed = public.json(public.get("/api/v1/credentials", params={"limit": 250}))
    found = next((item for item in listed.get("data") or [] if item.get("name") == CREDENTIAL), None)
    key, name = facts.secret(litellm_key_name("n8n")), litellm_key_name("n8n")
    data = {"apiKey": key, "url": LITELLM_BASE, "header": False}
    if found is None:
        ctx.act(f"add the credential {CREDENTIAL!r}")
        body = {"name": CREDENTIAL, "type": "openAiApi", "data": data}
        made = public.json(public.post("/api/v1/credentials", json=body))
        pushed.remember(ctx, "n8n", {made["id"]: key})
        return done(f"{CREDENTIAL!r}: openAiApi at {LITELLM_BASE} with {name}")
    stale = pushed.held(ctx, "n8n", found["id"], key)
    if not stale:
        return already(f"{CREDENTIAL!r} (openAiApi at {LITELLM_BASE} with {name})")
    ctx.act(f"put the current {name} into the credential {CREDENTIAL!r}")
    path = f"/api/v1/credentials/{found['id']}"
    public.json(public.request("PATCH", path, json={"data": data}))
    pushed.remember(ctx, "n8n", {found["id"]: key})
    return done(f"{CREDENTIAL!r} now holds {name} ({stale})")
