"""The app protocol stand-ins (tests/integration/standins/image/apps.py) answer first runs, repeats, refusals and auth
failures as the upstream apps do, and litellm-keys forwards to a proxy with the master key, streaming as it comes."""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

IMAGE = Path(__file__).resolve().parents[1] / "integration" / "standins" / "image"
sys.path.insert(0, str(IMAGE))  # apps.py is not in a package: it is copied into the images as /standin/apps.py
apps = importlib.import_module("apps")

ADMIN = "admin@example.com"
PASSWORD = "Passw0rd!x"


def client(app, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=app.url, trust_env=False, timeout=10, **kwargs)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name."""
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


@contextlib.contextmanager
def backend(respond):
    """A tiny HTTP server on 127.0.0.1 where `respond(handler, body)` answers; yields its URL and what it was sent."""
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            respond(self, body)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def answer(handler: BaseHTTPRequestHandler, status: int, payload, headers=()) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


# --- the shared machinery ---------------------------------------------------------------------------------------------


def test_fail_knob_forces_a_status_on_one_path_and_requests_are_logged():
    with apps.AppStandIn("grafana", fail={"/api/health": 503}) as app, client(app) as http:
        forced = http.get("/api/health")
        assert forced.status_code == 503
        assert "forced failure" in forced.json()["message"]
        assert http.get("/healthz").status_code == 200
        assert app.requests == [("GET", "/api/health"), ("GET", "/healthz")]


def test_a_stopped_stand_in_is_a_service_that_is_down():
    app = apps.AppStandIn("grafana")
    with client(app) as http:
        assert http.get("/api/health").status_code == 200  # a kept-alive connection
        app.stop()
        app.stop()  # idempotent
        with pytest.raises(httpx.TransportError):
            http.get("/api/health")
    with client(app) as http, pytest.raises(httpx.ConnectError):
        http.get("/api/health")
    with httpx.Client(trust_env=False) as http, pytest.raises(httpx.ConnectError):
        http.get(apps.unused_url())


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="admin_pasword"):
        apps.AppStandIn("grafana", admin_pasword="typo")


def test_settings_come_from_the_upstream_environment_names():
    environ = {
        "WEBUI_ADMIN_EMAIL": ADMIN,
        "WEBUI_ADMIN_PASSWORD": "pw",
        "OPENAI_API_BASE_URL": "http://litellm:4000/v1",
        "OPENAI_API_KEY": "sk-x",
        "STANDIN_MODELS": "chat, embed",
        "STANDIN_FAIL": "/health=503",
    }
    settings = apps.settings_from_environ("openwebui", environ)
    assert settings["admin_email"] == ADMIN and settings["admin_password"] == "pw"
    assert settings["openai_base_url"] == "http://litellm:4000/v1" and settings["openai_api_key"] == "sk-x"
    assert settings["models"] == ["chat", "embed"]
    assert settings["fail"] == {"/health": 503}
    assert apps.settings_from_environ("dify", {"INIT_PASSWORD": "ip"})["init_password"] == "ip"
    assert apps.settings_from_environ("grafana", {"GF_SECURITY_ADMIN_PASSWORD": "g"})["admin_password"] == "g"
    assert apps.settings_from_environ("n8n", {})["cookie_secure"] is True
    assert apps.settings_from_environ("n8n", {"N8N_SECURE_COOKIE": "false"})["cookie_secure"] is False
    assert apps.settings_from_environ("flowise", {})["metrics"] is False
    assert apps.settings_from_environ("flowise", {"ENABLE_METRICS": "true"})["metrics"] is True
    keys = apps.settings_from_environ("litellm-keys", {"LITELLM_MASTER_KEY": "sk-m", "STANDIN_FORWARD": "http://x"})
    assert keys == {"master_key": "sk-m", "forward": "http://x"}
    for protocol in apps.PROTOCOLS:  # every mapping gives settings make_handler accepts
        apps.make_handler(protocol, apps.settings_from_environ(protocol, {}))


def test_the_container_entry_point_serves_a_protocol_from_its_environment():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "STANDIN_APP": "grafana",
        "STANDIN_PORT": str(port),
        "GF_SECURITY_ADMIN_PASSWORD": "from-env",
    }
    process = subprocess.Popen([sys.executable, str(IMAGE / "apps.py")], env=env, stdout=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5) as http:
            for _ in range(100):
                try:
                    health = http.get("/api/health")
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert health.json()["database"] == "ok"
            assert http.get("/api/user", auth=("admin", "from-env")).status_code == 200
            assert http.get("/api/user", auth=("admin", "admin")).status_code == 401
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0  # SIGTERM ends it cleanly
    assert f"grafana: app stand-in listening on port {port}" in output


# --- Open WebUI -------------------------------------------------------------------------------------------------------


def test_openwebui_first_signup_is_the_admin_then_signup_is_closed():
    with apps.AppStandIn("openwebui", models=["chat"]) as app, client(app) as http:
        assert http.get("/health").json() == {"status": True}
        assert http.get("/api/config").json()["onboarding"] is True
        first = http.post("/api/v1/auths/signup", json={"name": "Admin", "email": ADMIN.upper(), "password": PASSWORD})
        assert first.status_code == 200
        assert first.json()["role"] == "admin" and first.json()["email"] == ADMIN
        assert first.json()["token_type"] == "Bearer"
        assert "HttpOnly" in set_cookies(first)["token"]
        http.cookies.clear()
        assert "onboarding" not in http.get("/api/config").json()  # absent, not false, once a user exists
        with_token = http.get("/api/config", headers={"Authorization": f"Bearer {first.json()['token']}"}).json()
        assert "onboarding" not in with_token and "default_models" in with_token
        again = http.post("/api/v1/auths/signup", json={"name": "B", "email": "b@example.com", "password": PASSWORD})
        assert again.status_code == 403
        assert again.json()["detail"] == apps.OWUI_PROHIBITED
        assert len(app.state["users"]) == 1


def test_openwebui_headless_admin_exists_at_start_and_signin_refuses_a_wrong_password():
    settings = {"admin_email": ADMIN, "admin_password": PASSWORD}
    with apps.AppStandIn("openwebui", **settings) as app, client(app) as http:
        assert "onboarding" not in http.get("/api/config").json()
        signup = http.post("/api/v1/auths/signup", json={"name": "x", "email": "x@example.com", "password": "p"})
        assert signup.status_code == 403
        wrong = http.post("/api/v1/auths/signin", json={"email": ADMIN, "password": "nope"})
        assert wrong.status_code == 400
        assert wrong.json() == {"detail": apps.OWUI_INVALID_CRED}
        right = http.post("/api/v1/auths/signin", json={"email": ADMIN, "password": PASSWORD})
        assert right.status_code == 200 and right.json()["role"] == "admin"
        assert http.post("/api/v1/auths/signin", json={"email": ADMIN}).status_code == 422


def test_openwebui_refuses_a_password_over_bcrypts_72_bytes():
    with apps.AppStandIn("openwebui") as app, client(app) as http:
        too_long = http.post("/api/v1/auths/signup", json={"name": "A", "email": ADMIN, "password": "é" * 37})
        assert too_long.status_code == 400  # 37 characters, 74 bytes
        assert too_long.json()["detail"] == apps.OWUI_TOO_LONG
        bad_email = http.post("/api/v1/auths/signup", json={"name": "A", "email": "nobody", "password": "x"})
        assert bad_email.status_code == 400 and "email format" in bad_email.json()["detail"]
        assert http.post("/api/v1/auths/signup", json={"name": "A", "email": ADMIN, "password": "a" * 72}).is_success


def test_openwebui_lists_the_openai_connections_models_with_a_token_only():
    def models(handler, _body):
        answer(handler, 200, {"object": "list", "data": [{"id": "chat", "object": "model", "owned_by": "litellm"}]})

    with backend(models) as (url, seen):
        settings = {"admin_email": ADMIN, "admin_password": PASSWORD, "openai_base_url": url, "openai_api_key": "sk-k"}
        with apps.AppStandIn("openwebui", **settings) as app, client(app) as http:
            assert http.get("/api/models").json() == {"detail": "Not authenticated"}
            bogus = http.get("/api/models", headers={"Authorization": "Bearer not-a-jwt"})
            assert bogus.status_code == 401
            http.post("/api/v1/auths/signin", json={"email": ADMIN, "password": PASSWORD})  # the cookie authenticates
            listed = http.get("/api/models")
    assert listed.status_code == 200
    [model] = listed.json()["data"]
    assert model["id"] == "chat" and model["owned_by"] == "openai" and model["urlIdx"] == 0
    assert model["openai"] == {"id": "chat", "object": "model", "owned_by": "litellm"}
    assert seen[0][1] == "/models" and seen[0][2]["authorization"] == "Bearer sk-k"


def test_openwebui_falls_back_to_the_models_setting_without_a_reachable_connection():
    settings = {
        "admin_email": ADMIN,
        "admin_password": PASSWORD,
        "models": ["a", "b"],
        "openai_base_url": apps.unused_url(),
    }
    with apps.AppStandIn("openwebui", **settings) as app, client(app) as http:
        token = http.post("/api/v1/auths/signin", json={"email": ADMIN, "password": PASSWORD}).json()["token"]
        listed = http.get("/api/models", headers={"Authorization": f"Bearer {token}"}).json()["data"]
    assert [(model["id"], model["owned_by"]) for model in listed] == [("a", "openai"), ("b", "openai")]


def test_openwebui_default_models_config_is_admin_only():
    with apps.AppStandIn("openwebui", admin_email=ADMIN, admin_password=PASSWORD) as app, client(app) as http:
        assert http.get("/api/v1/configs/models").json() == {"detail": "Not authenticated"}
        apps.OpenWebUI.add_user(app.state, "user@example.com", "pw", "U", "user")
        user = http.post("/api/v1/auths/signin", json={"email": "user@example.com", "password": "pw"}).json()
        refused = http.get("/api/v1/configs/models", headers={"Authorization": f"Bearer {user['token']}"})
        assert refused.status_code == 401 and refused.json() == {"detail": apps.OWUI_PROHIBITED}
        signin = http.post("/api/v1/auths/signin", json={"email": ADMIN, "password": PASSWORD})
        admin = {"Authorization": f"Bearer {signin.json()['token']}"}
        http.cookies.clear()
        assert http.get("/api/v1/configs/models", headers=admin).json()["DEFAULT_MODELS"] is None
        partial = http.post("/api/v1/configs/models", headers=admin, json={"DEFAULT_MODELS": "chat"})
        assert partial.status_code == 422
        assert partial.json()["detail"][0]["loc"] == ["body", "DEFAULT_PINNED_MODELS"]
        body = {"DEFAULT_MODELS": "chat", "DEFAULT_PINNED_MODELS": None, "MODEL_ORDER_LIST": None}
        stored = http.post("/api/v1/configs/models", headers=admin, json=body)
        assert stored.status_code == 200
        assert stored.json() == {**body, "DEFAULT_MODEL_METADATA": None, "DEFAULT_MODEL_PARAMS": None}
        assert http.get("/api/v1/configs/models", headers=admin).json()["DEFAULT_MODELS"] == "chat"
        assert http.get("/api/config", headers=admin).json()["default_models"] == "chat"


def test_openwebui_embedding_config_is_seeded_from_the_environment_and_set_as_retrieval_py_sets_it():
    """routers/retrieval.py get_embedding_config / update_embedding_config: the engine's nested config is stored for
    the chosen engine only, the tuning fields left out go back to their defaults, and only the admin reads it."""
    environ = {"WEBUI_ADMIN_EMAIL": ADMIN, "WEBUI_ADMIN_PASSWORD": PASSWORD, "RAG_EMBEDDING_ENGINE": "ollama",
               "RAG_EMBEDDING_MODEL": "embed", "RAG_OLLAMA_BASE_URL": "http://host.docker.internal:11434"}  # fmt: skip
    with apps.AppStandIn("openwebui", **apps.settings_from_environ("openwebui", environ)) as app, client(app) as http:
        assert http.get("/api/v1/retrieval/embedding").json() == {"detail": "Not authenticated"}
        apps.OpenWebUI.add_user(app.state, "user@example.com", "pw", "U", "user")
        user = http.post("/api/v1/auths/signin", json={"email": "user@example.com", "password": "pw"}).json()
        refused = http.get("/api/v1/retrieval/embedding", headers={"Authorization": f"Bearer {user['token']}"})
        assert refused.status_code == 401 and refused.json() == {"detail": apps.OWUI_PROHIBITED}
        token = http.post("/api/v1/auths/signin", json={"email": ADMIN, "password": PASSWORD}).json()["token"]
        http.cookies.clear()
        admin = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/v1/retrieval/embedding", headers=admin).json() == {
            "status": True,
            "RAG_EMBEDDING_ENGINE": "ollama",
            "RAG_EMBEDDING_MODEL": "embed",
            "RAG_EMBEDDING_BATCH_SIZE": 1,
            "ENABLE_ASYNC_EMBEDDING": True,
            "RAG_EMBEDDING_CONCURRENT_REQUESTS": 0,
            "openai_config": {"url": "https://api.openai.com/v1", "key": ""},  # config.py: OpenAI's own, no key
            "ollama_config": {"url": "http://host.docker.internal:11434", "key": ""},
            "azure_openai_config": {"url": "", "key": "", "version": ""},
        }
        tuned = {"RAG_EMBEDDING_ENGINE": "ollama", "RAG_EMBEDDING_MODEL": "embed", "RAG_EMBEDDING_BATCH_SIZE": "8"}
        assert http.post("/api/v1/retrieval/embedding/update", headers=admin, json=tuned).json()[
            "RAG_EMBEDDING_BATCH_SIZE"] == 8  # fmt: skip
        body = {
            "RAG_EMBEDDING_ENGINE": "openai",
            "RAG_EMBEDDING_MODEL": " embed ",
            "openai_config": {"url": "http://litellm:4000/v1", "key": "sk-own"},
            "ollama_config": {"url": "http://elsewhere:11434"},  # not the chosen engine's: ignored
            "unknown": 1,
        }
        stored = http.post("/api/v1/retrieval/embedding/update", headers=admin, json=body)
        assert stored.status_code == 200, stored.text
        read = http.get("/api/v1/retrieval/embedding", headers=admin).json()
        assert stored.json() == read
        assert (read["RAG_EMBEDDING_ENGINE"], read["RAG_EMBEDDING_MODEL"]) == ("openai", "embed")
        assert read["openai_config"] == {"url": "http://litellm:4000/v1", "key": "sk-own"}
        assert read["ollama_config"]["url"] == "http://host.docker.internal:11434"
        assert read["RAG_EMBEDDING_BATCH_SIZE"] == 1  # left out: the form's default, not the 8 set before


def test_openwebui_refuses_an_embedding_update_pydantic_refuses_and_an_engine_it_does_not_know():
    """EmbeddingModelUpdateForm as FastAPI validates it (every error in one 422, as the real 0.11.4 answered), then
    get_embedding_function's ValueError for an unknown engine: a 500 and nothing saved."""
    with apps.AppStandIn("openwebui", admin_email=ADMIN, admin_password=PASSWORD) as app, client(app) as http:
        token = http.post("/api/v1/auths/signin", json={"email": ADMIN, "password": PASSWORD}).json()["token"]
        http.cookies.clear()
        admin = {"Authorization": f"Bearer {token}"}
        before = dict(app.state["config"])
        update = "/api/v1/retrieval/embedding/update"
        empty = http.post(update, headers=admin, json={})
        assert empty.status_code == 422
        assert empty.json()["detail"] == [
            {"type": "missing", "loc": ["body", "RAG_EMBEDDING_ENGINE"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "RAG_EMBEDDING_MODEL"], "msg": "Field required", "input": {}},
        ]
        wrong = {"RAG_EMBEDDING_ENGINE": "openai", "RAG_EMBEDDING_MODEL": "m", "openai_config": "http://x",
                 "RAG_EMBEDDING_BATCH_SIZE": "x", "ENABLE_ASYNC_EMBEDDING": "maybe",
                 "RAG_EMBEDDING_CONCURRENT_REQUESTS": 1.5}  # fmt: skip
        assert [(e["type"], e["loc"]) for e in http.post(update, headers=admin, json=wrong).json()["detail"]] == [
            ("model_attributes_type", ["body", "openai_config"]),
            ("int_parsing", ["body", "RAG_EMBEDDING_BATCH_SIZE"]),
            ("bool_parsing", ["body", "ENABLE_ASYNC_EMBEDDING"]),
            ("int_from_float", ["body", "RAG_EMBEDDING_CONCURRENT_REQUESTS"]),
        ]
        nested = {"RAG_EMBEDDING_ENGINE": 5, "RAG_EMBEDDING_MODEL": "m", "openai_config": {"url": 5}}
        assert [(e["type"], e["loc"]) for e in http.post(update, headers=admin, json=nested).json()["detail"]] == [
            ("string_type", ["body", "openai_config", "url"]),
            ("string_type", ["body", "RAG_EMBEDDING_ENGINE"]),
        ]
        assert http.post(update, headers=admin, json=[1]).json()["detail"][0]["type"] == "model_attributes_type"
        unknown = http.post(update, headers=admin, json={"RAG_EMBEDDING_ENGINE": "bogus", "RAG_EMBEDDING_MODEL": "m"})
        assert unknown.status_code == 500
        assert unknown.json() == {"detail": "[ERROR: Error updating embedding configuration]"}
        assert app.state["config"] == before
        assert http.post(update, json={"RAG_EMBEDDING_ENGINE": "openai"}).status_code == 401  # auth before the body
        assert http.get(update, headers=admin).status_code == 405


