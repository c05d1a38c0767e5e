"""A stand-in for Ollama's HTTP API, for tests: a small threaded HTTP server, not Ollama, that answers as Ollama's
docs/api.md describes, so the code under test runs its real HTTP clients (httpx, the `ollama` package) against it.

    GET  /api/version  {"version": "0.x.y"}
    GET  /api/tags     {"models": [{"name", "model", "modified_at", "size", "digest", "details": {...}}]}
    POST /api/pull     {"model" (or "name"), "stream"}: NDJSON "pulling manifest", one layer "pulling <digest>" with
                       "total" and then "completed", "verifying sha256 digest", "writing manifest", "success"; a
                       pulled model then appears in /api/tags

Knobs: `models` already present; `version_status` (e.g. 500); `fail_pull` {model: message}: a few progress lines,
then {"error": message} mid-stream with HTTP 200, as Ollama does; `cut_pull` {model, ...}: the stream ends after a few
progress lines with neither "success" nor an error (a server that went away); `start(delay=...)` binds the port only
after the delay (the port is reserved up front so `.url` is known). Every request is recorded in `requests`, every
pull's model in `pull_requests`.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tagged(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaStandIn:
    def __init__(
        self,
        *,
        models: tuple[str, ...] | list[str] = (),
        version: str = "0.6.5",
        version_status: int = 200,
        fail_pull: dict[str, str] | None = None,
        cut_pull: set[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        layer_size: int = 4_000_000,
        chunks: int = 4,
        line_delay: float = 0.0,
    ) -> None:
        self.version, self.version_status = version, version_status
        self.fail_pull, self.cut_pull = dict(fail_pull or {}), set(cut_pull or ())
        self.host, self.port = host, port
        self.layer_size, self.chunks, self.line_delay = layer_size, chunks, line_delay
        self.models: dict[str, dict[str, Any]] = {}
        for name in models:
            self.add_model(name)
        self.requests: list[tuple[str, str]] = []
        self.pull_requests: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_model(self, name: str) -> None:
        digest = hashlib.sha256(name.encode()).hexdigest()
        self.models[_tagged(name)] = {
            "name": _tagged(name),
            "model": _tagged(name),
            "modified_at": "2025-01-01T00:00:00Z",
            "size": self.layer_size,
            "digest": digest,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": ["llama"],
                "parameter_size": "1B",
                "quantization_level": "Q4_K_M",
            },
        }

    def start(self, delay: float = 0.0) -> OllamaStandIn:
        """Listen now, or only after `delay` seconds (in a background thread) to play a slow start."""
        if self.port == 0 and delay > 0:
            self.port = free_port(self.host)
        self._thread = threading.Thread(target=self._serve, args=(delay,), daemon=True)
        if delay <= 0:
            self._bind()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OllamaStandIn:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> None:
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.stand_in = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._server = server

    def _serve(self, delay: float) -> None:
        if delay > 0:
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._bind()
        assert self._server is not None
        self._server.serve_forever(poll_interval=0.05)

    def pull_lines(self, model: str) -> list[dict[str, Any]]:
        """What Ollama streams for a pull of `model`: progress for one layer, then success or the configured error."""
        digest = "sha256:" + hashlib.sha256(model.encode()).hexdigest()
        layer = {"status": f"pulling {digest[7:19]}", "digest": digest, "total": self.layer_size}
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}, dict(layer)]
        if model in self.cut_pull:
            return lines
        if model in self.fail_pull:
            return [*lines, {**layer, "completed": self.layer_size // self.chunks}, {"error": self.fail_pull[model]}]
        lines += [{**layer, "completed": self.layer_size * step // self.chunks} for step in range(1, self.chunks + 1)]
        return [*lines, {"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-standin"

    @property
    def stand_in(self) -> OllamaStandIn:
        return self.server.stand_in  # type: ignore[attr-defined,no-any-return]

    def log_message(self, fmt: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._send(200, b"", "text/plain; charset=utf-8")

    def do_GET(self) -> None:
        self.stand_in.requests.append(("GET", self.path))
        if self.path == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif self.path == "/api/version":
            status = self.stand_in.version_status
            body = {"version": self.stand_in.version} if status == 200 else {"error": "stand-in: version fails"}
            self._json(status, body)
        elif self.path == "/api/tags":
            self._json(200, {"models": list(self.stand_in.models.values())})
        else:
            self._send(404, b"404 page not found", "text/plain")

    def do_POST(self) -> None:
        self.stand_in.requests.append(("POST", self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/api/pull":
            self._send(404, b"404 page not found", "text/plain")
            return
        model = body.get("model") or body.get("name") or ""
        self.stand_in.pull_requests.append(model)
        lines = self.stand_in.pull_lines(model)
        if lines[-1] == {"status": "success"}:  # before the answer: Ollama writes the manifest before "success"
            self.stand_in.add_model(model)
        if body.get("stream", True) is False:
            final = lines[-1]
            self._json(500 if "error" in final else 200, final)
        else:
            self._stream(lines)

    def _stream(self, lines: list[dict[str, Any]]) -> None:
        """NDJSON with chunked encoding, one line per chunk, as Ollama streams (status stays 200 on an error line)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for line in lines:
            data = json.dumps(line).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
            time.sleep(self.stand_in.line_delay)
        self.wfile.write(b"0\r\n\r\n")

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
