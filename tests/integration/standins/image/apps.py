"""Protocol stand-ins for the first-run/setup HTTP APIs of the platform's apps (stdlib only; baked next to serve.py as
/standin/apps.py).

Each protocol answers, for the few endpoints a configure step calls, with the status codes, JSON shapes, cookies and
error messages of the upstream version named below (facts from the research notes, each with its upstream source;
"unsure" marks what those notes or sources left open). Anything else gets the app's own "not found" answer.

    openwebui     Open WebUI 0.11.4: /health, /api/config (onboarding), signup/signin, /api/models,
                  /api/v1/configs/models, the RAG embedding config (/api/v1/retrieval/embedding[/update])
    dify          Dify 1.13.3 console API: /health, setup/init (Flask `session` cookie; setup writes the workspace's
                  private key to storage, OPENDAL_FS_ROOT), login (base64 password,
                  access_token/refresh_token/csrf_token cookies, X-CSRF-Token header), plugins, model credentials
                  (added, read with the key masked, updated), model listing, default model
    n8n           n8n 2.41 (npm's n8n@2.41.3; the catalog pins 2.41.7): /healthz, /rest/settings, owner setup, login
                  (cookie n8n-auth, Secure by default), /rest/api-keys (made, listed, deleted; one per label),
                  public API /api/v1/credentials (X-N8N-API-KEY; made, listed, updated by PATCH)
    flowise       Flowise 3.1.4: ping, account/register, auth/login (cookies `token` + the express session
                  `connect.sid`, Secure under an https APP_URL and then set only over https, as X-Forwarded-Proto
                  says), API keys, credentials encrypted with the key of $HOME/.flowise/encryption.key (or
                  SECRETKEY_PATH, FLOWISE_SECRETKEY_OVERWRITE), read back decrypted and updated (PUT),
                  /api/v1/metrics (Bearer key); its data in the Postgres database the compose file names, as upstream
    grafana       Grafana 12.4: /api/health, basic auth, /api/user, /api/datasources/uid/<uid>/health; grafana.db made
                  under GF_PATHS_DATA at start (no start without it, as upstream)
    qdrant        Qdrant 1.16: collections (and whether one exists), points (upsert, scroll), collection snapshots
                  (create, list, recover from a file:// location inside the snapshots path, delete), the `api-key`
                  header
    mlflow        MLflow 3.18 with its basic-auth app: /health open, every other path the admin's basic auth (401 with
                  its realm otherwise), the Host guard, /api/2.0/mlflow/users/current
    litellm-keys  LiteLLM 1.89.7 key management as with a database (/key/generate, /key/list, /key/info) in front of a
                  real LiteLLM proxy without one: every other path is forwarded (setting `forward`), a virtual key
                  replaced by the master key, the answer streamed back unchanged

In a container (serve.py dispatches here): `serve(protocol, port, settings_from_environ(protocol, os.environ))`, or
`STANDIN_APP=<protocol> STANDIN_PORT=<port> python3 apps.py`; `make_handler(protocol, settings)` gives the handler
class alone (its server needs `state`, `lock` and `requests`: `make_server` adds them). Environment per protocol (all
optional; in process, the defaults are the classes' `defaults`, e.g. Flowise's metrics on):

    every protocol  STANDIN_FAIL="/path=503,POST /other=500" answers that status on that path (to that method
                    only when one is named: the `fail` knob)
    openwebui       WEBUI_ADMIN_EMAIL, WEBUI_ADMIN_PASSWORD, WEBUI_ADMIN_NAME (headless admin at start, as upstream),
                    OPENAI_API_BASE_URL(S) + OPENAI_API_KEY(S) (models fetched from `<base>/models`, else
                    STANDIN_MODELS="a,b"), DEFAULT_MODELS, ENABLE_SIGNUP, WEBUI_AUTH_COOKIE_SECURE,
                    RAG_EMBEDDING_ENGINE, RAG_EMBEDDING_MODEL, RAG_OPENAI_API_BASE_URL, RAG_OPENAI_API_KEY,
                    RAG_OLLAMA_BASE_URL (the embedding config's seeds)
    dify            INIT_PASSWORD, STORAGE_TYPE / OPENDAL_SCHEME / OPENDAL_FS_ROOT (where setup writes),
                    STANDIN_MARKETPLACE=1 (the marketplace is reachable; default: offline, as in the test networks),
                    STANDIN_PROBE=1 (adding a model credential calls its endpoint_url, as the plugin does)
    n8n             N8N_PUBLIC_API_DISABLED, N8N_SECURE_COOKIE (default true: the n8n-auth cookie is Secure)
    flowise         ENABLE_METRICS (only "true" mounts /api/v1/metrics), SECURE_COOKIES / NODE_ENV / APP_URL,
                    TRUST_PROXY, HOME / SECRETKEY_PATH / FLOWISE_SECRETKEY_OVERWRITE (the encryption key),
                    DATABASE_TYPE=postgres + DATABASE_HOST/PORT/NAME/USER/PASSWORD (the state kept there, via psql)
    grafana         GF_SECURITY_ADMIN_USER, GF_SECURITY_ADMIN_PASSWORD, GF_PATHS_DATA / GF_PATHS_PLUGINS (the image's),
                    STANDIN_DATASOURCES="prometheus" (provisioned uids), STANDIN_PROMETHEUS_URL (the datasource health
                    check really queries it)
    mlflow          MLFLOW_AUTH_ADMIN_USERNAME / MLFLOW_AUTH_ADMIN_PASSWORD over MLFLOW_AUTH_CONFIG_PATH's ini,
                    MLFLOW_FLASK_SERVER_SECRET_KEY (both needed to start), MLFLOW_SERVER_ALLOWED_HOSTS
    litellm-keys    LITELLM_MASTER_KEY, STANDIN_FORWARD (e.g. http://127.0.0.1:4001, the LiteLLM proxy without a DB)

In process (tests): `with AppStandIn("dify", init_password="x") as app:` serves on 127.0.0.1 (free port) in a thread,
with `app.url`, `app.state` (the stand-in's data), `app.requests` ([(method, path without query), ...]) and
`app.stop()`. Settings are the lower-case names in each class's `defaults`, plus `fail={"/path": status}` (or
`{"POST /path": status}`: that method only). A service that is down is a stand-in never started: `unused_url()` gives a
URL nothing listens on. What a test checks after configure is the state itself (`app.state`: Open WebUI's connection
and its key, n8n's and Flowise's credentials with their data, Dify's model credentials and default models, LiteLLM's
keys by hash and alias, each app's accounts), not only the answers configure was given.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import email.parser
import email.policy
import fnmatch
import hashlib
import http.client
import io
import json
import math
import os
import re
import secrets
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import traceback
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "host"}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def json_type(value: Any) -> str:
    """The type name JavaScript validators report."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "unknown"
    )


def outbound(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 10.0):
    """One HTTP call to another service, ignoring proxy variables: (status, reason, body). OSError if it fails."""
    parts = urlsplit(url)
    connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = connection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers or {})
        response = conn.getresponse()
        return response.status, response.reason, response.read()
    finally:
        conn.close()


def unused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: a service that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class Reply(Exception):
    """Answer at once: raised by a route (or its checks) with the status, the body and extra headers."""

    def __init__(self, status: int, body: Any = None, headers: tuple = ()) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers


