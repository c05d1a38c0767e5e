"""configure against the real n8n (tests/apps/n8n.py: npm's n8n 2.41.1, the nearest installable release to the catalog's
2.41.7, on Node 24, with the rendered container environment and the real Postgres), the real LiteLLM proxy with the
Ollama stand-in behind it, and the protocol stand-ins of the other apps (tests/configure_platform.py, named so there;
`litellm` is the key API stand-in in front of the real proxy). The first run sets up the owner, the platform's API key
and the OpenAI credential holding n8n's own LiteLLM key; the second changes nothing; a rotated key is put into the
same credential (PATCH). The end state is read back from n8n: a fresh sign-in, its public API with the key configure
kept, the credential's row decrypted; and a workflow run through n8n's webhook chats with LiteLLM through that
credential, reaching the Ollama stand-in."""

from __future__ import annotations

import secrets as tokens
import time
import uuid

import httpx

from aiplatform.configure.facts import LITELLM_BASE
from aiplatform.configure.n8n import CREDENTIAL, KEY_LABEL, KEY_NAME, SCOPES
from aiplatform.configure.run import run_configure
from aiplatform.envfile import format_env, read_env
from aiplatform.host.runner import Runner
from aiplatform.inputs.secrets import CREDENTIALS_HEADER
from tests.apps.n8n import PINNED, RELEASE, ContainerNames, N8n, n8n
from tests.apps.postgres import postgres_for
from tests.configure_platform import MODELS, deploy_files, facts_for, stand_ins
from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import OllamaStandIn

QUIET = Runner(echo=lambda _: None)
STEPS = ("owner account", "admin signs in", "API key for the platform", "LiteLLM credential")
CHAT_MODEL = MODELS[0]
HOOK = "ai-platform-chat"


def configure(root, services, app):
    """configure for LiteLLM (the apps' keys) and n8n, as `inv configure --only litellm n8n` runs it."""
    report = run_configure(facts_for(root, services, n8n=app.url), QUIET, lambda step: None, ["litellm", "n8n"])
    assert report.ok, [s for s in report.steps if s.result == "FAILED"]
    return report, {s.step: s for s in report.steps if s.service == "n8n"}


def ours(app: N8n, key: str) -> list[dict]:
    """The platform's credentials as n8n's public API lists them to the key configure kept."""
    listed = app.public(key).get("/credentials", params={"limit": 250})
    assert listed.status_code == 200, listed.text
    return [item for item in listed.json()["data"] if item["name"] == CREDENTIAL]


