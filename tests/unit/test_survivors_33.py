"""What the mutation benchmark's seed-33 draw changed unseen: configure's requests to the platform's own services on
127.0.0.1 never go through a proxy the host's environment names; a tree rendered with flags is current to deploy's
check; a render keeps the owner's git folder in generated/."""

from __future__ import annotations

import http.server
import threading

from aiplatform.configure.http import Api
from aiplatform.generated.build import render_command, stale_reason
from aiplatform.generated.write import write_tree

from .test_generated_write import _tree
from .test_render import _ctx


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


def test_a_tree_rendered_with_flags_is_current_to_deploys_check(tmp_path):
    """`inv render --domain ... --ollama-keep-alive ...`: deploy's check rebuilds the context with the flags the
    stamp recorded (without them, the defaults would differ from what was rendered), so the tree is current."""
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path, domain="ai.example.com", ollama_keep_alive="20m"), out, interactive=False)
    assert stale_reason(out, {}) is None


def test_a_render_keeps_the_owners_git_folder_in_generated(tmp_path):
    """An owner who keeps generated/ in git (to diff renders): each render writes a new tree and keeps .git."""
    out = tmp_path / "generated"
    write_tree(out, _tree("one"))
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    write_tree(out, _tree("two"))
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