class AppHandler(BaseHTTPRequestHandler):
    """The shared base: routing, the `fail` knob, body/cookie parsing, JSON replies. State lives on the server."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK wait per request
    name = "app"
    # (method or "*", path regex, method name); a route named in `unlocked` runs without the state lock (streaming).
    routes: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    unlocked: ClassVar[frozenset[str]] = frozenset()
    extra_headers: ClassVar[tuple[tuple[str, str], ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    settings: ClassVar[dict[str, Any]] = {}

    @classmethod
    def initial_state(cls, settings: dict) -> dict:
        return {}

    def error(self, status: int, message: str) -> Any:
        """The body this app gives for an error it raises itself (not found, forced failure)."""
        return {"detail": message}

    def authorize(self) -> None:
        """Checks every request passes before its route (an app-wide auth gate)."""

    # --- plumbing ---------------------------------------------------------------------------------------------------

    @property
    def state(self) -> dict:
        return self.server.state  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.route_path = url.path
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.body = self.read_body()
        try:
            self.data = json.loads(self.body) if self.body else None
        except ValueError:
            self.data = None
        pairs = (item.strip().partition("=") for item in self.headers.get("Cookie", "").split(";"))
        self.cookies = {key: value.strip('"') for key, sep, value in pairs if sep}
        self.out_cookies: list[str] = []
        self.streaming = False
        self.server.requests.append((self.command, url.path))  # type: ignore[attr-defined]
        try:
            fail = self.settings["fail"]
            forced = fail.get(f"{self.command} {url.path}") or fail.get(url.path)
            if forced:
                raise Reply(forced, self.error(forced, f"stand-in {self.name}: forced failure on {url.path}"))
            name, groups = self.match()
            if name in self.unlocked:
                result = getattr(self, name)(**groups)
            else:
                with self.server.lock:  # type: ignore[attr-defined]
                    self.authorize()
                    result = getattr(self, name)(**groups)
            if result is not None:
                self.reply(*result)
        except Reply as answer:
            self.reply(answer.status, answer.body, answer.headers)
        except Exception:  # a stand-in bug: say so with a 500 rather than a dropped connection
            traceback.print_exc()
            if not self.streaming:
                self.reply(500, self.error(500, f"stand-in {self.name}: internal error"))

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def match(self) -> tuple[str, dict]:
        method = "GET" if self.command == "HEAD" else self.command
        path_matched = False
        for route_method, pattern, name in self.routes:
            found = re.fullmatch(pattern, self.route_path)
            if found:
                if route_method in ("*", method):
                    return name, found.groupdict()
                path_matched = True
        if path_matched:
            raise Reply(405, self.error(405, "Method Not Allowed"))
        return "not_found", {}

    def not_found(self) -> tuple:
        return 404, self.error(404, "Not Found")

    def reply(self, status: int, body: Any = None, headers: tuple = ()) -> None:
        content_type = "application/json"
        if isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        elif body is None:
            payload = b""
        else:
            payload = json.dumps(body).encode()
        names = {key.lower() for key, _ in headers}
        self.send_response(status)
        if "content-type" not in names and payload:
            self.send_header("Content-Type", content_type)
        for key, value in (*self.extra_headers, *headers):
            self.send_header(key, value)
        for cookie in self.out_cookies:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    def set_cookie(self, name: str, value: str, *, max_age: int | None = None, httponly=True, secure=False, lax=True):
        parts = [f"{name}={value}", "Path=/"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        parts += ["HttpOnly"] * httponly + ["Secure"] * secure + ["SameSite=Lax"] * lax
        self.out_cookies.append("; ".join(parts))

    def field(self, key: str) -> Any:
        return self.data.get(key) if isinstance(self.data, dict) else None

    def arg(self, key: str, default: str | None = None) -> str | None:
        return self.query.get(key, [default])[-1]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        if self.settings.get("log"):
            print(f"{self.name}: {self.client_address[0]} {format % args}", flush=True)


# ======================================================================================================================
# Open WebUI 0.11.4, the catalog's pin, as PyPI's open-webui 0.11.4 wheel has it: open_webui/routers/auths.py
# (signup, signin, create_session_response), utils/auth.py (get_current_user, get_admin_user, validate_password),
# main.py (get_app_config, the headless admin), routers/{openai,ollama,configs}.py (the config forms),
# routers/retrieval.py (get_embedding_config, update_embedding_config: EmbeddingModelUpdateForm), config.py (the RAG_*
# seeds), constants.py, env.py (WEBUI_AUTH_COOKIE_SECURE). The image runs as root (ARG UID=0), its data in
# /app/backend/data.

OWUI_PROHIBITED = (
    "You do not have permission to access this resource. Please contact your administrator for assistance."
)
OWUI_ACTION_PROHIBITED = "The requested action has been restricted as a security measure."
OWUI_INVALID_CRED = "The email or password provided is incorrect. Please check for typos and try logging in again."
OWUI_TOO_LONG = (
    "Uh-oh! The password you entered is too long. Please make sure your password is less than 72 bytes long."
)
OWUI_EMAIL_TAKEN = (
    "Uh-oh! This email is already registered. Sign in with your existing account or choose another email to start anew."
)
OWUI_BAD_EMAIL = (
    "The email format you entered is invalid. Please double-check and make sure you're using a valid email address "
    "(e.g., yourname@example.com)."
)
OWUI_MODELS_KEYS = {
    "DEFAULT_MODELS": "ui.default_models",
    "DEFAULT_PINNED_MODELS": "ui.default_pinned_models",
    "MODEL_ORDER_LIST": "ui.model_order_list",
    "DEFAULT_MODEL_METADATA": "models.default_metadata",
    "DEFAULT_MODEL_PARAMS": "models.default_params",
}
JWT_EXPIRY = 28 * 24 * 3600  # JWT_EXPIRES_IN defaults to "4w" (config.py)
OWUI_EMBEDDING_ENGINES = ("", "ollama", "openai", "azure_openai")  # retrieval/utils.py get_embedding_function
OWUI_EMBEDDING_CONFIGS = {  # the form's nested models: field -> (its keys, the config keys they set, the engine)
    "openai_config": (("url", "key"), ("rag.openai.api_base_url", "rag.openai.api_key"), "openai"),
    "ollama_config": (("url", "key"), ("rag.ollama.base_url", "rag.ollama.api_key"), "ollama"),
    "azure_openai_config": (
        ("url", "key", "version"),
        ("rag.azure_openai.base_url", "rag.azure_openai.api_key", "rag.azure_openai.api_version"),
        "azure_openai",
    ),
}
OWUI_EMBEDDING_TUNING = {  # EmbeddingModelUpdateForm's optional scalars: field -> (config key, type, default)
    "RAG_EMBEDDING_BATCH_SIZE": ("rag.embedding_batch_size", "int", 1),
    "ENABLE_ASYNC_EMBEDDING": ("rag.enable_async_embedding", "bool", True),
    "RAG_EMBEDDING_CONCURRENT_REQUESTS": ("rag.embedding_concurrent_requests", "int", 0),
}
PYDANTIC_TRUE, PYDANTIC_FALSE = ("1", "on", "t", "true", "y", "yes"), ("0", "off", "f", "false", "n", "no")


def fastapi_missing(location: str, name: str, got: Any) -> dict:
    return {"detail": [{"type": "missing", "loc": [location, name], "msg": "Field required", "input": got}]}


PYDANTIC_TYPES = {
    "list": (list, "list_type", "Input should be a valid list"),
    "dict": (dict, "dict_type", "Input should be a valid dictionary"),
    "str": (str, "string_type", "Input should be a valid string"),
}


def fastapi_typed(form: dict, fields: dict[str, str]) -> None:
    """Pydantic's check of a form's typed fields (`list[str]` is "list" whose items are "str"; a name ending in `?` is
    Optional: None passes): a 422 naming the field, as FastAPI answers a body of the wrong shape."""
    for name, kind in fields.items():
        if name not in form or (kind.endswith("?") and form[name] is None):
            continue
        outer, _, inner = kind.rstrip("?").partition("[")
        python, code, message = PYDANTIC_TYPES[outer]
        value = form[name]
        problem = None if isinstance(value, python) else (["body", name], code, message, value)
        for index, item in enumerate(value if problem is None and inner else ()):
            item_type, item_code, item_message = PYDANTIC_TYPES[inner.rstrip("]")]
            if problem is None and not isinstance(item, item_type):
                problem = (["body", name, index], item_code, item_message, item)
        if problem:
            loc, code, message, got = problem
            raise Reply(422, {"detail": [{"type": code, "loc": loc, "msg": message, "input": got}]})


class OpenWebUI(AppHandler):
    name = "openwebui"
    defaults: ClassVar[dict[str, Any]] = {
        "admin_email": None,
        "admin_password": None,
        "admin_name": "Admin",
        "models": [],
        "openai_base_url": None,
        "openai_api_key": "",
        "default_models": None,
        "enable_signup": True,
        "enable_password_auth": True,  # off: routers/auths.py signin answers 403 before it reads the password
        "cookie_secure": False,
        "enable_ollama_api": True,
        "ollama_base_url": None,
        # config.py's RAG seeds: no engine is sentence-transformers inside Open WebUI; RAG_OPENAI_API_BASE_URL and
        # RAG_OPENAI_API_KEY default to OpenAI's own URL and its key (none here), RAG_OLLAMA_BASE_URL to
        # OLLAMA_BASE_URL (the image's /ollama: host.docker.internal:11434 in production)
        "rag_embedding_engine": "",
        "rag_embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
        "rag_openai_base_url": "https://api.openai.com/v1",
        "rag_openai_api_key": "",
        "rag_ollama_base_url": None,
        "aliases": {},  # in process: base URL -> where it really is (http://litellm:4000 -> 127.0.0.1:port)
    }
    routes = (
        ("GET", "/health", "health"),
        ("GET", "/openai/config", "get_openai_config"),
        ("POST", "/openai/config/update", "set_openai_config"),
        ("GET", "/ollama/config", "get_ollama_config"),
        ("POST", "/ollama/config/update", "set_ollama_config"),
        ("GET", "/api/config", "app_config"),
        ("GET", "/api/version", "version"),
        ("POST", "/api/v1/auths/signup", "signup"),
        ("POST", "/api/v1/auths/signin", "signin"),
        ("GET", "/api/(?:v1/)?models", "models"),
        ("GET", "/api/v1/configs/models", "get_models_config"),
        ("POST", "/api/v1/configs/models", "set_models_config"),
        ("GET", "/api/v1/retrieval/embedding", "get_embedding_config"),
        ("POST", "/api/v1/retrieval/embedding/update", "set_embedding_config"),
    )

    @classmethod
    def initial_state(cls, settings: dict) -> dict:
        state: dict = {
            "users": {},  # id -> {id, email, name, role, password}
            "tokens": {},  # JWT -> user id
            "config": {
                "ui.enable_signup": settings["enable_signup"],
                "ui.default_models": settings["default_models"],
                "ui.default_pinned_models": None,
                "ui.model_order_list": [],
                "models.default_metadata": {},
                "models.default_params": {},
                # Seeded from the environment at the first start, then kept (ENABLE_PERSISTENT_CONFIG): routers
                # openai.py / ollama.py read and write these, and the model list follows them.
                "openai.enable": True,
                "openai.api_base_urls": [settings["openai_base_url"]] if settings["openai_base_url"] else [],
                "openai.api_keys": [settings["openai_api_key"]] if settings["openai_base_url"] else [],
                "openai.api_configs": {},
                "ollama.enable": settings["enable_ollama_api"],
                "ollama.base_urls": [settings["ollama_base_url"]] if settings["ollama_base_url"] else [],
                "ollama.api_configs": {},
                # routers/retrieval.py reads and writes these (RETRIEVAL_CONFIG_KEYS), seeded the same way
                "rag.embedding_engine": settings["rag_embedding_engine"],
                "rag.embedding_model": settings["rag_embedding_model"],
                "rag.embedding_batch_size": 1,
                "rag.enable_async_embedding": True,
                "rag.embedding_concurrent_requests": 0,
                "rag.openai.api_base_url": settings["rag_openai_base_url"],
                "rag.openai.api_key": settings["rag_openai_api_key"],
                "rag.ollama.base_url": settings["rag_ollama_base_url"]
                or settings["ollama_base_url"]
                or "http://host.docker.internal:11434",
                "rag.ollama.api_key": "",
                "rag.azure_openai.base_url": "",
                "rag.azure_openai.api_key": "",
                "rag.azure_openai.api_version": "",
            },
        }
        if settings["admin_email"] and settings["admin_password"]:  # main.py: headless admin, then signup off
            cls.add_user(state, settings["admin_email"], settings["admin_password"], settings["admin_name"], "admin")
            state["config"]["ui.enable_signup"] = False
        return state

    @staticmethod
    def add_user(state: dict, address: str, password: str, name: str, role: str) -> dict:
        user = {"id": str(uuid.uuid4()), "email": address.lower(), "name": name, "role": role, "password": password}
        state["users"][user["id"]] = user
        return user

    def current_user(self) -> dict:
        """utils/auth.py get_current_user: Bearer first, then the `token` cookie."""
        token = self.bearer() or self.cookies.get("token")
        if not token:
            raise Reply(401, {"detail": "Not authenticated"})
        user = self.state["users"].get(self.state["tokens"].get(token))
        if user is None:  # a JWT that does not decode gives data None: "401 Unauthorized"
            raise Reply(401, {"detail": "401 Unauthorized"})
        return user

    def admin(self) -> dict:
        user = self.current_user()
        if user["role"] != "admin":  # get_admin_user answers 401, not 403
            raise Reply(401, {"detail": OWUI_PROHIBITED})
        return user

    def session(self, user: dict) -> tuple:
        token = "eyJ" + secrets.token_urlsafe(32)
        self.state["tokens"][token] = user["id"]
        self.set_cookie("token", token, max_age=JWT_EXPIRY, secure=self.settings["cookie_secure"])
        public = {key: user[key] for key in ("id", "email", "name", "role")}
        return 200, {
            "token": token,
            "token_type": "Bearer",
            "expires_at": int(time.time()) + JWT_EXPIRY,
            **public,
            "profile_image_url": f"/api/v1/users/{user['id']}/profile/image",
            "permissions": {"chat": {}, "features": {}, "workspace": {}},
        }

    def health(self) -> tuple:
        return 200, {"status": True}

    def version(self) -> tuple:
        return 200, {"version": "0.11.4", "deployment_id": "standin"}

    def app_config(self) -> tuple:
        token = self.bearer() or self.cookies.get("token")
        user = self.state["users"].get(self.state["tokens"].get(token)) if token else None
        config = self.state["config"]
        body: dict = {} if user or self.state["users"] else {"onboarding": True}  # absent, not false, once users exist
        body |= {
            "status": True,
            "name": "Open WebUI",
            "version": "0.11.4",
            "default_locale": "",
            "oauth": {"providers": {}, "auto_redirect": False},
            "features": {
                "auth": True,
                "auth_trusted_header": False,
                "enable_signup_password_confirmation": False,
                "enable_ldap": False,
                "enable_signup": config["ui.enable_signup"],
                "enable_login_form": True,
                "enable_websocket": True,
            },
        }
        if user and user["role"] in ("admin", "user"):
            body |= {"default_models": config["ui.default_models"]}
            body |= {"default_pinned_models": config["ui.default_pinned_models"]}
        return 200, body

    def signup(self) -> tuple:
        form = self.data if isinstance(self.data, dict) else {}
        for key in ("name", "email", "password"):
            if not isinstance(form.get(key), str):
                raise Reply(422, fastapi_missing("body", key, form))
        if self.state["users"] and not self.state["config"]["ui.enable_signup"]:
            raise Reply(403, {"detail": OWUI_PROHIBITED})
        address = form["email"].lower()
        if not (address.endswith("@localhost") or re.match(r"[^@]+@[^@]+\.[^@]+", address)):
            raise Reply(400, {"detail": OWUI_BAD_EMAIL})
        if any(user["email"] == address for user in self.state["users"].values()):
            raise Reply(400, {"detail": OWUI_EMAIL_TAKEN})
        if len(form["password"].encode()) > 72:  # bcrypt's limit (utils/auth.py validate_password)
            raise Reply(400, {"detail": OWUI_TOO_LONG})
        first = not self.state["users"]
        user = self.add_user(self.state, address, form["password"], form["name"], "admin" if first else "pending")
        if first:
            self.state["config"]["ui.enable_signup"] = False
        return self.session(user)

    def signin(self) -> tuple:
        # Not modelled: the rate limit (15 attempts per 180 s per email -> 429).
        if not self.settings["enable_password_auth"]:
            raise Reply(403, {"detail": OWUI_ACTION_PROHIBITED})
        form = self.data if isinstance(self.data, dict) else {}
        for key in ("email", "password"):
            if not isinstance(form.get(key), str):
                raise Reply(422, fastapi_missing("body", key, form))
        address = form["email"].lower()
        user = next((user for user in self.state["users"].values() if user["email"] == address), None)
        if user is None or user["password"] != form["password"]:
            raise Reply(400, {"detail": OWUI_INVALID_CRED})
        return self.session(user)

    def get_openai_config(self) -> tuple:
        self.admin()
        config = self.state["config"]
        return 200, {
            "ENABLE_OPENAI_API": config["openai.enable"],
            "OPENAI_API_BASE_URLS": config["openai.api_base_urls"],
            "OPENAI_API_KEYS": config["openai.api_keys"],
            "OPENAI_API_CONFIGS": config["openai.api_configs"],
        }

    def set_openai_config(self) -> tuple:
        self.admin()
        form = self.data if isinstance(self.data, dict) else {}
        for key in ("OPENAI_API_BASE_URLS", "OPENAI_API_KEYS", "OPENAI_API_CONFIGS"):
            if key not in form:
                raise Reply(422, fastapi_missing("body", key, form))
        # routers/openai.py OpenAIConfigForm: a key given as one string (not a list) is refused, not split up
        fastapi_typed(
            form, {"OPENAI_API_BASE_URLS": "list[str]", "OPENAI_API_KEYS": "list[str]", "OPENAI_API_CONFIGS": "dict"}
        )
        urls, keys = (
            list(form["OPENAI_API_BASE_URLS"]),
            list(form["OPENAI_API_KEYS"])[: len(form["OPENAI_API_BASE_URLS"])],
        )
        keys += [""] * (len(urls) - len(keys))  # routers/openai.py update_config: keys padded or cut to the URLs
        config = self.state["config"]
        config |= {
            "openai.enable": form.get("ENABLE_OPENAI_API"),
            "openai.api_base_urls": urls,
            "openai.api_keys": keys,
        }
        config["openai.api_configs"] = {
            k: v for k, v in form["OPENAI_API_CONFIGS"].items() if k in map(str, range(len(urls)))
        }
        return self.get_openai_config()

    def get_ollama_config(self) -> tuple:
        self.admin()
        config = self.state["config"]
        return 200, {
            "ENABLE_OLLAMA_API": config["ollama.enable"],
            "OLLAMA_BASE_URLS": config["ollama.base_urls"],
            "OLLAMA_API_CONFIGS": config["ollama.api_configs"],
        }

    def set_ollama_config(self) -> tuple:
        self.admin()
        form = self.data if isinstance(self.data, dict) else {}
        for key in ("OLLAMA_BASE_URLS", "OLLAMA_API_CONFIGS"):
            if key not in form:
                raise Reply(422, fastapi_missing("body", key, form))
        fastapi_typed(form, {"OLLAMA_BASE_URLS": "list[str]", "OLLAMA_API_CONFIGS": "dict"})  # routers/ollama.py
        self.state["config"] |= {
            "ollama.enable": form.get("ENABLE_OLLAMA_API"),
            "ollama.base_urls": list(form["OLLAMA_BASE_URLS"]),
            "ollama.api_configs": dict(form["OLLAMA_API_CONFIGS"]),
        }
        return self.get_ollama_config()

    def real(self, url: str) -> str:
        for alias, target in self.settings["aliases"].items():
            if url.startswith(alias):
                return target + url[len(alias) :]
        return url

    def ollama_models(self) -> list[dict]:
        """What the direct Ollama connection lists (GET <base>/api/tags), when it is on."""
        config = self.state["config"]
        found = []
        for base in config["ollama.base_urls"] if config["ollama.enable"] else []:
            try:
                status, _, body = outbound("GET", self.real(base).rstrip("/") + "/api/tags")
                if status == 200:
                    found += [m for m in json.loads(body).get("models", []) if isinstance(m, dict) and m.get("model")]
            except (OSError, ValueError, AttributeError):
                pass
        return found

    def upstream_models(self) -> list[dict]:
        """The OpenAI connection's `<base>/models` list; without a reachable base, the `models` setting."""
        config = self.state["config"]
        base = config["openai.api_base_urls"][0] if config["openai.enable"] and config["openai.api_base_urls"] else None
        if base:
            try:
                headers = {"Authorization": f"Bearer {config['openai.api_keys'][0]}"}
                status, _, body = outbound("GET", self.real(base).rstrip("/") + "/models", headers=headers)
                if status == 200:
                    return [item for item in json.loads(body)["data"] if isinstance(item, dict) and item.get("id")]
            except (OSError, ValueError, KeyError, TypeError):
                pass  # upstream would list no model from this connection; the stand-in falls back to `models`
        return [{"id": name, "object": "model", "created": 0, "owned_by": "openai"} for name in self.settings["models"]]

    def models(self) -> tuple:
        if self.current_user()["role"] not in ("admin", "user"):
            raise Reply(401, {"detail": OWUI_PROHIBITED})
        merged = {}
        for raw in self.ollama_models():  # utils/models.py: for a name both list, the Ollama entry wins
            name = raw["model"]
            merged[name] = {"id": name, "name": name, "object": "model", "owned_by": "ollama", "ollama": raw}
        for raw in self.upstream_models():  # routers/openai.py get_merged_models
            merged.setdefault(
                raw["id"],
                {
                    **raw,
                    "name": raw.get("name", raw["id"]),
                    "owned_by": "openai",
                    "openai": raw,
                    "connection_type": raw.get("connection_type", "external"),
                    "provider": raw.get("provider", ""),
                    "urlIdx": 0,
                    "tags": raw.get("tags", []),
                },
            )
        return 200, {"data": list(merged.values())}

    def models_config(self) -> dict:
        return {key: self.state["config"][name] for key, name in OWUI_MODELS_KEYS.items()}

    def get_models_config(self) -> tuple:
        self.admin()
        return 200, self.models_config()

    def set_models_config(self) -> tuple:
        self.admin()  # dependencies (auth) fail before body validation (422)
        form = self.data if isinstance(self.data, dict) else {}
        for key in ("DEFAULT_MODELS", "DEFAULT_PINNED_MODELS", "MODEL_ORDER_LIST"):  # `X | None` without a default
            if key not in form:
                raise Reply(422, fastapi_missing("body", key, form))
        fastapi_typed(  # routers/configs.py ModelsConfigForm: one model name per string, not a list
            form,
            {
                "DEFAULT_MODELS": "str?",
                "DEFAULT_PINNED_MODELS": "str?",
                "MODEL_ORDER_LIST": "list[str]?",
                "DEFAULT_MODEL_METADATA": "dict?",
                "DEFAULT_MODEL_PARAMS": "dict?",
            },
        )
        for key, name in OWUI_MODELS_KEYS.items():  # model_dump(): the two optional keys become None when left out
            self.state["config"][name] = form.get(key)
        return 200, self.models_config()

    def embedding_config(self) -> dict:
        config = self.state["config"]
        return {
            "status": True,
            "RAG_EMBEDDING_ENGINE": config["rag.embedding_engine"],
            "RAG_EMBEDDING_MODEL": config["rag.embedding_model"],
            **{field: config[key] for field, (key, _, _) in OWUI_EMBEDDING_TUNING.items()},
            **{
                field: {name: config[key] for name, key in zip(names, keys, strict=True)}
                for field, (names, keys, _) in OWUI_EMBEDDING_CONFIGS.items()
            },
        }

    def get_embedding_config(self) -> tuple:
        self.admin()
        return 200, self.embedding_config()

    def set_embedding_config(self) -> tuple:
        """update_embedding_config: the engine and model always, the three tuning fields from the form (their
        defaults when left out), the nested config of the chosen engine only (others ignored, as are unknown
        fields); an engine get_embedding_function does not know is a 500 and nothing is saved."""
        self.admin()  # get_admin_user runs before the body is validated
        form = embedding_update_form(self.data)
        if form["RAG_EMBEDDING_ENGINE"] not in OWUI_EMBEDDING_ENGINES:
            raise Reply(500, {"detail": "[ERROR: Error updating embedding configuration]"})
        config = self.state["config"]
        config["rag.embedding_engine"] = form["RAG_EMBEDDING_ENGINE"]
        config["rag.embedding_model"] = form["RAG_EMBEDDING_MODEL"].strip()
        for field, (key, _, _) in OWUI_EMBEDDING_TUNING.items():
            config[key] = form[field]
        for field, (names, keys, engine) in OWUI_EMBEDDING_CONFIGS.items():
            if form["RAG_EMBEDDING_ENGINE"] == engine and form[field] is not None:
                for name, key in zip(names, keys, strict=True):
                    config[key] = form[field].get(name) or ""
        return 200, self.embedding_config()


def pydantic_value(value: Any, kind: str, loc: list) -> tuple[Any, dict | None]:
    """Pydantic 2's lax coercion of one JSON value to `int`, `bool` or `str` (None passes: every such field of the form
    is Optional but the two required strings): the value as the model holds it, or FastAPI's error entry."""
    error = None
    if value is None or kind == "str":
        if value is None or isinstance(value, str):
            return value, None
        error = ("string_type", "Input should be a valid string")
    elif kind == "int":
        if isinstance(value, bool | int):
            return int(value), None
        if isinstance(value, float):
            if value.is_integer():
                return int(value), None
            error = ("int_from_float", "Input should be a valid integer, got a number with a fractional part")
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value.strip())
                if number.is_integer():
                    return int(number), None
            error = ("int_parsing", "Input should be a valid integer, unable to parse string as an integer")
        else:
            error = ("int_type", "Input should be a valid integer")
    else:
        text = value.strip().lower() if isinstance(value, str) else value
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str | int | float) and text in (*PYDANTIC_TRUE, *PYDANTIC_FALSE, 0, 1):
            return text in (*PYDANTIC_TRUE, 1), None
        error = (
            ("bool_parsing", "Input should be a valid boolean, unable to interpret input")
            if isinstance(value, str | int | float)
            else ("bool_type", "Input should be a valid boolean")
        )
    return None, {"type": error[0], "loc": loc, "msg": error[1], "input": value}


def embedding_update_form(data: Any) -> dict:
    """routers/retrieval.py EmbeddingModelUpdateForm as FastAPI validates it: RAG_EMBEDDING_ENGINE and
    RAG_EMBEDDING_MODEL required strings, the nested configs objects of optional strings, the tuning fields optional
    int/bool with their defaults; every error in one 422, as pydantic reports them."""
    if not isinstance(data, dict):
        message = "Input should be a valid dictionary or object to extract fields from"
        raise Reply(
            422, {"detail": [{"type": "model_attributes_type", "loc": ["body"], "msg": message, "input": data}]}
        )
    form: dict[str, Any] = {}
    errors: list[dict] = []
    for field, (names, _, _) in OWUI_EMBEDDING_CONFIGS.items():
        nested = data.get(field)
        if nested is not None and not isinstance(nested, dict):
            message = "Input should be a valid dictionary or object to extract fields from"
            errors.append({"type": "model_attributes_type", "loc": ["body", field], "msg": message, "input": nested})
            continue
        form[field] = None if nested is None else {}
        for name in names if nested is not None else ():
            form[field][name], error = pydantic_value(nested.get(name), "str", ["body", field, name])
            errors += [error] if error else []
    for field in ("RAG_EMBEDDING_ENGINE", "RAG_EMBEDDING_MODEL"):
        if field not in data or data[field] is None:
            if field not in data:
                errors.append(fastapi_missing("body", field, data)["detail"][0])
            else:
                message = "Input should be a valid string"
                errors.append({"type": "string_type", "loc": ["body", field], "msg": message, "input": None})
            continue
        form[field], error = pydantic_value(data[field], "str", ["body", field])
        errors += [error] if error else []
    for field, (_, kind, default) in OWUI_EMBEDDING_TUNING.items():
        form[field], error = pydantic_value(data.get(field, default), kind, ["body", field])
        errors += [error] if error else []
    if errors:
        raise Reply(422, {"detail": errors})
    return form