def test_qdrant_says_whether_a_collection_exists_as_open_webuis_client_asks_before_a_search(tmp_path):
    """qdrant-client's collection_exists (GET /collections/<name>/exists): Open WebUI asks it before every search."""
    settings = {"api_key": "qk", "storage": str(tmp_path / "s"), "snapshots": str(tmp_path / "n")}
    with apps.AppStandIn("qdrant", **settings) as app, client(app, headers={"api-key": "qk"}) as http:
        assert http.get("/collections/docs/exists").json()["result"] == {"exists": False}
        assert http.put("/collections/docs", json={"vectors": {"size": 4, "distance": "Cosine"}}).status_code == 200
        assert http.get("/collections/docs/exists").json() == {"result": {"exists": True}, "status": "ok",
                                                                "time": 0.0001}  # fmt: skip
        assert httpx.get(f"{app.url}/collections/docs/exists").status_code == 401


# --- Dify -------------------------------------------------------------------------------------------------------------

WS = apps.DIFY_WS
OAC = "langgenius/openai_api_compatible/openai_api_compatible"
LLM = {"endpoint_url": "http://litellm:4000/v1", "context_size": "4096", "api_key": "sk-x"}


def dify_admin(http: httpx.Client) -> dict[str, str]:
    """Set up (no INIT_PASSWORD), log in, and give the CSRF header every later request needs."""
    assert (
        http.post("/console/api/setup", json={"email": ADMIN, "name": "Admin", "password": PASSWORD}).status_code == 201
    )
    assert http.post("/console/api/login", json={"email": ADMIN, "password": b64(PASSWORD)}).status_code == 200
    return {"X-CSRF-Token": http.cookies["csrf_token"]}


def difypkg(plugin: str = "openai_api_compatible", version: str = "0.0.63") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("manifest.yaml", f"version: {version}\ntype: plugin\nauthor: langgenius\nname: {plugin}\n")
    return buffer.getvalue()


def install_oac(http: httpx.Client, csrf: dict) -> None:
    uid = http.post(WS + "/plugin/upload/pkg", headers=csrf, files={"pkg": ("p.difypkg", difypkg())}).json()
    assert http.post(
        WS + "/plugin/install/pkg", headers=csrf, json={"plugin_unique_identifiers": [uid["unique_identifier"]]}
    ).is_success


def test_dify_first_run_with_init_password_keeps_validation_in_the_session_cookie():
    with apps.AppStandIn("dify", init_password="init-pw") as app, client(app) as http:
        assert http.get("/health").json()["status"] == "ok"
        assert http.get("/console/api/setup").json() == {"step": "not_started", "setup_at": None}
        assert http.get("/console/api/init").json() == {"status": "not_started"}
        setup = {"email": ADMIN, "name": "Admin", "password": PASSWORD}
        early = http.post("/console/api/setup", json=setup)
        assert early.status_code == 401
        assert early.json() == {"error": {"type": "authentication_error", "message": "Unauthorized", "status": 401}}
        wrong = http.post("/console/api/init", json={"password": "nope"})
        assert wrong.status_code == 401 and "session" in set_cookies(wrong)
        assert http.post("/console/api/init", json={"password": "init-pw"}).status_code == 201
        assert http.get("/console/api/init").json() == {"status": "finished"}
        weak = http.post("/console/api/setup", json={**setup, "password": "lettersonly"})
        assert weak.status_code == 422 and weak.json()["error"]["type"] == "validation_error"
        assert "Password must contain letters and numbers" in weak.json()["error"]["details"]
        done = http.post("/console/api/setup", json=setup)
        assert done.status_code == 201 and done.json() == {"result": "success"}
        assert "set-cookie" not in done.headers  # log in next
        assert http.get("/console/api/setup").json()["step"] == "finished"
        again = http.post("/console/api/setup", json=setup)
        assert again.status_code == 403 and again.json()["error"]["type"] == "authorization_error"
        assert http.post("/console/api/init", json={"password": "init-pw"}).status_code == 403
        assert done.headers["X-Version"] == "1.13.3"
    with apps.AppStandIn("dify", init_password="init-pw") as app, client(app) as http:
        http.post("/console/api/init", json={"password": "init-pw"})
        http.cookies.clear()  # without the session cookie the validation is gone
        assert http.post("/console/api/setup", json=setup).status_code == 401


