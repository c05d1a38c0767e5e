"""Protocol stand-in for one HTTP container of the catalog (stdlib only; baked into its image as /standin/serve.py).

It answers 200 on STANDIN_HEALTH_PATH and on /, 404 elsewhere, every body naming the stand-in; with STANDIN_APP set
it answers that app's setup API instead (apps.py). Knobs (baked per
variant): STANDIN_HEALTHY_AFTER=N answers 503 on the health path for N seconds after start, STANDIN_NEVER_HEALTHY=1
always. Without STANDIN_PORT it only stays up (a worker with no port). Arguments are ignored: compose passes the
real image's (litellm gets `--config ... --port 4000`).
"""

import json
import os
import signal
import socket
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("STANDIN_NAME", "standin")
PORT = int(os.environ.get("STANDIN_PORT") or 0)
HEALTH_PATH = os.environ.get("STANDIN_HEALTH_PATH") or "/"
HEALTHY_AFTER = float(os.environ.get("STANDIN_HEALTHY_AFTER") or 0)
NEVER_HEALTHY = os.environ.get("STANDIN_NEVER_HEALTHY") == "1"
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"{NAME}: {message}", flush=True)


def healthy() -> bool:
    return not NEVER_HEALTHY and time.monotonic() - STARTED >= HEALTHY_AFTER


class Handler(BaseHTTPRequestHandler):
    server_version = f"aiplatform-standin-{NAME}"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == HEALTH_PATH:
            status = 200 if healthy() else 503
        elif path == "/":
            status = 200
        else:
            status = 404
        body = json.dumps({"standin": NAME, "path": path, "status": status}).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        log(f"{self.client_address[0]} {format % args}")


class Server(ThreadingHTTPServer):
    """Dual-stack: where a container has IPv6, `localhost` may resolve to ::1 first (node's fetch tries only that)."""

    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # HTTPServer.server_bind would look up the host's FQDN: a DNS query nobody needs.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = NAME, PORT


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 gets no default SIGTERM action
    app = os.environ.get("STANDIN_APP")
    if app:  # this container answers its app's setup API as upstream does (apps.py)
        import apps

        log(f"app stand-in {app} on port {PORT}")
        apps.serve(app, PORT, apps.settings_from_environ(app, os.environ))
        return
    ignored = f" (ignoring arguments {sys.argv[1:]})" if sys.argv[1:] else ""
    if not PORT:
        log(f"stand-in with no port: staying up{ignored}")
        while True:
            signal.pause()
    try:
        server: ThreadingHTTPServer = Server(("::", PORT), Handler)
    except OSError:  # no IPv6 in this container
        server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    knobs = " never healthy" if NEVER_HEALTHY else f" healthy after {HEALTHY_AFTER:g}s" if HEALTHY_AFTER else ""
    log(f"stand-in listening on port {PORT}, health path {HEALTH_PATH}{knobs}{ignored}")
    server.serve_forever()


if __name__ == "__main__":
    main()