# ======================================================================================================================
# Dify 1.13.3 console API (api/controllers/console/{setup,init_validate,auth/login}.py, workspace/{plugin,models}.py,
# api/libs/{external_api,token,login,password,rsa}.py, fastopenapi 0.7 error handler). The api image runs as dify
# (uid 1001, api/Dockerfile) and writes /app/api/storage (OPENDAL_FS_ROOT=storage under WORKDIR /app/api).

DIFY_WS = "/console/api/workspaces/current"
DIFY_FASTAPI_TYPES = {
    400: "bad_request",
    401: "authentication_error",
    403: "authorization_error",
    404: "resource_not_found",
    422: "validation_error",
    500: "internal_server_error",
}
DIFY_MODEL_TYPES = {
    "llm": "llm",
    "text-generation": "llm",
    "text-embedding": "text-embedding",
    "embeddings": "text-embedding",
    "rerank": "rerank",
    "reranking": "rerank",
    "speech2text": "speech2text",
    "moderation": "moderation",
    "tts": "tts",
}
# openai_api_compatible's credential form (models/openai_api_compatible/provider/openai_api_compatible.yaml), only the
# fields the common validator rejects: required ones (a default does not help: "is required" comes first) and selects.
DIFY_OAC_FORM = {
    "llm": {
        "required": ("endpoint_url", "context_size"),
        "defaults": {"mode": "chat", "max_tokens_to_sample": "4096"},
        "options": {
            "mode": ("chat", "completion"),
            "function_calling_type": ("function_call", "tool_call", "no_call"),
            "vision_support": ("support", "no_support"),
        },
    },
    "text-embedding": {
        "required": ("endpoint_url", "context_size", "max_chunks"),
        "defaults": {},
        "options": {"encoding_format": ("not_set", "float")},
    },
}
DIFY_UID = re.compile(r"(?P<plugin_id>[a-z0-9_-]+/[a-z0-9_-]+):(?P<version>[\w.+-]+)@(?P<checksum>[a-f0-9]{32,64})")
DIFY_EMAIL = re.compile(r"^[\w.!#$%&'*+\-/=?^`{|}~]+@([\w-]+\.)+[\w-]{2,}$")


def dify_error(status: int, code: str, message: str) -> Reply:
    """flask-restx routes: {"code", "message", "status"}; a 401 carries WWW-Authenticate."""
    headers = (("WWW-Authenticate", 'Bearer realm="api"'),) if status == 401 else ()
    return Reply(status, {"code": code, "message": message, "status": status}, headers)


def dify_invalid(message: str) -> Reply:
    """A ValueError (pydantic, services) in a restx route."""
    return dify_error(400, "invalid_param", message)


def fastapi_error(status: int, details: str | None = None) -> Reply:
    """FastOpenAPI routes (/setup, /init): Dify's own error codes are lost, only the HTTP reason phrase remains."""
    error: dict[str, Any] = {
        "type": DIFY_FASTAPI_TYPES[status],
        "message": HTTPStatus(status).phrase if details is None else "Validation error for parameter 'payload'",
        "status": status,
    }
    if details is not None:
        error["details"] = details
    return Reply(status, {"error": error})


