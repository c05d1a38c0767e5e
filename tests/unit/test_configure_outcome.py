"""configure judged by what the apps hold afterwards, not by what it reported: the app stand-ins of
tests/integration/standins/image/apps.py (protocol stand-ins, named so; run in this process on loopback, with
tests/configure_platform.py's stand-in for the LiteLLM proxy behind the key API) are read back after each run.

Each app holds its own LiteLLM key (never the master key, never another app's), every credential exists and works,
a rotated key reaches the app again, a second run changes nothing, a step whose write failed is never "done", a
declared step (service.yaml `setup:`) counts an answer only as it declares it, and every pinned node is chatted with.
"""

from __future__ import annotations

import copy
import hashlib
import http.server
import json
import os
import re
import secrets
import threading
from types import SimpleNamespace

import pytest

from aiplatform.configure.facts import LITELLM_BASE
from aiplatform.configure.run import run_configure
from aiplatform.envfile import format_env, read_env
from aiplatform.host.runner import Runner
from aiplatform.inputs.secrets import CREDENTIALS_HEADER
from tests.configure_platform import MODELS, apps, deploy_files, facts_for, litellm_like, stand_ins

QUIET = Runner(echo=lambda _: None)
CHAT, EMBED = MODELS
CREDENTIAL = "AI Platform LiteLLM"
DIFY_PROVIDER = "langgenius/openai_api_compatible/openai_api_compatible"
KEYED = {"open-webui": "LITELLM_KEY_OPEN_WEBUI", "dify": "LITELLM_KEY_DIFY", "n8n": "LITELLM_KEY_N8N",
         "flowise": "LITELLM_KEY_FLOWISE"}  # fmt: skip


HOST_OLLAMA = "http://host.docker.internal:11434"
OLD_EMBEDDINGS = {  # what the template seeded before: Ollama at the host, RAG_OPENAI_* left at Open WebUI's defaults
    "rag_embedding_engine": "ollama",
    "rag_embedding_model": EMBED,
    "rag_ollama_base_url": HOST_OLLAMA,
    "rag_openai_base_url": "https://api.openai.com/v1",
    "rag_openai_api_key": "",
}


def seeded(root) -> dict:
    """Open WebUI as an older deploy left it: its direct Ollama connection on (the image's default), its LiteLLM
    connection holding the master key and its embeddings asked of the host's Ollama (the template's RAG_* before),
    so configure has to change all three."""
    master = read_env(root / "config/credentials.env")["LITELLM_MASTER_KEY"]
    ollama = {"enable_ollama_api": True, "ollama_base_url": HOST_OLLAMA}
    return {"openwebui": {**ollama, "openai_api_key": master, **OLD_EMBEDDINGS}}


def configure(root, services, runner=QUIET, only=None, **endpoints):
    report = run_configure(facts_for(root, services, **endpoints), runner, lambda step: None, only)
    return report, {(s.service, s.step): s for s in report.steps}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_credentials(root, **changed: str | None) -> dict[str, str]:
    values = read_env(root / "config/credentials.env")
    for name, value in changed.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    (root / "config/credentials.env").write_text(format_env(dict(sorted(values.items())), CREDENTIALS_HEADER))
    return values


def held_keys(services) -> dict[str, list[str]]:
    """The LiteLLM key each app holds, read from the app's own state (Flowise's decrypted with its encryption key)."""
    owui = services.apps["openwebui"].state["config"]
    n8n = services.apps["n8n"].state["credentials"]
    flowise = services.apps["flowise"].state
    dify = services.apps["dify"].state["credentials"]
    return {
        "open-webui": [*owui["openai.api_keys"], owui["rag.openai.api_key"]],  # chats, then embeddings
        "n8n": [c["data"].get("apiKey") for c in n8n if c["name"] == CREDENTIAL],
        "flowise": [
            apps.flowise_decrypt(flowise["key"], c["encryptedData"]).get("openAIApiKey")
            for c in flowise["credentials"]
            if c["name"] == CREDENTIAL
        ],
        "dify": [c["credentials"].get("api_key") for c in dify if c["provider"] == DIFY_PROVIDER],
    }


def litellm_aliases(services) -> dict[str, str]:
    """alias -> key hash of every key LiteLLM's key table holds."""
    return {row["key_alias"]: token for token, row in services.apps["litellm"].state["keys"].items()}


def lasting_state(services) -> dict:
    """What an app keeps between runs (sessions and tokens left out: each run signs in anew)."""
    keep = {
        "openwebui": ("config", "users"),
        "dify": ("accounts", "tenant_id", "plugins", "credentials", "default_models"),
        "n8n": ("owner", "api_keys", "credentials"),
        "flowise": ("organization", "users", "credentials", "api_keys"),
        "litellm": ("keys",),
    }
    return {name: copy.deepcopy({k: services.apps[name].state[k] for k in keys}) for name, keys in keep.items()}


