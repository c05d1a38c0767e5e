"""configure against the real Open WebUI (open-webui from the registry at the release the catalog's image pins, its
database the real Postgres with the rendered openwebui database) and a chat sent the way its browser sends it, through
the real LiteLLM to the Ollama stand-in (tests/standins/ollama_api.py); a retrieval query embedded the same way.

Played by stand-ins here, each named: Ollama (no model runs here); LiteLLM's key API (the litellm-keys stand-in of
tests/integration/standins/image/apps.py checks Open WebUI's own virtual key and hands the request to the real LiteLLM
proxy, which runs without its database: tests/real_litellm.py); Qdrant (its REST stand-in in the same file: Qdrant is
no Python package; the chat does not use it). The platform network's names reach them through
tests/apps/openwebui.py NameProxy.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from aiplatform.configure.facts import LITELLM_BASE
from aiplatform.configure.model import Report
from aiplatform.configure.run import run_configure
from aiplatform.envfile import read_env
from aiplatform.host.runner import Runner
from aiplatform.inputs.secrets import litellm_key_name
from tests.apps.openwebui import NameProxy, install, open_webui
from tests.apps.postgres import postgres_for
from tests.configure_platform import MODELS, StandIns, apps, deploy_files, facts_for, rendered_environ
from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import OllamaStandIn

BROWSER = Path(__file__).with_name("openwebui_browser.py")
EMBED = MODELS[1]  # the rendered embedding model, LiteLLM's model_name for it


def host_port(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


def psql(database_url: str, sql: str) -> list[list[str]]:
    done = subprocess.run(["psql", database_url, "-AtX", "-F", "\t", "-c", sql], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return [line.split("\t") for line in done.stdout.splitlines()]


@dataclass
class Platform:
    """The rendered core platform with the real Open WebUI running: what the tests read and drive."""

    root: Path
    secrets: dict[str, str]
    master: dict[str, str]
    environ: dict[str, str]  # Open WebUI's container environment as rendered
    url: str  # Open WebUI
    database: str  # its database URL, on the tests' Postgres
    ollama: OllamaStandIn
    keys_api: apps.AppStandIn
    proxy: NameProxy
    log: Path

    def configure(self) -> Report:
        facts = facts_for(self.root, StandIns({"litellm": self.keys_api}), **{"open-webui": self.url})
        return run_configure(facts, Runner(echo=lambda _: None), lambda step: None)

    def admin(self) -> httpx.Client:
        """A client holding the admin's session, signed in through Open WebUI's own sign-in (routers/auths.py)."""
        body = {"email": self.master["ADMIN_EMAIL"], "password": self.secrets["ADMIN_PASSWORD"]}
        answer = httpx.post(f"{self.url}/api/v1/auths/signin", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["role"] == "admin"
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {answer.json()['token']}"}, timeout=30
        )


@contextlib.contextmanager
def platform(tmp_path: Path, without: tuple[str, ...] = ()) -> Iterator[Platform]:
    """The core platform (Open WebUI, LiteLLM, Postgres, Qdrant) rendered and applied, Open WebUI started for real
    (the rendered variables in `without` left out), LiteLLM for real behind its key API stand-in, Ollama and Qdrant
    stand-ins, the platform network's names through the name proxy."""
    install()  # first, so that its time is not counted as the start's
    out, root = deploy_files(tmp_path, services=[])
    secrets = read_env(root / "config/credentials.env")
    environ = rendered_environ(root, secrets, "open-webui", "open-webui")
    with (
        OllamaStandIn(models=MODELS) as ollama,
        litellm_proxy(out, tmp_path / "litellm", ollama.url) as litellm,
        apps.AppStandIn("litellm-keys", master_key=secrets["LITELLM_MASTER_KEY"], forward=litellm) as keys_api,
        apps.AppStandIn(
            "qdrant",
            api_key=secrets["QDRANT_API_KEY"],
            storage=str(tmp_path / "qdrant/storage"),
            snapshots=str(tmp_path / "qdrant/snapshots"),
        ) as qdrant,
        postgres_for(root, tmp_path / "postgres") as postgres,
    ):
        # no route to the host's Ollama: chats and embeddings go through LiteLLM (a call there would be answered 502)
        proxy = NameProxy({"litellm:4000": host_port(keys_api.url), "qdrant:6333": host_port(qdrant.url)})
        try:
            with open_webui(root, secrets, tmp_path / "open-webui", postgres, proxy, without) as url:
                master, database = read_env(root / "config/master.env"), postgres.url(environ["DATABASE_URL"])
                log = tmp_path / "open-webui/open-webui.log"
                yield Platform(root, secrets, master, environ, url, database, ollama, keys_api, proxy, log)
        finally:
            proxy.stop()


