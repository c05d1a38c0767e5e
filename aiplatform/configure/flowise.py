"""Flowise: after its first account (a declared step in service.yaml), a session (the `token` cookie plus
`x-request-from: internal`, as Flowise 3.1 wants it) and an OpenAI credential holding Flowise's own LiteLLM key
(a Flowise credential has no base URL: its ChatOpenAI nodes take http://litellm:4000/v1 as their base path)."""

from __future__ import annotations

from aiplatform.configure.facts import LITELLM_BASE, Facts
from aiplatform.configure.model import Outcome, StepFailed, already, done, ok
from aiplatform.configure.steps import Step, StepContext
from aiplatform.inputs.secrets import litellm_key_name

CREDENTIAL = "AI Platform LiteLLM"


def steps(facts: Facts) -> list[Step]:
    return [("admin signs in", login), ("LiteLLM credential", credential)]


def login(ctx: StepContext) -> Outcome:
    api, facts = ctx.api("Flowise", "flowise"), ctx.facts
    answer = api.post("/api/v1/auth/login", json={"email": facts.admin_email, "password": facts.admin_password})
    if answer.status_code in (400, 401, 404):
        raise api.password_refused(answer, facts.admin_email)
    api.json(answer, "POST /api/v1/auth/login")
    if "token" not in api.cookies:
        raise StepFailed("Flowise's login set no token cookie.")
    api.headers["x-request-from"] = "internal"
    return ok(f"{facts.admin_email} (a session)")


def credential(ctx: StepContext) -> Outcome:
    api = ctx.api("Flowise", "flowise")
    listed = api.json(api.get("/api/v1/credentials", params={"credentialName": "openAIApi"}), "GET credentials")
    if any(item.get("name") == CREDENTIAL for item in listed):
        return already(repr(CREDENTIAL))
    ctx.act(f"add the credential {CREDENTIAL!r}")
    body = {
        "name": CREDENTIAL,
        "credentialName": "openAIApi",
        "plainDataObj": {"openAIApiKey": ctx.facts.secret(litellm_key_name("flowise"))},
    }
    api.json(api.post("/api/v1/credentials", json=body), "POST /api/v1/credentials")
    return done(f"{CREDENTIAL!r} with {litellm_key_name('flowise')} (base path {LITELLM_BASE} in its nodes)")