LOOKS = {  # the POSTs that change nothing: sign-ins, asks, and the chats that check the hops
    "/api/v1/auths/signin",
    "/console/api/login",
    "/rest/login",
    "/api/v1/auth/login",
    "/console/api/workspaces/current/plugin/list/installations/ids",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/api/v1/auth/resolve",  # Flowise's "is there an organization", asked before its registration
}


def writes(services) -> list[tuple[str, str, str]]:
    """Every request the apps were sent that may change them (app, method, path)."""
    return [(name, m, p) for name, app in services.apps.items() for m, p in app.requests
            if m != "GET" and p not in LOOKS]  # fmt: skip


@pytest.fixture
def platform(tmp_path):
    _, root = deploy_files(tmp_path)
    with litellm_like() as litellm:
        yield root, litellm


def test_each_app_holds_its_own_litellm_key_its_credential_its_models_and_its_admin(platform):
    root, litellm = platform
    secrets_env = read_env(root / "config/credentials.env")
    master = read_env(root / "config/master.env")
    with stand_ins(root, litellm.url, **seeded(root)) as services:
        report, table = configure(root, services)
        assert report.ok, [s for s in report.steps if s.result == "FAILED"]
        held = held_keys(services)
        aliases = litellm_aliases(services)
        owui, dify = services.apps["openwebui"].state, services.apps["dify"].state
        n8n, flowise = services.apps["n8n"].state, services.apps["flowise"].state
    own = {service: secrets_env[name] for service, name in KEYED.items()}
    assert len(set(own.values())) == len(own)  # render gave each app a key of its own
    assert held == {"open-webui": [own["open-webui"]] * 2, "n8n": [own["n8n"]], "flowise": [own["flowise"]],
                    "dify": [own["dify"], own["dify"]]}  # fmt: skip
    assert secrets_env["LITELLM_MASTER_KEY"] not in {key for keys in held.values() for key in keys}
    for service, key in own.items():  # each key registered in LiteLLM under its app's alias, and only that one
        assert aliases[f"ai-platform-{service}"] == sha256(key), service
        row = services.apps["litellm"].state["keys"][sha256(key)]
        assert row["metadata"] == {"managed_by": "ai-platform", "service": service}
    assert len(aliases) == len(own)
    # Open WebUI: one connection, LiteLLM's, direct Ollama off, the chat model the default
    assert owui["config"]["openai.api_base_urls"] == [LITELLM_BASE] and owui["config"]["openai.enable"] is True
    assert owui["config"]["ollama.enable"] is False and owui["config"]["ui.default_models"] == CHAT
    assert [(u["email"], u["role"]) for u in owui["users"].values()] == [(master["ADMIN_EMAIL"], "admin")]
    # and its document embeddings: the embedding model at LiteLLM with its own key, no longer the host's Ollama
    rag = {key: value for key, value in owui["config"].items() if key.startswith("rag.")}
    assert (rag["rag.embedding_engine"], rag["rag.embedding_model"]) == ("openai", EMBED)
    assert (rag["rag.openai.api_base_url"], rag["rag.openai.api_key"]) == (LITELLM_BASE, own["open-webui"])
    step = table[("open-webui", "embeddings through LiteLLM")]
    assert step.result == "done" and f"was: ollama {EMBED} at {HOST_OLLAMA}" in step.detail, step
    # Dify: the admin, the provider plugin, both models at LiteLLM, both defaults
    assert [a["email"] for a in dify["accounts"]] == [master["ADMIN_EMAIL"]]
    assert dify["accounts"][0]["password"] == secrets_env["ADMIN_PASSWORD"]
    assert "langgenius/openai_api_compatible" in dify["plugins"]
    assert sorted((c["model"], c["model_type"], c["credentials"]["endpoint_url"]) for c in dify["credentials"]) == [
        (CHAT, "llm", LITELLM_BASE), (EMBED, "text-embedding", LITELLM_BASE)]  # fmt: skip
    assert dify["default_models"] == {
        "llm": {"provider": DIFY_PROVIDER, "model": CHAT},
        "text-embedding": {"provider": DIFY_PROVIDER, "model": EMBED},
    }
    # n8n: the owner, the platform's API key kept (0600) and working, the credential at LiteLLM
    assert (n8n["owner"]["email"], n8n["owner"]["password"]) == (master["ADMIN_EMAIL"], secrets_env["ADMIN_PASSWORD"])
    kept = read_env(root / "config/credentials.env")["N8N_API_KEY"]
    assert [k["apiKey"] for k in n8n["api_keys"] if k["label"] == "ai-platform"] == [kept]
    assert os.stat(root / "config/credentials.env").st_mode & 0o777 == 0o600
    assert [(c["type"], c["data"]["url"]) for c in n8n["credentials"]] == [("openAiApi", LITELLM_BASE)]
    # Flowise: the first account, the credential readable with the key Flowise runs with
    assert [u["email"] for u in flowise["users"]] == [master["ADMIN_EMAIL"]]
    assert flowise["users"][0]["credential"] == secrets_env["ADMIN_PASSWORD"]
    assert [c["credentialName"] for c in flowise["credentials"]] == ["openAIApi"]
    assert table[("flowise", "LiteLLM credential")].result == "done"