def test_dify_setup_writes_the_workspaces_private_key_to_storage_and_fails_where_it_cannot(tmp_path):
    # libs/rsa.py generate_key_pair: storage.save("privkeys/<tenant>/private.pem"), by the image's user (dify, 1001);
    # RegisterService.setup rolls everything back and raises: a 500, and Dify is still not set up.
    (tmp_path / "volume").write_text(
        ""
    )  # in the way of every user, root too: stands for a folder uid 1001 cannot write
    storage = tmp_path / "volume" / "storage"
    setup = {"email": ADMIN, "name": "Admin", "password": PASSWORD}
    with apps.AppStandIn("dify", storage=str(storage)) as app, client(app) as http:
        refused = http.post("/console/api/setup", json=setup)
        assert refused.status_code == 500 and refused.json()["error"]["type"] == "internal_server_error"
        assert http.get("/console/api/setup").json()["step"] == "not_started" and not app.state["accounts"]
        (tmp_path / "volume").unlink()  # the permissions one-shot's chown
        assert http.post("/console/api/setup", json=setup).status_code == 201
        [key] = storage.glob("privkeys/*/private.pem")
        assert key.parent.name == app.state["tenant_id"]
    environ = {"STORAGE_TYPE": "opendal", "OPENDAL_SCHEME": "fs", "OPENDAL_FS_ROOT": "/app/api/storage"}
    assert apps.settings_from_environ("dify", environ)["storage"] == "/app/api/storage"
    assert apps.settings_from_environ("dify", {**environ, "OPENDAL_SCHEME": "s3"})["storage"] is None


def test_dify_login_takes_a_base64_password_and_sets_three_cookies():
    with apps.AppStandIn("dify") as app, client(app) as http:
        early = http.post("/console/api/login", json={"email": ADMIN, "password": b64(PASSWORD)})
        assert early.status_code == 401 and early.json()["code"] == "not_setup"
        http.post("/console/api/setup", json={"email": ADMIN, "name": "Admin", "password": PASSWORD})
        plain = http.post("/console/api/login", json={"email": ADMIN, "password": PASSWORD})
        assert plain.status_code == 401 and plain.json()["code"] == "authentication_failed"
        wrong = http.post("/console/api/login", json={"email": ADMIN, "password": b64("Wrong1234")})
        assert wrong.status_code == 401
        assert wrong.json() == {"code": "authentication_failed", "message": "Invalid email or password.", "status": 401}
        assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        right = http.post("/console/api/login", json={"email": ADMIN.upper(), "password": b64(PASSWORD)})
        assert right.status_code == 200 and right.json() == {"result": "success"}
        cookies = set_cookies(right)
        assert set(cookies) == {"access_token", "refresh_token", "csrf_token"}
        assert "HttpOnly" in cookies["access_token"] and "HttpOnly" not in cookies["csrf_token"]


def test_dify_locks_login_after_more_than_five_failures():
    with apps.AppStandIn("dify") as app, client(app) as http:
        http.post("/console/api/setup", json={"email": ADMIN, "name": "Admin", "password": PASSWORD})
        statuses = [
            http.post("/console/api/login", json={"email": ADMIN, "password": b64("x")}).status_code for _ in range(7)
        ]
        assert statuses == [401] * 6 + [429]
        locked = http.post("/console/api/login", json={"email": ADMIN, "password": b64(PASSWORD)})
        assert locked.json()["code"] == "email_code_login_limit"


def test_dify_console_calls_need_the_csrf_header_equal_to_the_cookie():
    with apps.AppStandIn("dify") as app, client(app) as http:
        path, body = WS + "/plugin/list/installations/ids", {"plugin_ids": []}
        csrf = dify_admin(http)
        missing = http.post(path, json=body)
        assert missing.status_code == 401
        assert missing.json() == {"code": "unauthorized", "message": "CSRF token is missing or invalid.", "status": 401}
        assert http.post(path, json=body, headers={"X-CSRF-Token": "eyJother"}).status_code == 401
        assert http.post(path, json=body, headers=csrf).json() == {"plugins": []}
        bearer = {"Authorization": f"Bearer {http.cookies['access_token']}"}
        http.cookies.clear()
        assert http.post(path, json=body, headers=bearer).json()["message"] == "CSRF token is missing or invalid."
        assert http.post(path, json=body).json()["message"] == "Invalid Authorization token."


def test_dify_answers_a_method_a_route_lacks_with_werkzeugs_405_and_reads_only_a_bearer_token():
    """libs/external_api.py handle_http_exception (MethodNotAllowed's description); libs/token.py
    _try_extract_from_header: an Authorization of another scheme gives no token at all."""
    not_allowed = {"code": "method_not_allowed", "message": "The method is not allowed for the requested URL."}
    with apps.AppStandIn("dify") as app, client(app) as http:
        for method, path in (
            ("PUT", "/console/api/setup"),
            ("GET", "/console/api/login"),
            ("DELETE", WS + "/plugin/list"),
        ):
            refused = http.request(method, path)
            assert refused.status_code == 405 and refused.json() == {**not_allowed, "status": 405}, (method, path)
        csrf = dify_admin(http)
        token = http.cookies["access_token"]
        http.cookies.clear()
        http.cookies.set("csrf_token", csrf["X-CSRF-Token"])
        for header in (f"Basic {token}", f"Token {token}", token):
            refused = http.get(WS + "/plugin/list", headers={**csrf, "Authorization": header})
            assert refused.status_code == 401 and refused.json()["message"] == "Invalid Authorization token.", header
        assert http.get(WS + "/plugin/list", headers={**csrf, "Authorization": f"bearer {token}"}).status_code == 200


def test_dify_behind_https_names_its_cookies_host_and_reads_only_those():
    # libs/token.py: is_secure() (both console URLs https) and no COOKIE_DOMAIN -> `__Host-` names, Secure, set over
    # plain HTTP too (Flask's set_cookie does not look at the request) and read back by that name only.
    environ = {"CONSOLE_WEB_URL": "https://dify.example", "CONSOLE_API_URL": "https://dify.example"}
    settings = apps.settings_from_environ("dify", environ)
    assert settings["cookie_secure"] is True and settings["cookie_domain"] is None
    assert apps.settings_from_environ("dify", {**environ, "CONSOLE_API_URL": "http://x"})["cookie_secure"] is False
    with apps.AppStandIn("dify", cookie_secure=True) as app, client(app) as http:
        path, body = WS + "/plugin/list/installations/ids", {"plugin_ids": []}
        assert http.post("/console/api/setup", json={"email": ADMIN, "name": "A", "password": PASSWORD}).status_code
        login = http.post("/console/api/login", json={"email": ADMIN, "password": b64(PASSWORD)})
        cookies = set_cookies(login)
        assert set(cookies) == {"__Host-access_token", "__Host-refresh_token", "__Host-csrf_token"}
        assert all("; Secure" in line for line in cookies.values())
        access, csrf = login.cookies["__Host-access_token"], login.cookies["__Host-csrf_token"]
        plain = {"Cookie": f"access_token={access}; csrf_token={csrf}", "X-CSRF-Token": csrf}
        assert http.post(path, json=body, headers=plain).json()["message"] == "Invalid Authorization token."
        host = {"Cookie": f"__Host-access_token={access}; __Host-csrf_token={csrf}", "X-CSRF-Token": csrf}
        assert http.post(path, json=body, headers=host).json() == {"plugins": []}


def test_dify_marketplace_install_offline_fails_as_upstream_and_a_package_installs():
    uid = "langgenius/openai_api_compatible:0.0.63@" + "a" * 64
    with apps.AppStandIn("dify") as app, client(app) as http:
        csrf = dify_admin(http)
        assert http.post(WS + "/plugin/list/latest-versions", headers=csrf, json={"plugin_ids": ["x/y"]}).json() == {
            "versions": {}
        }
        offline = http.post(WS + "/plugin/install/marketplace", headers=csrf, json={"plugin_unique_identifiers": [uid]})
        assert offline.status_code == 400
        assert offline.json()["code"] == "invalid_param"
        assert offline.json()["message"] == (
            f"Reached maximum retries (3) for URL https://marketplace.dify.ai/api/v1/plugins/download?unique_identifier={uid}"
        )
        uploaded = http.post(
            WS + "/plugin/upload/pkg", headers=csrf, files={"pkg": ("p.difypkg", difypkg(version="0.0.70"))}
        )
        assert uploaded.status_code == 200
        package_uid = uploaded.json()["unique_identifier"]
        assert package_uid.startswith("langgenius/openai_api_compatible:0.0.70@")
        installed = http.post(
            WS + "/plugin/install/pkg", headers=csrf, json={"plugin_unique_identifiers": [package_uid]}
        )
        assert installed.json()["all_installed"] is False
        task = http.get(WS + f"/plugin/tasks/{installed.json()['task_id']}", headers=csrf).json()["task"]
        assert task["status"] == "success" and task["plugins"][0]["plugin_id"] == "langgenius/openai_api_compatible"
        ids = {"plugin_ids": ["langgenius/openai_api_compatible"]}
        [found] = http.post(WS + "/plugin/list/installations/ids", headers=csrf, json=ids).json()["plugins"]
        assert found["plugin_unique_identifier"] == package_uid and found["source"] == "package"
        repeat = http.post(WS + "/plugin/install/pkg", headers=csrf, json={"plugin_unique_identifiers": [package_uid]})
        assert repeat.json() == {"all_installed": True, "task_id": ""}


def test_dify_marketplace_install_online_then_already_installed():
    with apps.AppStandIn("dify", marketplace=True) as app, client(app) as http:
        csrf = dify_admin(http)
        ids = {"plugin_ids": ["langgenius/openai_api_compatible"]}
        latest = http.post(WS + "/plugin/list/latest-versions", headers=csrf, json=ids).json()["versions"]
        uid = latest["langgenius/openai_api_compatible"]["unique_identifier"]
        first = http.post(WS + "/plugin/install/marketplace", headers=csrf, json={"plugin_unique_identifiers": [uid]})
        assert first.json()["all_installed"] is False and first.json()["task_id"]
        second = http.post(WS + "/plugin/install/marketplace", headers=csrf, json={"plugin_unique_identifiers": [uid]})
        assert second.json() == {"all_installed": True, "task_id": ""}
        unknown = "langgenius/nope:1.0.0@" + "b" * 64
        missing = http.post(
            WS + "/plugin/install/marketplace", headers=csrf, json={"plugin_unique_identifiers": [unknown]}
        )
        assert missing.status_code == 400 and missing.json()["message"] == "file not found"