def webhook(app: N8n, question: str, within: float = 60.0) -> httpx.Response:
    """The workflow's webhook called as any client calls it (POST /webhook/<path>, answered when the run ends). n8n
    2.41 registers an activated workflow's webhooks after answering the activation (workflow.service.js
    activateWorkflow: through its publication outbox), so a 404 "not registered" is asked again, for `within` s."""
    deadline = time.monotonic() + within
    while True:
        answer = httpx.post(f"{app.url}/webhook/{HOOK}", json={"question": question}, timeout=180, trust_env=False)
        if answer.status_code != 404 or "is not registered" not in answer.text or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def chat_workflow(credential: dict) -> dict:
    """A webhook and one OpenAI node (n8n's own, v1.8, "Message a Model": POST <credential url>/chat/completions with
    the credential's key) answering with the model's reply: the smallest workflow that chats through the credential."""
    return {
        "name": "AI Platform chat check",
        "nodes": [
            {
                "id": str(uuid.uuid4()),
                "name": "Webhook",
                "type": "n8n-nodes-base.webhook",
                "typeVersion": 2,
                "position": [0, 0],
                "webhookId": str(uuid.uuid4()),
                "parameters": {"httpMethod": "POST", "path": HOOK, "responseMode": "lastNode", "options": {}},
            },
            {
                "id": str(uuid.uuid4()),
                "name": "Chat",
                "type": "@n8n/n8n-nodes-langchain.openAi",
                "typeVersion": 1.8,
                "position": [220, 0],
                "parameters": {
                    "resource": "text",
                    "operation": "message",
                    "modelId": {"__rl": True, "mode": "id", "value": CHAT_MODEL},
                    "messages": {"values": [{"content": "={{ $json.body.question }}"}]},
                    "options": {},
                },
                "credentials": {"openAiApi": {"id": credential["id"], "name": credential["name"]}},
            },
        ],
        "connections": {"Webhook": {"main": [[{"node": "Chat", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"},
    }


def test_configure_sets_up_the_real_n8n_and_its_workflow_chats_through_litellm(tmp_path):
    assert (PINNED, RELEASE) == ("2.41.7", "2.41.1")  # the image's tag; the nearest release npm installs here
    out, root = deploy_files(tmp_path)
    secrets, master = read_env(root / "config/credentials.env"), read_env(root / "config/master.env")
    email, password = master["ADMIN_EMAIL"], secrets["ADMIN_PASSWORD"]
    with (
        OllamaStandIn(models=MODELS) as ollama,
        litellm_proxy(out, tmp_path / "litellm", ollama.url) as litellm,
        stand_ins(root, litellm, skip=("n8n",)) as services,
        ContainerNames({"litellm:4000": services.apps["litellm"].url}) as names,
        postgres_for(root, tmp_path / "postgres") as postgres,
        n8n(root, secrets, postgres, tmp_path / "n8n", proxy=names.url) as app,
    ):
        settings = httpx.get(f"{app.url}/rest/settings", timeout=30, trust_env=False).json()["data"]
        assert settings["userManagement"]["showSetupOnFirstLoad"] is True  # a fresh n8n: no owner yet
        _, first = configure(root, services, app)
        assert [first[step].result for step in STEPS] == ["done", "ok", "done", "done"], first

        # the owner: the admin signs in with the platform's password (a fresh session, as the editor does)
        owner, me = app.session(email, password)
        assert (me["email"], me["firstName"], me["role"], me["isOwner"]) == (email, master["ADMIN_NAME"],
                                                                              "global:owner", True), me  # fmt: skip
        # the platform's API key: one, with the scopes configure asks for, never expiring; its value kept
        keys = owner.get("/rest/api-keys").json()["data"]["items"]
        assert [(k["label"], sorted(k["scopes"]), k["expiresAt"]) for k in keys] == [(KEY_LABEL, sorted(SCOPES), None)]
        kept = read_env(root / "config/credentials.env")[KEY_NAME]
        assert kept and kept.endswith(keys[0]["apiKey"].lstrip("*"))  # n8n shows its last 4 characters
        # the credential, through the public API with that key: an OpenAI one ...
        made = ours(app, kept)
        assert [(c["type"], c["shared"][0]["role"]) for c in made] == [("openAiApi", "credential:owner")], made
        ident = made[0]["id"]
        # ... holding n8n's own LiteLLM key and LiteLLM's URL inside the platform (its row, decrypted)
        assert app.stored_credential(ident) == {"apiKey": secrets["LITELLM_KEY_N8N"], "url": LITELLM_BASE,
                                                "header": False}  # fmt: skip
        assert secrets["LITELLM_KEY_N8N"] != secrets["LITELLM_MASTER_KEY"]

        # the second run changes nothing, even with ten newer keys of the owner's pushing ours off n8n's first page
        for number in range(10):
            made_key = owner.post("/rest/api-keys", json={"label": f"own {number}", "scopes": ["workflow:read"],
                                                          "expiresAt": None})  # fmt: skip
            assert made_key.status_code == 200, made_key.text
        assert KEY_LABEL not in [k["label"] for k in owner.get("/rest/api-keys").json()["data"]["items"]]
        again, second = configure(root, services, app)
        assert [second[step].result for step in STEPS] == ["already done", "ok", "already done", "already done"]
        # known from n8n's public settings (`already_if` in service.yaml), the owner setup not sent again
        assert second["owner account"].detail == "GET /rest/settings: data.userManagement.showSetupOnFirstLoad is False"
        assert not [s for s in again.changed if s.service == "n8n"], again.changed
        assert [c["id"] for c in ours(app, kept)] == [ident]

        # the chat: a workflow using that credential, run by n8n on a webhook call, reaches LiteLLM with n8n's key
        # and LiteLLM's answer from the Ollama stand-in comes back (workflows need scopes configure's key lacks: a
        # key of the test's own, made in the owner's session)
        scopes = ["workflow:create", "workflow:read", "workflow:activate", "workflow:delete"]
        test_key = owner.post("/rest/api-keys", json={"label": "test", "scopes": scopes, "expiresAt": None})
        assert test_key.status_code == 200, test_key.text
        flows = app.public(test_key.json()["data"]["rawApiKey"])
        created = flows.post("/workflows", json=chat_workflow(made[0]))
        assert created.status_code == 200, created.text
        activated = flows.post(f"/workflows/{created.json()['id']}/activate")
        assert activated.status_code == 200, activated.text
        question = f"Why is the sky blue? {tokens.token_hex(4)}"
        answer = webhook(app, question)
        assert answer.status_code == 200, f"{answer.text}\n{app.log.read_text()[-3000:]}"
        reply = answer.json()
        assert reply["message"]["content"] == f"stand-in reply from {CHAT_MODEL} to: {question}", reply
        asked = [seen for seen in names.seen if seen.url == f"{LITELLM_BASE}/chat/completions"]
        assert len(asked) == 1 and asked[0].authorization == f"Bearer {secrets['LITELLM_KEY_N8N']}", names.seen
        assert asked[0].body["model"] == CHAT_MODEL
        chats = [c for c in ollama.chats if c.endpoint == "/api/chat" and question in str(c.body)]
        assert len(chats) == 1 and chats[0].model == CHAT_MODEL, ollama.chats

        # a rotated key: configure puts the new one into the same credential (PATCH), and the workflow uses it
        rotated = "sk-" + tokens.token_urlsafe(24)
        values = {**read_env(root / "config/credentials.env"), "LITELLM_KEY_N8N": rotated}
        (root / "config/credentials.env").write_text(format_env(dict(sorted(values.items())), CREDENTIALS_HEADER))
        _, third = configure(root, services, app)
        assert third["LiteLLM credential"].result == "done" and "now holds" in third["LiteLLM credential"].detail
        assert [c["id"] for c in ours(app, kept)] == [ident]
        assert app.stored_credential(ident) == {"apiKey": rotated, "url": LITELLM_BASE, "header": False}
        answer = webhook(app, "again")
        assert answer.status_code == 200, answer.text
        assert names.seen[-1].authorization == f"Bearer {rotated}"