def test_a_second_run_changes_nothing_and_writes_nothing(platform):
    root, litellm = platform
    with stand_ins(root, litellm.url, **seeded(root)) as services:
        first, _ = configure(root, services)
        assert first.ok and first.changed
        before = lasting_state(services)
        credentials = (root / "config/credentials.env").read_bytes()
        for app in services.apps.values():
            app.requests.clear()
        second, table = configure(root, services)
        assert second.ok and second.changed == []
        assert table[("dify", "LiteLLM models")].detail == f"{CHAT}, {EMBED} with LITELLM_KEY_DIFY"  # names each
        assert table[("dify", "default models")].detail == f"{CHAT}, {EMBED}"
        assert {s.result for s in second.steps} <= {"already done", "ok", "skipped"}
        assert lasting_state(services) == before
        assert writes(services) == []  # the declared first-run calls (owner setup, register) are not sent again
    assert (root / "config/credentials.env").read_bytes() == credentials


def _rotated(root, *names: str) -> None:
    write_credentials(root, **{name: f"sk-{secrets.token_hex(16)}" for name in names})


UNDONE = {  # what is left undone (after a first run, but the first), and the steps a dry run must say it would do
    "nothing yet": (None, [("open-webui", "admin signs in"), ("dify", "first-run setup"), ("n8n", "owner account"),
                           ("flowise", "admin account"), ("litellm", "key for dify")]),
    "dify's plugin": (lambda root, apps: apps["dify"].state["plugins"].clear(), [("dify", "model provider plugin")]),
    "dify's models": (lambda root, apps: apps["dify"].state["credentials"].clear(), [("dify", "LiteLLM models")]),
    "dify's defaults": (lambda root, apps: apps["dify"].state["default_models"].clear(), [("dify", "default models")]),
    "n8n's key": (lambda root, apps: write_credentials(root, N8N_API_KEY=None), [("n8n", "API key for the platform")]),
    "n8n's credential": (lambda root, apps: apps["n8n"].state["credentials"].clear(), [("n8n", "LiteLLM credential")]),
    "flowise's credential": (lambda root, apps: apps["flowise"].state["credentials"].clear(),
                             [("flowise", "LiteLLM credential")]),
    "litellm's keys": (lambda root, apps: apps["litellm"].state["keys"].clear(),
                       [("litellm", f"key for {service}") for service in KEYED]),
    "rotated keys": (lambda root, apps: _rotated(root, *KEYED.values()),
                     [("litellm", "key for n8n"), ("dify", "LiteLLM models"), ("n8n", "LiteLLM credential"),
                      ("flowise", "LiteLLM credential")]),
    "direct ollama on": (lambda root, apps: apps["openwebui"].state["config"].update({"ollama.enable": True}),
                         [("open-webui", "direct Ollama connection off")]),
    "no default model": (lambda root, apps: apps["openwebui"].state["config"].update({"ui.default_models": ""}),
                         [("open-webui", "default model")]),
}  # fmt: skip


@pytest.mark.parametrize("undone", UNDONE)
def test_a_dry_run_says_what_it_would_change_and_sends_no_change(platform, undone):
    """Whatever is left to do, a dry run names it ("would do") and the apps receive nothing but looks: every step
    that changes an app stops at ctx.act before its first write."""
    root, litellm = platform
    undo, expected = UNDONE[undone]
    fresh = {} if undo else {"openwebui": {"admin_email": None}}  # no headless admin: Open WebUI asks for one
    with stand_ins(root, litellm.url, **fresh) as services:
        if undo:
            assert configure(root, services)[0].ok
            undo(root, services.apps)
        before, credentials = lasting_state(services), (root / "config/credentials.env").read_bytes()
        for app in services.apps.values():
            app.requests.clear()
        report, table = configure(root, services, runner=Runner(dry_run=True, echo=lambda _: None))
        assert {step: table[step].result for step in expected} == dict.fromkeys(expected, "would do")
        assert writes(services) == [] and lasting_state(services) == before
        assert not report.changed
    assert (root / "config/credentials.env").read_bytes() == credentials


def test_a_dry_run_says_it_would_set_open_webuis_litellm_connection_and_leaves_it_as_it_was(platform):
    root, litellm = platform
    master = read_env(root / "config/credentials.env")["LITELLM_MASTER_KEY"]
    with stand_ins(root, litellm.url, **seeded(root)) as services:
        _, table = configure(root, services, runner=Runner(dry_run=True, echo=lambda _: None), only=["open-webui"])
        step = table[("open-webui", "LiteLLM connection")]
        assert (step.result, step.detail) == ("would do", f"set the OpenAI-compatible connection to {LITELLM_BASE} "
                                                          "with its own key")  # fmt: skip
        assert ("POST", "/openai/config/update") not in services.apps["openwebui"].requests
        assert held_keys(services)["open-webui"] == [master, ""]


