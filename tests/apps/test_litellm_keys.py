"""LiteLLM's virtual keys for real: the real LiteLLM proxy (PyPI's litellm[proxy] at the catalog's release) with its
database on a real Postgres (tests/apps/litellm_db.py: how Prisma runs here, and what differs from the image), the
Ollama stand-in behind it, and the protocol stand-ins of the apps (tests/configure_platform.py, named so there).

configure registers each consuming app's key (POST /key/generate with the key from credentials.env, alias
ai-platform-<service>); the end state is read back from LiteLLM's own API with the master key (/key/info, /key/list),
from its table in Postgres (the key's hash and alias), and by using an app's key: it chats, a key never registered is
refused, and no app holds the master key. The second configure changes nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import subprocess

import httpx

from aiplatform.configure.facts import litellm_key_alias
from aiplatform.configure.run import run_configure
from aiplatform.envfile import read_env
from aiplatform.host.runner import Runner
from aiplatform.inputs.secrets import litellm_key_name
from tests.apps.install import catalog_release, timed
from tests.apps.litellm_db import litellm_with_database, migrate
from tests.apps.postgres import postgres_for
from tests.configure_platform import MODELS, deploy_files, facts_for, rendered_environ, stand_ins
from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import OllamaStandIn

QUIET = Runner(echo=lambda _: None)
CONSUMERS = ["dify", "flowise", "n8n", "open-webui"]  # the rendered services whose catalog entry has litellm_key


def tokens_in_database(url: str) -> dict[str, str]:
    """key_alias -> token (LiteLLM stores the key's sha256) as LiteLLM's own table holds them."""
    sql = 'SELECT key_alias, token FROM "LiteLLM_VerificationToken" WHERE key_alias IS NOT NULL ORDER BY key_alias'
    done = subprocess.run(["psql", "-X", "-At", "-F", "\t", "-d", url, "-c", sql], capture_output=True, text=True,
                          timeout=30, check=True, env={**os.environ})  # fmt: skip
    return dict(line.split("\t") for line in done.stdout.splitlines() if line)


def test_configure_registers_each_apps_key_in_the_real_litellm_database_and_a_second_run_changes_nothing(tmp_path):
    assert catalog_release("litellm") == "1.89.7"  # the image's tag; PyPI has the same release
    out, root = deploy_files(tmp_path)
    secrets = read_env(root / "config/credentials.env")
    master = secrets["LITELLM_MASTER_KEY"]
    keys = {service: secrets[litellm_key_name(service)] for service in CONSUMERS}
    database = litellm_with_database(tmp_path / "litellm-db")
    with postgres_for(root, tmp_path / "postgres") as postgres:
        rendered_url = rendered_environ(root, secrets, "litellm", "litellm")["DATABASE_URL"]
        assert rendered_url.startswith("postgresql://litellm:") and rendered_url.endswith("@postgres:5432/litellm")
        database = dataclasses.replace(database, url=postgres.url(rendered_url))
        with timed("litellm migrations", "psql, as prisma migrate deploy"):
            assert migrate(database, database.url) > 100
        with contextlib.ExitStack() as stack:
            ollama = stack.enter_context(OllamaStandIn(models=MODELS))
            with timed("litellm (with its database) start"):
                litellm = stack.enter_context(
                    litellm_proxy(out, tmp_path / "litellm", ollama.url, timeout=180, database=database)
                )
            # Open WebUI's stand-in reaches LiteLLM by its container name, as in the compose network
            aliases = {"openwebui": {"aliases": {"http://litellm:4000": litellm}}}
            with stand_ins(root, litellm, skip=("litellm",), **aliases) as services:
                admin = httpx.Client(base_url=litellm, headers={"Authorization": f"Bearer {master}"}, timeout=60,
                                     trust_env=False)  # fmt: skip
                # before configure: the database holds no key, and an app's key is refused
                assert tokens_in_database(database.url) == {}
                refused = httpx.get(f"{litellm}/v1/models", headers={"Authorization": f"Bearer {keys['n8n']}"},
                                    timeout=30, trust_env=False)  # fmt: skip
                assert refused.status_code == 401, refused.text

                first = run_configure(facts_for(root, services, litellm=litellm), QUIET, lambda step: None)
                assert first.ok, [s for s in first.steps if s.result == "FAILED"]
                made = {s.step for s in first.changed if s.service == "litellm"}
                assert made == {f"key for {service}" for service in CONSUMERS}, made

                # LiteLLM's own API: each app's key, under its alias, with configure's metadata
                for service, key in keys.items():
                    info = admin.get("/key/info", params={"key": key})
                    assert info.status_code == 200, info.text
                    found = info.json()["info"]
                    assert found["key_alias"] == litellm_key_alias(service)
                    assert found["metadata"] == {"managed_by": "ai-platform", "service": service}
                listed = admin.get("/key/list", params={"return_full_object": "true"}).json()["keys"]
                assert sorted(item["key_alias"] for item in listed) == [litellm_key_alias(s) for s in CONSUMERS]
                # its table in Postgres: one row per app, the hash of that app's own key
                assert tokens_in_database(database.url) == {
                    litellm_key_alias(service): hashlib.sha256(key.encode()).hexdigest()
                    for service, key in keys.items()
                }
                # an app's key chats through LiteLLM to Ollama; a key never registered is refused
                body = {"model": MODELS[0], "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
                chat = httpx.post(f"{litellm}/v1/chat/completions", json=body, timeout=120, trust_env=False,
                                  headers={"Authorization": f"Bearer {keys['n8n']}"})  # fmt: skip
                assert chat.status_code == 200, chat.text
                assert chat.json()["choices"][0]["message"]["content"]
                stranger = httpx.post(f"{litellm}/v1/chat/completions", json=body, timeout=30, trust_env=False,
                                      headers={"Authorization": f"Bearer sk-{'0' * 32}"})  # fmt: skip
                assert stranger.status_code == 401, stranger.text
                # no app holds the master key: each has its own, and Open WebUI's connection uses its own
                assert master not in keys.values() and len(set(keys.values())) == len(keys)
                webui = services.apps["openwebui"].state["config"]
                assert webui["openai.api_keys"] == [keys["open-webui"]]

                second = run_configure(facts_for(root, services, litellm=litellm), QUIET, lambda step: None)
                assert second.ok and not second.changed, [(s.service, s.step) for s in second.changed]
                again = {s.step: s.result for s in second.steps if s.service == "litellm"}
                assert all(again[f"key for {service}"] == "already done" for service in CONSUMERS), again
                assert len(admin.get("/key/list").json()["keys"]) == len(CONSUMERS)
