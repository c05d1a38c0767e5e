"""The real n8n (the npm package `n8n`, on Node 24) started on loopback with the environment the rendered compose file
gives its container and the real Postgres of tests/apps/postgres.py; a workflow run through it; and reading its end
state back: the owner's session, its public API, and the credential's row decrypted as n8n-core's Cipher does.

The release: the catalog's image pins 2.41.7, which is not on npm. npm lists 2.41.0, 2.41.1 and 2.41.3, but the
registry this machine reaches lacks 2.41.3's own @n8n/* dependencies (@n8n/agents@0.26.2, n8n-core@2.41.2, ...): the
nearest 2.41 release that installs is 2.41.1 (RELEASE). The routes configure uses were read in both 2.41.1 (installed)
and 2.41.3's n8n package (its controllers are the same).

The container's name `litellm` (configure points the credential at http://litellm:4000/v1, as the containers reach
LiteLLM on the platform network) has no meaning on this host: n8n is given HTTP_PROXY, which n8n's own HTTP requests
honour, naming a small proxy (ContainerNames) that sends `litellm:4000` to the LiteLLM the test runs and records what
it was sent (the key n8n used).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.apps.install import catalog_release, node_env, npm_app, timed
from tests.apps.postgres import Postgres
from tests.configure_platform import rendered_environ
from tests.serving import serving
from tests.standins.ollama_api import free_port

PINNED = catalog_release("n8n")  # 2.41.7, the image's tag
RELEASE = "2.41.1"  # the nearest the registry serves with all its dependencies: see the module docstring
START_TIMEOUT = 300.0  # the first start runs every migration on an empty database and loads ~500 node types
# npm's install scripts are skipped: one fails without the internet and fails the whole install
# (@confluentinc/kafka-javascript fetches its prebuilt library from GitHub, then cannot build librdkafka), and none
# builds anything this run loads (sqlite3, isolated-vm, kafka, ssh2's cpu-features: not with Postgres and these nodes).
NPM_FLAGS = ("--ignore-scripts",)


def install() -> Path:
    """n8n@RELEASE installed once (cached); its node_modules/.bin."""
    return npm_app("n8n", f"n8n@{RELEASE}", flags=NPM_FLAGS)


@dataclass
class Seen:
    method: str
    url: str  # as the client asked the proxy for it: http://litellm:4000/v1/...
    authorization: str
    body: dict


class ContainerNames:
    """A plain HTTP forward proxy for names only the platform's network resolves: each `host:port` in `routes` is sent
    to the URL given for it; anything else is refused (502), as nothing else is reachable here. Every request routed is
    recorded in `seen`."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = routes
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def relay(self) -> None:
                parts = urlsplit(self.path)  # absolute-form: http://litellm:4000/v1/chat/completions
                target = outer.routes.get(parts.netloc)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if target is None:
                    self.send_error(502, f"no route to {parts.netloc} from this test")
                    return
                try:
                    parsed = json.loads(body) if body else {}
                except ValueError:
                    parsed = {}
                outer.seen.append(Seen(self.command, self.path, self.headers.get("Authorization", ""), parsed))
                upstream = urlsplit(target)
                conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "host")}
                    headers["Host"] = upstream.netloc
                    path = parts.path + (f"?{parts.query}" if parts.query else "")
                    conn.request(self.command, path, body or None, headers)
                    answer = conn.getresponse()
                    data = answer.read()
                finally:
                    conn.close()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = relay

            def do_CONNECT(self) -> None:  # https: nothing of the platform's speaks it inside its network
                self.send_error(502, "no https routes from this test")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ContainerNames:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class N8n:
    url: str
    environ: dict[str, str]
    postgres: Postgres
    log: Path
    sessions: list[httpx.Client] = field(default_factory=list)

    def session(self, email: str, password: str) -> tuple[httpx.Client, dict]:
        """A signed-in client as the editor is (POST /rest/login, its n8n-auth cookie sent back by hand: it is Secure
        under the platform's https URL) and who signed in."""
        client = httpx.Client(base_url=self.url, timeout=60, trust_env=False)
        self.sessions.append(client)
        answer = client.post("/rest/login", json={"emailOrLdapLoginId": email, "password": password})
        answer.raise_for_status()
        client.headers["Cookie"] = f"n8n-auth={answer.cookies['n8n-auth']}"
        return client, answer.json()["data"]

    def public(self, key: str) -> httpx.Client:
        """The public API (/api/v1) with an API key, as the platform's scripts call it."""
        client = httpx.Client(base_url=f"{self.url}/api/v1", timeout=60, trust_env=False,
                              headers={"X-N8N-API-KEY": key})  # fmt: skip
        self.sessions.append(client)
        return client

    def psql(self, sql: str) -> str:
        """A query in n8n's own database, as its user (DB_POSTGRESDB_USER / DB_POSTGRESDB_PASSWORD)."""
        env = {**os.environ, "PGPASSWORD": self.environ["DB_POSTGRESDB_PASSWORD"]}
        argv = ["psql", "-h", self.postgres.host, "-p", str(self.postgres.port),
                "-U", self.environ["DB_POSTGRESDB_USER"], "-d", self.environ["DB_POSTGRESDB_DATABASE"],
                "-v", "ON_ERROR_STOP=1", "-tAq", "-c", sql]  # fmt: skip
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout.strip()

    def stored_credential(self, ident: str) -> dict:
        """The credential's data as stored: credentials_entity.data decrypted with N8N_ENCRYPTION_KEY as n8n-core's
        Cipher (dist/encryption/cipher.js) does: base64 of "Salted__", an 8-byte salt and AES-256-CBC text, key and IV
        from MD5 over the key and the salt (OpenSSL's EVP_BytesToKey)."""
        raw = base64.b64decode(self.psql(f"select data from credentials_entity where id = '{ident}'"))
        assert raw[:8] == b"Salted__", raw[:8]
        salt, text = raw[8:16], raw[16:]
        password = self.environ["N8N_ENCRYPTION_KEY"].encode("latin-1") + salt
        first = hashlib.md5(password).digest()
        second = hashlib.md5(first + password).digest()
        iv = hashlib.md5(second + password).digest()
        argv = ["openssl", "enc", "-d", "-aes-256-cbc", "-K", (first + second).hex(), "-iv", iv.hex()]
        done = subprocess.run(argv, input=text, capture_output=True, check=True)
        return json.loads(done.stdout)