def test_a_dry_run_says_it_would_send_open_webuis_embeddings_through_litellm_and_changes_nothing(platform):
    """An install whose chats are already set but whose embeddings still go to the host's Ollama (Open WebUI kept
    the engine the older template seeded): the dry run names the change, the real run makes it, then nothing."""
    root, litellm = platform
    with stand_ins(root, litellm.url) as services:
        owui = services.apps["openwebui"]
        assert configure(root, services)[0].ok
        kept = {"rag.embedding_engine": "ollama", "rag.embedding_model": EMBED, "rag.ollama.base_url": HOST_OLLAMA}
        tuned = {"rag.embedding_batch_size": 8, "rag.enable_async_embedding": False}  # the admin's own
        owui.state["config"] |= kept | tuned
        owui.requests.clear()
        _, table = configure(root, services, runner=Runner(dry_run=True, echo=lambda _: None), only=["open-webui"])
        step = table[("open-webui", "embeddings through LiteLLM")]
        assert (step.result, step.detail) == (
            "would do", f"embed documents with {EMBED} through {LITELLM_BASE} with its own key")  # fmt: skip
        assert ("POST", "/api/v1/retrieval/embedding/update") not in owui.requests
        assert owui.state["config"]["rag.embedding_engine"] == "ollama"
        report, table = configure(root, services, only=["open-webui"])
        assert report.ok and table[("open-webui", "embeddings through LiteLLM")].result == "done"
        assert [s.step for s in report.changed] == ["embeddings through LiteLLM"]
        assert owui.state["config"]["rag.embedding_engine"] == "openai"
        assert owui.state["config"]["rag.ollama.base_url"] == HOST_OLLAMA  # left as it was, no longer used
        assert {key: owui.state["config"][key] for key in tuned} == tuned  # the form's defaults did not replace them
        assert configure(root, services, only=["open-webui"])[0].changed == []


@pytest.mark.parametrize(("key", "was"), [("sk-other", "with another key"), ("", "without a key")])
def test_open_webuis_embeddings_through_litellm_with_a_wrong_key_are_given_its_own_and_say_what_was(platform, key, was):
    """LiteLLM already its embedding engine but with another key (or none): configure sets Open WebUI's own and says
    which it found, without printing the key it found."""
    root, litellm = platform
    with stand_ins(root, litellm.url) as services:
        owui = services.apps["openwebui"]
        assert configure(root, services)[0].ok
        owui.state["config"]["rag.openai.api_key"] = key
        report, table = configure(root, services, only=["open-webui"])
    step = table[("open-webui", "embeddings through LiteLLM")]
    assert report.ok and step.result == "done", step
    assert step.detail.endswith(f"(was: openai {EMBED} at {LITELLM_BASE} {was})"), step
    assert (
        owui.state["config"]["rag.openai.api_key"]
        == read_env(root / "config/credentials.env")["LITELLM_KEY_OPEN_WEBUI"]
    )


def test_open_webui_asks_for_no_embedding_engine_where_the_platform_has_no_embedding_model(tmp_path):
    from aiplatform.configure import openwebui
    from tests.configure_platform import StandIns

    _, root = deploy_files(tmp_path)
    facts = facts_for(root, StandIns())
    assert [name for name, _ in openwebui.steps(facts)][-1] == "embeddings through LiteLLM"
    facts.master["EMBEDDING_MODEL"] = ""  # embedding_model: "" (no model serves embeddings)
    assert "embeddings through LiteLLM" not in [name for name, _ in openwebui.steps(facts)]


def test_each_app_is_reached_on_the_host_port_it_publishes_on_loopback(tmp_path):
    from aiplatform.configure.facts import load_facts
    from aiplatform.inputs.catalog import load_catalog
    from aiplatform.paths import SERVICES_DIR

    _, root = deploy_files(tmp_path)
    facts = load_facts(root, load_catalog(SERVICES_DIR))  # no stand-in endpoints: the compose files' ports
    assert facts.local_url("flowise") == "http://127.0.0.1:3001"  # 127.0.0.1:3001:3000, the host's port
    assert facts.local_url("open-webui") == "http://127.0.0.1:8080"
    assert facts.local_url("caddy") is None and facts.local_url("postgres") is None  # not on loopback / unpublished


