"""Open WebUI: its admin signs in (signs up on a fresh install), its one model connection is LiteLLM with Open WebUI's
own key, its direct Ollama connection stays off (chats go through the gateway), it lists LiteLLM's models, the
tier's chat model is the default and its document embeddings go through LiteLLM too (the embedding model, the same
key).

Open WebUI keeps its connections in its database after the first start (ENABLE_PERSISTENT_CONFIG): the
environment only seeds them, so these steps set them through the admin API (routers/openai.py, routers/ollama.py,
routers/configs.py, routers/retrieval.py of Open WebUI 0.11.4).
"""

from __future__ import annotations

from typing import Any

from aiplatform.configure import litellm
from aiplatform.configure.facts import LITELLM_BASE, Facts
from aiplatform.configure.http import Api, excerpt
from aiplatform.configure.model import Outcome, StepFailed, StepSkipped, already, done, ok
from aiplatform.configure.steps import Step, StepContext
from aiplatform.inputs.secrets import litellm_key_name


def _api(ctx: StepContext) -> Api:
    """The app's API client, shared by its steps."""
    return ctx.api("Open WebUI", "open-webui")


def steps(facts: Facts) -> list[Step]:
    found: list[Step] = [
        ("admin signs in", admin),
        ("LiteLLM connection", litellm_connection),
        ("direct Ollama connection off", ollama_off),
        ("models listed", models_listed),
        ("default model", default_model),
    ]
    if facts.embedding_model:  # last: a chat works without it
        found.append(("embeddings through LiteLLM", embeddings))
    return found


def admin(ctx: StepContext) -> Outcome:
    api, facts = _api(ctx), ctx.facts
    credentials = {"email": facts.admin_email, "password": facts.admin_password}
    config = api.json(api.get("/api/config"))
    if config.get("onboarding"):  # no user yet: the first one to sign up becomes the admin
        ctx.act(f"create the admin {facts.admin_email}")
        answer = api.json(api.post("/api/v1/auths/signup", json={**credentials, "name": facts.admin_name}))
        _token(api, answer)
        return done(f"admin {facts.admin_email} created")
    response = api.post("/api/v1/auths/signin", json=credentials)
    if response.status_code == 403:  # ENABLE_PASSWORD_AUTH off: refused before the password is read
        raise StepFailed(
            f"Open WebUI refuses every password sign-in (HTTP 403: {excerpt(response.text, 120)}); configure signs "
            f"in as {facts.admin_email} with ADMIN_PASSWORD.",
            "Turn Open WebUI's password sign-in back on (ENABLE_PASSWORD_AUTH=true, its default), then run configure "
            "again.",
        )
    if response.status_code in (400, 401):
        raise api.password_refused(response, facts.admin_email)
    answer = api.json(response)
    if answer.get("role") != "admin":
        role = answer.get("role")
        raise StepFailed(f"{facts.admin_email} signs in to Open WebUI but is not its admin (role {role}).")
    _token(api, answer)
    return already(f"admin {facts.admin_email}")


def _token(api: Api, answer: dict[str, Any]) -> None:
    api.headers["Authorization"] = f"Bearer {answer['token']}"


def litellm_connection(ctx: StepContext) -> Outcome:
    api = _api(ctx)
    key = ctx.facts.secret(litellm_key_name("open-webui"))
    config = api.json(api.get("/openai/config"))
    urls, keys = config.get("OPENAI_API_BASE_URLS") or [], config.get("OPENAI_API_KEYS") or []
    if config.get("ENABLE_OPENAI_API") and urls == [LITELLM_BASE] and keys[:1] == [key]:
        return already(f"{LITELLM_BASE} with {litellm_key_name('open-webui')}")
    ctx.act(f"set the OpenAI-compatible connection to {LITELLM_BASE} with its own key")
    body = {
        "ENABLE_OPENAI_API": True,
        "OPENAI_API_BASE_URLS": [LITELLM_BASE],
        "OPENAI_API_KEYS": [key],
        "OPENAI_API_CONFIGS": {},
    }
    api.json(api.post("/openai/config/update", json=body))
    before = ", ".join(urls) or "none"
    return done(f"{LITELLM_BASE} with {litellm_key_name('open-webui')} (was: {before})")


def ollama_off(ctx: StepContext) -> Outcome:
    api = _api(ctx)
    config = api.json(api.get("/ollama/config"))
    if not config.get("ENABLE_OLLAMA_API"):
        return already("chats go through LiteLLM only")
    ctx.act("turn Open WebUI's direct Ollama connection off")
    body = {
        "ENABLE_OLLAMA_API": False,
        "OLLAMA_BASE_URLS": config.get("OLLAMA_BASE_URLS") or [],
        "OLLAMA_API_CONFIGS": config.get("OLLAMA_API_CONFIGS") or {},
    }
    api.json(api.post("/ollama/config/update", json=body))
    return done("a model both list would have gone to Ollama directly, bypassing LiteLLM")