@contextlib.contextmanager
def n8n(root: Path, secrets: dict[str, str], postgres: Postgres, workdir: Path, proxy: str) -> Iterator[N8n]:
    """n8n for the platform applied at `root`, started with its rendered container environment (`proxy`: where
    ContainerNames listens); stopped after."""
    bin_dir = install()
    workdir.mkdir(parents=True, exist_ok=True)
    port, broker = free_port(), free_port()
    environ = {
        **rendered_environ(root, secrets, "n8n", "n8n"),
        # the image's own ENV (docker/images/n8n/Dockerfile): what the compose file does not say but the container has
        "NODE_ENV": "production",
        "N8N_RELEASE_TYPE": "stable",
        # What the host forces, and nothing else:
        "DB_POSTGRESDB_HOST": postgres.host,  # the tests' Postgres instead of the container `postgres`
        "DB_POSTGRESDB_PORT": str(postgres.port),
        "N8N_PORT": str(port),  # a free port here; the container listens on 5678
        "N8N_LISTEN_ADDRESS": "127.0.0.1",  # loopback only (the container on every interface)
        "N8N_RUNNERS_BROKER_PORT": str(broker),  # the task runners' broker: 5679 in the container, free here
        # the image keeps its data in /home/node/.n8n (the n8n-data volume): N8N_USER_FOLDER/.n8n is that folder here
        "N8N_USER_FOLDER": str(workdir),
        # no internet here: no version checks nor templates from n8n's servers (the rendered file turns diagnostics off)
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        # the container name `litellm` through the test's proxy (see the module docstring); n8n itself on loopback
        "HTTP_PROXY": proxy,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env = {"PATH": node_env()["PATH"], "HOME": str(workdir), "LANG": "C.UTF-8", **environ}
    log = workdir / "n8n.log"
    with contextlib.ExitStack() as stack:
        with timed("n8n start"):
            stack.enter_context(
                serving(
                    "n8n",
                    [str(bin_dir / "n8n"), "start"],
                    f"http://127.0.0.1:{port}/healthz/readiness",
                    log,
                    env=env,
                    cwd=workdir,
                    timeout=START_TIMEOUT,
                )
            )
        found = N8n(f"http://127.0.0.1:{port}", environ, postgres, log)
        try:
            yield found
        finally:
            for client in found.sessions:
                client.close()
