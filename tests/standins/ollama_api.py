"""A stand-in for Ollama's HTTP API, for tests: a small threaded HTTP server, not Ollama, that answers as Ollama's
docs/api.md describes, so the code under test runs its real HTTP clients (httpx, the `ollama` package, LiteLLM's
`ollama_chat/` and `ollama/` providers) against it.

    GET  /api/version     {"version": "0.x.y"}
    GET  /api/tags        {"models": [{"name", "model", "modified_at", "size", "digest", "details": {...}}]}
    POST /api/pull        {"model" (or "name"), "stream"}: NDJSON "pulling manifest", one layer "pulling <digest>" with
                          "total" and then "completed", "verifying sha256 digest", "writing manifest", "success"; a
                          pulled model then appears in /api/tags
    POST /api/chat        {"model", "messages", "stream" (default true), "options", "keep_alive", "format"}: the reply
                          "stand-in reply from <model> to: <last user message, cut at 60 characters>" (with "format",
                          the JSON text {"reply": ...}); stream false: one JSON {"model", "created_at", "message":
                          {"role": "assistant", "content"}, "done": true, "done_reason": "stop", counts and durations};
                          streamed: NDJSON, one {"message": {"role", "content": <a word>}, "done": false} per word, then
                          the final object with "content": "". No messages: {"done_reason": "load"} ("unload" with
                          keep_alive 0), as Ollama answers a load request
    POST /api/generate    {"model", "prompt", "stream"}: the same with "response" instead of "message", and "context"
    POST /api/embed       {"model", "input" (a string or a list), "truncate", "dimensions"}: {"model", "embeddings":
                          one unit vector per input, derived from a hash of model and text, "total_duration",
                          "load_duration", "prompt_eval_count"}
    POST /api/embeddings  {"model", "prompt"}: {"embedding": [...]} (the older endpoint)
    POST /api/show        {"model" (or "name")}: {"modelfile", "parameters", "template", "details", "model_info",
                          "capabilities", "modified_at"}; 404 {"error": "model 'x' not found"} for a model not present

Chat, generate and embed for a model that is not present answer 404 {"error": "model \"x\" not found, try pulling it
first"}, Ollama 0.6's words (newer Ollama says "model 'x' not found" for chat). Token counts are word counts, durations
are nanoseconds. Request bodies are read as JSON whatever their Content-Type (LiteLLM sends application/octet-stream).
Every model does everything (chat and embeddings).

Knobs: `models` already present; `version_status` (e.g. 500); `fail_pull` {model: message}: a few progress lines,
then {"error": message} mid-stream with HTTP 200, as Ollama does; `cut_pull` {model, ...}: the stream ends after a few
progress lines with neither "success" nor an error (a server that went away); `latency`: seconds waited before every
chat, generate and embed answer; `parallel`: how many of those are worked on at once, the others queued (as
OLLAMA_NUM_PARALLEL; 0: no limit); `line_delay`: seconds between streamed NDJSON lines (pull and chat); `fail_chat`
{model, ...} (":latest" or not): chat and generate answer 500 {"error": ...}, as when the model runner crashes;
`embedding_dimension` (default 8); `start(delay=...)` binds the port only after the delay (the port is reserved up
front so `.url` is known); `stop()` closes the port (connections are refused) and drops answers still waiting or
streaming, as a killed Ollama would; `restart()` listens again on the same port, models kept. Every request is
recorded in `requests`, every pull's model in `pull_requests`, every chat, generate and embed request in `chats`
(endpoint, model, stream, body).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tagged(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _words(text: str) -> int:
    return len(text.split())


class Call(NamedTuple):
    """One chat, generate or embed request as the stand-in received it."""

    endpoint: str  # "/api/chat", "/api/generate", "/api/embed" or "/api/embeddings"
    model: str
    stream: bool
    body: dict[str, Any]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connecting at once (benchmarks) must not be reset by a full backlog

    def handle_error(self, request: Any, client_address: Any) -> None:  # a dropped connection (stop()) is expected
        pass


class _Dropped(Exception):
    """The stand-in was stopped while an answer waited or streamed: the connection is closed without one."""


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
        latency: float = 0.0,
        fail_chat: set[str] | None = None,
        embedding_dimension: int = 8,
        parallel: int = 0,
    ) -> None:
        self.version, self.version_status = version, version_status
        self.fail_pull, self.cut_pull = dict(fail_pull or {}), set(cut_pull or ())
        self.host, self.port = host, port
        self.layer_size, self.chunks, self.line_delay = layer_size, chunks, line_delay
        self.latency, self.fail_chat, self.embedding_dimension = latency, set(fail_chat or ()), embedding_dimension
        # OLLAMA_NUM_PARALLEL: at most this many answers are worked on at once, the rest wait their turn (0: no limit)
        self._slots = threading.BoundedSemaphore(parallel) if parallel > 0 else None
        self.at_once = self.most_at_once = 0  # answers being worked on now, and the most there ever were at once
        self.models: dict[str, dict[str, Any]] = {}
        for name in models:
            self.add_model(name)
        self.requests: list[tuple[str, str]] = []
        self.pull_requests: list[str] = []
        self.chats: list[Call] = []
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

    def has_model(self, name: str) -> bool:
        return bool(name) and _tagged(name) in self.models

    def start(self, delay: float = 0.0) -> OllamaStandIn:
        """Listen now, or only after `delay` seconds (in a background thread) to play a slow start."""
        if self.port == 0 and delay > 0:
            self.port = free_port(self.host)
        server = None
        if delay <= 0:
            with self._lock:
                server = self._bind()
        self._thread = threading.Thread(target=self._serve, args=(server, delay, self._stopping), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def restart(self, delay: float = 0.0) -> OllamaStandIn:
        """Stop (if running) and listen again on the same port, now or after `delay`: a restarted Ollama."""
        self.stop()
        self._stopping = threading.Event()  # a new one: answers dropped by stop() stay dropped
        return self.start(delay)

    def __enter__(self) -> OllamaStandIn:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> ThreadingHTTPServer:
        server = _Server((self.host, self.port), _Handler)
        server.stand_in = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._server = server
        return server

    def _serve(self, server: ThreadingHTTPServer | None, delay: float, stopping: threading.Event) -> None:
        if server is None:  # a slow start: bind after the delay, unless stopped meanwhile
            if stopping.wait(delay):
                return
            with self._lock:
                if stopping.is_set():
                    return
                server = self._bind()
        server.serve_forever(poll_interval=0.05)

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

    def reply(self, model: str, text: str, json_format: bool = False) -> str:
        """The stand-in's deterministic answer to `text`."""
        cut = text if len(text) <= 60 else text[:60] + "..."
        answer = f"stand-in reply from {model} to: {cut}"
        return json.dumps({"reply": answer}) if json_format else answer

    def embedding(self, model: str, text: str, dimension: int | None = None) -> list[float]:
        """A unit vector (as Ollama's /api/embed returns) derived from a hash of `model` and `text`."""
        size = dimension or self.embedding_dimension
        raw = hashlib.shake_256(f"{model}\0{text}".encode()).digest(2 * size)
        values = [int.from_bytes(raw[i : i + 2], "big") / 32767.5 - 1.0 for i in range(0, 2 * size, 2)]
        norm = sum(v * v for v in values) ** 0.5 or 1.0
        return [v / norm for v in values]

    def show(self, model: str) -> dict[str, Any]:
        entry = self.models[_tagged(model)]
        return {
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {entry["name"]}\n',
            "parameters": 'stop                           "<|eot_id|>"',
            "template": "{{ if .System }}{{ .System }}\n{{ end }}{{ .Prompt }}",
            "details": entry["details"],
            "model_info": {
                "general.architecture": "llama",
                "general.parameter_count": 1_000_000_000,
                "llama.context_length": 8192,
                "llama.embedding_length": self.embedding_dimension,
            },
            "capabilities": ["completion"],
            "modified_at": entry["modified_at"],
        }


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
        self.stopping = self.stand_in._stopping  # this server's life: stop() drops what is still to be answered
        length = int(self.headers.get("Content-Length") or 0)
        try:  # JSON whatever the Content-Type says
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as exc:
            self._json(400, {"error": f"invalid JSON: {exc}"})
            return
        routes = {
            "/api/pull": self._pull,
            "/api/chat": self._generate,
            "/api/generate": self._generate,
            "/api/embed": self._embed,
            "/api/embeddings": self._embed,
            "/api/show": self._show,
        }
        if self.path not in routes or not isinstance(body, dict):
            self._send(404, b"404 page not found", "text/plain")
            return
        try:
            routes[self.path](body)
        except _Dropped:
            self.close_connection = True

    def _pull(self, body: dict[str, Any]) -> None:
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

    def _generate(self, body: dict[str, Any]) -> None:
        """/api/chat and /api/generate: the same answer in "message" or in "response"."""
        started = time.monotonic_ns()
        chat = self.path == "/api/chat"
        model, stream = str(body.get("model") or ""), body.get("stream", True) is not False
        self.stand_in.chats.append(Call(self.path, model, stream, body))
        if not self._ready(model):
            return
        if _tagged(model) in {_tagged(name) for name in self.stand_in.fail_chat}:
            self._json(500, {"error": "llama runner process has terminated: exit status 2 (stand-in: fail_chat)"})
            return

        def part(text: str, **extra: Any) -> dict[str, Any]:
            content = {"message": {"role": "assistant", "content": text}} if chat else {"response": text}
            return {"model": model, "created_at": _now(), **content, **extra}

        messages = (body.get("messages") or []) if chat else []
        prompt = "\n".join(str(m.get("content") or "") for m in messages) if chat else str(body.get("prompt") or "")
        if not (messages if chat else prompt):  # a load request (keep_alive 0: unload)
            unload = body.get("keep_alive") in (0, "0", "0s", "0m")
            self._json(200, part("", done=True, done_reason="unload" if unload else "load"))
            return
        users = [m for m in messages if m.get("role") == "user"]
        question = str(users[-1].get("content") or "") if users else prompt
        answer = self.stand_in.reply(model, question, json_format=bool(body.get("format")))
        pieces = re.findall(r"\S+\s*", answer) or [answer]
        load, prompt_eval, evaluation = 1_000_000, 100_000 * _words(prompt), 1_000_000 * len(pieces)
        stats = {
            "done_reason": "stop",
            "total_duration": time.monotonic_ns() - started + load + prompt_eval + evaluation,
            "load_duration": load,
            "prompt_eval_count": _words(prompt),
            "prompt_eval_duration": prompt_eval,
            "eval_count": len(pieces),
            "eval_duration": evaluation,
            **({} if chat else {"context": [1, 2, 3]}),
        }
        if not stream:
            self._json(200, part(answer, done=True, **stats))
        else:
            self._stream([*(part(piece, done=False) for piece in pieces), part("", done=True, **stats)])

    def _embed(self, body: dict[str, Any]) -> None:
        """/api/embed ("input": a string or a list) and the older /api/embeddings ("prompt")."""
        started = time.monotonic_ns()
        model = str(body.get("model") or "")
        self.stand_in.chats.append(Call(self.path, model, False, body))
        if not self._ready(model):
            return
        if self.path == "/api/embeddings":
            self._json(200, {"embedding": self.stand_in.embedding(model, str(body.get("prompt") or ""))})
            return
        given = body.get("input") or []
        texts = [given] if isinstance(given, str) else given
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            self._json(400, {"error": "invalid input type"})
            return
        dimension = body.get("dimensions") if isinstance(body.get("dimensions"), int) else None
        self._json(
            200,
            {
                "model": model,
                "embeddings": [self.stand_in.embedding(model, text, dimension) for text in texts],
                "total_duration": time.monotonic_ns() - started + 1_000_000,
                "load_duration": 1_000_000,
                "prompt_eval_count": sum(_words(text) for text in texts),
            },
        )

    def _show(self, body: dict[str, Any]) -> None:
        model = str(body.get("model") or body.get("name") or "")
        if not model:
            self._json(400, {"error": "model is required"})
        elif not self.stand_in.has_model(model):
            self._json(404, {"error": f"model '{model}' not found"})
        else:
            self._json(200, self.stand_in.show(model))

    def _ready(self, model: str) -> bool:
        """Wait `latency` (stop() cuts the wait and drops the answer); then 404 unless the model is present."""
        slots = self.stand_in._slots
        if slots is not None:
            while not slots.acquire(timeout=0.05):  # queued behind the requests being answered
                if self.stopping.is_set():
                    raise _Dropped
        stand_in = self.stand_in
        with stand_in._lock:
            stand_in.at_once += 1
            stand_in.most_at_once = max(stand_in.most_at_once, stand_in.at_once)
        try:
            if stand_in.latency > 0 and self.stopping.wait(stand_in.latency):
                raise _Dropped
        finally:
            with stand_in._lock:
                stand_in.at_once -= 1
            if slots is not None:
                slots.release()
        if not model:
            self._json(400, {"error": "model is required"})
            return False
        if not self.stand_in.has_model(model):
            self._json(404, {"error": f"model {json.dumps(model)} not found, try pulling it first"})
            return False
        return True

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
            if self.stopping.wait(self.stand_in.line_delay):
                raise _Dropped  # no terminating chunk: the client sees the stream cut
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
