"""A platform for configure's tests without an engine: rendered, its files applied to a root as deploy would, and its
services played by the protocol stand-ins of tests/integration/standins/image/apps.py (named so in every test) on
loopback, with the Ollama stand-in behind LiteLLM (the real proxy where the session installs it, else a stand-in
that answers as LiteLLM does)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.configure.facts import Facts, load_facts
from aiplatform.engine.deploy import apply_files
from aiplatform.envfile import read_env
from aiplatform.generated.build import render_command
from aiplatform.host.runner import Runner
from aiplatform.inputs.context import Context

sys.path.insert(0, str(Path(__file__).resolve().parent / "integration" / "standins" / "image"))
import apps

from tests.unit.conftest import fake_nvml

SERVICES = ["dify", "n8n", "flowise", "monitoring"]
MODELS = ["llama3.2:3b", "nomic-embed-text"]


def deploy_files(tmp_path: Path, **flags) -> tuple[Path, Path]:
    """Render into tmp_path/generated for root tmp_path/root and apply the files there, as deploy does."""
    out, root = tmp_path / "generated", tmp_path / "root"
    ctx = Context(
        answers=None,
        flags={"root": str(root), "services": SERVICES, "models": MODELS, "profile": "minimal", **flags},
        environ={},
        nvml=fake_nvml([]),
    )
    render_command(ctx, out, interactive=False)
    apply_files(Runner(echo=lambda _: None), out, root)
    return out, root


@dataclass
class StandIns:
    """The services configure talks to, each a named stand-in (`litellm` is the key API in front of LiteLLM)."""

    apps: dict[str, apps.AppStandIn] = field(default_factory=dict)

    def endpoints(self) -> dict[str, str]:
        containers = {
            "litellm": "litellm",
            "open-webui": "openwebui",
            "dify-api": "dify",
            "n8n": "n8n",
            "flowise": "flowise",
            "grafana": "grafana",
        }
        return {container: self.apps[name].url for container, name in containers.items() if name in self.apps}


@contextlib.contextmanager
def stand_ins(root: Path, litellm_url: str, skip: tuple[str, ...] = (), **knobs) -> Iterator[StandIns]:
    """Every app's stand-in, seeded as the rendered environment seeds the real one at its first start."""
    secrets = read_env(root / "config/credentials.env")
    master = read_env(root / "config/master.env")
    admin = {"admin_password": secrets["ADMIN_PASSWORD"]}
    settings = {
        "litellm": {"master_key": secrets["LITELLM_MASTER_KEY"], "forward": litellm_url},
        "openwebui": {
            "admin_email": master["ADMIN_EMAIL"],
            **admin,
            "admin_name": master["ADMIN_NAME"],
            "openai_base_url": "http://litellm:4000/v1",
            "openai_api_key": secrets["LITELLM_KEY_OPEN_WEBUI"],
            "enable_ollama_api": False,
            **{  # the embedding config's seeds (RAG_*) as the rendered environment gives them
                name: value
                for name, value in apps.settings_from_environ(
                    "openwebui", rendered_environ(root, secrets, "open-webui", "open-webui")
                ).items()
                if name.startswith("rag_")
            },
        },
        "dify": {**dify_settings(root, secrets), "marketplace": True},
        "n8n": apps.settings_from_environ("n8n", rendered_environ(root, secrets, "n8n", "n8n")),
        "flowise": flowise_settings(root, secrets),
        "grafana": admin,
    }
    found = StandIns()
    with contextlib.ExitStack() as stack:
        for name, values in settings.items():  # litellm first: Open WebUI reaches it by its container name
            if name in skip:
                continue
            if name == "openwebui" and "litellm" in found.apps:
                values["aliases"] = {"http://litellm:4000": found.apps["litellm"].url}
            protocol = "litellm-keys" if name == "litellm" else name
            found.apps[name] = stack.enter_context(apps.AppStandIn(protocol, **{**values, **knobs.get(name, {})}))
        yield found


def rendered_environ(root: Path, secrets: dict[str, str], service: str, container: str) -> dict[str, str]:
    """A container's environment as the rendered compose file gives it, the secrets filled in."""
    import re

    import yaml

    compose = yaml.safe_load((root / f"docker/docker-compose.{service}.yml").read_text())
    return {
        name: re.sub(r"\$\{(\w+)\}", lambda found: secrets.get(found.group(1), ""), str(value))
        for name, value in compose["services"][container]["environment"].items()
    }


def flowise_settings(root: Path, secrets: dict[str, str]) -> dict:
    """The Flowise stand-in's settings from the rendered container environment (APP_URL: https makes its session
    cookie Secure; the encryption key), as the container would read it; its state stays in memory here."""
    environ = rendered_environ(root, secrets, "flowise", "flowise")
    return {key: value for key, value in apps.settings_from_environ("flowise", environ).items() if key != "database"}


def dify_settings(root: Path, secrets: dict[str, str]) -> dict:
    """Dify's api from its rendered environment (INIT_PASSWORD; https console URLs make its cookies `__Host-` ones);
    its storage stays in memory here."""
    environ = rendered_environ(root, secrets, "dify", "dify-api")
    return {key: value for key, value in apps.settings_from_environ("dify", environ).items() if key != "storage"}


def facts_for(root: Path, stand: StandIns, **endpoints: str) -> Facts:
    from aiplatform.inputs.catalog import load_catalog
    from aiplatform.paths import SERVICES_DIR

    facts = load_facts(root, load_catalog(SERVICES_DIR))
    facts.endpoints = {**stand.endpoints(), **endpoints}
    return facts


class _OpenAILike:
    """A stand-in for the LiteLLM proxy behind the key API, for unit tests (the validate session runs the real one):
    it lists `models`, and answers chats and embeddings as LiteLLM does (a failed hop is tested with the real proxy,
    tests/validate/test_configure.py). `asked` records each POST (path, body); a model in `refused` is answered as
    LiteLLM answers one whose deployment failed (a 500 naming it)."""

    def __init__(self, models: list[str]) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"data": [{"id": m, "object": "model", "owned_by": "openai"} for m in outer.models]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                outer.asked.append((self.path, body))
                if body.get("model") in outer.refused:
                    message = f"litellm.APIConnectionError: OllamaException - {body['model']}: connection refused"
                    self._send(500, {"error": {"message": message, "type": None, "param": None, "code": "500"}})
                elif self.path.endswith("/embeddings"):
                    self._send(200, {"data": [{"embedding": [0.1, 0.2, 0.3], "index": 0}], "usage": {}})
                else:
                    message = {"role": "assistant", "content": "Blue."}
                    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
                    self._send(200, {"object": "chat.completion", "choices": [{"message": message}], "usage": usage})

        self.models = models
        self.asked: list[tuple[str, dict]] = []
        self.refused: set[str] = set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> _OpenAILike:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def litellm_like(models: list[str] | None = None) -> _OpenAILike:
    return _OpenAILike(models or MODELS)
