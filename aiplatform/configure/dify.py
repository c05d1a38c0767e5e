"""Dify: its first-run setup (INIT_PASSWORD, then the admin), a console session, LiteLLM as an OpenAI-compatible model
provider with Dify's own key (a chat and an embedding model) and those two as the workspace's defaults.

As Dify 1.13's console answers (api/controllers/console/setup.py, init_validate.py, auth/login.py, workspace/plugin.py,
workspace/models.py): the login password travels base64-encoded; every console call after it carries the csrf_token
cookie's value as X-CSRF-Token (cookies are `__Host-` prefixed behind HTTPS); model providers are plugins since 1.0 —
openai_api_compatible comes from Dify's marketplace, which needs the internet: without it the step says so and the
steps that need the provider are skipped.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx

from aiplatform.commands import INV
from aiplatform.configure import pushed
from aiplatform.configure.facts import LITELLM_BASE, Facts
from aiplatform.configure.http import Api, excerpt
from aiplatform.configure.model import Outcome, StepFailed, StepSkipped, already, done, ok
from aiplatform.configure.steps import Step, StepContext
from aiplatform.inputs.secrets import litellm_key_name

PLUGIN = "langgenius/openai_api_compatible"
PROVIDER = "langgenius/openai_api_compatible/openai_api_compatible"
WORKSPACE = "/console/api/workspaces/current"
INSTALL_WAIT = 300.0


def _api(ctx: StepContext) -> Api:
    """The app's API client, shared by its steps."""
    return ctx.api("Dify", "dify-api", timeout=120)


def steps(facts: Facts) -> list[Step]:
    return [
        ("first-run setup", setup),
        ("admin signs in", login),
        ("model provider plugin", plugin),
        ("LiteLLM models", models),
        ("default models", default_models),
    ]


def setup(ctx: StepContext) -> Outcome:
    api, facts = _api(ctx), ctx.facts
    if api.json(api.get("/console/api/setup")).get("step") == "finished":
        return already("set up")
    ctx.act(f"set Dify up with the admin {facts.admin_email}")
    init = api.json(api.get("/console/api/init"))
    if init.get("status") != "finished":  # INIT_PASSWORD is set: prove it first, in this session
        answer = api.post("/console/api/init", json={"password": facts.secret("DIFY_INIT_PASSWORD")})
        if answer.status_code != 201:
            raise api.unexpected(answer, about=" (DIFY_INIT_PASSWORD)")
    body = {"email": facts.admin_email, "name": facts.admin_name[:30], "password": facts.admin_password}
    answer = api.post("/console/api/setup", json=body)
    if answer.status_code == 403:
        return already("set up (by someone else meanwhile)")
    if answer.status_code != 201:
        raise api.unexpected(answer, _password_fix(answer.text))
    return done(f"admin {facts.admin_email}")


def login(ctx: StepContext) -> Outcome:
    api, facts = _api(ctx), ctx.facts
    password = base64.b64encode(facts.admin_password.encode()).decode()
    answer = api.post("/console/api/login", json={"email": facts.admin_email, "password": password})
    if answer.status_code in (400, 401, 429):
        raise api.password_refused(answer, facts.admin_email, " (its profile page)")
    if api.json(answer).get("result") != "success":
        raise api.unexpected(answer)
    csrf = api.cookies.get("__Host-csrf_token") or api.cookies.get("csrf_token")
    if not csrf:
        raise StepFailed(
            "Dify's login set no csrf_token cookie: every later console call would be refused.",
            f"`{INV} status` shows whether ai-platform-dify-api runs the catalog's image (an older Dify sets no such "
            "cookie); `docker logs ai-platform-dify-api` may say more.",
        )
    api.headers["X-CSRF-Token"] = csrf
    return ok(f"{facts.admin_email} (a console session)")


def plugin(ctx: StepContext) -> Outcome:
    api = _api(ctx)
    if _installed(api):
        return already(PLUGIN)
    ctx.act(f"install {PLUGIN} from Dify's marketplace")
    versions = (
        api.json(api.post(f"{WORKSPACE}/plugin/list/latest-versions", json={"plugin_ids": [PLUGIN]})).get("versions")
        or {}
    )
    latest = versions.get(PLUGIN) or {}
    if not latest.get("unique_identifier"):
        raise _offline("Dify's plugin marketplace did not answer (no internet, or MARKETPLACE_API_URL unreachable)")
    wanted = {"plugin_unique_identifiers": [latest["unique_identifier"]]}
    answer = api.post(f"{WORKSPACE}/plugin/install/marketplace", json=wanted)
    if answer.status_code == 400 and "retries" in answer.text.lower():
        raise _offline(f"Dify could not download the plugin: {excerpt(answer.text, 160)}")
    started = api.json(answer)
    if not started.get("all_installed"):
        _wait_for_task(api, started.get("task_id") or "")
    return done(f"{PLUGIN} {latest.get('version', '')}".strip())


def _installed(api: Api) -> bool:
    answer = api.post(f"{WORKSPACE}/plugin/list/installations/ids", json={"plugin_ids": [PLUGIN]})
    return bool(api.json(answer).get("plugins"))


def _offline(why: str) -> StepSkipped:
    return StepSkipped(
        f"{why}. With the internet back, run configure again; offline, upload the .difypkg of {PLUGIN} on Dify's "
        "Plugins page (Install from local package), then run configure again"
    )