class Dify(AppHandler):
    name = "dify"
    defaults: ClassVar[dict[str, Any]] = {
        "init_password": None,
        "marketplace": False,  # is https://marketplace.dify.ai reachable?
        "marketplace_plugins": {"langgenius/openai_api_compatible": "0.0.63"},  # what it offers: id -> version
        "probe": False,  # validate model credentials by calling their endpoint_url, as the plugin does
        "cookie_secure": False,  # libs/token.py is_secure(): CONSOLE_WEB_URL and CONSOLE_API_URL both https
        "cookie_domain": None,  # COOKIE_DOMAIN
        "storage": None,  # OpenDAL's fs root (/app/api/storage in the image): the workspace's private key goes there
        "install_error": None,  # the plugin daemon's message when an install task fails (e.g. no pip index reached)
    }
    extra_headers = (("X-Version", "1.13.3"), ("X-Env", "PRODUCTION"))
    routes = (
        ("GET", "/health", "health"),
        ("GET", "/console/api/ping", "ping"),
        ("GET", "/console/api/setup", "get_setup"),
        ("POST", "/console/api/setup", "post_setup"),
        ("GET", "/console/api/init", "get_init"),
        ("POST", "/console/api/init", "post_init"),
        ("POST", "/console/api/login", "login"),
        ("POST", DIFY_WS + "/plugin/list/installations/ids", "installations"),
        ("GET", DIFY_WS + "/plugin/list", "plugin_list"),
        ("POST", DIFY_WS + "/plugin/list/latest-versions", "latest_versions"),
        ("POST", DIFY_WS + "/plugin/install/marketplace", "install_marketplace"),
        ("POST", DIFY_WS + "/plugin/upload/pkg", "upload_pkg"),
        ("POST", DIFY_WS + "/plugin/install/pkg", "install_pkg"),
        ("GET", DIFY_WS + "/plugin/tasks", "tasks"),
        ("GET", DIFY_WS + "/plugin/tasks/(?P<task_id>[^/]+)", "task"),
        ("POST", DIFY_WS + "/model-providers/(?P<provider>.+)/models/credentials", "add_credential"),
        ("GET", DIFY_WS + "/model-providers/(?P<provider>.+)/models/credentials", "get_credentials"),
        ("PUT", DIFY_WS + "/model-providers/(?P<provider>.+)/models/credentials", "update_credential"),
        ("GET", DIFY_WS + "/model-providers/(?P<provider>.+)/models", "list_models"),
        ("GET", DIFY_WS + "/default-model", "get_default_model"),
        ("POST", DIFY_WS + "/default-model", "set_default_model"),
    )

    @classmethod
    def initial_state(cls, settings: dict) -> dict:
        return {
            "setup_at": None,
            "tenant_id": None,
            "accounts": [],  # {id, email, name, password}
            "sessions": {},  # Flask `session` cookie -> its dict (server-side here; upstream signs it into the cookie)
            "access_tokens": {},  # access_token -> account id
            "csrf_tokens": {},  # csrf_token -> account id
            "login_failures": {},  # email -> count
            "packages": {},  # unique identifier -> manifest (what the plugin daemon holds)
            "plugins": {},  # plugin id -> installation
            "tasks": {},
            "credentials": [],  # {id, provider, model, model_type, name, credentials}
            "default_models": {},  # model type -> {provider, model}
        }

    def error(self, status: int, message: str) -> Any:
        """libs/external_api.py handle_http_exception: code from the exception's class name, message its description
        (werkzeug's MethodNotAllowed for a route without that method: a 405)."""
        if status == 405:
            message = "The method is not allowed for the requested URL."
        return {"code": HTTPStatus(status).phrase.lower().replace(" ", "_"), "message": message, "status": status}

    def authorize(self) -> None:
        if self.route_path.startswith("/console/api/workspaces/"):
            self.account()

    def require_setup(self) -> None:
        """wraps.py setup_required."""
        if self.state["setup_at"] is None:
            if self.settings["init_password"]:
                raise dify_error(
                    401,
                    "not_init_validated",
                    "Init validation has not been completed yet. Please proceed with the init validation process "
                    "first.",
                )
            raise dify_error(
                401,
                "not_setup",
                "Dify has not been initialized and installed yet. Please proceed with the initialization and "
                "installation process first.",
            )

    def account(self) -> dict:
        """setup_required, then libs/login.py login_required: the access token (cookie, then Bearer), the CSRF check."""
        self.require_setup()
        token = self.cookies.get(self.cookie_name("access_token")) or self.bearer()
        if not token:
            raise dify_error(401, "unauthorized", "Invalid Authorization token.")
        account_id = self.state["access_tokens"].get(token)
        if account_id is None:
            raise dify_error(401, "unauthorized", "Invalid token.")
        header, cookie = self.headers.get("X-CSRF-Token"), self.cookies.get(self.cookie_name("csrf_token"))
        if not header or header != cookie or self.state["csrf_tokens"].get(header) != account_id:
            raise dify_error(401, "unauthorized", "CSRF token is missing or invalid.")
        return next(account for account in self.state["accounts"] if account["id"] == account_id)

    def cookie_name(self, name: str) -> str:
        """libs/token.py _real_cookie_name: behind https and without COOKIE_DOMAIN, the cookies are `__Host-` ones (set
        Secure whatever the request's protocol, and read only by that name)."""
        secure = self.settings["cookie_secure"] and not self.settings["cookie_domain"]
        return f"__Host-{name}" if secure else name

    def session(self) -> dict:
        key = self.cookies.get("session")
        if key not in self.state["sessions"]:
            key = secrets.token_urlsafe(24)
            self.state["sessions"][key] = {}
        self.set_cookie("session", key, lax=False, secure=self.settings["cookie_secure"])
        return self.state["sessions"][key]

    def init_validated(self) -> bool:
        """init_validate.py get_init_validate_status."""
        if not self.settings["init_password"] or self.state["setup_at"]:
            return True
        return bool(self.state["sessions"].get(self.cookies.get("session"), {}).get("is_init_validated"))

    def health(self) -> tuple:
        return 200, {"pid": os.getpid(), "status": "ok", "version": "1.13.3"}

    def ping(self) -> tuple:
        return 200, {"result": "pong"}

    def get_setup(self) -> tuple:
        if self.state["setup_at"]:
            return 200, {"step": "finished", "setup_at": self.state["setup_at"]}
        return 200, {"step": "not_started", "setup_at": None}

    def get_init(self) -> tuple:
        return 200, {"status": "finished" if self.init_validated() else "not_started"}

    def post_init(self) -> tuple:
        password = self.field("password")
        if not isinstance(password, str) or len(password) > 30:
            raise fastapi_error(422, "password: Field required or longer than 30 characters")
        if self.state["tenant_id"]:
            raise fastapi_error(403)  # AlreadySetupError
        session = self.session()  # Flask saves the session on the error answer too
        session["is_init_validated"] = password == self.settings["init_password"]
        if not session["is_init_validated"]:
            raise fastapi_error(401)  # InitValidateFailedError
        return 201, {"result": "success"}

    def post_setup(self) -> tuple:
        # Body validation (422) runs before everything, so a bad body gets 422 even once set up.
        problems = []
        address, name, password = self.field("email"), self.field("name"), self.field("password")
        if not isinstance(address, str) or not DIFY_EMAIL.match(address):
            problems.append(f"email: Value error, {address} is not a valid email.")
        if not isinstance(name, str) or len(name) > 30:
            problems.append("name: String should have at most 30 characters")
        if not isinstance(password, str) or not re.match(r"^(?=.*[a-zA-Z])(?=.*\d).{8,}$", password):
            problems.append(
                "password: Value error, Password must contain letters and numbers, and the length must be greater "
                "than 8."
            )
        if problems:
            raise fastapi_error(422, "; ".join(problems))
        if self.state["setup_at"] or self.state["tenant_id"]:
            raise fastapi_error(403)  # AlreadySetupError
        if not self.init_validated():
            raise fastapi_error(401)  # NotInitValidateError
        tenant_id = str(uuid.uuid4())
        try:
            self.save_private_key(tenant_id)
        except OSError as exc:  # RegisterService.setup rolls back and raises ValueError("Setup failed: ..."): a 500
            print(f"dify: Setup account failed, email: {address}, name: {name}: {exc}", file=sys.stderr, flush=True)
            raise fastapi_error(500) from None
        self.state["accounts"].append(
            {"id": str(uuid.uuid4()), "email": address.lower(), "name": name, "password": password}
        )
        self.state["tenant_id"] = tenant_id
        self.state["setup_at"] = datetime.now(timezone.utc).replace(tzinfo=None).isoformat()
        return 201, {"result": "success"}  # no cookie: log in next

    def save_private_key(self, tenant_id: str) -> None:
        """The workspace made at setup gets an RSA key pair (libs/rsa.py generate_key_pair): the private half is
        written to storage as privkeys/<tenant>/private.pem, by the image's user (dify, uid 1001)."""
        if not self.settings["storage"]:
            return
        folder = os.path.join(self.settings["storage"], "privkeys", tenant_id)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "private.pem"), "w") as handle:
            handle.write("-----BEGIN RSA PRIVATE KEY-----\nstand-in\n-----END RSA PRIVATE KEY-----\n")

    def login(self) -> tuple:
        self.require_setup()
        try:  # decrypt_password_field: the password is always base64 of the UTF-8 text
            password = base64.b64decode(self.field("password")).decode("utf-8")
        except (TypeError, ValueError):
            raise dify_error(401, "authentication_failed", "Invalid email or password.") from None
        address = self.field("email")
        if not isinstance(address, str) or not DIFY_EMAIL.match(address):
            raise dify_invalid(
                f"1 validation error for LoginPayload\nemail\n  Value error, {address} is not a valid email."
            )
        address = address.lower()
        if self.state["login_failures"].get(address, 0) > 5:  # AccountService.LOGIN_MAX_ERROR_LIMITS
            raise dify_error(
                429, "email_code_login_limit", "Too many incorrect password attempts. Please try again later."
            )
        account = next((item for item in self.state["accounts"] if item["email"] == address), None)
        if account is None or account["password"] != password:
            self.state["login_failures"][address] = self.state["login_failures"].get(address, 0) + 1
            raise dify_error(401, "authentication_failed", "Invalid email or password.")
        self.state["login_failures"].pop(address, None)
        access, csrf = "eyJ" + secrets.token_urlsafe(32), "eyJ" + secrets.token_urlsafe(32)
        self.state["access_tokens"][access] = self.state["csrf_tokens"][csrf] = account["id"]
        secure, name = self.settings["cookie_secure"], self.cookie_name
        self.set_cookie(name("access_token"), access, max_age=3600, secure=secure)
        self.set_cookie(name("refresh_token"), secrets.token_hex(32), max_age=30 * 86400, secure=secure)
        self.set_cookie(name("csrf_token"), csrf, max_age=3600, httponly=False, secure=secure)
        return 200, {"result": "success"}

    # --- plugins ----------------------------------------------------------------------------------------------------

    def marketplace_uid(self, plugin_id: str) -> str:
        version = self.settings["marketplace_plugins"][plugin_id]
        return f"{plugin_id}:{version}@{sha256(f'{plugin_id}:{version}')}"

    def install(self, uids: list, source: str) -> tuple:
        """The daemon's install: {"all_installed": true, "task_id": ""} when every one is already installed."""
        installed = {item["plugin_unique_identifier"] for item in self.state["plugins"].values()}
        pending = [uid for uid in uids if uid not in installed]
        if not pending:
            return 200, {"all_installed": True, "task_id": ""}
        error = self.settings["install_error"]
        task = {"id": str(uuid.uuid4()), "created_at": now_iso(), "updated_at": now_iso()}
        task |= {"status": "failed" if error else "success", "total_plugins": len(pending), "plugins": []}
        task["completed_plugins"] = 0 if error else len(pending)
        for uid in pending:
            found = DIFY_UID.fullmatch(uid)
            plugin_id, manifest = found["plugin_id"], self.state["packages"][uid]
            if error:  # the daemon's task holds each plugin's failure; nothing is installed
                task["plugins"].append({"plugin_unique_identifier": uid, "plugin_id": plugin_id, "status": "failed",
                                        "message": error, "icon": "", "labels": {"en_US": manifest["name"]},
                                        "source": source})  # fmt: skip
                continue
            self.state["plugins"][plugin_id] = {
                "id": str(uuid.uuid4()),
                "created_at": now_iso(),
                "updated_at": now_iso(),
                "tenant_id": self.state["tenant_id"],
                "endpoints_setups": 0,
                "endpoints_active": 0,
                "runtime_type": "local",
                "source": source,
                "meta": {},
                "plugin_id": plugin_id,
                "plugin_unique_identifier": uid,
                "version": found["version"],
                "checksum": found["checksum"],
                "declaration": manifest,
            }
            task["plugins"].append(
                {
                    "plugin_unique_identifier": uid,
                    "plugin_id": plugin_id,
                    "status": "success",
                    "message": "",
                    "icon": "",
                    "labels": {"en_US": manifest["name"]},
                    "source": source,
                }
            )
        self.state["tasks"][task["id"]] = task
        return 200, {"all_installed": False, "task_id": task["id"]}

    def identifiers(self) -> list:
        uids = self.field("plugin_unique_identifiers")
        if not isinstance(uids, list) or not all(isinstance(uid, str) and DIFY_UID.fullmatch(uid) for uid in uids):
            # unsure: the wording (upstream fails in pydantic or in the daemon)
            raise dify_invalid("plugin_unique_identifiers: a list of author/name:version@checksum is required")
        return uids

    def installations(self) -> tuple:
        ids = self.field("plugin_ids") or []
        return 200, {"plugins": [self.state["plugins"][pid] for pid in ids if pid in self.state["plugins"]]}

    def plugin_list(self) -> tuple:
        plugins = [
            {**item, "name": item["declaration"]["name"], "installation_id": item["id"]}
            for item in self.state["plugins"].values()
        ]
        return 200, {"plugins": plugins, "total": len(plugins)}

    def latest_versions(self) -> tuple:
        if not self.settings["marketplace"]:
            return 200, {"versions": {}}  # offline: the lookup's exception is swallowed
        versions = {}
        for plugin_id in self.field("plugin_ids") or []:
            if plugin_id in self.settings["marketplace_plugins"]:
                versions[plugin_id] = {
                    "plugin_id": plugin_id,
                    "version": self.settings["marketplace_plugins"][plugin_id],
                    "unique_identifier": self.marketplace_uid(plugin_id),
                    "status": "active",
                    "deprecated_reason": "",
                    "alternative_plugin_id": "",
                }
        return 200, {"versions": versions}

    def install_marketplace(self) -> tuple:
        uids = self.identifiers()
        for uid in uids:
            if uid in self.state["packages"]:
                continue  # the daemon already holds it: no download
            # helper/marketplace.py builds it with yarl, which leaves / : @ unescaped in a query
            url = f"https://marketplace.dify.ai/api/v1/plugins/download?unique_identifier={quote(uid, safe='/:@')}"
            if not self.settings["marketplace"]:  # ssrf_proxy gives up after its retries (upstream waits ~3.5 s)
                raise dify_invalid(f"Reached maximum retries (3) for URL {url}")
            plugin_id = DIFY_UID.fullmatch(uid)["plugin_id"]
            if plugin_id not in self.settings["marketplace_plugins"] or uid != self.marketplace_uid(plugin_id):
                raise dify_invalid("file not found")
            self.state["packages"][uid] = self.manifest(plugin_id, DIFY_UID.fullmatch(uid)["version"])
        return self.install(uids, "marketplace")

    @staticmethod
    def manifest(plugin_id: str, version: str) -> dict:
        author, name = plugin_id.split("/")
        return {"version": version, "author": author, "name": name, "type": "plugin", "category": "model"}

    def upload_pkg(self) -> tuple:
        """Multipart field `pkg`: a .difypkg (a zip with manifest.yaml). Modelled simply: author, name and version are
        read from manifest.yaml's top-level lines; a package without one counts as langgenius/openai_api_compatible."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers.get("Content-Type", "").encode() + b"\r\n\r\n" + self.body
        )
        content = next(
            (
                part.get_payload(decode=True)
                for part in (message.iter_parts() if message.is_multipart() else ())
                if part.get_param("name", header="content-disposition") == "pkg"
            ),
            None,
        )
        if content is None:
            raise dify_invalid("pkg is required")  # unsure: upstream's wording for a missing file
        fields = {"author": "langgenius", "name": "openai_api_compatible", "version": "0.0.63"}
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as package:
                text = package.read("manifest.yaml").decode()
            fields |= dict(re.findall(r"^(author|name|version):\s*['\"]?([^'\"\s#]+)", text, re.MULTILINE))
        except (zipfile.BadZipFile, KeyError, UnicodeDecodeError):
            pass
        plugin_id = f"{fields['author']}/{fields['name']}"
        uid = f"{plugin_id}:{fields['version']}@{hashlib.sha256(content).hexdigest()}"
        self.state["packages"][uid] = self.manifest(plugin_id, fields["version"])
        return 200, {"unique_identifier": uid, "manifest": self.state["packages"][uid], "verification": None}

    def install_pkg(self) -> tuple:
        uids = self.identifiers()
        for uid in uids:
            if uid not in self.state["packages"]:
                raise dify_invalid(f"plugin package {uid} not found")  # unsure: the daemon's wording
        return self.install(uids, "package")

    def tasks(self) -> tuple:
        return 200, {"tasks": list(self.state["tasks"].values())}

    def task(self, task_id: str) -> tuple:
        if task_id not in self.state["tasks"]:
            raise dify_invalid("task not found")  # unsure: the daemon's wording
        return 200, {"task": self.state["tasks"][task_id]}

    # --- model providers --------------------------------------------------------------------------------------------

    @staticmethod
    def full_provider(provider: str) -> str:
        """GenericProviderID: a bare name means langgenius/<name>/<name>."""
        return provider if "/" in provider else f"langgenius/{provider}/{provider}"

    def installed_provider(self, provider: str) -> str:
        full = self.full_provider(provider)
        if full.rsplit("/", 1)[0] not in self.state["plugins"]:
            raise dify_invalid(f"Provider {provider} does not exist.")
        return full

    def provider_entity(self, full: str) -> dict:
        return {
            "tenant_id": self.state["tenant_id"],
            "provider": full,
            "label": {"en_US": full.rsplit("/", 1)[1]},
            "icon_small": None,
            "icon_small_dark": None,
            "supported_model_types": ["llm", "text-embedding", "rerank", "speech2text", "tts"],
        }

    def checked_credentials(self, full: str, model: str, model_type: str, credentials: dict) -> dict:
        """The common validator's messages, then (setting `probe`) the plugin's real call to the endpoint."""
        form = DIFY_OAC_FORM.get(model_type) if full.endswith("/openai_api_compatible") else None
        if form is None:
            return credentials
        for variable in form["required"]:
            if not credentials.get(variable):
                raise dify_invalid(f"Variable {variable} is required")
        for variable, value in credentials.items():
            if not isinstance(value, str):
                raise dify_invalid(f"Variable {variable} should be string")
            if variable in form["options"] and value and value not in form["options"][variable]:
                raise dify_invalid(f"Variable {variable} is not in options")
        credentials = {**form["defaults"], **{key: value for key, value in credentials.items() if value}}
        if self.settings["probe"]:
            self.probe(model, model_type, credentials)
        return credentials

    @staticmethod
    def probe(model: str, model_type: str, credentials: dict) -> None:
        """openai_api_compatible's validate_credentials (dify-plugin-sdks openai_compatible llm.py, text_embedding.py):
        a real request to the endpoint, which must answer 200 with the expected JSON."""
        target = credentials.get("endpoint_model_name") or model
        if model_type == "text-embedding":
            path, payload = "embeddings", {"model": target, "input": ["ping"]}
        elif credentials["mode"] == "completion":
            path, payload = "completions", {"model": target, "max_tokens": 5, "prompt": "ping"}
        else:
            messages = [{"role": "user", "content": "ping"}]
            path, payload = "chat/completions", {"model": target, "max_tokens": 5, "messages": messages}
        headers = {"Content-Type": "application/json"}
        if credentials.get("api_key"):
            headers["Authorization"] = f"Bearer {credentials['api_key']}"
        url = credentials["endpoint_url"].rstrip("/") + "/" + path
        try:
            status, _, body = outbound("POST", url, json.dumps(payload).encode(), headers)
        except OSError as exc:
            raise dify_invalid(str(exc)) from None
        if status != 200:
            text = body.decode(errors="replace")
            raise dify_invalid(f"Credentials validation failed with status code {status} and response body {text}")
        try:
            result = json.loads(body)
        except ValueError:
            raise dify_invalid("Credentials validation failed: JSON decode error") from None
        expected = {"completions": "text_completion", "chat/completions": "chat.completion"}.get(path)
        if not isinstance(result, dict) or (expected is None and "data" not in result):
            raise dify_invalid("Credentials validation failed: invalid response")
        if expected and result.get("object") not in ("", None, expected):
            raise dify_invalid(f"Credentials validation failed: invalid response object, must be '{expected}'")

    def add_credential(self, provider: str) -> tuple:
        """Not idempotent, as upstream: a repeat adds another credential ("API KEY n") to the same model."""
        model, model_type = self.field("model"), DIFY_MODEL_TYPES.get(self.field("model_type"))
        credentials, name = self.field("credentials"), self.field("name")
        if not isinstance(model, str) or model_type is None or not isinstance(credentials, dict):
            raise dify_invalid("model, model_type and credentials are required")  # unsure: pydantic's exact text
        if name is not None and (not isinstance(name, str) or len(name) > 30):
            raise dify_invalid("name: String should have at most 30 characters")
        full = self.installed_provider(provider)
        same = [
            item
            for item in self.state["credentials"]
            if (item["provider"], item["model"], item["model_type"]) == (full, model, model_type)
        ]
        if name and any(item["name"] == name for item in same):
            raise dify_invalid(f"Model credential with name '{name}' already exists for {model}.")
        credentials = self.checked_credentials(full, model, model_type, credentials)
        numbers = [int(found[1]) for item in same if (found := re.fullmatch(r"API KEY\s+(\d+)", item["name"]))]
        self.state["credentials"].append(
            {
                "id": str(uuid.uuid4()),
                "provider": full,
                "model": model,
                "model_type": model_type,
                "name": name or f"API KEY {max(numbers, default=0) + 1}",
                "credentials": credentials,
            }
        )
        return 201, {"result": "success"}

    def model_credentials(self, full: str, model: Any, model_type: Any) -> list:
        """A model's credentials, oldest first: the first is the one it uses (create_custom_model_credential points
        the model at its first credential only; switching is not modelled)."""
        return [
            item
            for item in self.state["credentials"]
            if (item["provider"], item["model"], item["model_type"]) == (full, model, model_type)
        ]

    def get_credentials(self, provider: str) -> tuple:
        """workspace/models.py ModelProviderModelCredentialApi.get: the credential the model uses, its secret input
        obfuscated (libs/encrypter.py obfuscated_token), its id and name, and every credential of the model."""
        model, model_type = self.arg("model"), DIFY_MODEL_TYPES.get(self.arg("model_type") or "")
        if not model or model_type is None:
            raise dify_invalid("model and model_type are required")  # unsure: pydantic's exact text
        same = self.model_credentials(self.installed_provider(provider), model, model_type)
        current = same[0] if same else None
        shown = dict(current["credentials"]) if current else {}
        if shown.get("api_key"):  # openai_api_compatible's one secret-input
            token = shown["api_key"]
            shown["api_key"] = "*" * 20 if len(token) <= 8 else token[:6] + "*" * 12 + token[-2:]
        return 200, {
            "credentials": shown,
            "current_credential_id": current["id"] if current else None,
            "current_credential_name": current["name"] if current else None,
            "load_balancing": {"enabled": False, "configs": []},
            "available_credentials": [{"credential_id": i["id"], "credential_name": i["name"]} for i in same],
        }

    def update_credential(self, provider: str) -> tuple:
        """workspace/models.py ModelProviderModelCredentialApi.put (ParserUpdateCredential: credential_id a uuid),
        provider_configuration.py update_custom_model_credential: the name unique among the model's credentials, the
        credentials validated as on create ([__HIDDEN__] keeps the stored secret), the record of that model only."""
        model, model_type = self.field("model"), DIFY_MODEL_TYPES.get(self.field("model_type"))
        credentials, name, ident = self.field("credentials"), self.field("name"), self.field("credential_id")
        if not isinstance(model, str) or model_type is None or not isinstance(credentials, dict):
            raise dify_invalid("model, model_type and credentials are required")  # unsure: pydantic's exact text
        try:
            uuid.UUID(str(ident))
        except ValueError:
            raise dify_invalid(  # libs/helper.py uuid_value in a pydantic field_validator
                "1 validation error for ParserUpdateCredential\ncredential_id\n"
                f"  Value error, {ident} is not a valid uuid."
            ) from None
        if name is not None and (not isinstance(name, str) or len(name) > 30):
            raise dify_invalid("name: String should have at most 30 characters")
        same = self.model_credentials(self.installed_provider(provider), model, model_type)
        if name and any(item["name"] == name and item["id"] != ident for item in same):
            raise dify_invalid(f"Model credential with name '{name}' already exists for {model}.")
        record = next((item for item in same if item["id"] == ident), None)
        stored = record["credentials"] if record else {}
        credentials = {
            key: stored[key] if value == "[__HIDDEN__]" and key == "api_key" and key in stored else value
            for key, value in credentials.items()
        }
        credentials = self.checked_credentials(self.full_provider(provider), model, model_type, credentials)
        if record is None:
            raise dify_invalid("Credential record not found.")
        record["credentials"] = credentials
        if name:
            record["name"] = name
        return 200, {"result": "success"}

    def models_of(self, full: str) -> dict:
        found: dict = {}
        for item in self.state["credentials"]:
            if item["provider"] == full:
                found.setdefault((item["model"], item["model_type"]), item["credentials"])
        return found

    def list_models(self, provider: str) -> tuple:
        """Listing compares the provider string exactly with the full id: the bare name lists nothing."""
        data = []
        for (model, model_type), credentials in self.models_of(provider).items():
            properties = {"context_size": int(credentials.get("context_size") or 4096)}
            if model_type == "llm":
                properties["mode"] = credentials.get("mode", "chat")
            data.append(
                {
                    "model": model,
                    "label": {"en_US": model, "zh_Hans": model},
                    "model_type": model_type,
                    "features": None,
                    "fetch_from": "customizable-model",
                    "model_properties": properties,
                    "deprecated": False,
                    "status": "active",
                    "load_balancing_enabled": False,
                    "has_invalid_load_balancing_configs": False,
                    "provider": self.provider_entity(provider),
                }
            )
        return 200, {"data": data}

    def set_default_model(self) -> tuple:
        settings = self.field("model_settings")
        if not isinstance(settings, list):
            raise dify_invalid("model_settings is required")  # unsure: pydantic's exact text
        for entry in settings:
            if not isinstance(entry, dict) or entry.get("provider") is None:
                continue
            provider, model = entry["provider"], entry.get("model")
            model_type = DIFY_MODEL_TYPES.get(entry.get("model_type"))
            full = self.installed_provider(provider)
            if (model, model_type) not in self.models_of(full):
                raise dify_invalid(f"Model {model} does not exist.")
            self.state["default_models"][model_type] = {"provider": provider, "model": model}  # stored as sent
        return 200, {"result": "success"}

    def get_default_model(self) -> tuple:
        model_type = DIFY_MODEL_TYPES.get(self.arg("model_type"))
        if model_type is None:
            raise dify_invalid("model_type is required")  # unsure: pydantic's exact text
        chosen = self.state["default_models"].get(model_type)
        if chosen is None:
            return 200, {"data": None}
        provider = self.provider_entity(self.full_provider(chosen["provider"]))
        return 200, {"data": {"model": chosen["model"], "model_type": model_type, "provider": provider}}


# ======================================================================================================================
# n8n 2.41.x for the catalog's 2.41.7, as npm's newest 2.41 packages have it (2.41.7 is not on npm): n8n@2.41.3
# dist/controllers/{owner,auth,api-keys}.controller.js, dist/auth/auth.service.js (issueCookie: Secure by
# N8N_SECURE_COOKIE whatever the request's protocol, the auth middleware before a route's middlewares, clearCookie),
# dist/controller.registry.js, dist/services/{ownership,public-api-key}.service.js,
# dist/public-api/v1/controllers/credentials.public.controller.js; @n8n/api-types@1.41.0 (login, owner setup, password
# DTOs, zod 3), @n8n/config@2.39.0 (auth cookie), @n8n/db@1.41.0 (User email lower-cased, ApiKey unique per label).
# The image runs as node (uid 1000), its data in /home/node/.n8n. Checked against the real n8n 2.41.1 (npm, the
# nearest release that installs here: tests/apps/test_n8n.py), whose answers the rules below follow.

N8N_WRONG_LOGIN = "Wrong username or password. Do you have caps lock on?"
N8N_SCOPES = [
    "apiKey:create",
    "apiKey:manage",
    "credential:create",
    "credential:delete",
    "credential:list",
    "credential:move",
    "credential:read",
    "credential:update",
    "workflow:create",
    "workflow:list",
    "workflow:read",
]
# @n8n/permissions getApiKeyScopesForRole for the owner (GET /rest/api-keys/scopes of the real 2.41.1): an API key may
# hold only these (api-keys.controller.js createApiKey: "Invalid scopes for user role").
N8N_OWNER_API_KEY_SCOPES = frozenset(
    re.findall(
        r"\S+",
        """communityPackage:install communityPackage:list communityPackage:uninstall communityPackage:update
    credential:create credential:delete credential:list credential:move credential:read credential:update
    dataTable:create dataTable:delete dataTable:list dataTable:read dataTable:update dataTableColumn:create
    dataTableColumn:delete dataTableColumn:read dataTableColumn:update dataTableRow:create dataTableRow:delete
    dataTableRow:read dataTableRow:update dataTableRow:upsert eventBusDestination:create eventBusDestination:delete
    eventBusDestination:list eventBusDestination:read eventBusDestination:test eventBusDestination:update
    execution:delete execution:list execution:read execution:retry execution:stop executionTags:list
    executionTags:update folder:create folder:delete folder:list folder:read folder:update gitConnection:clone
    gitConnection:create gitConnection:delete gitConnection:list gitConnection:manageProjects gitConnection:pull
    gitConnection:push gitConnection:read gitConnection:update insights:read ldap:manage ldap:sync
    nodeTypePolicy:manage oidc:manage otel:manage project:create project:delete project:export project:list
    project:manageMembers project:update role:list role:manage role:read roleMappingRule:create
    roleMappingRule:delete roleMappingRule:list roleMappingRule:update saml:manage securityAudit:generate
    securitySettings:manage sourceControl:pull sourceControl:push sourceControl:read tag:create tag:delete tag:list
    tag:read tag:update testRun:cancel testRun:create testRun:list testRun:read user:changeRole user:create
    user:delete user:list user:read variable:create variable:delete variable:list variable:update workflow:activate
    workflow:create workflow:deactivate workflow:delete workflow:export workflow:import workflow:list workflow:move
    workflow:read workflow:update workflowTags:list workflowTags:update""",
    )
)
N8N_OPENAI_FIELDS = {
    "apiKey": str,
    "organizationId": str,
    "url": str,
    "header": bool,
    "headerName": str,
    "headerValue": str,
}


def zod_issue(field: str, message: str, code: str = "custom", **extra: Any) -> dict:
    return {"code": code, **extra, "message": message, "path": [field]}


def zod_type(data: dict, field: str, expected: str) -> dict:
    received = json_type(data[field]) if field in data else "undefined"
    message = "Required" if received == "undefined" else f"Expected {expected}, received {received}"
    return zod_issue(field, message, "invalid_type", expected=expected, received=received)


def zod_string(data: dict, field: str, minimum: int, maximum: int | None, too_short: str, too_long: str = ""):
    """A z.string().min().max() check: the first issue, or None."""
    value = data.get(field)
    if not isinstance(value, str):
        return zod_type(data, field, "string")
    bounds = {"type": "string", "inclusive": True, "exact": False}
    if len(value) < minimum:
        return zod_issue(field, too_short, "too_small", minimum=minimum, **bounds)
    if maximum is not None and len(value) > maximum:
        return zod_issue(field, too_long, "too_big", maximum=maximum, **bounds)
    return None


def n8n_password_issue(data: dict):
    """@n8n/api-types passwordSchema: 8-64 characters, a digit, an uppercase letter."""
    length = "Password must be 8 to 64 characters long."
    issue = zod_string(data, "password", 8, 64, length, length)
    if issue is None and not re.search(r"\d", data["password"]):
        issue = zod_issue("password", "Password must contain at least 1 number.")
    if issue is None and not re.search(r"[A-Z]", data["password"]):
        issue = zod_issue("password", "Password must contain at least 1 uppercase letter.")
    return issue


class N8n(AppHandler):
    name = "n8n"
    defaults: ClassVar[dict[str, Any]] = {"public_api": True, "cookie_secure": True}
    routes = (
        ("GET", "/healthz", "health"),
        ("GET", "/healthz/readiness", "health"),
        ("GET", "/rest/settings", "frontend_settings"),
        ("POST", "/rest/owner/setup", "owner_setup"),
        ("POST", "/rest/login", "login"),
        ("GET", "/rest/login", "current_user"),
        ("POST", "/rest/api-keys", "create_api_key"),
        ("GET", "/rest/api-keys", "list_api_keys"),
        ("DELETE", "/rest/api-keys/(?P<key_id>[^/]+)", "delete_api_key"),
        ("POST", "/api/v1/credentials", "create_credential"),
        ("GET", "/api/v1/credentials", "list_credentials"),
        ("PATCH", "/api/v1/credentials/(?P<ident>[^/]+)", "update_credential"),
    )

    @classmethod
    def initial_state(cls, settings: dict) -> dict:
        shell = {"id": str(uuid.uuid4()), "email": None, "firstName": None, "lastName": None, "password": None}
        return {
            "owner": shell | {"createdAt": now_iso(), "updatedAt": now_iso()},  # the shell owner, until setup fills it
            "sessions": {},  # n8n-auth cookie -> browser-id hash sent at login, or None
            "api_keys": [],
            "credentials": [],
        }

    def error(self, status: int, message: str) -> Any:
        return {"code": status, "message": message}

    def envelope(self, result: Any, status: int = 200) -> tuple:
        return status, {"data": result}

    def public_user(self) -> dict:
        owner = self.state["owner"]
        return {
            **{key: owner[key] for key in ("id", "email", "firstName", "lastName", "createdAt", "updatedAt")},
            "role": "global:owner",
            "isOwner": True,
            "isPending": False,
            "signInType": "email",
            "settings": None,
            "personalizationAnswers": None,
            "mfaEnabled": False,
            "globalScopes": N8N_SCOPES,
        }

    def issue_cookie(self) -> None:
        token = "eyJ" + secrets.token_urlsafe(32)
        browser_id = self.headers.get("browser-id")
        self.state["sessions"][token] = sha256(browser_id) if browser_id else None
        self.set_cookie("n8n-auth", token, max_age=7 * 86400, secure=self.settings["cookie_secure"])

    def rest_user(self) -> dict:
        """auth.service.js: the n8n-auth cookie; a browser-id sent at login must be sent again."""
        token = self.cookies.get("n8n-auth")
        browser_hash = self.state["sessions"].get(token)
        if token not in self.state["sessions"] or (
            browser_hash is not None and sha256(self.headers.get("browser-id", "")) != browser_hash
        ):
            if token:  # a cookie that does not resolve is cleared (res.clearCookie)
                self.out_cookies.append("n8n-auth=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
            raise Reply(401, {"status": "error", "message": "Unauthorized"})
        return self.state["owner"]

    def public_api_enabled(self) -> None:
        if not self.settings["public_api"]:
            raise Reply(404, b"", (("Content-Type", "text/plain"),))  # a bare 404

    def health(self) -> tuple:
        return 200, {"status": "ok"}

    def frontend_settings(self) -> tuple:
        authenticated = self.cookies.get("n8n-auth") in self.state["sessions"]
        public = {
            "settingsMode": "authenticated" if authenticated else "public",
            "defaultLocale": "en",
            "userManagement": {
                "authenticationMethod": "email",
                "showSetupOnFirstLoad": self.state["owner"]["email"] is None,
                "smtpSetup": False,
                "passwordMinLength": 8,
            },
            "sso": {"saml": {"loginEnabled": False}, "ldap": {"loginEnabled": False}, "oidc": {"loginEnabled": False}},
            "authCookie": {"secure": self.settings["cookie_secure"]},
            "previewMode": False,
        }
        if authenticated:
            public["publicApi"] = {
                "enabled": self.settings["public_api"],
                "latestVersion": 1,
                "path": "api",
                "swaggerUi": {"enabled": True},
            }
        return self.envelope(public)

    def owner_setup(self) -> tuple:
        data = self.data if isinstance(self.data, dict) else {}
        issue = None
        if not isinstance(data.get("email"), str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", data["email"]):
            issue = zod_issue("email", "Invalid email", "invalid_string", validation="email")
        issue = issue or zod_string(data, "firstName", 1, None, "First name is required")
        issue = issue or zod_string(data, "lastName", 1, None, "Last name is required")
        issue = issue or n8n_password_issue(data)
        if issue:
            raise Reply(400, issue)  # the DTO's first zod issue, before the handler
        owner = self.state["owner"]
        if owner["email"] is not None:
            raise Reply(400, {"code": 400, "message": "Instance owner already setup"})
        owner |= {key: data[key] for key in ("firstName", "lastName", "password")}
        owner |= {"email": data["email"].lower(), "updatedAt": now_iso()}
        self.issue_cookie()
        return self.envelope(self.public_user())

    def login(self) -> tuple:
        # Not modelled: the rate limits (5 per minute per login id) and MFA.
        data = self.data if isinstance(self.data, dict) else {}
        issue = zod_string(data, "emailOrLdapLoginId", 0, 255, "", "String must contain at most 255 character(s)")
        issue = issue or zod_string(data, "password", 1, None, "String must contain at least 1 character(s)")
        if issue:
            raise Reply(400, issue)
        login_id = data["emailOrLdapLoginId"].strip()
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", login_id):
            raise Reply(400, {"code": 400, "message": "Invalid email address"})
        owner = self.state["owner"]
        if owner["email"] != login_id.lower() or owner["password"] != data["password"]:
            raise Reply(401, {"code": 401, "message": N8N_WRONG_LOGIN})
        self.issue_cookie()
        return self.envelope(self.public_user())

    def current_user(self) -> tuple:
        self.rest_user()
        return self.envelope(self.public_user())

    def create_api_key(self) -> tuple:
        user = self.rest_user()  # the auth middleware runs before the route's isApiKeyAuthEnabledMiddleware
        self.public_api_enabled()
        data = self.data if isinstance(self.data, dict) else {}
        short, long = "String must contain at least 1 character(s)", "String must contain at most 50 character(s)"
        issue = zod_string(data, "label", 1, 50, short, long)
        scopes, expires = data.get("scopes"), data.get("expiresAt")
        if issue is None and not isinstance(scopes, list):
            issue = zod_type(data, "scopes", "array")
        elif issue is None and not scopes:
            issue = zod_issue(
                "scopes", "Array must contain at least 1 element(s)", "too_small", minimum=1, type="array"
            )
        elif issue is None and not all(
            isinstance(item, str) and re.fullmatch(r"[a-zA-Z]+:[a-zA-Z]+", item) for item in scopes
        ):
            message = (
                "Each scope must follow the format '{resource}:{scope}' with only letters (e.g., 'workflow:create')"
            )
            issue = zod_issue("scopes", message, "invalid_string", validation="regex")
        valid_expiry = "expiresAt" in data and (expires is None or isinstance(expires, (int, float)))
        if issue is None and not valid_expiry:
            issue = zod_type(data, "expiresAt", "number")  # required, but may be null
        elif issue is None and expires is not None and expires <= time.time():
            issue = zod_issue("expiresAt", "Expiration date must be in the future or null")
        if issue:
            raise Reply(400, issue)
        if not set(scopes) <= N8N_OWNER_API_KEY_SCOPES:  # after the DTO (a 400 without a zod issue)
            raise Reply(400, {"code": 400, "message": "Invalid scopes for user role"})
        if any(item["userId"] == user["id"] and item["label"] == data["label"] for item in self.state["api_keys"]):
            # @n8n/db ApiKey: @Unique(['userId', 'label']); the insert's QueryFailedError is a 500 whose message
            # response-helper.js replaces for any unique constraint (isUniqueConstraintError)
            raise Reply(500, {"code": 0, "message": "There is already an entry with this name"})
        raw = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + secrets.token_urlsafe(48)
        record = {
            "id": secrets.token_urlsafe(12),
            "label": data["label"],
            "scopes": scopes,
            "userId": user["id"],
            "audience": "public-api",
            "createdAt": now_iso(),
            "updatedAt": now_iso(),
            "lastUsedAt": None,
            "apiKey": raw,
            "expiresAt": expires,
        }
        self.state["api_keys"].append(record)
        return self.envelope({**record, "apiKey": self.redacted(raw), "rawApiKey": raw})

    @staticmethod
    def redacted(raw: str) -> str:
        return "*" * 6 + raw[-4:]

    def list_api_keys(self) -> tuple:
        user = self.rest_user()  # the auth middleware runs before the route's isApiKeyAuthEnabledMiddleware
        self.public_api_enabled()
        label = (self.arg("label") or "").lower()
        keys = sorted(self.state["api_keys"], key=lambda item: item["createdAt"], reverse=True)
        matching = [item for item in keys if label in item["label"].lower()]
        # @n8n/api-types paginationSchema: `take` 10 unless given, at most 250 (newest first: createdAt DESC)
        skip, take = int(self.arg("skip") or 0), min(int(self.arg("take") or 10), 250)
        page = matching[skip : skip + take]
        owner = {key: user[key] for key in ("id", "firstName", "lastName", "email")}
        counts = {"mine": len(matching), "all": len(matching)}
        return self.envelope(
            {
                "items": [{**item, "apiKey": self.redacted(item["apiKey"]), "owner": owner} for item in page],
                "counts": counts,
                "totals": {"mine": len(keys), "all": len(keys)} if label else counts,
                "owners": [{**owner, "keyCount": len(keys)}] if keys else [],
            }
        )

    def delete_api_key(self, key_id: str) -> tuple:
        """public-api-key.service.js deleteApiKey: the owner (apiKey:manage) may delete any key; else 404."""
        self.rest_user()
        self.public_api_enabled()
        kept = [item for item in self.state["api_keys"] if item["id"] != key_id]
        if len(kept) == len(self.state["api_keys"]):
            raise Reply(404, {"code": 404, "message": "API key not found"})
        self.state["api_keys"] = kept
        return self.envelope({"success": True})

    def api_key_scopes(self) -> list:
        """api-key-auth.strategy.js: X-N8N-API-KEY, unexpired."""
        self.public_api_enabled()
        raw = self.headers.get("X-N8N-API-KEY")
        record = next((item for item in self.state["api_keys"] if item["apiKey"] == raw), None)
        if record is None or (record["expiresAt"] is not None and record["expiresAt"] <= time.time()):
            raise Reply(401, {"message": "Unauthorized"})
        return record["scopes"]

    def require_scope(self, scope: str) -> None:
        if scope not in self.api_key_scopes():
            raise Reply(403, {"message": "Forbidden"})

    def create_credential(self) -> tuple:
        self.require_scope("credential:create")
        data = self.data if isinstance(self.data, dict) else {}
        for key in ("name", "type", "data"):  # the OpenAPI validator; unsure: its exact wording
            if key not in data:
                raise Reply(400, {"message": f"request/body must have required property '{key}'"})
        if data["type"] != "openAiApi":  # the only credential type modelled
            raise Reply(400, {"message": "req.body.type is not a known type"})
        values = self.openai_data(data["data"])
        credential = {
            "id": data.get("id") or secrets.token_urlsafe(12)[:16],
            "name": data["name"],
            "type": data["type"],
            "isManaged": False,
            "isGlobal": False,
            "isResolvable": bool(data.get("isResolvable", False)),
            "resolvableAllowFallback": False,
            "resolverId": None,
            "createdAt": now_iso(),
            "updatedAt": now_iso(),
        }
        if any(item["id"] == credential["id"] for item in self.state["credentials"]):
            raise Reply(409, {"message": f"Credential with ID {credential['id']} already exists"})  # unsure: wording
        self.state["credentials"].append({**credential, "data": values})
        return 200, credential  # public API bodies are not wrapped in "data"; 200, not 201

    @staticmethod
    def openai_data(values: Any) -> dict:
        """credentials.utils.js validateCredentialData: an openAiApi credential's data (jsonschema messages, joined)."""
        values = values if isinstance(values, dict) else {}
        errors = [] if "apiKey" in values else ['requires property "apiKey"']
        for key, value in values.items():
            if key not in N8N_OPENAI_FIELDS:
                errors.append(f'is not allowed to have the additional property "{key}"')
            elif not isinstance(value, N8N_OPENAI_FIELDS[key]):
                errors.append(f"is not of a type(s) {'boolean' if N8N_OPENAI_FIELDS[key] is bool else 'string'}")
        if errors:
            raise Reply(400, {"message": ",".join(f"request.body.data {error}" for error in errors)})
        return values

    def update_credential(self, ident: str) -> tuple:
        """public-api/v1/controllers/credentials.public.controller.ts updateCredential (PATCH /credentials/:id): the
        credential:update scope, a known type, 404 for an unknown id, `data` checked as on create and replacing the
        stored data (merged into it with isPartialData: credentials.service prepareUpdateData), name kept unless
        given; the answer is the credential without its data."""
        self.require_scope("credential:update")
        if not isinstance(self.data, dict):  # @Body({ required: true }); unsure: the DTO validator's wording
            raise Reply(400, {"message": "request/body must be object"})
        if "type" in self.data and self.data["type"] != "openAiApi":  # the only credential type modelled
            raise Reply(400, {"message": "req.body.type is not a known type"})
        found = next((item for item in self.state["credentials"] if item["id"] == ident), None)
        if found is None:
            raise Reply(404, {"code": 404, "message": "Credential not found"})
        if "data" in self.data:
            given = self.data["data"] if isinstance(self.data["data"], dict) else {}
            found["data"] = self.openai_data({**found["data"], **given} if self.data.get("isPartialData") else given)
        if isinstance(self.data.get("name"), str):
            found["name"] = self.data["name"]
        found["updatedAt"] = now_iso()
        return 200, {key: value for key, value in found.items() if key != "data"}

    def list_credentials(self) -> tuple:
        self.require_scope("credential:list")
        limit = int(self.arg("limit") or 100)
        offset = json.loads(base64.b64decode(self.arg("cursor")))["offset"] if self.arg("cursor") else 0
        items = sorted(self.state["credentials"], key=lambda item: item["createdAt"], reverse=True)
        page = [
            {
                **{key: item[key] for key in ("id", "name", "type", "createdAt", "updatedAt")},
                "shared": [{"id": "personal", "name": "Personal", "role": "credential:owner"}],
            }
            for item in items[offset : offset + limit]
        ]
        more = offset + limit < len(items)
        cursor = base64.b64encode(json.dumps({"limit": limit, "offset": offset + limit}).encode()).decode()
        return 200, {"data": page, "nextCursor": cursor if more else None}


