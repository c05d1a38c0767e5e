"""The real Open WebUI (the PyPI release the catalog's image pins), started on loopback from a rendered tree.

Installed once into the apps cache (tests/apps/install.py) with the CPU build of torch first: torch 2.13.0's CPU wheel
is what pip finds for `torch==2.13.0` here, and installing it before open-webui keeps pip from pulling a CUDA build of
several GB (`install()` checks that the venv still holds the CPU build afterwards). The `postgres` extra (psycopg2,
Open WebUI's synchronous engine for a postgresql:// DATABASE_URL) and qdrant-client are what the image has beside the
package (its requirements.txt; the extras `postgres` and `all` of the wheel name the same pins).

It runs with the environment the rendered compose file gives the container (`${VAR}` filled from the rendered
credentials), changed only where this host forces it, each change said where it is made below.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.apps.install import catalog_release, python_app, timed
from tests.apps.postgres import Postgres
from tests.configure_platform import rendered_environ
from tests.serving import serving
from tests.standins.ollama_api import free_port

TORCH = "torch==2.13.0"  # the CPU build lies in the wheel folder pip reads first (PIP_FIND_LINKS)
QDRANT_CLIENT = "qdrant-client==1.18.0"  # the pin of open-webui 0.11.4's `all` extra, as in the image


@functools.cache
def install() -> Path:
    """The venv's bin/ folder with open-webui at the catalog's release, on the CPU build of torch."""
    release = catalog_release("open-webui")
    bin_dir = python_app("open-webui", TORCH, f"open-webui[postgres]=={release}", QDRANT_CLIENT)
    ask = "import importlib.metadata as m; print(m.version('torch'), *sorted(d.name for d in m.distributions()))"
    found = subprocess.run([str(bin_dir / "python"), "-c", ask], capture_output=True, text=True, check=True)
    torch, *names = found.stdout.split()
    cuda = [name for name in names if name.lower().startswith(("nvidia-", "triton"))]
    if not torch.endswith("+cpu") or cuda:
        pytest.fail(f"open-webui's venv holds torch {torch} and {cuda or 'no CUDA package'}: not the CPU build")
    return bin_dir


@dataclass
class NameProxy:
    """An HTTP forward proxy on loopback standing in for the platform network's names: Open WebUI reaches
    `litellm:4000` (configure's connection), `qdrant:6333` and `host.docker.internal:11434` by name, as its container
    does; here each name goes to the process playing it. It speaks plain HTTP proxying (absolute-URI requests, which
    aiohttp and httpx send when HTTP_PROXY is set: Open WebUI's sessions use trust_env=True), asks for
    `Connection: close` so one client connection carries one request, and streams the answer back unchanged.
    `asked` records each (host:port, method, path); a name it does not know is answered 502."""

    routes: dict[str, str]  # "litellm:4000" -> "127.0.0.1:PORT"
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(60)
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            head, rest = head.split(b"\r\n\r\n", 1)
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, version = request_line.split(" ", 2)
            parts = urlsplit(target)
            where = f"{parts.hostname}:{parts.port or 80}"
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            self.asked.append((where, method, parts.path))
            if where not in self.routes:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            headers = [line for line in header_lines if line.split(":", 1)[0].strip().lower() not in
                       ("connection", "proxy-connection", "keep-alive")]  # fmt: skip
            upstream_head = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close", "", ""])
            host, port = self.routes[where].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=60) as upstream:
                upstream.sendall(upstream_head.encode("latin-1") + rest)
                self._splice(client, upstream)

    def _splice(self, client: socket.socket, upstream: socket.socket) -> None:
        """Bytes both ways until the upstream closes (it answers one request and closes: Connection: close)."""
        open_ends = [client, upstream]
        while True:
            ready, _, _ = select.select(open_ends, [], [], 120)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    if sock is upstream:
                        return
                    open_ends.remove(client)  # the client has sent all: the answer may still come
                    with contextlib.suppress(OSError):
                        upstream.shutdown(socket.SHUT_WR)
                    continue
                (upstream if sock is client else client).sendall(data)

    def stop(self) -> None:
        self._stopping.set()
        self._server.close()


@contextlib.contextmanager
def open_webui(
    root: Path,
    secrets: dict[str, str],
    workdir: Path,
    postgres: Postgres,
    proxy: NameProxy,
    without: tuple[str, ...] = (),
) -> Iterator[str]:
    """Run Open WebUI for the platform applied at `root` (the rendered variables named in `without` left out: the
    caller says why); yields its base URL (http://127.0.0.1:PORT)."""
    bin_dir = install()
    rendered = rendered_environ(root, secrets, "open-webui", "open-webui")
    rendered = {name: value for name, value in rendered.items() if name not in without}
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(workdir),
        "ENV": "prod",  # the image's own ENV line (Dockerfile): production mode
        **rendered,
        # What this host forces, and nothing else:
        # - the database: the rendered postgres:5432 is the tests' real Postgres on a free loopback port
        "DATABASE_URL": postgres.url(rendered["DATABASE_URL"]),
        # - the data volume (/app/backend/data in the container) and the static files Open WebUI copies at start
        #   (into its package folder by default: the shared cache stays untouched)
        "DATA_DIR": str(data),
        "STATIC_DIR": str(workdir / "static"),
        # - no internet: nothing is downloaded (Hugging Face offline, no version check)
        "OFFLINE_MODE": "true",
        "HF_HUB_OFFLINE": "1",
        # - the platform network's names (litellm, qdrant, host.docker.internal) through the name proxy
        "HTTP_PROXY": proxy.url,
        "http_proxy": proxy.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(bin_dir / "open-webui"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with contextlib.ExitStack() as stack:
        with timed("open-webui start", "first start: migrations on Postgres"):
            stack.enter_context(serving("Open WebUI", argv, f"{url}/health", workdir / "open-webui.log", env=env,
                                        cwd=workdir, timeout=300))  # fmt: skip
        yield url