def test_dify_model_credentials_are_not_idempotent_and_listing_needs_the_full_provider_id():
    with apps.AppStandIn("dify") as app, client(app) as http:
        csrf = dify_admin(http)
        path = WS + f"/model-providers/{OAC}/models/credentials"
        body = {"model": "chat", "model_type": "llm", "credentials": LLM}
        absent = http.post(path, headers=csrf, json=body)
        assert absent.status_code == 400 and absent.json()["message"] == f"Provider {OAC} does not exist."
        install_oac(http, csrf)
        no_url = http.post(path, headers=csrf, json={**body, "credentials": {"context_size": "4096"}})
        assert no_url.json() == {"code": "invalid_param", "message": "Variable endpoint_url is required", "status": 400}
        number = http.post(path, headers=csrf, json={**body, "credentials": {**LLM, "context_size": 4096}})
        assert number.json()["message"] == "Variable context_size should be string"
        assert http.post(path, headers=csrf, json=body).status_code == 201
        assert http.post(path, headers=csrf, json=body).status_code == 201  # a second credential, as upstream
        assert [item["name"] for item in app.state["credentials"]] == ["API KEY 1", "API KEY 2"]
        named = http.post(path, headers=csrf, json={**body, "name": "API KEY 1"})
        assert named.json()["message"] == "Model credential with name 'API KEY 1' already exists for chat."
        [listed] = http.get(WS + f"/model-providers/{OAC}/models", headers=csrf).json()["data"]
        assert (listed["model"], listed["model_type"], listed["status"]) == ("chat", "llm", "active")
        assert http.get(WS + "/model-providers/openai_api_compatible/models", headers=csrf).json() == {"data": []}
        default = WS + "/default-model"
        nope = {"model_settings": [{"model_type": "llm", "provider": OAC, "model": "nope"}]}
        assert http.post(default, headers=csrf, json=nope).json()["message"] == "Model nope does not exist."
        chosen = {"model_settings": [{"model_type": "llm", "provider": OAC, "model": "chat"}]}
        assert http.post(default, headers=csrf, json=chosen).json() == {"result": "success"}
        data = http.get(default, headers=csrf, params={"model_type": "llm"}).json()["data"]
        assert data["model"] == "chat" and data["provider"]["provider"] == OAC
        assert http.get(default, headers=csrf, params={"model_type": "text-embedding"}).json() == {"data": None}


def test_dify_model_credentials_are_read_masked_and_updated_by_id():
    # workspace/models.py ModelProviderModelCredentialApi get/put, provider_configuration.py
    # update_custom_model_credential: the first credential is the model's, its key shown masked; PUT by credential_id.
    with apps.AppStandIn("dify") as app, client(app) as http:
        csrf = dify_admin(http)
        path = WS + f"/model-providers/{OAC}/models/credentials"
        query = {"model": "chat", "model_type": "llm"}
        absent = http.get(path, headers=csrf, params=query)
        assert absent.json()["message"] == f"Provider {OAC} does not exist."
        install_oac(http, csrf)
        assert http.get(path, headers=csrf, params=query).json()["current_credential_id"] is None
        key = {**LLM, "api_key": "sk-first-0123456789"}
        for _ in range(2):
            assert http.post(path, headers=csrf, json={**query, "credentials": key}).status_code == 201
        read = http.get(path, headers=csrf, params=query).json()
        first, second = (item["id"] for item in app.state["credentials"])
        assert read["current_credential_id"] == first and read["current_credential_name"] == "API KEY 1"
        assert read["credentials"]["api_key"] == "sk-fir" + "*" * 12 + "89"  # libs/encrypter.py obfuscated_token
        assert [c["credential_id"] for c in read["available_credentials"]] == [first, second]
        assert http.get(path, headers=csrf, params={"model": "chat"}).status_code == 400
        new = {**LLM, "api_key": "sk-second"}
        put = http.put(path, headers=csrf, json={**query, "credential_id": first, "credentials": new})
        assert put.status_code == 200 and put.json() == {"result": "success"}
        assert [c["credentials"]["api_key"] for c in app.state["credentials"]] == ["sk-second", "sk-first-0123456789"]
        assert [c["name"] for c in app.state["credentials"]] == ["API KEY 1", "API KEY 2"]  # no name: kept
        hidden = {**LLM, "api_key": "[__HIDDEN__]", "context_size": "8192"}
        assert http.put(path, headers=csrf, json={**query, "credential_id": first, "credentials": hidden}).is_success
        assert app.state["credentials"][0]["credentials"]["api_key"] == "sk-second"  # the stored secret kept
        refusals = [
            ({"credential_id": "not-a-uuid"}, "credential_id\n  Value error, not-a-uuid is not a valid uuid."),
            ({"credential_id": "00000000-0000-4000-8000-000000000000"}, "Credential record not found."),
            ({"credential_id": first, "model": "other"}, "Credential record not found."),  # another model's record
            ({"credential_id": first, "name": "API KEY 2"}, "Model credential with name 'API KEY 2' already exists "
             "for chat."),
            ({"credential_id": first, "credentials": {"context_size": "4096"}}, "Variable endpoint_url is required"),
        ]  # fmt: skip
        for change, message in refusals:
            refused = http.put(path, headers=csrf, json={**query, "credentials": new, **change})
            assert refused.status_code == 400 and refused.json()["message"].endswith(message), change
        assert app.state["credentials"][0]["credentials"]["api_key"] == "sk-second"


def test_dify_probes_the_model_endpoint_as_the_plugin_does():
    def chat(handler, _body):
        if handler.headers.get("Authorization") == "Bearer sk-good":
            answer(handler, 200, {"object": "chat.completion", "choices": []})
        else:
            answer(handler, 401, {"error": "bad key"})

    with backend(chat) as (url, seen), apps.AppStandIn("dify", probe=True) as app, client(app) as http:
        csrf = dify_admin(http)
        install_oac(http, csrf)
        path = WS + f"/model-providers/{OAC}/models/credentials"
        credentials = {"endpoint_url": url + "/v1", "context_size": "4096", "api_key": "sk-good"}
        good = http.post(path, headers=csrf, json={"model": "chat", "model_type": "llm", "credentials": credentials})
        assert good.status_code == 201
        method, target, _, sent = seen[0]
        assert (method, target) == ("POST", "/v1/chat/completions")
        assert json.loads(sent) == {"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": "ping"}]}
        bad = http.post(
            path,
            headers=csrf,
            json={"model": "chat", "model_type": "llm", "credentials": {**credentials, "api_key": "sk-bad"}},
        )
        assert bad.status_code == 400
        assert bad.json()["message"].startswith("Credentials validation failed with status code 401")
        down = {**credentials, "endpoint_url": apps.unused_url()}
        assert (
            http.post(path, headers=csrf, json={"model": "chat", "model_type": "llm", "credentials": down}).status_code
            == 400
        )
        assert len(app.state["credentials"]) == 1


# --- n8n --------------------------------------------------------------------------------------------------------------

OWNER = {"email": ADMIN, "firstName": "Ada", "lastName": "Admin", "password": "Passw0rdX"}


def n8n_cookie(response: httpx.Response) -> dict[str, str]:
    """The n8n-auth cookie is Secure by default: httpx would not send it over http, so send it by hand."""
    return {"Cookie": f"n8n-auth={response.cookies['n8n-auth']}"}


def test_openwebui_refuses_config_forms_of_the_wrong_shape_a_wrong_scheme_and_a_wrong_method():
    """Pydantic's forms (routers/openai.py OpenAIConfigForm, routers/configs.py ModelsConfigForm): a key given as one
    string is a 422, not split into characters; Basic auth is no Bearer token; GET on an update route is a 405."""
    with apps.AppStandIn("openwebui", admin_email=ADMIN, admin_password=PASSWORD) as app, client(app) as http:
        token = http.post("/api/v1/auths/signin", json={"email": ADMIN, "password": PASSWORD}).json()["token"]
        http.cookies.clear()
        admin = {"Authorization": f"Bearer {token}"}
        form = {"ENABLE_OPENAI_API": True, "OPENAI_API_BASE_URLS": ["http://litellm:4000/v1"], "OPENAI_API_CONFIGS": {}}
        one_string = http.post("/openai/config/update", headers=admin, json={**form, "OPENAI_API_KEYS": "sk-own"})
        assert one_string.status_code == 422
        assert one_string.json()["detail"] == [
            {"type": "list_type", "loc": ["body", "OPENAI_API_KEYS"], "msg": "Input should be a valid list",
             "input": "sk-own"}
        ]  # fmt: skip
        not_text = http.post("/openai/config/update", headers=admin, json={**form, "OPENAI_API_KEYS": [7]})
        assert not_text.json()["detail"][0]["loc"] == ["body", "OPENAI_API_KEYS", 0]
        assert app.state["config"]["openai.api_keys"] == []  # nothing stored from a refused form
        stored = http.post("/openai/config/update", headers=admin, json={**form, "OPENAI_API_KEYS": ["sk-own"]})
        assert stored.status_code == 200 and app.state["config"]["openai.api_keys"] == ["sk-own"]
        models = {"DEFAULT_MODELS": ["chat"], "DEFAULT_PINNED_MODELS": None, "MODEL_ORDER_LIST": None}
        listed = http.post("/api/v1/configs/models", headers=admin, json=models)
        assert listed.status_code == 422 and listed.json()["detail"][0]["type"] == "string_type"
        basic = http.get("/openai/config", headers={"Authorization": f"Basic {b64(f'{ADMIN}:{PASSWORD}')}"})
        assert basic.status_code == 401 and basic.json() == {"detail": "Not authenticated"}
        wrong_method = http.get("/openai/config/update", headers=admin)
        assert wrong_method.status_code == 405 and wrong_method.json() == {"detail": "Method Not Allowed"}


def test_the_fail_knob_can_name_one_method():
    with apps.AppStandIn("litellm-keys", master_key="sk-master", fail={"POST /key/generate": 500}) as app:
        with client(app, headers={"Authorization": "Bearer sk-master"}) as http:
            assert http.post("/key/generate", json={}).status_code == 500
            assert http.get("/key/list").status_code == 200  # other methods and paths answer as before
        assert apps.settings_from_environ("grafana", {"STANDIN_FAIL": "POST /a=503,/b=500"})["fail"] == {
            "POST /a": 503, "/b": 500}  # fmt: skip
        with client(app, headers={"Authorization": "Token sk-master"}) as http:  # LiteLLM wants `Bearer `
            refused = http.get("/key/list")
            assert refused.status_code == 401 and "Bearer" in refused.json()["error"]["message"]