# ======================================================================================================================
# Flowise 3.1.4 (the npm package flowise@3.1.4's dist/, and the sources at tag flowise@3.1.3: packages/server/src/
# index.ts auth gate and `trust proxy`, enterprise/{controllers,services}/account*, user.service.ts,
# enterprise/middleware/passport/{index,AuthStrategy}.ts (express-session's Secure cookie, the JWT checked against the
# session's user), services/credentials/index.ts (getCredentialById decrypts), utils/index.ts getEncryptionKey,
# packages/components/src/utils.ts getEncryptionKeyPath, utils/constants.ts, enterprise/utils/validation.util.ts).
# The official image runs as user `node` (uid 1000, HOME /home/node: the repository's Dockerfile), so Flowise writes
# encryption.key, storage and logs under /home/node/.flowise.

FLOWISE_WHITELIST = (
    "/api/v1/ping",
    "/api/v1/version",
    "/api/v1/settings",
    "/api/v1/auth/resolve",
    "/api/v1/auth/login",
    "/api/v1/auth/refreshToken",
    "/api/v1/account/logout",
    "/api/v1/account/verify",
    "/api/v1/account/register",
    "/api/v1/account/resend-verification",
    "/api/v1/account/forgot-password",
    "/api/v1/account/reset-password",
    "/api/v1/prediction/",
    "/api/v1/public-chatflows",
)
FLOWISE_OWNER_PERMISSIONS = [
    "apikeys:view",
    "apikeys:create",
    "apikeys:update",
    "apikeys:delete",
    "credentials:view",
    "credentials:create",
    "credentials:update",
    "credentials:delete",
    "chatflows:view",
    "chatflows:create",
]