def test_what_was_removed_between_runs_is_made_again_and_a_users_own_credential_is_not_ours(platform):
    root, litellm = platform
    with stand_ins(root, litellm.url) as services:
        assert configure(root, services)[0].ok
        own = read_env(root / "config/credentials.env")
        n8n, flowise, dify = (services.apps[n].state for n in ("n8n", "flowise", "dify"))
        owui, keys = services.apps["openwebui"].state["config"], services.apps["litellm"].state["keys"]
        # the owner's own OpenAI credentials of the same type, then ours gone from every app
        n8n["credentials"] = [{**n8n["credentials"][0], "id": "mine", "name": "My OpenAI", "data": {"apiKey": "sk-o"}}]
        mine = {**flowise["credentials"][0], "id": "mine", "name": "My OpenAI"}
        mine["encryptedData"] = apps.flowise_encrypt(flowise["key"], {"openAIApiKey": "sk-o"})
        flowise["credentials"] = [mine]
        dify["credentials"] = [c for c in dify["credentials"] if c["model_type"] != "text-embedding"]
        dify["default_models"].pop("text-embedding")
        owui |= {"openai.api_base_urls": [], "openai.api_keys": [], "ui.default_models": None}
        del keys[sha256(own["LITELLM_KEY_N8N"])]
        report, table = configure(root, services)
        assert report.ok, [s for s in report.steps if s.result == "FAILED"]
        for step in [("n8n", "LiteLLM credential"), ("flowise", "LiteLLM credential"), ("dify", "LiteLLM models"),
                     ("dify", "default models"), ("open-webui", "LiteLLM connection"), ("open-webui", "default model"),
                     ("litellm", "key for n8n")]:  # fmt: skip
            assert table[step].result == "done", table[step]
        held = held_keys(services)
        assert held["n8n"] == [own["LITELLM_KEY_N8N"]] and held["flowise"] == [own["LITELLM_KEY_FLOWISE"]]
        assert held["open-webui"] == [own["LITELLM_KEY_OPEN_WEBUI"]] * 2
        assert sorted((c["model"], c["credentials"]["api_key"]) for c in dify["credentials"]) == [
            (CHAT, own["LITELLM_KEY_DIFY"]), (EMBED, own["LITELLM_KEY_DIFY"])]  # fmt: skip
        assert dify["default_models"]["text-embedding"] == {"provider": DIFY_PROVIDER, "model": EMBED}
        assert owui["ui.default_models"] == CHAT
        assert sha256(own["LITELLM_KEY_N8N"]) in keys
        assert [c["name"] for c in n8n["credentials"]] == ["My OpenAI", CREDENTIAL]  # the owner's is left alone
        assert [c["name"] for c in flowise["credentials"]] == ["My OpenAI", CREDENTIAL]


KEY_STEP = {"open-webui": "LiteLLM connection", "dify": "LiteLLM models", "n8n": "LiteLLM credential",
            "flowise": "LiteLLM credential"}  # fmt: skip


@pytest.mark.parametrize("service", list(KEYED))
def test_a_rotated_key_is_pushed_again(platform, service):
    root, litellm = platform
    with stand_ins(root, litellm.url) as services:
        assert configure(root, services)[0].ok
        old = read_env(root / "config/credentials.env")[KEYED[service]]
        new = "sk-" + secrets.token_urlsafe(24)
        write_credentials(root, **{KEYED[service]: new})
        report, table = configure(root, services)
        assert table[("litellm", f"key for {service}")].result == "done"
        assert table[(service, KEY_STEP[service])].result == "done", table[(service, KEY_STEP[service])]
        aliases = litellm_aliases(services)
        assert aliases[f"ai-platform-{service}"] == sha256(new) and sha256(old) not in aliases.values()
        held = held_keys(services)[service]
        assert held and set(held) == {new}, f"{service} still holds the old key"
        assert report.ok
        again, _ = configure(root, services)
        assert again.ok and again.changed == []  # the new key is known to be in place
    record = (root / "config/configure-state.json").read_text()
    assert new not in record and old not in record  # fingerprints only


def test_a_credential_configure_has_no_record_of_gets_the_current_key_once(platform):
    """An app's credential whose key configure has no record of (a root from before the record, or the record lost)
    is given the current key: the app may hold any key."""
    root, litellm = platform
    with stand_ins(root, litellm.url) as services:
        assert configure(root, services)[0].ok
        record = root / "config/configure-state.json"
        assert set(json.loads(record.read_text())["pushed"]) == {"dify", "n8n", "flowise"}
        assert oct(record.stat().st_mode & 0o777) == "0o644"
        values = read_env(root / "config/credentials.env")
        assert not [name for name, value in values.items() if value in record.read_text()]  # no secret in it
        n8n, flowise, dify = (services.apps[n].state for n in ("n8n", "flowise", "dify"))
        n8n["credentials"][0]["data"]["apiKey"] = "sk-stale"
        flowise["credentials"][0]["encryptedData"] = apps.flowise_encrypt(flowise["key"], {"openAIApiKey": "sk-stale"})
        for item in dify["credentials"]:
            item["credentials"]["api_key"] = "sk-stale"
        record.write_text("{not json")
        report, table = configure(root, services)
        assert report.ok, [s for s in report.steps if s.result == "FAILED"]
        for step in [("n8n", "LiteLLM credential"), ("flowise", "LiteLLM credential"), ("dify", "LiteLLM models")]:
            assert table[step].result == "done" and "no record" in table[step].detail, table[step]
        held = held_keys(services)
        for service in ("n8n", "flowise", "dify"):
            assert set(held[service]) == {values[KEYED[service]]}, service
        assert configure(root, services)[0].changed == []


# --- a step that failed is never done --------------------------------------------------------------------------------