def test_n8n_owner_setup_once_then_already_setup():
    with apps.AppStandIn("n8n") as app, client(app) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        public = http.get("/rest/settings").json()["data"]
        assert public["settingsMode"] == "public" and public["userManagement"]["showSetupOnFirstLoad"] is True
        setup = http.post("/rest/owner/setup", json=OWNER)
        assert setup.status_code == 200
        owner = setup.json()["data"]
        assert (owner["email"], owner["role"], owner["isOwner"]) == (ADMIN, "global:owner", True)
        assert "password" not in owner
        cookie = set_cookies(setup)["n8n-auth"]
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
        assert http.get("/rest/settings").json()["data"]["userManagement"]["showSetupOnFirstLoad"] is False
        again = http.post("/rest/owner/setup", json=OWNER)
        assert again.status_code == 400 and again.json() == {"code": 400, "message": "Instance owner already setup"}
        full = http.get("/rest/settings", headers=n8n_cookie(setup)).json()["data"]
        assert full["publicApi"]["enabled"] is True


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt", "Password must be 8 to 64 characters long."),
        ("NoDigitsHere", "Password must contain at least 1 number."),
        ("lowercase123", "Password must contain at least 1 uppercase letter."),
        ("A1" * 33, "Password must be 8 to 64 characters long."),
    ],
)
def test_n8n_owner_password_rules(password, message):
    with apps.AppStandIn("n8n") as app, client(app) as http:
        refused = http.post("/rest/owner/setup", json={**OWNER, "password": password})
        assert refused.status_code == 400
        assert refused.json()["message"] == message and refused.json()["path"] == ["password"]
        assert app.state["owner"]["email"] is None


def test_n8n_login_with_email_or_ldap_login_id_and_a_wrong_password():
    with apps.AppStandIn("n8n", cookie_secure=False) as app, client(app) as http:
        http.post("/rest/owner/setup", json=OWNER)
        http.cookies.clear()
        wrong_field = http.post("/rest/login", json={"email": ADMIN, "password": OWNER["password"]})
        assert wrong_field.status_code == 400 and wrong_field.json()["path"] == ["emailOrLdapLoginId"]
        wrong = http.post("/rest/login", json={"emailOrLdapLoginId": ADMIN, "password": "Nope1234"})
        assert wrong.status_code == 401
        assert wrong.json() == {"code": 401, "message": "Wrong username or password. Do you have caps lock on?"}
        right = http.post("/rest/login", json={"emailOrLdapLoginId": ADMIN, "password": OWNER["password"]})
        assert right.status_code == 200 and right.json()["data"]["email"] == ADMIN
        assert "Secure" not in set_cookies(right)["n8n-auth"]
        assert http.get("/rest/login").json()["data"]["id"] == right.json()["data"]["id"]  # the cookie jar sends it


def test_n8n_rest_calls_need_the_cookie_and_the_same_browser_id():
    with apps.AppStandIn("n8n") as app, client(app) as http:
        setup = http.post("/rest/owner/setup", json=OWNER, headers={"browser-id": "b1"})
        key = {"label": "configure", "scopes": ["credential:create"], "expiresAt": None}
        assert http.post("/rest/api-keys", json=key).json() == {"status": "error", "message": "Unauthorized"}
        assert http.post("/rest/api-keys", json=key, headers=n8n_cookie(setup)).status_code == 401  # no browser-id
        same = http.post("/rest/api-keys", json=key, headers={**n8n_cookie(setup), "browser-id": "b1"})
        assert same.status_code == 200


def test_n8n_api_keys_show_the_raw_key_only_at_creation():
    with apps.AppStandIn("n8n") as app, client(app) as http:
        auth = n8n_cookie(http.post("/rest/owner/setup", json=OWNER))
        no_expiry = http.post("/rest/api-keys", headers=auth, json={"label": "x", "scopes": ["credential:create"]})
        assert no_expiry.status_code == 400 and no_expiry.json()["path"] == ["expiresAt"]
        body = {"label": "configure", "scopes": ["credential:create", "credential:list"], "expiresAt": None}
        created = http.post("/rest/api-keys", headers=auth, json=body).json()["data"]
        assert created["rawApiKey"].startswith("eyJ") and created["apiKey"] == "******" + created["rawApiKey"][-4:]
        listing = http.get("/rest/api-keys", headers=auth, params={"label": "CONF"}).json()["data"]
        assert set(listing) == {"items", "counts", "totals", "owners"}
        [item] = listing["items"]
        assert item["label"] == "configure" and "rawApiKey" not in item and item["apiKey"].startswith("*")
        assert item["owner"]["email"] == ADMIN
        assert http.get("/rest/api-keys", headers=auth, params={"label": "other"}).json()["data"]["items"] == []


def test_n8n_api_keys_hold_only_scopes_an_owners_key_may_have():
    # api-keys.controller.js createApiKey: apiKeyHasValidScopesForRole (the real 2.41.1 refuses these, 400).
    with apps.AppStandIn("n8n") as app, client(app) as http:
        auth = n8n_cookie(http.post("/rest/owner/setup", json=OWNER))
        for scopes in (["apiKey:create"], ["credential:list", "banner:dismiss"], ["credential:lists"]):
            body = {"label": "x", "scopes": scopes, "expiresAt": None}
            refused = http.post("/rest/api-keys", headers=auth, json=body)
            assert refused.status_code == 400
            assert refused.json() == {"code": 400, "message": "Invalid scopes for user role"}
        assert app.state["api_keys"] == []
        body = {"label": "x", "scopes": ["credential:update", "workflow:activate"], "expiresAt": None}
        assert http.post("/rest/api-keys", headers=auth, json=body).status_code == 200


def test_n8n_public_api_creates_openai_credentials_with_the_api_key():
    with apps.AppStandIn("n8n") as app, client(app) as http:
        auth = n8n_cookie(http.post("/rest/owner/setup", json=OWNER))
        make = {"label": "all", "scopes": ["credential:create", "credential:list"], "expiresAt": None}
        raw = http.post("/rest/api-keys", headers=auth, json=make).json()["data"]["rawApiKey"]
        make_narrow = {"label": "list", "scopes": ["credential:list"], "expiresAt": None}
        narrow = http.post("/rest/api-keys", headers=auth, json=make_narrow).json()["data"]["rawApiKey"]
        credential = {
            "name": "LiteLLM",
            "type": "openAiApi",
            "data": {"apiKey": "sk-x", "url": "http://litellm:4000/v1"},
        }
        assert http.post("/api/v1/credentials", json=credential).json() == {"message": "Unauthorized"}
        forbidden = http.post("/api/v1/credentials", json=credential, headers={"X-N8N-API-KEY": narrow})
        assert forbidden.status_code == 403 and forbidden.json() == {"message": "Forbidden"}
        key = {"X-N8N-API-KEY": raw}
        no_key = http.post("/api/v1/credentials", headers=key, json={**credential, "data": {"url": "http://x"}})
        assert no_key.status_code == 400 and no_key.json() == {
            "message": 'request.body.data requires property "apiKey"'
        }
        extra = http.post(
            "/api/v1/credentials", headers=key, json={**credential, "data": {"apiKey": "k", "baseURL": "u"}}
        )
        assert 'additional property "baseURL"' in extra.json()["message"]
        unknown = http.post("/api/v1/credentials", headers=key, json={**credential, "type": "openAi"})
        assert unknown.json() == {"message": "req.body.type is not a known type"}
        created = http.post("/api/v1/credentials", headers=key, json=credential)
        assert created.status_code == 200
        assert created.json()["name"] == "LiteLLM" and "data" not in created.json()
        listed = http.get("/api/v1/credentials", headers=key).json()
        assert [(item["name"], item["type"]) for item in listed["data"]] == [("LiteLLM", "openAiApi")]
        assert listed["nextCursor"] is None


def test_n8n_public_api_updates_a_credential_by_id_with_the_update_scope():
    # credentials.public.controller.ts updateCredential: PATCH /credentials/:id, `data` replaced (isPartialData:
    # merged), checked as on create; no credential:update scope 403, an unknown id 404.
    with apps.AppStandIn("n8n") as app, client(app) as http:
        auth = n8n_cookie(http.post("/rest/owner/setup", json=OWNER))
        scopes = ["credential:create", "credential:list", "credential:update"]
        raw = http.post("/rest/api-keys", headers=auth, json={"label": "all", "scopes": scopes, "expiresAt": None})
        make_narrow = {"label": "narrow", "scopes": ["credential:create"], "expiresAt": None}
        narrow = http.post("/rest/api-keys", headers=auth, json=make_narrow).json()["data"]["rawApiKey"]
        key = {"X-N8N-API-KEY": raw.json()["data"]["rawApiKey"]}
        data = {"apiKey": "sk-old", "url": "http://litellm:4000/v1", "header": False}
        made = http.post("/api/v1/credentials", headers=key, json={"name": "L", "type": "openAiApi", "data": data})
        path = f"/api/v1/credentials/{made.json()['id']}"
        no_scope = http.patch(path, headers={"X-N8N-API-KEY": narrow}, json={"data": {"apiKey": "sk-new"}})
        assert no_scope.status_code == 403 and no_scope.json() == {"message": "Forbidden"}
        assert http.patch(path, json={"data": {"apiKey": "sk-new"}}).json() == {"message": "Unauthorized"}
        missing = http.patch("/api/v1/credentials/nope", headers=key, json={"data": {"apiKey": "sk-new"}})
        assert missing.status_code == 404 and missing.json()["message"] == "Credential not found"
        bad = http.patch(path, headers=key, json={"data": {"url": "http://x"}})  # replaced: apiKey required
        assert bad.status_code == 400 and bad.json()["message"] == 'request.body.data requires property "apiKey"'
        unknown = http.patch(path, headers=key, json={"type": "openAi", "data": data})
        assert unknown.status_code == 400 and unknown.json()["message"] == "req.body.type is not a known type"
        assert app.state["credentials"][0]["data"]["apiKey"] == "sk-old"
        updated = http.patch(path, headers=key, json={"data": {**data, "apiKey": "sk-new"}})
        assert updated.status_code == 200 and updated.json()["name"] == "L" and "data" not in updated.json()
        assert app.state["credentials"][0]["data"] == {**data, "apiKey": "sk-new"}
        partial = http.patch(path, headers=key, json={"data": {"apiKey": "sk-3"}, "isPartialData": True})
        assert partial.is_success and app.state["credentials"][0]["data"] == {**data, "apiKey": "sk-3"}
        assert http.put(path, headers=key, json={"data": data}).status_code == 405  # PATCH only