def flowise_error(status: int, message: str) -> Reply:
    """middlewares/errors: {"statusCode", "success": false, "message", "stack": {}}."""
    return Reply(status, {"statusCode": status, "success": False, "message": message, "stack": {}})


FLOWISE_REDACTED = "_FLOWISE_BLANK_07167752-1a71-43b1-bf8f-4f32252165db"  # utils REDACTED_CREDENTIAL_VALUE
FLOWISE_PASSWORD_INPUTS = {"openAIApi": {"openAIApiKey"}}  # the credential's inputs of type password (redacted)
FLOWISE_PERSISTED = ("organization", "workspace", "users", "tokens", "sessions", "api_keys", "credentials")


def flowise_encryption_key(settings: dict) -> str:
    """utils/index.ts getEncryptionKey at start: FLOWISE_SECRETKEY_OVERWRITE, else the file (SECRETKEY_PATH or
    $HOME/.flowise), generated there (24 random bytes, base64) when missing; no home (in process): in memory."""
    if settings["secretkey_overwrite"]:
        return settings["secretkey_overwrite"]
    folder = settings["secretkey_path"] or (settings["home"] and os.path.join(settings["home"], ".flowise"))
    if not folder:
        return base64.b64encode(secrets.token_bytes(24)).decode()
    path = os.path.join(folder, "encryption.key")
    if os.path.exists(path):
        with open(path) as handle:
            return handle.read()
    os.makedirs(folder, exist_ok=True)  # index.ts creates ~/.flowise (logs, storage) before the key
    key = base64.b64encode(secrets.token_bytes(24)).decode()
    with open(path, "w") as handle:
        handle.write(key)
    return key


