#!/usr/bin/python3
"""A stand-in for the ollama binary, installed in the test VM as /usr/local/bin/ollama (not Ollama: tests/vm).

`ollama serve` runs tests/standins/ollama_api.py's HTTP server (Ollama's API) on OLLAMA_HOST (default
127.0.0.1:11434), as the real `ollama serve` reads it, until SIGTERM. A port already taken ends it with Ollama's own
words ("Error: listen tcp ...: bind: address already in use") and exit code 1. Pulled models are kept in
$HOME/.ollama/models/standin-models.json, so they survive a restart as real pulls do. `ollama --version` answers
as the real CLI does.

Knob for the tests (not Ollama's): OLLAMA_STANDIN_VERSION_STATUS=500 makes GET /api/version answer HTTP 500.
"""

import json
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, "/usr/local/lib/ollama-standin")
from ollama_api import OllamaStandIn

VERSION = "0.6.5"


def _address(value: str) -> tuple[str, int]:
    value = value.split("://", 1)[-1].rstrip("/") or "127.0.0.1"
    host, _, port = value.rpartition(":") if value.count(":") == 1 or value.startswith("[") else ("", "", value)
    if not host:  # no port given: Ollama's default
        return value.strip("[]") or "127.0.0.1", 11434
    return host.strip("[]") or "0.0.0.0", int(port)


def serve() -> int:
    host, port = _address(os.environ.get("OLLAMA_HOST", ""))
    store = Path(os.environ.get("HOME", "/tmp")) / ".ollama" / "models" / "standin-models.json"
    try:
        models = json.loads(store.read_text())
    except (OSError, ValueError):
        models = []
    status = int(os.environ.get("OLLAMA_STANDIN_VERSION_STATUS", "200"))
    stand_in = OllamaStandIn(models=models, version=VERSION, version_status=status, host=host, port=port)
    try:
        stand_in.start()
    except OSError as exc:
        print(f"Error: listen tcp {host}:{port}: bind: {exc.strerror.lower()}", file=sys.stderr, flush=True)
        return 1
    print(f"Listening on {host}:{port} (version {VERSION}, stand-in)", file=sys.stderr, flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    saved = sorted(stand_in.models)
    while not stopping.wait(1.0):
        current = sorted(stand_in.models)
        if current != saved:
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps(current))
            saved = current
    stand_in.stop()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        return serve()
    if argv[:1] in (["--version"], ["-v"]):
        print(f"ollama version is {VERSION}")
        return 0
    print(f"ollama stand-in: only `serve` and `--version` (got {' '.join(argv) or 'nothing'})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
