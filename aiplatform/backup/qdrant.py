"""Qdrant's snapshot API, reached through its own container: Qdrant sits on the internal backend network with no
port on the host, and its image has bash but no curl, so each request is plain HTTP/1.0 written to bash's /dev/tcp
inside the container (`docker exec -i`), the API key in the request's headers on stdin, never in a command line.
Snapshot files stay in Qdrant's snapshots path and move with `docker cp` (a tar stream)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiplatform.errors import UserError
from aiplatform.host.runner import Runner

CONTAINER = "ai-platform-qdrant"
PORT = 6333
SNAPSHOTS = "/qdrant/snapshots"
_SCRIPT = f"exec 3<>/dev/tcp/127.0.0.1/{PORT} && cat >&3 && cat <&3"


class Qdrant:
    def __init__(self, runner: Runner, api_key: str, container: str = CONTAINER) -> None:
        self.runner, self.api_key, self.container = runner, api_key, container

    def call(self, method: str, path: str, body: Any = None, changes: bool = True) -> Any:
        """One request; the JSON `result` of a 2xx answer, else a UserError with Qdrant's words."""
        data = json.dumps(body) if body is not None else ""
        request = (
            f"{method} {path} HTTP/1.0\r\nHost: localhost\r\napi-key: {self.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data.encode())}\r\n\r\n{data}"
        )
        done = self.runner.run(["docker", "exec", "-i", self.container, "bash", "-c", _SCRIPT], stdin=request,
                               changes=changes, check=False, timeout=600)  # fmt: skip
        if self.runner.dry_run and changes:
            return None
        head, _, payload = done.stdout.replace("\r\n", "\n").partition("\n\n")  # the runner reads text
        status = head.split(" ", 2)[1] if head.startswith("HTTP/") else ""
        if not done.ok or not status.startswith("2"):
            said = payload.strip()[:300] or done.stderr.strip()[:300] or "no answer"
            raise UserError(f"Qdrant answered {method} {path} with {status or 'nothing'}: {said}")
        try:
            return json.loads(payload).get("result")
        except ValueError:
            raise UserError(f"Qdrant's answer to {method} {path} is not JSON: {payload[:200]!r}") from None

    def collections(self) -> list[str]:
        return sorted(c["name"] for c in self.call("GET", "/collections", changes=False)["collections"])

    def snapshot(self, collection: str, into: Path) -> None:
        """Take a snapshot of `collection` and copy it to `into` (a tar holding the one snapshot file)."""
        made = self.call("POST", f"/collections/{collection}/snapshots?wait=true")
        name = made["name"] if made else "SNAPSHOT"
        self.runner.stream(["docker", "cp", f"{self.container}:{SNAPSHOTS}/{collection}/{name}", "-"], into=into)
        self.call("DELETE", f"/collections/{collection}/snapshots/{name}?wait=true")  # not kept twice

    def recover(self, collection: str, archive: Path, name: str) -> None:
        """Put the snapshot back in Qdrant's snapshots path and recover `collection` from it."""
        self.runner.run(["docker", "exec", self.container, "mkdir", "-p", f"{SNAPSHOTS}/{collection}"])
        self.runner.stream(["docker", "cp", "-", f"{self.container}:{SNAPSHOTS}/{collection}/"], source=archive)
        location = f"file://{SNAPSHOTS}/{collection}/{name}"
        self.call("PUT", f"/collections/{collection}/snapshots/recover?wait=true", {"location": location,
                  "priority": "snapshot"})  # fmt: skip
        self.call("DELETE", f"/collections/{collection}/snapshots/{name}?wait=true")