def models_listed(ctx: StepContext) -> Outcome:
    api = _api(ctx)
    if ctx.dry_run:  # it lists through its own key: one this run would register is not known to LiteLLM yet
        gateway = litellm.api(ctx.facts)
        if (
            gateway.get("/key/info", params={"key": ctx.facts.secret(litellm_key_name("open-webui"))}).status_code
            != 200
        ):
            raise StepSkipped("its LiteLLM key is registered by this run's LiteLLM step (dry run)")
    models = api.json(api.get("/api/models")).get("data") or []
    through_litellm = {m.get("id") for m in models if m.get("owned_by") == "openai"}
    direct = sorted(str(m.get("id")) for m in models if m.get("owned_by") == "ollama")
    missing = [name for name in ctx.facts.litellm_models if name not in through_litellm]
    if missing or direct:
        raise StepFailed(
            f"Open WebUI lists {', '.join(sorted(map(str, through_litellm))) or 'no model'} through LiteLLM"
            + (f", not {', '.join(missing)}" if missing else "")
            + (f", and {', '.join(direct)} directly from Ollama" if direct else "")
            + ".",
            "Run configure again after `docker restart ai-platform-open-webui`; `docker logs ai-platform-open-webui`.",
        )
    return ok(f"{len(through_litellm)} model(s) through LiteLLM")


def default_model(ctx: StepContext) -> Outcome:
    api, model = _api(ctx), ctx.facts.chat_model
    config = api.json(api.get("/api/v1/configs/models"))
    if config.get("DEFAULT_MODELS") == model:
        return already(model)
    ctx.act(f"make {model} the default model")
    api.json(api.post("/api/v1/configs/models", json={**config, "DEFAULT_MODELS": model}))
    return done(model)


EMBEDDING_TUNING = ("RAG_EMBEDDING_BATCH_SIZE", "ENABLE_ASYNC_EMBEDDING", "RAG_EMBEDDING_CONCURRENT_REQUESTS")


def embeddings(ctx: StepContext) -> Outcome:
    """RAG's embedding engine is LiteLLM's OpenAI-compatible API with Open WebUI's own key and the embedding model as
    LiteLLM's config.yaml names it (routers/retrieval.py get_embedding_config / update_embedding_config). An install
    from before kept its saved engine (Ollama at the host, which a platform whose models run on nodes does not have)."""
    api, model = _api(ctx), ctx.facts.embedding_model
    name = litellm_key_name("open-webui")
    key = ctx.facts.secret(name)
    config = api.json(api.get("/api/v1/retrieval/embedding"))
    engine, openai = config.get("RAG_EMBEDDING_ENGINE"), config.get("openai_config") or {}
    if (engine, config.get("RAG_EMBEDDING_MODEL"), openai.get("url"), openai.get("key")) == (
        "openai", model, LITELLM_BASE, key
    ):  # fmt: skip
        return already(f"{model} at {LITELLM_BASE} with {name}")
    ctx.act(f"embed documents with {model} through {LITELLM_BASE} with its own key")
    body = {
        "RAG_EMBEDDING_ENGINE": "openai",
        "RAG_EMBEDDING_MODEL": model,
        "openai_config": {"url": LITELLM_BASE, "key": key},
        # the update sets these from the form as well (defaults when left out): the admin's values are kept
        **{field: config[field] for field in EMBEDDING_TUNING if config.get(field) is not None},
    }
    api.json(api.post("/api/v1/retrieval/embedding/update", json=body))
    return done(f"{model} at {LITELLM_BASE} with {name} (was: {_embedding_engine(config, key)})")


def _embedding_engine(config: dict[str, Any], key: str) -> str:
    """The saved engine in words, without its key: `ollama nomic-embed-text at http://host.docker.internal:11434`."""
    engine, model = config.get("RAG_EMBEDDING_ENGINE") or "", config.get("RAG_EMBEDDING_MODEL") or "no model"
    if not engine:
        return f"{model} inside Open WebUI (sentence-transformers)"
    where = config.get(f"{engine}_config") or {}
    said = f"{engine} {model} at {where.get('url') or 'no URL'}"
    if engine != "openai" or where.get("key") == key:
        return said
    return said + (" with another key" if where.get("key") else " without a key")
