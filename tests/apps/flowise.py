"""The real Flowise (the npm package `flowise` at the release the catalog's image pins, on Node 24) started on loopback
with the environment the rendered compose file gives its container, its database the real Postgres of
tests/apps/postgres.py; and reading its end state back: through its own API (a fresh sign-in) and its own database
(the credential's encrypted data, decrypted with crypto-js as Flowise's utils decryptCredentialData does)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.apps.install import catalog_release, node_env, npm_app, timed
from tests.apps.postgres import Postgres
from tests.configure_platform import rendered_environ
from tests.serving import serving
from tests.standins.ollama_api import free_port

RELEASE = catalog_release("flowise")  # 3.1.4: the image's tag, published on npm under the same version
START_TIMEOUT = 240.0  # the first start runs every TypeORM migration and loads ~300 node packages


def install() -> Path:
    """flowise@RELEASE installed once (cached); its node_modules/.bin. Without the packages' install scripts: some
    fetch prebuilt binaries from outside the registry or clone sources to build them (faiss-node, a dependency of
    flowise-components, clones faiss and fails the whole install offline; canvas, better-sqlite3 and others build
    native code), and none of them is loaded by the server with a Postgres database or by what configure calls."""
    return npm_app("flowise", f"flowise@{RELEASE}", flags=("--ignore-scripts",))


@dataclass
class Flowise:
    url: str
    environ: dict[str, str]
    postgres: Postgres
    modules: Path  # node_modules of the install (crypto-js for reading the stored credential)
    home: Path  # the container's /home/node: Flowise's ~/.flowise is under it

    def session(self, email: str, password: str) -> tuple[httpx.Client, dict]:
        """A signed-in client, as the browser is (the `token` and `connect.sid` cookies, `x-request-from: internal`),
        and who signed in (the login's answer): POST /api/v1/auth/login over what Caddy says is https, its cookies
        then sent back by hand (they are Secure)."""
        client = httpx.Client(base_url=self.url, timeout=30, trust_env=False)
        answer = client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}, headers={"X-Forwarded-Proto": "https"}
        )
        answer.raise_for_status()
        cookies = "; ".join(f"{name}={value}" for name, value in answer.cookies.items())
        client.headers.update({"Cookie": cookies, "x-request-from": "internal"})
        return client, answer.json()

    def psql(self, sql: str) -> str:
        """A query in Flowise's own database, as its user (DATABASE_USER / DATABASE_PASSWORD)."""
        env = {**os.environ, "PGPASSWORD": self.environ["DATABASE_PASSWORD"]}
        argv = ["psql", "-h", self.postgres.host, "-p", str(self.postgres.port), "-U", self.environ["DATABASE_USER"],
                "-d", self.environ["DATABASE_NAME"], "-v", "ON_ERROR_STOP=1", "-tAq", "-c", sql]  # fmt: skip
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout.strip()

    def stored_credential(self, ident: str, key: str | None = None) -> dict:
        """The credential's data as stored: its row's encryptedData decrypted with the key the container is given
        (FLOWISE_SECRETKEY_OVERWRITE) or `key`, by crypto-js's AES as Flowise's utils decryptCredentialData calls it."""
        encrypted = self.psql(f"select \"encryptedData\" from credential where id = '{ident}'")
        script = (
            "const CryptoJS = require('crypto-js');"
            "const [data, key] = [process.env.DATA, process.env.KEY];"
            "process.stdout.write(CryptoJS.AES.decrypt(data, key).toString(CryptoJS.enc.Utf8));"
        )
        env = {**node_env(), "NODE_PATH": str(self.modules), "DATA": encrypted,
               "KEY": key or self.environ["FLOWISE_SECRETKEY_OVERWRITE"]}  # fmt: skip
        done = subprocess.run(["node", "-e", script], env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout)


@contextlib.contextmanager
def flowise(
    root: Path, secrets: dict[str, str], postgres: Postgres, workdir: Path, **changed: str
) -> Iterator[Flowise]:
    """Flowise for the platform applied at `root`, started with its rendered container environment (`changed`: what a
    test changes in it on purpose, e.g. another encryption key); stopped after."""
    bin_dir = install()
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environ = {
        **rendered_environ(root, secrets, "flowise", "flowise"),
        # What the host forces, and nothing else:
        "PORT": str(port),  # a free port here; the container listens on 3000
        "HOST": "127.0.0.1",  # loopback only (index.ts listens on HOST; the container on every interface)
        "DATABASE_HOST": postgres.host,  # the tests' Postgres instead of the container `postgres`
        "DATABASE_PORT": str(postgres.port),
        **changed,
    }
    env = {
        **node_env(),
        **environ,
        # the image's user's HOME is /home/node, where Flowise keeps ~/.flowise (storage, logs, the JWT issuer and
        # audience files of enterprise/utils/authSecrets): a temporary folder here (the data folder's mount)
        "HOME": str(home),
    }
    with contextlib.ExitStack() as stack:
        with timed("flowise start"):
            argv, health = [str(bin_dir / "flowise"), "start"], f"http://127.0.0.1:{port}/api/v1/ping"
            log = workdir / "flowise.log"
            stack.enter_context(serving("Flowise", argv, health, log, env=env, cwd=home, timeout=START_TIMEOUT))
        yield Flowise(f"http://127.0.0.1:{port}", environ, postgres, bin_dir.parent, home)