def test_n8n_public_api_disabled_answers_a_bare_404():
    with apps.AppStandIn("n8n", public_api=False) as app, client(app) as http:
        auth = n8n_cookie(http.post("/rest/owner/setup", json=OWNER))
        refused = http.post("/rest/api-keys", headers=auth, json={"label": "x", "scopes": ["a:b"], "expiresAt": None})
        assert refused.status_code == 404 and refused.content == b""
        assert http.get("/api/v1/credentials", headers={"X-N8N-API-KEY": "x"}).status_code == 404


def test_n8n_auth_runs_before_the_disabled_public_api_and_a_stale_cookie_is_cleared():
    # controller.registry.js: the auth middleware comes before the route's isApiKeyAuthEnabledMiddleware (404).
    with apps.AppStandIn("n8n", public_api=False) as app, client(app) as http:
        http.post("/rest/owner/setup", json=OWNER)
        anonymous = http.get("/rest/api-keys")
        assert anonymous.status_code == 401 and "set-cookie" not in anonymous.headers
        stale = http.get("/rest/api-keys", headers={"Cookie": "n8n-auth=eyJstale"})  # auth.service.js clearCookie
        assert stale.status_code == 401 and set_cookies(stale)["n8n-auth"].startswith("n8n-auth=; ")


def test_n8n_sets_its_secure_cookie_over_plain_http_and_a_cookie_jar_does_not_send_it_back():
    # auth.service.js issueCookie: express's res.cookie marks it Secure (N8N_SECURE_COOKIE, default true) whatever the
    # request's protocol; configure talks plain HTTP to 127.0.0.1, where a cookie jar keeps a Secure cookie to itself.
    with apps.AppStandIn("n8n") as app, client(app) as http:
        setup = http.post("/rest/owner/setup", json=OWNER)
        assert "; Secure" in set_cookies(setup)["n8n-auth"]
        assert http.get("/rest/login").status_code == 401  # the jar holds it, and does not send it over http
        assert http.get("/rest/login", headers=n8n_cookie(setup)).status_code == 200  # by hand, as configure does


def test_n8n_api_key_labels_are_unique_per_user_and_a_key_is_deleted_by_id():
    # @n8n/db ApiKey @Unique(['userId', 'label']); public-api-key.service.js deleteApiKey.
    with apps.AppStandIn("n8n") as app, client(app) as http:
        auth = n8n_cookie(http.post("/rest/owner/setup", json=OWNER))
        body = {"label": "ai-platform", "scopes": ["credential:list"], "expiresAt": None}
        first = http.post("/rest/api-keys", headers=auth, json=body).json()["data"]
        again = http.post("/rest/api-keys", headers=auth, json=body)
        assert again.status_code == 500  # response-helper.js: a unique constraint's error, as the real 2.41.1 says it
        assert again.json() == {"code": 0, "message": "There is already an entry with this name"}
        assert http.delete(f"/rest/api-keys/{first['id']}").status_code == 401
        assert http.delete(f"/rest/api-keys/{first['id']}", headers=auth).json() == {"data": {"success": True}}
        gone = http.delete(f"/rest/api-keys/{first['id']}", headers=auth)
        assert gone.status_code == 404 and gone.json() == {"code": 404, "message": "API key not found"}
        assert http.post("/rest/api-keys", headers=auth, json=body).status_code == 200


# --- Flowise ----------------------------------------------------------------------------------------------------------

FLOWISE_USER = {"name": "Admin", "email": ADMIN, "credential": PASSWORD}


def flowise_login(http: httpx.Client) -> httpx.Response:
    assert http.post("/api/v1/account/register", json={"user": FLOWISE_USER}).status_code == 201
    return http.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})


def test_flowise_register_only_until_the_organization_exists():
    with apps.AppStandIn("flowise") as app, client(app) as http:
        assert http.get("/api/v1/ping").text == "pong"
        assert http.post("/api/v1/auth/resolve").json() == {"redirectUrl": "/organization-setup"}
        registered = http.post("/api/v1/account/register", json={"user": FLOWISE_USER})
        assert registered.status_code == 201
        assert registered.json()["user"]["email"] == ADMIN and "credential" not in registered.json()["user"]
        assert registered.json()["organization"]["name"] == "Default Organization"
        assert "set-cookie" not in registered.headers  # no token: log in next
        again = http.post("/api/v1/account/register", json={"user": FLOWISE_USER})
        assert again.status_code == 400
        assert again.json() == {
            "statusCode": 400,
            "success": False,
            "message": "You can only have one organization",
            "stack": {},
        }
        assert http.post("/api/v1/auth/resolve").json() == {"redirectUrl": "/signin"}


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({**FLOWISE_USER, "email": "admin@localhost"}, "Invalid User Email"),
        ({**FLOWISE_USER, "credential": "Passw0rdx"}, "Invalid Password"),  # no special character
        ({**FLOWISE_USER, "credential": "P@ssword"}, "Invalid Password"),  # no digit
        ({**FLOWISE_USER, "credential": "Sh0rt!"}, "Invalid Password"),
    ],
)
def test_flowise_register_refuses_bad_emails_and_passwords(user, message):
    with apps.AppStandIn("flowise") as app, client(app) as http:
        refused = http.post("/api/v1/account/register", json={"user": user})
        assert refused.status_code == 400 and refused.json()["message"] == message
        assert app.state["organization"] is None


def test_flowise_login_sets_the_token_cookie_and_refuses_a_wrong_password():
    with apps.AppStandIn("flowise") as app, client(app) as http:
        http.post("/api/v1/account/register", json={"user": FLOWISE_USER})
        wrong = http.post("/api/v1/auth/login", json={"email": ADMIN, "password": "Wr0ng!pass"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "Incorrect Email or Password"
        unknown = http.post("/api/v1/auth/login", json={"email": "who@example.com", "password": PASSWORD})
        assert unknown.status_code == 404 and unknown.json()["message"] == "User Not Found"
        right = http.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert right.status_code == 200 and right.json()["isOrganizationAdmin"] is True
        assert {"token", "refreshToken"} <= set(set_cookies(right))


def test_flowise_internal_calls_need_the_token_cookie_and_the_internal_header():
    internal = {"x-request-from": "internal"}
    with apps.AppStandIn("flowise") as app, client(app) as http:
        flowise_login(http)
        no_header = http.get("/api/v1/credentials")
        assert no_header.status_code == 401 and no_header.json() == {"error": "Unauthorized Access"}
        assert http.get("/api/v1/credentials", headers=internal).json() == []
        http.cookies.clear()
        no_cookie = http.get("/api/v1/credentials", headers=internal)
        assert no_cookie.status_code == 401 and no_cookie.json() == {"message": "Invalid or Missing token"}
        assert http.get("/API/V1/credentials").json() == {"error": "Unauthorized Access"}


def test_flowise_credentials_and_api_keys():
    internal = {"x-request-from": "internal"}
    with apps.AppStandIn("flowise") as app, client(app) as http:
        flowise_login(http)
        body = {"name": "LiteLLM", "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": "sk-x"}}
        created = http.post("/api/v1/credentials", headers=internal, json=body)
        assert created.status_code == 200 and created.json()["credentialName"] == "openAIApi"
        assert "encryptedData" in created.json()
        [listed] = http.get("/api/v1/credentials", headers=internal, params={"credentialName": "openAIApi"}).json()
        assert listed["name"] == "LiteLLM" and "encryptedData" not in listed
        assert http.get("/api/v1/credentials", headers=internal, params={"credentialName": "other"}).json() == []
        keys = http.post(
            "/api/v1/apikey", headers=internal, json={"keyName": "viewer", "permissions": ["credentials:view"]}
        )
        [key] = keys.json()
        admin_perm = http.post("/api/v1/apikey", headers=internal, json={"keyName": "x", "permissions": ["admin:all"]})
        assert admin_perm.status_code == 400
        bearer = {"Authorization": f"Bearer {key['apiKey']}"}
        http.cookies.clear()
        assert [item["name"] for item in http.get("/api/v1/credentials", headers=bearer).json()] == ["LiteLLM"]
        refused = http.post("/api/v1/credentials", headers=bearer, json=body)
        assert refused.status_code == 403 and refused.json() == {"message": "Forbidden"}
        assert http.get("/api/v1/credentials", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_flowise_updates_a_credential_by_id_merging_its_data():
    # routes/credentials PUT /:id, services/credentials updateCredential: plainDataObj merged over the decrypted one
    internal = {"x-request-from": "internal"}
    with apps.AppStandIn("flowise") as app, client(app) as http:
        flowise_login(http)
        body = {"name": "LiteLLM", "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": "sk-old", "o": "1"}}
        made = http.post("/api/v1/credentials", headers=internal, json=body).json()
        path = f"/api/v1/credentials/{made['id']}"
        updated = http.put(path, headers=internal, json={**body, "plainDataObj": {"openAIApiKey": "sk-new"}})
        assert updated.status_code == 200 and updated.json()["name"] == "LiteLLM"
        [stored] = app.state["credentials"]
        assert apps.flowise_decrypt(app.state["key"], stored["encryptedData"]) == {"openAIApiKey": "sk-new", "o": "1"}
        missing = http.put("/api/v1/credentials/nope", headers=internal, json=body)
        assert missing.status_code == 500
        assert missing.json()["message"] == "Error: credentialsService.updateCredential - Credential nope not found"
        http.cookies.clear()
        viewer = {"keyName": "viewer", "permissions": ["credentials:view"]}
        assert http.put(path, json=body).status_code == 401
        assert http.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD}).is_success
        [key] = http.post("/api/v1/apikey", headers=internal, json=viewer).json()
        http.cookies.clear()
        refused = http.put(path, headers={"Authorization": f"Bearer {key['apiKey']}"}, json=body)
        assert refused.status_code == 403
        app.state["key"] = "another key"  # the encryption key lost
        http.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        lost = http.put(path, headers=internal, json=body)
        assert lost.status_code == 500 and lost.json()["message"].endswith("updateCredential - Malformed UTF-8 data")


def test_flowise_answers_what_it_has_no_route_for_with_its_ui_as_the_real_app_does():
    # seen on the real 3.1.4 (tests/apps/test_flowise.py runs it): a method a route lacks and a login without a
    # password fall through to the UI's index.html (200), and a credential without a name is Postgres's NOT NULL
    internal = {"x-request-from": "internal"}
    with apps.AppStandIn("flowise") as app, client(app) as http:
        flowise_login(http)
        made = http.post("/api/v1/credentials", headers=internal, json={"name": "A", "credentialName": "openAIApi"})
        patched = http.patch(f"/api/v1/credentials/{made.json()['id']}", headers=internal, json={"name": "B"})
        assert patched.status_code == 200 and patched.headers["content-type"].startswith("text/html")
        assert [c["name"] for c in app.state["credentials"]] == ["A"]
        http.cookies.clear()
        bare = http.post("/api/v1/auth/login", json={"email": ADMIN})
        assert bare.status_code == 200 and bare.headers["content-type"].startswith("text/html")
        assert "set-cookie" not in bare.headers
        flowise_login_again = http.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert flowise_login_again.is_success
        nameless = http.post("/api/v1/credentials", headers=internal, json={"credentialName": "openAIApi"})
        assert nameless.status_code == 500
        assert nameless.json()["message"] == (
            'Error: credentialsService.createCredential - null value in column "name" of relation "credential" '
            "violates not-null constraint"
        )