def flowise_keystream(key: str, nonce: bytes, length: int) -> bytes:
    blocks = (hashlib.sha256(key.encode() + nonce + n.to_bytes(8, "big")).digest() for n in range(length // 32 + 1))
    return b"".join(blocks)[:length]


def flowise_encrypt(key: str, plain: dict) -> str:
    """Stands for CryptoJS AES.encrypt(JSON, key) (stdlib only): only the same key reads it back."""
    data, nonce = json.dumps(plain).encode(), secrets.token_bytes(16)
    cipher = bytes(a ^ b for a, b in zip(data, flowise_keystream(key, nonce, len(data)), strict=True))
    mac = hashlib.sha256(key.encode() + nonce + cipher).digest()[:16]
    return base64.b64encode(nonce + mac + cipher).decode()


def flowise_decrypt(key: str, text: str) -> dict:
    """decryptCredentialData: another key gives bytes that are no UTF-8, and CryptoJS throws this message."""
    raw = base64.b64decode(text)
    nonce, mac, cipher = raw[:16], raw[16:32], raw[32:]
    if hashlib.sha256(key.encode() + nonce + cipher).digest()[:16] != mac:
        raise ValueError("Malformed UTF-8 data")
    return json.loads(bytes(a ^ b for a, b in zip(cipher, flowise_keystream(key, nonce, len(cipher)), strict=True)))


class Flowise(AppHandler):
    name = "flowise"
    defaults: ClassVar[dict[str, Any]] = {
        "metrics": True,
        "cookie_secure": False,
        "trust_proxy": True,
        "home": None,
        "secretkey_path": None,
        "secretkey_overwrite": None,
        "database": None,  # {"host", "port", "name", "user", "password"}: the state lives there (psql)
    }
    routes = (
        ("GET", "/api/v1/ping", "ping"),
        ("POST", "/api/v1/account/register", "register"),
        ("POST", "/api/v1/auth/resolve", "resolve"),
        ("POST", "/api/v1/auth/login", "login"),
        ("GET", "/api/v1/credentials", "list_credentials"),
        ("POST", "/api/v1/credentials", "create_credential"),
        ("GET", "/api/v1/credentials/(?P<ident>[^/]+)", "get_credential"),
        ("PUT", "/api/v1/credentials/(?P<ident>[^/]+)", "update_credential"),
        ("GET", "/api/v1/apikey", "list_keys"),
        ("POST", "/api/v1/apikey", "create_key"),
        ("GET", "/api/v1/metrics", "metrics"),
    )

    @classmethod
    def initial_state(cls, settings: dict) -> dict:
        state = {"organization": None, "workspace": None, "users": [], "tokens": {}, "sessions": {}, "api_keys": []}
        return state | {"credentials": [], "key": flowise_encryption_key(settings), "loaded": not settings["database"]}

    # --- the state in Postgres (upstream keeps users, sessions and credentials in its database) -----------------

    def psql(self, sql: str) -> str:
        database = self.settings["database"]
        command = ["psql", "-h", database["host"], "-p", str(database["port"]), "-U", database["user"]]
        command += ["-d", database["name"], "-v", "ON_ERROR_STOP=1", "-tAq", "-c", sql]
        env = {**os.environ, "PGPASSWORD": database["password"]}
        return subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout

    def load(self) -> None:
        if self.state["loaded"]:
            return
        self.psql("create table if not exists standin_flowise (id int primary key, state text not null)")
        saved = self.psql("select state from standin_flowise where id = 1").strip()
        if saved:
            self.state.update(json.loads(saved))
        self.state["loaded"] = True

    def save(self) -> None:
        if not self.settings["database"]:
            return
        tag = "$s" + secrets.token_hex(6) + "$"
        state = json.dumps({key: self.state[key] for key in FLOWISE_PERSISTED})
        self.psql(
            f"insert into standin_flowise values (1, {tag}{state}{tag}) on conflict (id) do update set state = "
            "excluded.state"
        )

    def secure_request(self) -> bool:
        """express's req.secure with `trust proxy` (index.ts: TRUST_PROXY unset means true): the first
        X-Forwarded-Proto says the protocol; the stand-in itself speaks plain HTTP."""
        if not self.settings["trust_proxy"]:
            return False
        return self.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https"

    def error(self, status: int, message: str) -> Any:
        return {"statusCode": status, "success": False, "message": message, "stack": {}}

    def authorize(self) -> None:
        """index.ts: the gate in front of every /api/v1 path (whitelist, then cookie JWT, then a Bearer API key)."""
        self.caller: dict | None = None
        self.load()
        path = self.route_path
        if not re.search(r"/api/v1/", path, re.IGNORECASE):
            return
        if "/api/v1/" not in path:
            raise Reply(401, {"error": "Unauthorized Access"})
        if path.startswith(FLOWISE_WHITELIST):
            return
        if self.headers.get("x-request-from") == "internal":
            # passport/AuthStrategy.ts: the JWT (the `token` cookie) must belong to the session's user (req.user,
            # from the express session cookie `connect.sid`); the token alone is refused.
            user = self.state["sessions"].get(self.cookies.get("connect.sid", ""))
            if user is None or self.state["tokens"].get(self.cookies.get("token")) != user:
                raise Reply(401, {"message": "Invalid or Missing token"})
            self.caller = {"permissions": FLOWISE_OWNER_PERMISSIONS, "isOrganizationAdmin": True}
            return
        key = next((item for item in self.state["api_keys"] if item["apiKey"] == self.bearer()), None)
        if key is None:
            raise Reply(401, {"error": "Unauthorized Access"})
        self.caller = {"permissions": key["permissions"], "isOrganizationAdmin": False}

    def permit(self, permission: str) -> None:
        """enterprise/rbac/PermissionCheck.ts: an org admin passes everything."""
        if not (self.caller["isOrganizationAdmin"] or permission in self.caller["permissions"]):
            raise Reply(403, {"message": "Forbidden"})

    def not_found(self) -> tuple:
        """Every other request gets the UI's index.html (the React app), 200."""
        return (
            200,
            b"<!DOCTYPE html><html><head><title>Flowise</title></head><body></body></html>",
            (("Content-Type", "text/html; charset=UTF-8"),),
        )

    def match(self) -> tuple[str, dict]:
        """express: a path served for another method matches no route, so the request falls through to the UI's
        index.html (200; seen on the real 3.1.4: PATCH /api/v1/credentials/<id>), no 405."""
        try:
            return super().match()
        except Reply as answer:
            if answer.status != 405:
                raise
            return "not_found", {}

    def ping(self) -> tuple:
        return 200, b"pong", (("Content-Type", "text/html; charset=utf-8"),)

    def resolve(self) -> tuple:
        return 200, {"redirectUrl": "/signin" if self.state["organization"] else "/organization-setup"}

    def user_by_email(self, address: Any) -> dict | None:
        """user.service.ts readUserByEmail: the email is validated first (a TLD of 2+ letters)."""
        pattern = r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}"
        if not isinstance(address, str) or len(address) > 255 or not re.fullmatch(pattern, address):
            raise flowise_error(400, "Invalid User Email")
        return next((user for user in self.state["users"] if user["email"].lower() == address.lower()), None)

    def register(self) -> tuple:
        if self.state["organization"]:
            raise flowise_error(400, "You can only have one organization")
        user = self.field("user") if isinstance(self.field("user"), dict) else {}
        if self.user_by_email(user.get("email")):
            raise flowise_error(400, "User Email Already Exists")
        password = user.get("credential")
        if password and (
            not isinstance(password, str)
            or len(password) > 128
            or not re.fullmatch(r"(?=.*[a-z])(?=.*[A-Z])(?=.*\d)(?=.*[^a-zA-Z0-9]).{8,}", password, re.DOTALL)
        ):
            raise flowise_error(400, "Invalid Password")
        name = user.get("name") or user["email"]
        if not isinstance(name, str) or len(name) > 100:
            raise flowise_error(400, "Invalid User Name")
        stamp = now_iso()
        record = {"id": str(uuid.uuid4()), "name": name, "email": user["email"], "status": "active"}
        record |= {"createdDate": stamp, "updatedDate": stamp}
        record |= {"createdBy": record["id"], "updatedBy": record["id"]}
        self.state["users"].append(record | {"credential": password or None})
        organization = {
            "id": str(uuid.uuid4()),
            "name": "Default Organization",
            "createdDate": stamp,
            "updatedDate": stamp,
        }
        workspace = {"id": str(uuid.uuid4()), "name": "Default Workspace", "organizationId": organization["id"]}
        self.state["organization"], self.state["workspace"] = organization, workspace
        self.save()
        return 201, {
            "user": record,
            "organization": organization,
            "organizationUser": {"organizationId": organization["id"], "userId": record["id"], "status": "active"},
            "workspace": workspace,
            "workspaceUser": {"workspaceId": workspace["id"], "userId": record["id"], "status": "active"},
            "role": {},
        }

    def login(self) -> tuple:
        # without an email or a password passport-local fails before the account service, and the login route's
        # callback calls next() with no error: the request falls through to the UI (200 index.html, the real 3.1.4)
        address, password = self.field("email"), self.field("password")
        if not address or not password:
            return self.not_found()
        user = self.user_by_email(address)
        if user is None:
            raise flowise_error(404, "User Not Found")
        if not user["credential"]:
            raise flowise_error(400, "Invalid User Credential")
        if user["credential"] != password:
            raise flowise_error(401, "Incorrect Email or Password")
        token = "eyJ" + secrets.token_urlsafe(32)
        self.state["tokens"][token] = user["id"]
        secure = self.settings["cookie_secure"]
        # express-session sets a Secure cookie only on a secure request (its issecure(): req.secure under `trust
        # proxy`); res.cookie (token, refreshToken) sets it whatever the connection.
        if not secure or self.secure_request():
            sid = "s%3A" + secrets.token_urlsafe(24)
            self.state["sessions"][sid] = user["id"]
            self.set_cookie("connect.sid", sid, secure=secure)
        self.set_cookie("token", token, secure=secure)
        self.set_cookie("refreshToken", "eyJ" + secrets.token_urlsafe(32), secure=secure)
        self.save()
        workspace = self.state["workspace"]
        return 200, {
            "id": user["id"],
            "email": user["email"],
            "name": user["name"],
            "roleId": "owner",
            "activeOrganizationId": self.state["organization"]["id"],
            "activeOrganizationSubscriptionId": "",
            "activeOrganizationCustomerId": "",
            "activeOrganizationProductId": "",
            "isOrganizationAdmin": True,
            "activeWorkspaceId": workspace["id"],
            "activeWorkspace": workspace["name"],
            "assignedWorkspaces": [
                {
                    "id": workspace["id"],
                    "name": workspace["name"],
                    "role": "owner",
                    "organizationId": workspace["organizationId"],
                }
            ],
            "permissions": FLOWISE_OWNER_PERMISSIONS,
            "features": {},
            "isSSO": False,
        }

    def list_keys(self) -> tuple:
        self.permit("apikeys:view")
        return 200, [{**key, "chatFlows": []} for key in reversed(self.state["api_keys"])]

    def create_key(self) -> tuple:
        self.permit("apikeys:create")
        name, permissions = self.field("keyName"), self.field("permissions")
        if not name:
            raise flowise_error(412, "Error: apikeyController.createApiKey - keyName not provided!")
        if not isinstance(permissions, list) or not permissions or not all(isinstance(p, str) for p in permissions):
            raise flowise_error(412, "Error: apikeyController.createApiKey - permissions must be an array of strings!")
        if any(p.startswith(("workspace:", "admin:")) for p in permissions):
            raise flowise_error(400, "Cannot create API key with workspace or admin permissions")
        key = secrets.token_urlsafe(32)
        self.state["api_keys"].append(
            {
                "id": str(uuid.uuid4()),
                "apiKey": key,
                "apiSecret": f"{sha256(key)}.{secrets.token_hex(8)}",
                "keyName": name,
                "permissions": permissions,
                "workspaceId": self.state["workspace"]["id"],
                "updatedDate": now_iso(),
            }
        )
        self.save()
        return self.list_keys()

    def create_credential(self) -> tuple:
        self.permit("credentials:create")
        if not isinstance(self.data, dict) or not self.data:
            raise flowise_error(412, "Error: credentialsController.createCredential - body not provided!")
        name, credential_name = self.field("name"), self.field("credentialName")
        for column, value in (("name", name), ("credentialName", credential_name)):
            if value is None:  # Postgres's NOT NULL message, as the real 3.1.4 answers it
                raise flowise_error(
                    500,
                    "Error: credentialsService.createCredential - null value in column "
                    f'"{column}" of relation "credential" violates not-null constraint',
                )
        plain = self.field("plainDataObj") or {}
        stamp = now_iso()
        credential = {
            "id": self.field("id") or str(uuid.uuid4()),
            "name": name,
            "credentialName": credential_name,
            "encryptedData": flowise_encrypt(self.state["key"], plain),
            "workspaceId": self.state["workspace"]["id"],
            "createdDate": stamp,
            "updatedDate": stamp,
        }
        self.state["credentials"].append(credential)
        self.save()
        return 200, credential

    def get_credential(self, ident: str) -> tuple:
        """services/credentials getCredentialById: decrypted with the key of this start, password inputs redacted;
        a credential another key encrypted is a 500 (upstream's message names createCredential)."""
        if not (
            self.caller["isOrganizationAdmin"]
            or {"credentials:create", "credentials:update"} & set(self.caller["permissions"])
        ):
            raise Reply(403, {"message": "Forbidden"})
        found = next((item for item in self.state["credentials"] if item["id"] == ident), None)
        if found is None:
            raise flowise_error(500, f"Error: credentialsService.createCredential - Credential {ident} not found")
        try:
            plain = flowise_decrypt(self.state["key"], found["encryptedData"])
        except ValueError as exc:
            raise flowise_error(500, f"Error: credentialsService.createCredential - {exc}") from None
        hidden = FLOWISE_PASSWORD_INPUTS.get(found["credentialName"], set())
        plain = {key: FLOWISE_REDACTED if key in hidden else value for key, value in plain.items()}
        return 200, {key: value for key, value in found.items() if key != "encryptedData"} | {"plainDataObj": plain}

    def update_credential(self, ident: str) -> tuple:
        """routes/credentials PUT /:id (checkAnyPermission credentials:create,credentials:update),
        controllers/credentials updateCredential (412 without a body), services/credentials updateCredential: the sent
        plainDataObj merged over the decrypted one and encrypted again, name and credentialName as sent; an unknown id
        or a credential another key encrypted is a 500 naming updateCredential. The answer is the saved row."""
        if not (
            self.caller["isOrganizationAdmin"]
            or {"credentials:create", "credentials:update"} & set(self.caller["permissions"])
        ):
            raise Reply(403, {"message": "Forbidden"})
        if not isinstance(self.data, dict):
            raise flowise_error(412, "Error: credentialsController.updateCredential - body not provided!")
        found = next((item for item in self.state["credentials"] if item["id"] == ident), None)
        if found is None:
            raise flowise_error(500, f"Error: credentialsService.updateCredential - Credential {ident} not found")
        try:
            plain = flowise_decrypt(self.state["key"], found["encryptedData"])
        except ValueError as exc:
            raise flowise_error(500, f"Error: credentialsService.updateCredential - {exc}") from None
        incoming = self.field("plainDataObj") if isinstance(self.field("plainDataObj"), dict) else {}
        found["encryptedData"] = flowise_encrypt(self.state["key"], {**plain, **incoming})
        for key in ("name", "credentialName"):  # transformToCredentialEntity; TypeORM's merge skips undefined
            if self.field(key) is not None:
                found[key] = self.field(key)
        found["updatedDate"] = now_iso()
        self.save()
        return 200, found

    def list_credentials(self) -> tuple:
        self.permit("credentials:view")
        names = self.query.get("credentialName")
        return 200, [
            {key: value for key, value in item.items() if key != "encryptedData"}
            for item in self.state["credentials"]
            if not names or item["credentialName"] in names
        ]

    def metrics(self) -> tuple:
        if not self.settings["metrics"]:
            return self.not_found()  # ENABLE_METRICS unset: no route, the UI answers
        text = (
            "# HELP flowise_standin_up The stand-in answers.\n# TYPE flowise_standin_up gauge\nflowise_standin_up 1\n"
        )
        return 200, text.encode(), (("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),)


# ======================================================================================================================
# Grafana 12.4.10, the catalog's pin (from the Grafana 12 sources: pkg/api/http_server.go health, pkg/services/authn
# basic auth, pkg/api/datasources.go, promlib health; packaging/docker/run.sh and the Dockerfile for the start: user
# 472 in root's group, GF_PATHS_DATA). No source of the 12.4.10 tag is reachable here to re-read.

PROMETHEUS_HEALTH_ERROR = "There was an error returned querying the Prometheus API."


class Grafana(AppHandler):
    name = "grafana"
    defaults: ClassVar[dict[str, Any]] = {
        "admin_user": "admin",
        "admin_password": "admin",
        "datasources": ["prometheus"],
        "prometheus_url": None,
        "data_path": None,  # GF_PATHS_DATA: grafana.db is made there at start (None in process: nothing written)
        "plugins_path": None,  # GF_PATHS_PLUGINS: run.sh makes it when missing
    }
    routes = (
        ("GET", "/api/health", "health"),
        ("GET", "/healthz", "healthz"),
        ("GET", "/api/user", "user"),
        ("GET", "/api/datasources/uid/(?P<uid>[^/]+)/health", "datasource_health"),  # pkg/api/api.go: Get only
    )

    @classmethod
    def initial_state(cls, settings: dict) -> dict:
        """The start as the image runs it, as user 472: packaging/docker/run.sh warns about a data path it cannot
        write and makes the plugins folder; grafana-server then opens (creates) its SQLite database
        $GF_PATHS_DATA/grafana.db and exits when it cannot."""
        data, plugins = settings["data_path"], settings["plugins_path"]
        if data:
            if not os.access(data, os.W_OK):
                print(f"GF_PATHS_DATA='{data}' is not writable.", flush=True)
                print(
                    "You may have issues with file permissions, more information here: "
                    "http://docs.grafana.org/installation/docker/#migrate-to-v51-or-later",
                    flush=True,
                )
            try:
                if plugins and not os.path.isdir(plugins):
                    os.mkdir(plugins)
                with open(os.path.join(data, "grafana.db"), "a"):
                    pass
            except OSError as exc:
                raise SystemExit(
                    f"grafana stand-in: cannot open its database {data}/grafana.db ({exc}), as Grafana"
                ) from None
        return {}

    def error(self, status: int, message: str) -> Any:
        return {"message": "Not found" if status == 404 else message}

    def match(self) -> tuple[str, dict]:
        """pkg/web/router.go ServeHTTP: a route is looked up among the request method's routes only, so a path served
        for another method is not found (no 405); pkg/api/http_server.go NotFoundHandler answers an /api path with
        {"message": "Not found"}. Get also registers Head."""
        try:
            return super().match()
        except Reply as answer:
            if answer.status != 405:
                raise
            raise Reply(404, self.error(404, "Not found")) from None

    def authorize(self) -> None:
        if not self.route_path.startswith("/api/") or self.route_path == "/api/health":
            return
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            raise Reply(401, {"message": "Unauthorized"})  # unsure: newer versions may add messageId/statusCode
        try:
            login, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            login, password = "", None
        if (login, password) != (self.settings["admin_user"], self.settings["admin_password"]):
            raise Reply(
                401,
                {
                    "message": "Invalid username or password",
                    "messageId": "password-auth.failed",
                    "statusCode": 401,
                    "traceID": "",
                },
            )

    def health(self) -> tuple:
        body = json.dumps({"database": "ok", "version": "12.4.0", "commit": "standin"}, indent=2).encode()
        return 200, body, (("Content-Type", "application/json; charset=UTF-8"),)

    def healthz(self) -> tuple:
        return 200, "Ok"

    def user(self) -> tuple:
        return 200, {
            "id": 1,
            "uid": "admin",
            "email": "admin@localhost",
            "name": "",
            "login": self.settings["admin_user"],
            "theme": "",
            "orgId": 1,
            "isGrafanaAdmin": True,
            "isDisabled": False,
            "isExternal": False,
            "isExternallySynced": False,
            "isGrafanaAdminExternallySynced": False,
            "authLabels": [],
            "isProvisioned": False,
        }

    def datasource_health(self, uid: str) -> tuple:
        if not re.fullmatch(r"[a-zA-Z0-9\-_]{1,40}", uid):
            return 400, {"message": "UID is invalid"}
        if uid not in self.settings["datasources"]:  # upstream: any lookup failure is a 500, not a 404
            return 500, {"message": "Unable to load datasource metadata"}
        url = self.settings["prometheus_url"]
        if url:  # promlib: an instant query "1+1", POST by default
            target = url.rstrip("/") + "/api/v1/query"
            form = urlencode({"query": "1+1", "time": f"{time.time():.3f}"}).encode()
            try:
                status, reason, _ = outbound(
                    "POST", target, form, {"Content-Type": "application/x-www-form-urlencoded"}
                )
                problem = None if status == 200 else f"{status} {reason}"
            except OSError as exc:
                problem = f'Post "{target}": {exc}'
            if problem:
                return 400, {"status": "ERROR", "message": f"{problem} - {PROMETHEUS_HEALTH_ERROR}"}
        return 200, {"status": "OK", "message": "Successfully queried the Prometheus API."}


# ======================================================================================================================
# MLflow 3.18.0, the catalog's pin, with its basic-auth app (`--app-name basic-auth`), as PyPI's mlflow-skinny 3.18.0
# has it: server/auth/__init__.py (_UNPROTECTED_PATH_PREFIXES, make_basic_auth_response, create_admin_user,
# _validate_bootstrap_admin_password, get_current_user), server/auth/config.py (MLFLOW_AUTH_ADMIN_* over the ini),
# server/security_utils.py + fastapi_security.py (the Host guard, MLFLOW_SERVER_ALLOWED_HOSTS). Only the admin is
# modelled; the real server runs in tests/apps/test_mlflow.py.


class MLflow(AppHandler):
    name = "mlflow"
    defaults: ClassVar[dict[str, Any]] = {
        "admin_username": "admin",
        "admin_password": None,  # MLflow ships none: the auth app refuses to start without one
        "secret_key": None,  # MLFLOW_FLASK_SERVER_SECRET_KEY: the auth app refuses to start without it
        "allowed_hosts": None,  # None: the default list (localhost and private addresses), not checked here
    }
    routes = (
        ("GET", "/health", "health"),
        ("GET", "/api/2.0/mlflow/users/current", "current_user"),
        ("GET", "/ajax-api/2.0/mlflow/users/current", "current_user"),
    )

    @classmethod
    def initial_state(cls, settings: dict) -> dict:
        password = settings["admin_password"]
        if not settings["secret_key"]:
            raise SystemExit("mlflow stand-in: `MLFLOW_FLASK_SERVER_SECRET_KEY` is not set, as MLflow's auth app")
        if not password:
            raise SystemExit(
                f"mlflow stand-in: MLflow Authentication needs a password to create the admin user "
                f"'{settings['admin_username']}', but none is configured (or it is empty)."
            )
        if len(password) < 12:  # utils/validation.py _validate_password
            raise SystemExit(
                f"mlflow stand-in: The configured password for the admin user '{settings['admin_username']}' is "
                "invalid: Password must be at least 12 characters."
            )
        return {}

    def error(self, status: int, message: str) -> Any:
        return message

    def authorize(self) -> None:
        allowed = self.settings["allowed_hosts"]
        if self.route_path != "/health" and allowed and "*" not in allowed:
            host = self.headers.get("Host", "")
            if not any(fnmatch.fnmatch(host, item) if "*" in item else host == item for item in allowed):
                raise Reply(403, "Invalid Host header - possible DNS rebinding attack detected")
        if self.route_path.startswith(("/static", "/favicon.ico", "/health")):
            return
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        try:
            login, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            login, password = "", ""
        wanted = (self.settings["admin_username"], self.settings["admin_password"])
        if scheme.lower() != "basic" or (login, password) != wanted:
            raise Reply(
                401,
                "You are not authenticated. Please see "
                "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.",
                (("WWW-Authenticate", 'Basic realm="mlflow"'),),
            )

    def health(self) -> tuple:
        return 200, "OK"

    def current_user(self) -> tuple:
        user = {"id": 1, "username": self.settings["admin_username"], "is_admin": True}
        return 200, {"user": user, "is_basic_auth": True}


# ======================================================================================================================
# LiteLLM 1.89.7, the catalog's pin, as PyPI's litellm 1.89.7 wheel has it: proxy/management_endpoints/
# key_management_endpoints.py (the same as 1.89.2's, which this was written from), proxy/auth/user_api_key_auth.py,
# auth_checks.py, _types.py ProxyException (1.89.7 changes only fallback checks and budget messages, not modelled):
# key management with a database, forwarding to a proxy without one. The image runs as root.


def litellm_error(status: int, message: str, kind: str, param: str | None = "None") -> Reply:
    """ProxyException: {"error": {"message", "type", "param", "code": "<status>"}}."""
    return Reply(status, {"error": {"message": message, "type": kind, "param": param, "code": str(status)}})


class LiteLLMKeys(AppHandler):
    name = "litellm-keys"
    defaults: ClassVar[dict[str, Any]] = {"master_key": None, "forward": None}
    routes = (
        ("POST", "/key/generate", "generate"),
        ("GET", "/key/list", "list_keys"),
        ("GET", "/key/info", "info"),
        ("POST", "/key/delete", "delete"),
        ("GET", "/health/liveliness", "liveliness"),
        ("*", "/.*", "forward"),
    )
    unlocked = frozenset({"forward"})

    @classmethod
    def initial_state(cls, settings: dict) -> dict:
        return {"keys": {}}  # sha256(key) -> the verification-token row; the plaintext key is never stored

    def error(self, status: int, message: str) -> Any:
        return {"detail": message}

    def key_of(self, key: str) -> dict:
        """user_api_key_auth for a key that is not the master key."""
        if not key.startswith("sk-"):
            masked = f"{key[:4]}****{key[-4:]}" if len(key) > 8 else "****"
            raise litellm_error(
                401, f"LiteLLM Virtual Key expected. Received={masked}, expected to start with 'sk-'.", "auth_error"
            )
        row = self.state["keys"].get(sha256(key))
        if row is None:
            raise litellm_error(
                401,
                f"Authentication Error, Invalid proxy server token passed. Received API Key = sk-...{key[-4:]}, "
                f"Key Hash (Token) ={sha256(key)}. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
                "token_not_found_in_db",
                "key",
            )
        if row["expires"] and datetime.fromisoformat(row["expires"]) < datetime.now(timezone.utc):
            raise litellm_error(
                401, f"Authentication Error - Expired Key. Key Expiry time {row['expires']}", "expired_key", "key"
            )
        return row

    def caller(self) -> dict | None:
        """The master key (or no master key configured) is the proxy admin (None); else the key's row."""
        master = self.settings["master_key"]
        if master is None:
            return None
        header = self.headers.get("Authorization")
        if not header:
            raise litellm_error(401, "Authentication Error, No api key passed in.", "auth_error")
        if not header.startswith("Bearer "):
            raise litellm_error(
                401, "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.", "auth_error"
            )
        key = header[len("Bearer ") :].strip()
        return None if key == master else self.key_of(key)

    def generate(self) -> tuple:
        caller = self.caller()
        if caller is not None:  # unsure: the exact route-check wording for a non-admin key
            raise litellm_error(
                401,
                "Authentication Error, Only proxy admin can be used to generate, delete, update info for new "
                "keys/users/teams. Route=/key/generate. Your role=None. Your user_id=None",
                "auth_error",
            )
        if not isinstance(self.data, dict):
            raise Reply(
                422,
                {
                    "detail": [
                        {
                            "type": "model_attributes_type",
                            "loc": ["body"],
                            "msg": "Input should be a valid dictionary or object to extract fields from",
                        }
                    ]
                },
            )
        data = self.data
        alias = data.get("key_alias")
        if alias is not None and any(row["key_alias"] == alias for row in self.state["keys"].values()):
            raise litellm_error(
                400,
                f"Key with alias '{alias}' already exists. Unique key aliases across all keys are required.",
                "bad_request_error",
                "key_alias",
            )
        key = data.get("key") or f"sk-{secrets.token_urlsafe(16)}"
        expires = None
        if data.get("duration"):
            found = re.fullmatch(r"(\d+)([smhdw])", str(data["duration"]))
            unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[found[2]] if found else 0
            expires = (
                (datetime.now(timezone.utc) + timedelta(seconds=int(found[1]) * unit)).isoformat() if found else None
            )
        stamp = now_iso()
        row = {
            "token": sha256(key),
            "key_name": f"sk-...{key[-4:]}",
            "key_alias": alias,
            "spend": 0.0,
            "expires": expires,
            "models": data.get("models") or [],
            "aliases": data.get("aliases") or {},
            "config": data.get("config") or {},
            "user_id": data.get("user_id"),
            "team_id": data.get("team_id"),
            "max_parallel_requests": data.get("max_parallel_requests"),
            "metadata": data.get("metadata") or {},
            "tpm_limit": data.get("tpm_limit"),
            "rpm_limit": data.get("rpm_limit"),
            "max_budget": data.get("max_budget"),
            "budget_duration": data.get("budget_duration"),
            "budget_reset_at": None,
            "allowed_cache_controls": data.get("allowed_cache_controls") or [],
            "permissions": data.get("permissions") or {},
            "model_max_budget": data.get("model_max_budget") or {},
            "organization_id": data.get("organization_id"),
            "blocked": data.get("blocked"),
            "tags": data.get("tags"),
            "created_at": stamp,
            "updated_at": stamp,
            "created_by": None,
            "updated_by": None,
        }
        self.state["keys"][row["token"]] = row
        # GenerateKeyResponse: `key` and `token` are the plaintext key (shown once), `token_id` its hash.
        return 200, {**row, "key": key, "token": key, "token_id": row["token"], "soft_budget": data.get("soft_budget")}

    def list_keys(self) -> tuple:
        caller = self.caller()
        page, size = int(self.arg("page") or 1), int(self.arg("size") or 10)
        if page < 1 or not 1 <= size <= 100:
            raise Reply(
                422, {"detail": [{"type": "value_error", "loc": ["query", "size"], "msg": "size must be 1-100"}]}
            )
        alias = self.arg("key_alias")
        rows = sorted(self.state["keys"].values(), key=lambda row: row["created_at"], reverse=True)
        if caller is not None:  # other callers: exact alias, only their own keys (here: the calling key)
            rows = [row for row in rows if row is caller and (alias is None or row["key_alias"] == alias)]
        elif alias:  # proxy admin: a case-insensitive substring match (check the alias exactly on the client side)
            rows = [row for row in rows if row["key_alias"] and alias.lower() in row["key_alias"].lower()]
        for name in ("user_id", "team_id"):
            if self.arg(name):
                rows = [row for row in rows if row[name] == self.arg(name)]
        full = self.arg("return_full_object", "false").lower() == "true"
        chosen = rows[(page - 1) * size : page * size]
        return 200, {
            "keys": [dict(row) for row in chosen] if full else [row["token"] for row in chosen],
            "total_count": len(rows),
            "current_page": page,
            "total_pages": math.ceil(len(rows) / size),
        }

    def liveliness(self) -> tuple:
        # The proxy process answers this itself (no database, no model behind it): so does its stand-in, whether
        # or not the LiteLLM it forwards to runs.
        return 200, "I'm alive!"

    def delete(self) -> tuple:
        """key_management_endpoints.py delete_key_fn: {"keys": [...]} or {"key_aliases": [...]}, by an admin."""
        if self.caller() is not None:
            raise litellm_error(403, "Only proxy admins can delete keys here", "auth_error")
        form = self.data if isinstance(self.data, dict) else {}
        keys, aliases = form.get("keys") or [], form.get("key_aliases") or []
        gone = [
            token
            for token, row in list(self.state["keys"].items())
            if row["key_alias"] in aliases or any(token == sha256(k) for k in keys if isinstance(k, str))
        ]
        if not gone:
            raise litellm_error(404, f"Keys not found: {keys or aliases}", "not_found_error", "keys")
        for token in gone:
            del self.state["keys"][token]
        return 200, {"deleted_keys": keys or aliases}

    def info(self) -> tuple:
        caller = self.caller()
        key = self.arg("key") or self.bearer()
        row = self.state["keys"].get(sha256(key) if key and key.startswith("sk-") else key)
        if row is None:
            raise litellm_error(404, "Key not found in database", "not_found_error", "key")
        if caller is not None and caller is not row:
            raise litellm_error(
                403, "You are not allowed to access this key's info. Your role=None", "internal_server_error"
            )
        return 200, {"key": key, "info": {name: value for name, value in row.items() if name != "token"}}

    def forward(self) -> tuple | None:
        """Every other path: to the proxy without a database, a virtual key replaced by the master key."""
        target = self.settings["forward"]
        if not target:
            if self.route_path == "/health/liveliness":
                return 200, "I'm alive!"
            return self.not_found()
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}]
        allowed: list = []
        key = self.bearer()
        master = self.settings["master_key"]
        if key and master and key != master:
            with self.server.lock:  # type: ignore[attr-defined]
                row = self.key_of(key)
            allowed = row["models"]
            model = self.data.get("model") if isinstance(self.data, dict) else None
            if allowed and model is not None and model not in allowed and "all-proxy-models" not in allowed:
                raise litellm_error(
                    403,
                    f"key not allowed to access model. This key can only access models={allowed}. "
                    f"Tried to access {model}",
                    "key_model_access_denied",
                    "model",
                )
            headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
            headers.append(("Authorization", f"Bearer {master}"))
        self.relay(target, headers, filter_models=allowed if self.route_path in ("/models", "/v1/models") else [])
        return None

    def relay(self, target: str, headers: list, filter_models: list) -> None:
        """Send the request on and stream the answer back as it comes (a read1 per chunk, flushed at once)."""
        parts = urlsplit(target)
        connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = connection(parts.hostname, parts.port, timeout=600)
        try:
            conn.putrequest(self.command, parts.path.rstrip("/") + self.path, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            if self.body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(self.body)))
            conn.endheaders(self.body or None)
            response = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise litellm_error(
                502, f"stand-in: the LiteLLM proxy at {target} is not reachable: {exc}", "api_connection_error"
            ) from None
        try:
            if filter_models and response.status == 200:  # upstream lists only the key's models
                listing = json.loads(response.read())
                listing["data"] = [item for item in listing.get("data", []) if item.get("id") in filter_models]
                self.reply(200, listing)
                return
            self.streaming = True
            self.log_request(response.status)
            self.send_response_only(response.status, response.reason)  # the proxy's own Server and Date go back
            length = response.getheader("Content-Length")
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            if length is not None:
                self.send_header("Content-Length", length)
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            while self.command != "HEAD" and (chunk := response.read1(65536)):
                self.wfile.write(chunk)
                self.wfile.flush()
        finally:
            conn.close()