WS = "/console/api/workspaces/current"
FAILING = [
    ("openwebui", "POST /openai/config/update", "open-webui", "LiteLLM connection"),
    ("openwebui", "POST /ollama/config/update", "open-webui", "direct Ollama connection off"),
    ("openwebui", "POST /api/v1/configs/models", "open-webui", "default model"),
    ("openwebui", "POST /api/v1/retrieval/embedding/update", "open-webui", "embeddings through LiteLLM"),
    ("dify", "POST /console/api/setup", "dify", "first-run setup"),
    ("dify", f"POST {WS}/plugin/install/marketplace", "dify", "model provider plugin"),
    ("dify", f"POST {WS}/model-providers/{DIFY_PROVIDER}/models/credentials", "dify", "LiteLLM models"),
    ("dify", f"POST {WS}/default-model", "dify", "default models"),
    ("n8n", "POST /rest/owner/setup", "n8n", "owner account"),
    ("n8n", "POST /rest/api-keys", "n8n", "API key for the platform"),
    ("n8n", "POST /api/v1/credentials", "n8n", "LiteLLM credential"),
    ("flowise", "POST /api/v1/account/register", "flowise", "admin account"),
    ("flowise", "POST /api/v1/credentials", "flowise", "LiteLLM credential"),
    ("litellm", "POST /key/generate", "litellm", "key for flowise"),
]


@pytest.mark.parametrize(("app", "fail", "service", "step"), FAILING, ids=[f[1] for f in FAILING])
def test_a_step_whose_write_failed_is_failed_and_done_on_the_next_run(platform, app, fail, service, step):
    root, litellm = platform
    knobs = seeded(root)
    knobs[app] = {**knobs.get(app, {}), "fail": {fail: 500}}
    with stand_ins(root, litellm.url, **knobs) as s:
        report, table = configure(root, s)
        assert table[(service, step)].result == "FAILED", table[(service, step)]
        assert "HTTP 500" in table[(service, step)].detail and not report.ok
        results = [(r.step, r.result) for r in report.steps if r.service == service]
        later = [result for _, result in results[results.index((step, "FAILED")) + 1 :]]
        if service != "litellm":  # a service's steps build on each other (LiteLLM's do not)
            assert set(later) <= {"skipped"}, results
        s.apps[app].server.RequestHandlerClass.settings["fail"] = {}
        report, table = configure(root, s)
        assert report.ok and table[(service, step)].result == "done", table[(service, step)]
        assert set(held_keys(s)[service if service != "litellm" else "flowise"]) == {
            read_env(root / "config/credentials.env")[KEYED[service if service != "litellm" else "flowise"]]
        }


def test_a_plugin_install_task_that_failed_fails_the_step_with_the_daemons_message(platform):
    """Dify's plugin daemon answers the install at once and fails later, in the task: its message is the detail."""
    root, litellm = platform
    knobs = seeded(root)
    why = "failed to init environment: pip could not reach the package index"
    with stand_ins(root, litellm.url, **knobs, dify={"install_error": why}) as services:
        report, table = configure(root, services, only=["dify"])
        step = table[("dify", "model provider plugin")]
        assert step.result == "FAILED" and not report.ok
        assert step.detail == f"Dify could not install langgenius/openai_api_compatible: {why}", step
        assert table[("dify", "LiteLLM models")].result == "skipped"
        assert services.apps["dify"].state["plugins"] == {}


def test_a_failed_read_is_named_by_the_request_that_failed(platform):
    root, litellm = platform
    with stand_ins(root, litellm.url, n8n={"fail": {"GET /api/v1/credentials": 503}}) as services:
        report, table = configure(root, services, only=["n8n"])
    step = table[("n8n", "LiteLLM credential")]
    assert step.result == "FAILED" and not report.ok
    assert "GET /api/v1/credentials answered HTTP 503" in step.detail, step  # which call to look for in n8n's log


# --- declared steps (service.yaml `setup:`) --------------------------------------------------------------------------


class Answering:
    """A one-route HTTP server answering every request with `status` and `body`, recording what it was sent."""

    def __init__(self) -> None:
        self.status, self.body, self.seen = 200, "", []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                length = int(self.headers.get("Content-Length") or 0)
                outer.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
                data = outer.body.encode()
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def answering():
    server = Answering()
    yield server
    server.server.shutdown()
    server.server.server_close()


def declared_step(answering, decl, dry_run=False):
    from aiplatform.configure.declared import run_call
    from aiplatform.configure.model import StepFailed, WouldDo
    from aiplatform.configure.steps import StepContext
    from aiplatform.inputs.catalog import SetupCall

    secrets_env = {"ADMIN_PASSWORD": "Pass-w0rd!", "LITELLM_KEY_FLOWISE": "sk-flowise-own", "LITELLM_KEY_N8N": "sk-n8"}
    facts = SimpleNamespace(
        local_url=lambda _: answering.url, admin_email="owner@example.com", admin_name="Owner",
        secret=lambda name: secrets_env[name],
    )  # fmt: skip
    spec = SimpleNamespace(name="flowise", containers={"flowise": None})
    answering.seen.clear()
    try:
        outcome = run_call(StepContext(facts, Runner(dry_run=dry_run, echo=lambda _: None)), spec,
                           SetupCall.model_validate(decl))  # fmt: skip
    except StepFailed as failed:
        return "FAILED", failed
    except WouldDo as would:
        return "would do", would
    return outcome.result, outcome