def test_flowise_metrics_need_a_bearer_api_key():
    internal = {"x-request-from": "internal"}
    with apps.AppStandIn("flowise") as app, client(app) as http:
        flowise_login(http)
        key = http.post("/api/v1/apikey", headers=internal, json={"keyName": "m", "permissions": ["chatflows:view"]})
        http.cookies.clear()
        assert http.get("/api/v1/metrics").json() == {"error": "Unauthorized Access"}
        metrics = http.get("/api/v1/metrics", headers={"Authorization": f"Bearer {key.json()[0]['apiKey']}"})
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    with apps.AppStandIn("flowise", metrics=False) as app, client(app) as http:
        flowise_login(http)
        key = http.post("/api/v1/apikey", headers=internal, json={"keyName": "m", "permissions": ["chatflows:view"]})
        disabled = http.get("/api/v1/metrics", headers={"Authorization": f"Bearer {key.json()[0]['apiKey']}"})
        assert disabled.headers["content-type"].startswith("text/html")  # no route: the UI's index.html


def test_flowise_under_an_https_app_url_sets_its_session_cookie_only_on_an_https_request():
    # Flowise 3.1.4 (passport/index.ts): APP_URL https makes express-session's cookie Secure, and express-session
    # sets a Secure cookie only when req.secure (`trust proxy`: X-Forwarded-Proto); the token cookie alone is refused.
    internal = {"x-request-from": "internal"}
    settings = apps.settings_from_environ("flowise", {"APP_URL": "https://flowise.example.com"})
    assert settings["cookie_secure"] is True and settings["trust_proxy"] is True
    login = {"email": ADMIN, "password": PASSWORD}
    with apps.AppStandIn("flowise", cookie_secure=True) as app, client(app) as http:
        plain = flowise_login(http)
        assert set(set_cookies(plain)) == {"token", "refreshToken"}  # no connect.sid over plain HTTP
        token = set_cookies(plain)["token"].split(";")[0]
        refused = http.get("/api/v1/credentials", headers={"Cookie": token, **internal})
        assert refused.status_code == 401 and refused.json() == {"message": "Invalid or Missing token"}
        proxied = http.post("/api/v1/auth/login", json=login, headers={"X-Forwarded-Proto": "https"})
        assert {"token", "refreshToken", "connect.sid"} == set(set_cookies(proxied))
        assert all("; Secure" in line for line in set_cookies(proxied).values())
        pairs = {name: line.split(";")[0] for name, line in set_cookies(proxied).items()}
        both = {"Cookie": f"{pairs['connect.sid']}; {pairs['token']}", **internal}
        assert http.get("/api/v1/credentials", headers=both).json() == []
        stale = {"Cookie": f"{pairs['connect.sid']}; token=eyJnot-a-token", **internal}
        assert http.get("/api/v1/credentials", headers=stale).status_code == 401  # the session alone neither
    with apps.AppStandIn("flowise", cookie_secure=True, trust_proxy=False) as app, client(app) as http:
        flowise_login(http)
        untrusted = http.post("/api/v1/auth/login", json=login, headers={"X-Forwarded-Proto": "https"})
        assert "connect.sid" not in set_cookies(untrusted)  # TRUST_PROXY=false: the header means nothing
    assert apps.settings_from_environ("flowise", {"TRUST_PROXY": "false"})["trust_proxy"] is False


def test_flowise_keeps_its_encryption_key_under_home_and_decrypts_credentials_only_with_it(tmp_path):
    # utils getEncryptionKey: FLOWISE_SECRETKEY_OVERWRITE, else $HOME/.flowise/encryption.key (made at the first
    # start); getCredentialById decrypts, password inputs redacted, another key a 500.
    internal = {"x-request-from": "internal"}
    body = {"name": "LiteLLM", "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": "sk-x"}}
    with apps.AppStandIn("flowise", home=str(tmp_path)) as app, client(app) as http:
        flowise_login(http)
        made = http.post("/api/v1/credentials", headers=internal, json=body).json()
        read = http.get(f"/api/v1/credentials/{made['id']}", headers=internal)
        assert read.status_code == 200 and read.json()["plainDataObj"] == {"openAIApiKey": apps.FLOWISE_REDACTED}
        assert "sk-x" not in json.dumps(app.state["credentials"])
        saved = {key: app.state[key] for key in apps.FLOWISE_PERSISTED}
    key_file = tmp_path / ".flowise" / "encryption.key"
    assert key_file.read_text() == app.state["key"]
    with apps.AppStandIn("flowise", home=str(tmp_path)) as again, client(again) as http:  # a restart, same home
        again.state.update(saved)
        http.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert http.get(f"/api/v1/credentials/{made['id']}", headers=internal).status_code == 200
    with apps.AppStandIn("flowise", home=str(tmp_path / "new")) as fresh, client(fresh) as http:  # a new home
        fresh.state.update(saved)
        http.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        lost = http.get(f"/api/v1/credentials/{made['id']}", headers=internal)
        assert lost.status_code == 500
        assert lost.json()["message"] == "Error: credentialsService.createCredential - Malformed UTF-8 data"
    with apps.AppStandIn("flowise", home=str(tmp_path / "new"), secretkey_overwrite=app.state["key"]) as kept:
        assert kept.state["key"] == app.state["key"]
    environ = {"HOME": "/home/node", "FLOWISE_SECRETKEY_OVERWRITE": "k", "DATABASE_TYPE": "postgres"}
    settings = apps.settings_from_environ("flowise", {**environ, "DATABASE_HOST": "postgres", "DATABASE_USER": "u"})
    assert settings["home"] == "/home/node" and settings["secretkey_overwrite"] == "k"
    assert settings["database"] == {"host": "postgres", "name": "", "user": "u", "password": "", "port": "5432"}


# --- Grafana ----------------------------------------------------------------------------------------------------------


def test_grafana_basic_auth_admin():
    with apps.AppStandIn("grafana", admin_password="s3cret") as app, client(app) as http:
        assert http.get("/api/health").json()["database"] == "ok"
        anonymous = http.get("/api/user")
        assert anonymous.status_code == 401 and anonymous.json() == {"message": "Unauthorized"}
        wrong = http.get("/api/user", auth=("admin", "admin"))
        assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid username or password"
        right = http.get("/api/user", auth=("admin", "s3cret"))
        assert right.status_code == 200 and right.json()["login"] == "admin" and right.json()["isGrafanaAdmin"]


def test_grafana_makes_its_database_in_the_data_path_and_will_not_start_without_it(tmp_path, capsys):
    # packaging/docker/run.sh (the warning, the plugins folder), then grafana-server's SQLite grafana.db; as uid 472.
    data = tmp_path / "grafana"
    data.mkdir()
    with apps.AppStandIn("grafana", data_path=str(data), plugins_path=str(data / "plugins")) as app:
        assert httpx.get(app.url + "/api/health", trust_env=False).status_code == 200
    assert (data / "grafana.db").is_file() and (data / "plugins").is_dir()
    (tmp_path / "volume").write_text("")  # in the way of every user, root too: a data path uid 472 cannot write
    locked = tmp_path / "volume" / "grafana"
    with pytest.raises(SystemExit, match="cannot open its database"):
        apps.AppStandIn("grafana", data_path=str(locked))
    assert f"GF_PATHS_DATA='{locked}' is not writable." in capsys.readouterr().out


def test_grafana_datasource_health_by_uid():
    with apps.AppStandIn("grafana") as app, client(app, auth=("admin", "admin")) as http:
        healthy = http.get("/api/datasources/uid/prometheus/health")
        assert healthy.json() == {"status": "OK", "message": "Successfully queried the Prometheus API."}
        unknown = http.get("/api/datasources/uid/loki/health")
        assert unknown.status_code == 500 and unknown.json() == {"message": "Unable to load datasource metadata"}
        assert http.get("/api/datasources/uid/bad%20uid/health").json() == {"message": "UID is invalid"}
        assert http.get("/api/datasources/uid/prometheus/health", auth=("admin", "x")).status_code == 401


def test_grafana_finds_no_route_for_another_method_and_takes_only_basic_auth_for_the_admin():
    """pkg/web/router.go ServeHTTP looks a path up among its method's routes only: a POST to a GET route is a 404
    (pkg/api/http_server.go NotFoundHandler), not a 405; Get registers Head too. The admin's password is basic auth:
    sent as a Bearer token it is no login (pkg/services/authn)."""
    with apps.AppStandIn("grafana") as app, client(app, auth=("admin", "admin")) as http:
        path = "/api/datasources/uid/prometheus/health"
        for method in ("POST", "PUT", "DELETE"):
            refused = http.request(method, path)
            assert refused.status_code == 404 and refused.json() == {"message": "Not found"}, method
        assert http.head(path).status_code == 200
        assert http.post("/api/user").status_code == 404
        assert http.get("/api/nothing-here").json() == {"message": "Not found"}
        bearer = httpx.get(app.url + "/api/user", headers={"Authorization": "Bearer admin"}, trust_env=False)
        assert bearer.status_code == 401


def test_grafana_datasource_health_really_queries_prometheus():
    def prometheus(handler, _body):
        answer(handler, 200, {"status": "success", "data": {"resultType": "scalar", "result": [0, "2"]}})

    with backend(prometheus) as (url, seen), apps.AppStandIn("grafana", prometheus_url=url) as app:
        with client(app, auth=("admin", "admin")) as http:
            assert http.get("/api/datasources/uid/prometheus/health").json()["status"] == "OK"
        assert seen[0][:2] == ("POST", "/api/v1/query") and b"query=1%2B1" in seen[0][3]
    with (
        apps.AppStandIn("grafana", prometheus_url=apps.unused_url()) as app,
        client(app, auth=("admin", "admin")) as http,
    ):
        down = http.get("/api/datasources/uid/prometheus/health")
        assert down.status_code == 400 and down.json()["status"] == "ERROR"
        assert down.json()["message"].endswith(" - There was an error returned querying the Prometheus API.")


# --- LiteLLM key management -------------------------------------------------------------------------------------------

