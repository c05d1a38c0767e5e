"""The Ollama nodes as the platform host sees them, for doctor and status: each answers or not, its Ollama version,
the models it has against those LiteLLM sends it, whether its GPU exporter answers, and whether LiteLLM's last health
check found it down (then it gets no requests). Read-only: Ollama's /api/version and /api/tags, the exporter's
/metrics, LiteLLM's cached /health (background checks are on when there are nodes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aiplatform.commands import SUDO_INV
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.host.checks import Check
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV

TIMEOUT = 5.0


@dataclass
class NodeState:
    name: str
    url: str
    reachable: bool = False
    version: str = ""
    missing: list[str] = field(default_factory=list)  # models LiteLLM sends it that it does not have
    gpu: str = ""  # "exporter answers" | "exporter silent" | "" (no GPU declared)
    down_in_litellm: bool | None = None  # None: LiteLLM not asked (no key at hand, or it does not answer)
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def declared(folder: Path) -> list[dict[str, Any]]:
    """The nodes master.env lists (render writes them from `ollama_nodes`)."""
    try:
        return list(json.loads(read_env(folder / MASTER_ENV).get("OLLAMA_NODES") or "[]"))
    except (UserError, ValueError):
        return []


def node_states(folder: Path, litellm_url: str | None = None) -> list[NodeState]:
    nodes = declared(folder)
    down = _litellm_down(folder, litellm_url) if nodes else None
    states = []
    for node in nodes:
        state = NodeState(str(node["name"]), str(node["url"]))
        try:
            version = httpx.get(f"{state.url}/api/version", timeout=TIMEOUT, trust_env=False)
            tags = httpx.get(f"{state.url}/api/tags", timeout=TIMEOUT, trust_env=False).json().get("models") or []
            state.reachable, state.version = True, str(version.json().get("version", ""))
            present = {name for item in tags for name in (item.get("name", ""), item.get("model", ""))}
            state.missing = [m for m in node.get("models", []) if m not in present and f"{m}:latest" not in present]
        except (httpx.HTTPError, ValueError) as exc:
            state.error = f"{type(exc).__name__}: {exc}"[:200]
        if node.get("gpu"):
            host = state.url.split("//", 1)[1].rsplit(":", 1)[0]
            try:
                metrics = httpx.get(f"http://{host}:9400/metrics", timeout=TIMEOUT, trust_env=False)
                state.gpu = "exporter answers" if metrics.is_success else "exporter silent"
            except httpx.HTTPError:
                state.gpu = "exporter silent"
        if down is not None:
            state.down_in_litellm = state.name in down
        states.append(state)
    return states


def _litellm_down(folder: Path, url: str | None) -> set[str] | None:
    """The nodes LiteLLM's last health check found down (from the model ids `model@node`), or None."""
    try:
        key = read_env(folder / CREDENTIALS_ENV).get("LITELLM_MASTER_KEY", "")
    except UserError:
        return None
    if not key:  # no key at hand: LiteLLM would refuse it, which says nothing of the nodes
        return None
    try:
        answer = httpx.get(f"{url or 'http://127.0.0.1:4000'}/health", headers={"Authorization": f"Bearer {key}"},
                           timeout=30, trust_env=False)  # fmt: skip
        health = answer.json() if answer.is_success else None  # a refused key: not known, not "none down"
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(health, dict):
        return None
    ids = [str(item.get("model_id") or "") for item in health.get("unhealthy_endpoints", [])]
    return {model_id.rsplit("@", 1)[1] for model_id in ids if "@" in model_id}


def node_checks(states: list[NodeState]) -> list[Check]:
    found = []
    for state in states:
        name = f"node {state.name}"
        if not state.reachable:
            found.append(Check(name, "fail", f"{state.url} does not answer ({state.error})",
                               f"On {state.name}: `{SUDO_INV} setup --node --platform-host <this host>`; its firewall "
                               "admits only this host."))  # fmt: skip
            continue
        parts = [f"Ollama {state.version}"]
        if state.gpu:
            parts.append(f"GPU {state.gpu}")
        status, fix = "ok", ""
        if state.missing:
            status, fix = "warn", f"On {state.name}: `{SUDO_INV} setup --node ... --models {','.join(state.missing)}`."
            parts.append(f"missing {', '.join(state.missing)}")
        if state.down_in_litellm:
            status = "warn"
            parts.append("LiteLLM's last health check found it down: it gets no requests until it answers")
        found.append(Check(name, status, "; ".join(parts), fix))
    return found
