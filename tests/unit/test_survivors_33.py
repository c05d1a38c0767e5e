"""What the mutation benchmark's seed-33 draw changed unseen: configure's requests to the platform's own services on
127.0.0.1 never go through a proxy the host's environment names."""

from __future__ import annotations

import http.server
import threading

from aiplatform.configure.http import Api


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_configure_reaches_its_services_directly_whatever_proxy_the_environment_names(monkeypatch):
    """A host whose shell sets a proxy for the internet (HTTP_PROXY, ALL_PROXY; no NO_PROXY for 127.0.0.1):
    configure's client still talks to the service on 127.0.0.1 itself, not to the proxy (here one nothing answers)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    api = Api("Notes", "notes", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        assert api.json(api.get("/")) == {"ok": True}
    finally:
        api.close()
        server.shutdown()
        server.server_close()