REGISTER = {"step": "account", "request": "POST /register", "done": [201], "fix": "Check the password rules.",
            "already": {"status": [400], "contains": "only have one organization"}}  # fmt: skip
PHRASE = '{"message": "You can only have one organization"}'


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (201, "{}", "done"),
        (200, "{}", "FAILED"),  # a success it does not declare is not "done"
        (400, PHRASE, "already done"),
        (400, '{"message": "' + "x" * 300 + ' ONLY HAVE ONE ORGANIZATION"}', "already done"),  # anywhere, any case
        (400, '{"message": "User Email Already Exists"}', "FAILED"),  # the declared status without the phrase
        (500, PHRASE, "FAILED"),  # the phrase with another status
        (409, PHRASE, "FAILED"),
        (401, "", "FAILED"),
    ],
)
def test_a_declared_step_counts_only_the_answer_it_declares(answering, status, body, expected):
    answering.status, answering.body = status, body
    result, outcome = declared_step(answering, REGISTER)
    assert result == expected, outcome
    if result == "FAILED":
        assert f"HTTP {status}" in outcome.detail and outcome.fix == "Check the password rules."


def test_a_declared_check_is_ok_only_on_its_status_and_a_dry_run_sends_no_change(answering):
    check = {"step": "admin", "request": "GET /api/user", "basic_auth": ["admin", "{secret:ADMIN_PASSWORD}"],
             "ok": [200], "show_answer": True}  # fmt: skip
    answering.status, answering.body = 200, "fine"
    assert declared_step(answering, check, dry_run=True)[0] == "ok"  # looking is allowed in a dry run
    method, path, headers, _ = answering.seen[0]
    assert (method, path) == ("GET", "/api/user")
    import base64

    assert headers["Authorization"] == "Basic " + base64.b64encode(b"admin:Pass-w0rd!").decode()
    for status in (201, 204, 401, 500):
        answering.status = status
        assert declared_step(answering, check)[0] == "FAILED", status
    answering.status = 201
    result, _ = declared_step(answering, REGISTER, dry_run=True)
    assert result == "would do" and answering.seen == []  # a step that changes something is not sent


def test_a_declared_check_shows_its_answer_only_when_it_says_so(answering):
    """show_answer (Grafana's data source health): the answer's excerpt follows the status; without it, nothing."""
    check = {"step": "source", "request": "GET /api/datasources/uid/prometheus/health", "ok": [200],
             "show_answer": True}  # fmt: skip
    answering.status, answering.body = 200, '{"message": "Successfully queried the Prometheus API."}'
    _, outcome = declared_step(answering, check)
    said = 'GET /api/datasources/uid/prometheus/health: HTTP 200: {"message": "Successfully queried the Prometheus'
    assert outcome.detail.startswith(said)
    _, outcome = declared_step(answering, {**check, "show_answer": False})
    assert outcome.detail == "GET /api/datasources/uid/prometheus/health: HTTP 200"


def test_a_declared_body_is_filled_with_the_services_own_values(answering):
    decl = {"step": "key", "request": "POST /setup", "done": [200],
            "json": {"user": {"email": "{admin_email}", "name": "{admin_name}", "pw": "{secret:ADMIN_PASSWORD}"},
                     "keys": ["{litellm_key}", 3, None]},
            "headers": {"X-Key": "Bearer {litellm_key}"}}  # fmt: skip
    answering.status = 200
    assert declared_step(answering, decl)[0] == "done"
    _, _, headers, body = answering.seen[0]
    assert json.loads(body) == {"user": {"email": "owner@example.com", "name": "Owner", "pw": "Pass-w0rd!"},
                                "keys": ["sk-flowise-own", 3, None]}  # fmt: skip
    assert headers["X-Key"] == "Bearer sk-flowise-own"  # the service's own key (flowise), not another's


# --- chats pinned to each Ollama node ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "nodes", "pinned"),
    [
        (True, [{"name": "gpu1"}], ["local", "gpu1"]),
        (False, [{"name": "gpu1"}, {"name": "gpu2"}], ["gpu1", "gpu2"]),
        (True, [{"name": "gpu1"}, {"name": "embedder", "models": [EMBED]}], ["local", "gpu1"]),  # no chat model there
        (True, [], []),  # one host: no pool, no pinned chat
    ],
)
def test_every_pinned_node_gets_its_chat(tmp_path, local, nodes, pinned):
    declared = [{"address": f"10.0.0.{n + 5}", **node} for n, node in enumerate(nodes)]
    _, root = deploy_files(tmp_path, ollama_nodes=declared, ollama_local=local)
    with litellm_like() as litellm, stand_ins(root, litellm.url) as services:
        report, table = configure(root, services, only=["litellm"])
        steps = [s.step for s in report.steps if s.step.endswith("(pinned)")]
        assert steps == [f"chat on {host} (pinned)" for host in pinned]
        for host in pinned:
            step = table[("litellm", f"chat on {host} (pinned)")]
            assert step.result == "ok" and f"{CHAT}@{host}: HTTP 200" in step.detail, step
            assert re.search(r" s, [0-9.]+ tokens/s; answered ", step.detail), step  # the rate from LiteLLM's usage
        asked = [body["model"] for path, body in litellm.asked if path == "/v1/chat/completions"]
        assert sorted(m for m in asked if "@" in m) == sorted(f"{CHAT}@{host}" for host in pinned)
        if pinned:
            litellm.refused.add(f"{CHAT}@{pinned[-1]}")
            report, table = configure(root, services, only=["litellm"])
            down = table[("litellm", f"chat on {pinned[-1]} (pinned)")]
            assert down.result == "FAILED" and f"the node {pinned[-1]} did not answer" in down.detail
            assert "doctor" in down.fix and not report.ok
            others = [table[("litellm", f"chat on {h} (pinned)")].result for h in pinned[:-1]]
            assert others == ["ok"] * (len(pinned) - 1)
            assert table[("litellm", "key for n8n")].result == "already done"  # LiteLLM's other steps still run