MASTER = "sk-master-key"
AS_MASTER = {"Authorization": f"Bearer {MASTER}"}


def test_litellm_key_generate_needs_the_master_key_and_a_unique_alias():
    with apps.AppStandIn("litellm-keys", master_key=MASTER) as app, client(app) as http:
        body = {"key_alias": "openwebui", "models": ["chat"], "metadata": {"service": "openwebui"}}
        none = http.post("/key/generate", json=body)
        assert none.status_code == 401
        assert none.json()["error"] == {
            "message": "Authentication Error, No api key passed in.",
            "type": "auth_error",
            "param": "None",
            "code": "401",
        }
        unknown = http.post("/key/generate", json=body, headers={"Authorization": "Bearer sk-unknown"})
        assert unknown.status_code == 401 and unknown.json()["error"]["type"] == "token_not_found_in_db"
        not_sk = http.post("/key/generate", json=body, headers={"Authorization": "Bearer wrong-master"})
        assert "LiteLLM Virtual Key expected" in not_sk.json()["error"]["message"]
        created = http.post("/key/generate", json=body, headers=AS_MASTER)
        assert created.status_code == 200
        key = created.json()
        assert key["key"].startswith("sk-") and key["key_alias"] == "openwebui" and key["models"] == ["chat"]
        assert key["token_id"] == apps.sha256(key["key"]) and key["metadata"] == {"service": "openwebui"}
        duplicate = http.post("/key/generate", json=body, headers=AS_MASTER)
        assert duplicate.status_code == 400
        assert duplicate.json()["error"] == {
            "message": "Key with alias 'openwebui' already exists. Unique key aliases across all keys are required.",
            "type": "bad_request_error",
            "param": "key_alias",
            "code": "400",
        }
        by_key = http.post("/key/generate", json={"key_alias": "x"}, headers={"Authorization": f"Bearer {key['key']}"})
        assert by_key.status_code == 401  # a virtual key is not the proxy admin
        assert key["key"] not in json.dumps(app.state)  # only the hash is stored


def test_litellm_key_list_matches_alias_substrings_for_the_master_key():
    with apps.AppStandIn("litellm-keys", master_key=MASTER) as app, client(app, headers=AS_MASTER) as http:
        first = http.post("/key/generate", json={"key_alias": "openwebui"}).json()
        http.post("/key/generate", json={"key_alias": "openwebui-old"})
        http.post("/key/generate", json={"key_alias": "n8n"})
        listing = http.get("/key/list", params={"key_alias": "OpenWebUI"}).json()
        assert set(listing) == {"keys", "total_count", "current_page", "total_pages"}
        assert listing["total_count"] == 2 and listing["current_page"] == 1 and listing["total_pages"] == 1
        assert first["token_id"] in listing["keys"]  # hashed tokens by default
        full = http.get("/key/list", params={"key_alias": "openwebui", "return_full_object": "true"}).json()
        assert sorted(item["key_alias"] for item in full["keys"]) == ["openwebui", "openwebui-old"]
        assert http.get("/key/list", params={"key_alias": "dify"}).json()["keys"] == []
        paged = http.get("/key/list", params={"size": 1, "page": 2}).json()
        assert (len(paged["keys"]), paged["total_pages"]) == (1, 3)


def test_litellm_key_info():
    with apps.AppStandIn("litellm-keys", master_key=MASTER) as app, client(app, headers=AS_MASTER) as http:
        key = http.post("/key/generate", json={"key_alias": "dify", "models": ["chat"]}).json()["key"]
        info = http.get("/key/info", params={"key": key}).json()
        assert info["key"] == key and info["info"]["key_alias"] == "dify" and "token" not in info["info"]
        missing = http.get("/key/info", params={"key": "sk-nope"})
        assert missing.status_code == 404 and missing.json()["error"]["message"] == "Key not found in database"
        own = http.get("/key/info", headers={"Authorization": f"Bearer {key}"})
        assert own.json()["info"]["key_alias"] == "dify"


def test_litellm_forwards_with_the_master_key_in_place_of_a_virtual_key():
    def upstream(handler, _body):
        if handler.path == "/v1/models":
            answer(handler, 200, {"object": "list", "data": [{"id": "chat"}, {"id": "big"}]})
        else:
            answer(handler, 418, {"path": handler.path}, headers=[("X-Upstream", "yes")])

    with (
        backend(upstream) as (url, seen),
        apps.AppStandIn("litellm-keys", master_key=MASTER, forward=url) as app,
        client(app) as http,
    ):
        generated = http.post("/key/generate", json={"key_alias": "a", "models": ["chat"]}, headers=AS_MASTER)
        as_key = {"Authorization": f"Bearer {generated.json()['key']}"}
        relayed = http.post("/v1/chat/completions?x=1", json={"model": "chat"}, headers=as_key)
        assert relayed.status_code == 418 and relayed.json() == {"path": "/v1/chat/completions?x=1"}
        assert relayed.headers["X-Upstream"] == "yes"
        assert seen[-1][2]["authorization"] == f"Bearer {MASTER}" and json.loads(seen[-1][3]) == {"model": "chat"}
        assert http.get("/v1/models", headers=as_key).json()["data"] == [{"id": "chat"}]  # only the key's models
        assert len(http.get("/v1/models", headers=AS_MASTER).json()["data"]) == 2
        http.get("/health/readiness")
        assert "authorization" not in seen[-1][2]  # nothing to replace: passed on as it came
        count = len(seen)
        assert http.get("/health/liveliness").status_code == 200 and len(seen) == count  # answered here
        unknown = http.post("/v1/chat/completions", json={"model": "chat"}, headers={"Authorization": "Bearer sk-no"})
        assert unknown.status_code == 401 and unknown.json()["error"]["type"] == "token_not_found_in_db"
        other_model = http.post("/v1/chat/completions", json={"model": "big"}, headers=as_key)
        assert other_model.status_code == 403 and other_model.json()["error"]["type"] == "key_model_access_denied"
        app.state["keys"][generated.json()["token_id"]]["expires"] = "2000-01-01T00:00:00+00:00"
        expired = http.post("/v1/chat/completions", json={"model": "chat"}, headers=as_key)
        assert expired.status_code == 401 and expired.json()["error"]["type"] == "expired_key"
        assert len(seen) == count  # refused here, never forwarded


def test_litellm_streams_the_forwarded_answer_chunk_by_chunk():
    release = threading.Event()
    released: list[bool] = []

    def stream(handler, _body):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for index, piece in enumerate((b"data: first\n\n", b"data: second\n\n", b"data: [DONE]\n\n")):
            if index == 1:  # the second piece waits until the client has the first
                released.append(release.wait(5))
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")

    with (
        backend(stream) as (url, _seen),
        apps.AppStandIn("litellm-keys", master_key=MASTER, forward=url) as app,
        client(app) as http,
    ):
        key = http.post("/key/generate", json={"key_alias": "s"}, headers=AS_MASTER).json()["key"]
        request = {"model": "chat", "stream": True}
        auth = {"Authorization": f"Bearer {key}"}
        with http.stream("POST", "/v1/chat/completions", json=request, headers=auth) as response:
            pieces = response.iter_raw()
            first = next(pieces)
            release.set()
            rest = b"".join(pieces)
    assert released == [True]  # the first piece arrived before the upstream sent the second
    assert first == b"data: first\n\n"
    assert rest == b"data: second\n\ndata: [DONE]\n\n"
    assert response.headers["content-type"] == "text/event-stream"


def test_litellm_without_its_proxy_answers_502_and_without_forward_only_liveliness():
    with apps.AppStandIn("litellm-keys", master_key=MASTER, forward=apps.unused_url()) as app, client(app) as http:
        down = http.post("/v1/chat/completions", json={"model": "chat"}, headers=AS_MASTER)
        assert down.status_code == 502 and "not reachable" in down.json()["error"]["message"]
    with apps.AppStandIn("litellm-keys", master_key=MASTER) as app, client(app) as http:
        assert http.get("/health/liveliness").text == "I'm alive!"
        assert http.get("/v1/models", headers=AS_MASTER).status_code == 404


# --- MLflow -----------------------------------------------------------------------------------------------------------

MLFLOW_PASSWORD = "mlflow-admin-pw"


def test_mlflow_basic_auth_admin_and_its_host_guard():
    # 3.18 server/auth/__init__.py: /health open; anything else 401 with the realm unless the admin's basic auth
    with (
        apps.AppStandIn("mlflow", admin_password=MLFLOW_PASSWORD, secret_key="k", allowed_hosts=["ml.example"]) as app,
        client(app, headers={"Host": "ml.example"}) as http,
    ):
        assert http.get("/health").text == "OK"
        for auth in (None, ("admin", "wrong-password-123"), ("other", MLFLOW_PASSWORD)):
            refused = http.get("/api/2.0/mlflow/users/current", auth=auth)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == 'Basic realm="mlflow"'
        right = http.get("/api/2.0/mlflow/users/current", auth=("admin", MLFLOW_PASSWORD))
        assert right.status_code == 200 and right.json()["user"] == {"id": 1, "username": "admin", "is_admin": True}
        elsewhere = http.get("/api/2.0/mlflow/users/current", auth=("admin", MLFLOW_PASSWORD), headers={"Host": "x"})
        assert elsewhere.status_code == 403  # MLFLOW_SERVER_ALLOWED_HOSTS, before any sign-in
        assert http.get("/health", headers={"Host": "x"}).status_code == 200  # the healthcheck is exempt


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"secret_key": "k"}, "needs a password to create the admin user 'admin'"),
        ({"secret_key": "k", "admin_password": "short"}, "at least 12 characters"),
        ({"admin_password": MLFLOW_PASSWORD}, "MLFLOW_FLASK_SERVER_SECRET_KEY"),
    ],
)
def test_mlflow_will_not_start_without_its_admin_password_or_secret_key(settings, said):
    with pytest.raises(SystemExit, match=said):
        apps.AppStandIn("mlflow", **settings)


def test_mlflow_settings_come_from_the_rendered_environment_over_its_ini(tmp_path):
    ini = tmp_path / "basic_auth.ini"
    ini.write_text("[mlflow]\nadmin_username = boss\nadmin_password = from-the-ini-123\n")
    environ = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "k"}
    assert apps.settings_from_environ("mlflow", environ)["admin_password"] == "from-the-ini-123"
    environ |= {"MLFLOW_AUTH_ADMIN_PASSWORD": MLFLOW_PASSWORD, "MLFLOW_SERVER_ALLOWED_HOSTS": "a:1, b"}
    settings = apps.settings_from_environ("mlflow", environ)
    assert settings == {"admin_username": "boss", "admin_password": MLFLOW_PASSWORD, "secret_key": "k",
                        "allowed_hosts": ["a:1", "b"]}  # fmt: skip