def test_configure_sets_up_the_real_open_webui_and_a_browser_chat_goes_through_litellm(tmp_path):
    with platform(tmp_path) as app:
        own_key = app.secrets[litellm_key_name("open-webui")]
        assert app.environ["OPENAI_API_KEY"] == own_key != app.secrets["LITELLM_MASTER_KEY"]
        first = app.configure()
        assert first.ok, [(s.service, s.step, s.detail) for s in first.steps if s.result == "FAILED"]
        table = {s.step: s for s in first.steps if s.service == "open-webui"}
        # the rendered environment made the admin and seeded the connection at the first start (main.py lifespan:
        # WEBUI_ADMIN_EMAIL/PASSWORD; config.py: OPENAI_API_BASE_URL/KEY, ENABLE_OLLAMA_API)
        assert table["admin signs in"].result == "already done"
        assert table["LiteLLM connection"].result == "already done"
        assert table["direct Ollama connection off"].result == "already done"
        assert table["models listed"].result == "ok"
        assert table["default model"].result == "done"
        assert table["embeddings through LiteLLM"].result == "already done"  # config.py: RAG_* seeds
        second = app.configure()
        assert second.ok and not second.changed, [(s.service, s.step) for s in second.changed]

        # the end state, read back from Open WebUI's own API as its admin
        with app.admin() as admin:
            openai = admin.get("/openai/config").json()
            assert openai["ENABLE_OPENAI_API"] is True
            assert openai["OPENAI_API_BASE_URLS"] == [LITELLM_BASE]
            assert openai["OPENAI_API_KEYS"] == [own_key]
            assert app.secrets["LITELLM_MASTER_KEY"] not in json.dumps(openai)
            assert admin.get("/ollama/config").json()["ENABLE_OLLAMA_API"] is False
            chat_model = admin.get("/api/v1/configs/models").json()["DEFAULT_MODELS"]
            assert chat_model == MODELS[0]
            embedding = admin.get("/api/v1/retrieval/embedding").json()
            assert (embedding["RAG_EMBEDDING_ENGINE"], embedding["RAG_EMBEDDING_MODEL"]) == ("openai", EMBED)
            assert embedding["openai_config"] == {"url": LITELLM_BASE, "key": own_key}
            models = admin.get("/api/models").json()["data"]
            token = admin.headers["Authorization"].removeprefix("Bearer ")
        # LiteLLM's models through the connection, none straight from Ollama (its evaluation arena's "arena-model",
        # on by default, is no connection's)
        assert {m["id"]: m["owned_by"] for m in models if m["owned_by"] != "arena"} == dict.fromkeys(MODELS, "openai")
        # the one account, the admin, in Open WebUI's own table
        assert psql(app.database, 'SELECT email, role FROM "user"') == [[app.master["ADMIN_EMAIL"].lower(), "admin"]]
        # its key is registered in LiteLLM under its own alias
        keys = app.keys_api.state["keys"]
        assert [row["key_alias"] for row in keys.values()] == ["ai-platform-open-webui"]
        assert apps.sha256(own_key) in keys

        # the chat, sent as the browser sends it
        text = "Which colour is the sky on a clear day?"
        before = len(app.ollama.chats)
        done = subprocess.run(
            [str(install() / "python"), str(BROWSER), app.url, token, chat_model, text],
            capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        sent = json.loads(done.stdout)
        assert sent["status"] == 200, sent["answer"]
        chat_id = sent["answer"]["chat_id"]
        assert sent["finished"], (sent["events"], app.log.read_text()[-5000:])

        reply = app.ollama.reply(chat_model, text)
        # the Ollama stand-in got the message, through the real LiteLLM, asked by Open WebUI under its own key
        chats = [c for c in app.ollama.chats[before:] if c.endpoint == "/api/chat"]
        asked = [c for c in chats if any(m.get("content") == text for m in c.body.get("messages", []))]
        assert asked and asked[0].model == chat_model, [c.body for c in chats]
        assert ("litellm:4000", "POST", "/v1/chat/completions") in app.proxy.asked
        assert ("POST", "/v1/chat/completions") in app.keys_api.requests
        # the answer came back over the browser's socket
        final = [e["data"]["data"] for e in sent["events"] if e["data"].get("type") == "chat:completion"]
        assert any(reply in json.dumps(data) for data in final if data.get("done")), final
        # and the chat is stored in Open WebUI's database, the admin's: the user's message and the answer
        rows = psql(app.database, f"SELECT role, content #>> '{{}}' FROM chat_message WHERE chat_id = '{chat_id}'")
        stored = dict(rows)
        assert stored.get("user") == text, stored
        assert reply in stored.get("assistant", ""), stored
        owner = psql(
            app.database, f"SELECT u.email FROM chat c JOIN \"user\" u ON u.id = c.user_id WHERE c.id = '{chat_id}'"
        )
        assert owner == [[app.master["ADMIN_EMAIL"].lower()]]
        assert not [asked for asked in app.proxy.asked if asked[0] not in ("litellm:4000", "qdrant:6333")]


def embedded(app: Platform, admin: httpx.Client, text: str) -> list:
    """A retrieval query as the UI's knowledge search sends it (routers/retrieval.py query_doc_handler: the query
    embedded with the saved engine, then the vector store searched); what the Ollama stand-in was asked to embed."""
    before = len(app.ollama.chats)
    answer = admin.post("/api/v1/retrieval/query/doc", json={"collection_name": "ai-platform-check", "query": text})
    assert answer.status_code == 200, (answer.text, app.log.read_text()[-3000:])
    return [c for c in app.ollama.chats[before:] if c.endpoint in ("/api/embed", "/api/embeddings")]


def test_a_query_is_embedded_through_litellm_with_open_webuis_own_key_and_a_kept_ollama_engine_is_switched(tmp_path):
    """Open WebUI's embeddings (RAG) go to LiteLLM with its own key and the embedding model, never to an Ollama of
    its own; an install that kept the engine the older template seeded (Ollama at host.docker.internal, saved in its
    database: ENABLE_PERSISTENT_CONFIG) is switched by configure through the real admin API, found done again after."""
    with platform(tmp_path) as app:
        own_key = app.secrets[litellm_key_name("open-webui")]
        assert not [value for value in app.environ.values() if "host.docker.internal" in value]
        assert app.configure().ok
        text = "Which colour is the sky on a clear day?"
        with app.admin() as admin:
            asked = embedded(app, admin, text)
            assert [(c.model, c.body.get("input")) for c in asked] == [(EMBED, [text])], [c.body for c in asked]
            assert ("litellm:4000", "POST", "/v1/embeddings") in app.proxy.asked
            assert ("POST", "/v1/embeddings") in app.keys_api.requests  # under its own key (the stand-in checks it)

            # what an older deploy saved, set through the same admin API: its OpenAI engine at config.py's defaults
            # (OpenAI's own URL, no key: the template set no RAG_OPENAI_*), the engine Ollama at the host
            update = "/api/v1/retrieval/embedding/update"
            for engine, url in (
                ("openai", "https://api.openai.com/v1"),
                ("ollama", "http://host.docker.internal:11434"),
            ):
                kept = {"RAG_EMBEDDING_ENGINE": engine, "RAG_EMBEDDING_MODEL": EMBED, f"{engine}_config": {"url": url}}
                assert admin.post(update, json=kept).status_code == 200
            assert admin.get("/api/v1/retrieval/embedding").json()["openai_config"] == {
                "url": "https://api.openai.com/v1", "key": ""}  # fmt: skip
            first = app.configure()
            step = {s.step: s for s in first.steps if s.service == "open-webui"}["embeddings through LiteLLM"]
            assert (step.result, first.ok) == ("done", True), step
            assert "was: ollama nomic-embed-text at http://host.docker.internal:11434" in step.detail, step
            second = app.configure()
            assert second.ok and not second.changed, [(s.service, s.step) for s in second.changed]
            embedding = admin.get("/api/v1/retrieval/embedding").json()
            assert (embedding["RAG_EMBEDDING_ENGINE"], embedding["RAG_EMBEDDING_MODEL"]) == ("openai", EMBED)
            assert embedding["openai_config"] == {"url": LITELLM_BASE, "key": own_key}
            assert (embedding["RAG_EMBEDDING_BATCH_SIZE"], embedding["ENABLE_ASYNC_EMBEDDING"]) == (1, True)
            # switched in the running app too, not only in its database (the update rebuilds EMBEDDING_FUNCTION)
            asked = embedded(app, admin, text)
            assert [(c.model, c.body.get("input")) for c in asked] == [(EMBED, [text])], [c.body for c in asked]
        keys = "'rag.embedding_engine', 'rag.embedding_model', 'rag.openai.api_base_url', 'rag.openai.api_key'"
        saved = dict(psql(app.database, f"SELECT key, value #>> '{{}}' FROM config WHERE key IN ({keys})"))
        assert (saved["rag.embedding_engine"], saved["rag.openai.api_base_url"]) == ("openai", LITELLM_BASE)
        assert saved["rag.openai.api_key"] == own_key and saved["rag.embedding_model"] == EMBED
        assert not [asked for asked in app.proxy.asked if asked[0] not in ("litellm:4000", "qdrant:6333")]


def test_configure_signs_up_the_first_admin_where_the_environment_made_none(tmp_path):
    """Configure's other first-run path: an Open WebUI that started without WEBUI_ADMIN_EMAIL/PASSWORD (a platform
    rendered before they were set, or a database reset) has no user; configure signs the admin up, the first account
    becomes the admin and sign-up closes behind it (routers/auths.py signup_handler)."""
    with platform(tmp_path, without=("WEBUI_ADMIN_EMAIL", "WEBUI_ADMIN_PASSWORD", "WEBUI_ADMIN_NAME")) as app:
        assert httpx.get(f"{app.url}/api/config", timeout=30).json().get("onboarding") is True
        first = app.configure()
        assert first.ok, [(s.service, s.step, s.detail) for s in first.steps if s.result == "FAILED"]
        table = {s.step: s for s in first.steps if s.service == "open-webui"}
        assert table["admin signs in"].result == "done", table["admin signs in"]
        second = app.configure()
        assert second.ok and not second.changed, [(s.service, s.step) for s in second.changed]
        assert {s.step: s.result for s in second.steps if s.service == "open-webui"}["admin signs in"] == "already done"
        assert psql(app.database, 'SELECT email, name, role FROM "user"') == [
            [app.master["ADMIN_EMAIL"].lower(), app.master["ADMIN_NAME"], "admin"]
        ]
        config = httpx.get(f"{app.url}/api/config", timeout=30).json()
        assert "onboarding" not in config and config["features"]["enable_signup"] is False
        someone = {"name": "Someone", "email": "someone@example.com", "password": "a-password-of-some-length"}
        assert httpx.post(f"{app.url}/api/v1/auths/signup", json=someone, timeout=30).status_code == 403