def test_open_webui_that_does_not_list_every_litellm_model_is_failed_with_the_missing_named(tmp_path):
    _, root = deploy_files(tmp_path)
    with litellm_like([CHAT]) as litellm, stand_ins(root, litellm.url) as services:  # the proxy lost the embedder
        report, table = configure(root, services)
    assert table[("litellm", "key for open-webui")].result == "done"  # it lists through its own key
    listed = table[("open-webui", "models listed")]
    assert listed.result == "FAILED" and f"not {EMBED}" in listed.detail and CHAT in listed.detail
    assert table[("open-webui", "default model")].result == "skipped" and not report.ok


# Every request a first configure run sends (the stand-ins' record of one), but those with an id in their path.
EVERY_REQUEST = [
    ("litellm", "GET /v1/models"), ("litellm", "POST /v1/chat/completions"), ("litellm", "POST /v1/embeddings"),
    ("litellm", "GET /key/info"), ("litellm", "GET /key/list"), ("litellm", "POST /key/generate"),
    ("openwebui", "GET /api/config"), ("openwebui", "POST /api/v1/auths/signin"),
    ("openwebui", "GET /openai/config"), ("openwebui", "GET /ollama/config"), ("openwebui", "GET /api/models"),
    ("openwebui", "GET /api/v1/configs/models"), ("openwebui", "GET /api/v1/retrieval/embedding"),
    ("dify", "GET /console/api/setup"), ("dify", "GET /console/api/init"), ("dify", "POST /console/api/init"),
    ("dify", "POST /console/api/login"), ("dify", f"POST {WS}/plugin/list/installations/ids"),
    ("dify", f"POST {WS}/plugin/list/latest-versions"),
    ("dify", f"GET {WS}/model-providers/{DIFY_PROVIDER}/models/credentials"), ("dify", f"GET {WS}/default-model"),
    ("n8n", "GET /rest/settings"), ("n8n", "POST /rest/login"), ("n8n", "GET /rest/api-keys"),
    ("n8n", "GET /api/v1/credentials"),
    ("flowise", "POST /api/v1/auth/resolve"), ("flowise", "POST /api/v1/auth/login"),
    ("flowise", "GET /api/v1/credentials"),
    ("grafana", "GET /api/user"), ("grafana", "GET /api/datasources/uid/prometheus/health"),
    *[(app, fail) for app, fail, _, _ in FAILING],
]  # fmt: skip
# Whose failure says what it means instead: Ollama unreachable behind LiteLLM.
SAID_OTHERWISE = {"POST /v1/chat/completions": "LiteLLM said HTTP 503", "POST /v1/embeddings": "HTTP 503"}
# A read-only check asked before a first-run step (`already_if`): when it fails the step is sent, and its own
# answer decides (already done or done).
ADVISORY = {"GET /rest/settings": ("n8n", "owner account"), "POST /api/v1/auth/resolve": ("flowise", "admin account")}


@pytest.mark.parametrize(("app", "request_"), EVERY_REQUEST, ids=[r for _, r in EVERY_REQUEST])
def test_any_request_that_fails_fails_its_step_and_is_named(platform, app, request_):
    """Whichever request an app answers with HTTP 503, the run is not ok and a failed step names that request (the
    line to look for in the app's log), never a vaguer label of it."""
    root, litellm = platform
    knobs = seeded(root)
    knobs[app] = {**knobs.get(app, {}), "fail": {request_: 503}}
    with stand_ins(root, litellm.url, **knobs) as services:
        report, table = configure(root, services)
    if request_ in ADVISORY:
        assert report.ok and table[ADVISORY[request_]].result == "done", table[ADVISORY[request_]]
        return
    failed = [f"{s.service} / {s.step}: {s.detail}" for s in report.steps if s.result == "FAILED"]
    said = [SAID_OTHERWISE[request_]] if request_ in SAID_OTHERWISE else [f": {request_}", "answered HTTP 503"]
    assert not report.ok and any(all(part in line for part in said) for line in failed), failed