# ======================================================================================================================
# Entry points

# ======================================================================================================================
# Qdrant 1.16 REST API (lib/api/src/rest/schema.rs, src/actix/api/{collections,snapshot,update,retrieve}_api.rs): the
# collections and points a test writes, and the collection snapshots `inv backup` takes and `inv restore` recovers.
# A snapshot is a file under the snapshots path (/qdrant/snapshots/<collection>/), as upstream; recovering from a
# file:// location accepts only a file inside that path, as upstream. Collections are kept in the storage volume.


class Qdrant(AppHandler):
    name = "qdrant"
    defaults: ClassVar[dict[str, Any]] = {
        "api_key": None,
        "storage": "/qdrant/storage",
        "snapshots": "/qdrant/snapshots",
    }
    routes = (
        ("GET", "/readyz", "ready"),
        ("GET", "/healthz", "ready"),
        ("GET", "/collections", "collections"),
        ("GET", "/collections/(?P<name>[^/]+)/exists", "exists"),  # collection_exists (REST API since 1.8)
        ("PUT", "/collections/(?P<name>[^/]+)", "create"),
        ("PUT", "/collections/(?P<name>[^/]+)/points", "upsert"),
        ("POST", "/collections/(?P<name>[^/]+)/points/scroll", "scroll"),
        ("POST", "/collections/(?P<name>[^/]+)/snapshots", "snapshot"),
        ("GET", "/collections/(?P<name>[^/]+)/snapshots", "snapshots"),
        ("PUT", "/collections/(?P<name>[^/]+)/snapshots/recover", "recover"),
        ("DELETE", "/collections/(?P<name>[^/]+)/snapshots/(?P<snapshot>[^/]+)", "delete_snapshot"),
    )

    @classmethod
    def initial_state(cls, settings: dict) -> dict:
        saved = os.path.join(settings["storage"], "standin-collections.json")
        if os.path.exists(saved):
            with open(saved) as handle:
                return {"collections": json.load(handle)}
        return {"collections": {}}

    def save(self) -> None:
        os.makedirs(self.settings["storage"], exist_ok=True)
        with open(os.path.join(self.settings["storage"], "standin-collections.json"), "w") as handle:
            json.dump(self.state["collections"], handle)

    def error(self, status: int, message: str) -> Any:
        return {"status": {"error": message}, "time": 0.0}

    def authorize(self) -> None:
        if self.route_path in ("/readyz", "/healthz") or not self.settings["api_key"]:
            return
        if self.headers.get("api-key") != self.settings["api_key"]:
            raise Reply(401, "Must provide an API key or an Authorization bearer token")

    def ok(self, result: Any) -> tuple:
        return 200, {"result": result, "status": "ok", "time": 0.000_1}

    def collection(self, name: str) -> dict:
        if name not in self.state["collections"]:
            raise Reply(404, self.error(404, f"Not found: Collection `{name}` doesn't exist!"))
        return self.state["collections"][name]

    def ready(self) -> tuple:
        return 200, "all shards are ready"

    def collections(self) -> tuple:
        return self.ok({"collections": [{"name": name} for name in sorted(self.state["collections"])]})

    def exists(self, name: str) -> tuple:
        return self.ok({"exists": name in self.state["collections"]})

    def create(self, name: str) -> tuple:
        if name in self.state["collections"]:
            return 409, self.error(409, f"Wrong input: Collection `{name}` already exists!")
        self.state["collections"][name] = {"config": self.data or {}, "points": {}}
        self.save()
        return self.ok(True)

    def upsert(self, name: str) -> tuple:
        points = self.collection(name)["points"]
        for point in self.field("points") or []:
            points[str(point["id"])] = point
        self.save()
        return self.ok({"operation_id": len(points), "status": "completed"})

    def scroll(self, name: str) -> tuple:
        points = sorted(self.collection(name)["points"].values(), key=lambda p: str(p["id"]))
        return self.ok({"points": points, "next_page_offset": None})

    def snapshot(self, name: str) -> tuple:
        data = json.dumps(self.collection(name)).encode()
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
        snapshot = f"{name}-{secrets.randbelow(10**15)}-{stamp}.snapshot"
        folder = os.path.join(self.settings["snapshots"], name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, snapshot), "wb") as handle:
            handle.write(data)
        return self.ok({"name": snapshot, "creation_time": now_iso(), "size": len(data),
                        "checksum": hashlib.sha256(data).hexdigest()})  # fmt: skip

    def snapshots(self, name: str) -> tuple:
        folder = os.path.join(self.settings["snapshots"], name)
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        return self.ok([{"name": n, "size": os.path.getsize(os.path.join(folder, n))} for n in names])

    def recover(self, name: str) -> tuple:
        location = str(self.field("location") or "")
        path = urlsplit(location).path if location.startswith("file://") else ""
        root = os.path.realpath(self.settings["snapshots"])
        if not path or not os.path.realpath(path).startswith(root + os.sep):
            return 400, self.error(400, f"Bad request: Snapshot file {location!r} is not inside the snapshots path")
        if not os.path.isfile(path):
            return 404, self.error(404, f"Not found: Snapshot file {path} does not exist")
        with open(path, "rb") as handle:
            try:
                self.state["collections"][name] = json.load(handle)
            except ValueError:
                return 400, self.error(400, "Bad request: the snapshot file is not a valid snapshot")
        self.save()
        return self.ok(True)

    def delete_snapshot(self, name: str, snapshot: str) -> tuple:
        path = os.path.join(self.settings["snapshots"], name, snapshot)
        if not os.path.isfile(path):
            return 404, self.error(404, f"Not found: Snapshot {snapshot} not found")
        os.remove(path)
        return self.ok(True)


PROTOCOLS: dict[str, type[AppHandler]] = {
    "openwebui": OpenWebUI,
    "dify": Dify,
    "n8n": N8n,
    "flowise": Flowise,
    "grafana": Grafana,
    "mlflow": MLflow,
    "litellm-keys": LiteLLMKeys,
    "qdrant": Qdrant,
}


def make_handler(protocol: str, settings: dict | None = None) -> type[AppHandler]:
    """The request handler class of one protocol, with its settings (the class's `defaults` overridden)."""
    base = PROTOCOLS[protocol]
    unknown = set(settings or {}) - set(base.defaults) - {"fail", "log"}
    if unknown:
        raise ValueError(f"{protocol}: unknown settings {sorted(unknown)}")
    merged = {**base.defaults, "fail": {}, "log": False, **(settings or {})}
    return type(f"{base.__name__}Handler", (base,), {"settings": merged})


class Server(ThreadingHTTPServer):
    """As serve.py's, without the FQDN lookup HTTPServer.server_bind would make; it knows its open connections."""

    daemon_threads = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "standin", self.server_address[1]
        self.connections: set[socket.socket] = set()

    def process_request(self, request, client_address) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut the kept-alive connections too, so that a stopped stand-in is down for every client."""
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class DualStackServer(Server):
    """Where a container has IPv6, `localhost` may resolve to ::1 first (node's fetch tries only that)."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def make_server(protocol: str, settings: dict | None, address: tuple[str, int], dual_stack=False) -> Server:
    """A server whose handlers share `state` (under `lock`) and log `requests`."""
    handler = make_handler(protocol, settings)
    server = (DualStackServer if dual_stack else Server)(address, handler)
    try:  # an app that cannot start (Grafana without its data path) leaves no socket behind
        server.state = handler.initial_state(handler.settings)  # type: ignore[attr-defined]
    except BaseException:
        server.server_close()
        raise
    server.lock = threading.RLock()  # type: ignore[attr-defined]
    server.requests = []  # type: ignore[attr-defined]
    return server


def serve(protocol: str, port: int, settings: dict | None = None) -> None:
    """Serve one protocol on `port` (all addresses, IPv6 too where the container has it) until SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 gets no default SIGTERM action
    settings = {**(settings or {}), "log": True}
    try:
        server = make_server(protocol, settings, ("::", port), dual_stack=True)
    except OSError:  # no IPv6 in this container
        server = make_server(protocol, settings, ("0.0.0.0", port))
    print(f"{protocol}: app stand-in listening on port {port}", flush=True)
    server.serve_forever()


def settings_from_environ(protocol: str, environ: dict | os._Environ) -> dict:
    """The settings of one protocol from a container's environment (the upstream variable names where they exist)."""

    def flag(name: str, default: bool = False) -> bool:
        value = environ.get(name)
        return default if value in (None, "") else value.strip().lower() in ("1", "true", "yes", "on")

    def listed(name: str) -> list[str]:
        return [item.strip() for item in re.split(r"[,;]", environ.get(name, "")) if item.strip()]

    settings: dict[str, Any] = {}
    if environ.get("STANDIN_FAIL"):
        settings["fail"] = {
            path: int(status) for path, _, status in (item.rpartition("=") for item in listed("STANDIN_FAIL"))
        }
    if protocol == "openwebui":
        settings |= {
            "admin_email": environ.get("WEBUI_ADMIN_EMAIL") or None,
            "admin_password": environ.get("WEBUI_ADMIN_PASSWORD") or None,
            "admin_name": environ.get("WEBUI_ADMIN_NAME") or "Admin",
            "models": listed("STANDIN_MODELS"),
            "openai_base_url": (listed("OPENAI_API_BASE_URLS") or listed("OPENAI_API_BASE_URL") or [None])[0],
            "openai_api_key": (listed("OPENAI_API_KEYS") or listed("OPENAI_API_KEY") or [""])[0],
            "default_models": environ.get("DEFAULT_MODELS") or None,
            "enable_signup": flag("ENABLE_SIGNUP", True),
            "enable_password_auth": flag("ENABLE_PASSWORD_AUTH", True),
            "cookie_secure": flag("WEBUI_AUTH_COOKIE_SECURE"),
            "enable_ollama_api": flag("ENABLE_OLLAMA_API", True),
            "ollama_base_url": (listed("OLLAMA_BASE_URLS") or listed("OLLAMA_BASE_URL") or [None])[0],
            **{
                name: environ[variable]
                for name, variable in (
                    ("rag_embedding_engine", "RAG_EMBEDDING_ENGINE"),
                    ("rag_embedding_model", "RAG_EMBEDDING_MODEL"),
                    ("rag_openai_base_url", "RAG_OPENAI_API_BASE_URL"),
                    ("rag_openai_api_key", "RAG_OPENAI_API_KEY"),
                    ("rag_ollama_base_url", "RAG_OLLAMA_BASE_URL"),
                )
                if variable in environ
            },
        }
    elif protocol == "dify":
        storage = None  # configs/middleware/storage: STORAGE_TYPE opendal (the default) with the fs scheme
        if environ.get("STORAGE_TYPE", "opendal") == "opendal" and environ.get("OPENDAL_SCHEME", "fs") == "fs":
            storage = os.path.abspath(environ.get("OPENDAL_FS_ROOT") or "storage")  # relative to WORKDIR /app/api
        settings |= {
            "init_password": environ.get("INIT_PASSWORD") or None,
            "marketplace": flag("STANDIN_MARKETPLACE"),
            "probe": flag("STANDIN_PROBE"),
            "storage": storage,
            "cookie_secure": all(
                environ.get(name, "").startswith("https") for name in ("CONSOLE_WEB_URL", "CONSOLE_API_URL")
            ),
            "cookie_domain": (environ.get("COOKIE_DOMAIN") or "").strip().removeprefix(".") or None,
        }
    elif protocol == "n8n":
        settings |= {
            "public_api": not flag("N8N_PUBLIC_API_DISABLED"),
            "cookie_secure": flag("N8N_SECURE_COOKIE", True),
        }
    elif protocol == "flowise":
        secure = flag("SECURE_COOKIES") or environ.get("APP_URL", "").startswith("https")
        secure = environ.get("NODE_ENV") == "production" or (secure and environ.get("SECURE_COOKIES") != "false")
        database = None
        if environ.get("DATABASE_TYPE") == "postgres":
            database = {key.lower(): environ.get(f"DATABASE_{key}", "") for key in ("HOST", "NAME", "USER", "PASSWORD")}
            database["port"] = environ.get("DATABASE_PORT") or "5432"
        settings |= {
            "metrics": environ.get("ENABLE_METRICS") == "true",
            "cookie_secure": secure,
            "trust_proxy": environ.get("TRUST_PROXY", "").strip() != "false",
            "home": environ.get("HOME") or None,
            "secretkey_path": environ.get("SECRETKEY_PATH") or None,
            "secretkey_overwrite": environ.get("FLOWISE_SECRETKEY_OVERWRITE") or None,
            "database": database,
        }
    elif protocol == "grafana":
        settings |= {
            "admin_user": environ.get("GF_SECURITY_ADMIN_USER") or "admin",
            "admin_password": environ.get("GF_SECURITY_ADMIN_PASSWORD") or "admin",
            "datasources": listed("STANDIN_DATASOURCES") or ["prometheus"],
            "prometheus_url": environ.get("STANDIN_PROMETHEUS_URL") or None,
            "data_path": environ.get("GF_PATHS_DATA") or None,
            "plugins_path": environ.get("GF_PATHS_PLUGINS") or None,
        }
    elif protocol == "mlflow":
        ini = configparser.ConfigParser()
        ini.read(environ.get("MLFLOW_AUTH_CONFIG_PATH") or [])  # the rendered basic_auth.ini, where it is mounted
        section = ini["mlflow"] if ini.has_section("mlflow") else {}
        hosts = environ.get("MLFLOW_SERVER_ALLOWED_HOSTS")
        settings |= {  # an environment variable that is set wins, even empty (auth/config.py)
            "admin_username": environ.get("MLFLOW_AUTH_ADMIN_USERNAME", section.get("admin_username") or "admin"),
            "admin_password": environ.get("MLFLOW_AUTH_ADMIN_PASSWORD", section.get("admin_password")) or None,
            "secret_key": environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or None,
            "allowed_hosts": [item.strip() for item in hosts.split(",") if item.strip()] if hosts else None,
        }
    elif protocol == "litellm-keys":
        settings |= {
            "master_key": environ.get("LITELLM_MASTER_KEY") or None,
            "forward": environ.get("STANDIN_FORWARD") or None,
        }
    elif protocol == "qdrant":
        settings |= {"api_key": environ.get("QDRANT__SERVICE__API_KEY") or None}
    else:
        raise KeyError(protocol)
    return settings


class AppStandIn:
    """One protocol served in this process on 127.0.0.1 (a free port), in a thread; a context manager."""

    def __init__(self, protocol: str, **settings: Any) -> None:
        self.protocol = protocol
        self.server = make_server(protocol, settings, ("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"standin-{protocol}", daemon=True
        )
        self.thread.start()
        self.stopped = False

    @property
    def state(self) -> dict:
        return self.server.state  # type: ignore[attr-defined]

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self.server.requests  # type: ignore[attr-defined]

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.close_connections()
            self.server.server_close()

    def __enter__(self) -> AppStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    app = os.environ["STANDIN_APP"]
    serve(app, int(os.environ["STANDIN_PORT"]), settings_from_environ(app, os.environ))