def _wait_for_task(api: Api, task_id: str) -> None:
    deadline = time.monotonic() + INSTALL_WAIT
    while True:
        task = api.json(api.get(f"{WORKSPACE}/plugin/tasks/{task_id}")).get("task") or {}
        status = task.get("status")
        if status == "success":
            return
        if status == "failed":
            messages = "; ".join(p.get("message", "") for p in task.get("plugins") or [] if p.get("message"))
            raise StepFailed(f"Dify could not install {PLUGIN}: {messages or 'the install task failed'}")
        if time.monotonic() > deadline:
            raise StepFailed(f"Dify's install of {PLUGIN} did not finish in {INSTALL_WAIT:g} s (task {task_id}).")
        time.sleep(2)


def _provider_ready(ctx: StepContext) -> Api:
    api = _api(ctx)
    if not _installed(api):
        raise StepSkipped(f"the model provider plugin {PLUGIN} is not installed (see the step above)")
    return api


def models(ctx: StepContext) -> Outcome:
    """The chat and embedding models at LiteLLM with Dify's own key. Dify shows a stored key only masked, so a model's
    credential gets the current key when configure's record says it holds another one (a rotated LITELLM_KEY_DIFY)
    or has no record of it: PUT models/credentials with the model's current credential_id (workspace/models.py
    ModelProviderModelCredentialApi; the credential keeps its name)."""
    api, facts = _provider_ready(ctx), ctx.facts
    key, name = facts.secret(litellm_key_name("dify")), litellm_key_name("dify")
    pairs = [(facts.chat_model, "llm"), (facts.embedding_model, "text-embedding")]
    wanted = [(model, kind) for model, kind in pairs if model]
    answer = api.get(f"{WORKSPACE}/model-providers/{PROVIDER}/models")
    listed = api.json(answer).get("data") or []
    present = {(m.get("model"), m.get("model_type")) for m in listed}
    missing = [(model, kind) for model, kind in wanted if (model, kind) not in present]
    if missing:
        ctx.act(f"add {', '.join(m for m, _ in missing)} to Dify's OpenAI-compatible provider")
    path = f"{WORKSPACE}/model-providers/{PROVIDER}/models/credentials"
    for model, kind in missing:
        body = {"model": model, "model_type": kind, "credentials": _credentials(kind, key)}
        _checked(api, api.post(path, json=body), 201, model)
    current = {(model, kind): _current_credential(api, model, kind) for model, kind in wanted}
    stale = {}
    for pair in wanted:
        why = "" if pair in missing else pushed.held(ctx, "dify", current[pair], key)
        if why:
            stale[pair] = why
    if stale:
        ctx.act(f"put the current {name} into the credentials of {', '.join(m for m, _ in stale)}")
    for model, kind in stale:
        body = {"model": model, "model_type": kind, "credential_id": current[(model, kind)]}
        _checked(api, api.request("PUT", path, json={**body, "credentials": _credentials(kind, key)}), 200, model)
    pushed.remember(ctx, "dify", {ident: key for ident in current.values()})
    if not missing and not stale:
        return already(", ".join(model for model, _ in wanted) + f" with {name}")
    changes = [f"{model} ({kind}) added" for model, kind in missing]
    changes += [f"{model} ({kind}) now with {name} ({why})" for (model, kind), why in stale.items()]
    return done("; ".join(changes) + f" at {LITELLM_BASE}")


def _current_credential(api: Api, model: str, kind: str) -> str:
    """The id of the credential a model uses (GET models/credentials: `current_credential_id`)."""
    answer = api.get(
        f"{WORKSPACE}/model-providers/{PROVIDER}/models/credentials", params={"model": model, "model_type": kind}
    )
    ident = api.json(answer).get("current_credential_id")
    if not ident:
        raise StepFailed(
            f"Dify's model {model} ({kind}) uses no credential.",
            f"Choose one for {model} in Dify (Settings, Model Provider, OpenAI-API-compatible) or remove the model, "
            "then run configure again.",
        )
    return str(ident)


def _checked(api: Api, answer: httpx.Response, status: int, model: str) -> None:
    if answer.status_code != status:
        raise api.unexpected(
            answer,
            about=f" (the credential of {model})",
            fix="Dify checks a model by calling LiteLLM from its plugin daemon: see `docker logs "
            "ai-platform-dify-plugin-daemon` and configure's LiteLLM steps above.",
        )


def _credentials(kind: str, key: str) -> dict[str, Any]:
    # Dify's validator wants every value as a string.
    base = {"endpoint_url": LITELLM_BASE, "api_key": key, "context_size": "4096"}
    if kind == "llm":
        return {**base, "mode": "chat", "max_tokens_to_sample": "1024"}
    return {**base, "max_chunks": "1"}


def default_models(ctx: StepContext) -> Outcome:
    api, facts = _provider_ready(ctx), ctx.facts
    wanted = {"llm": facts.chat_model, "text-embedding": facts.embedding_model}
    current = {}
    for kind in wanted:
        data = api.json(api.get(f"{WORKSPACE}/default-model", params={"model_type": kind}))
        item = data.get("data") or {}
        current[kind] = (item.get("model"), (item.get("provider") or {}).get("provider"))
    if all(current[kind] == (model, PROVIDER) for kind, model in wanted.items() if model):
        return already(", ".join(model for model in wanted.values() if model))
    ctx.act("make LiteLLM's models Dify's default models")
    settings = [{"model_type": k, "provider": PROVIDER, "model": m} for k, m in wanted.items() if m]
    api.json(api.post(f"{WORKSPACE}/default-model", json={"model_settings": settings}))
    return done(", ".join(model for model in wanted.values() if model))


def _password_fix(text: str) -> str:
    """The fix for a refused setup when Dify's words are about the password; else Api.unexpected's own (the log)."""
    if "password" in text.lower():
        return "Dify wants a letter and a digit, 8 characters or more: give ADMIN_PASSWORD such a value and render."
    return ""
