"""Deploy pulls the images it needs before it starts anything, each with its progress (bytes, rate), so the health
timeout counts from the start of the containers and a pull that fails names its image while nothing has changed.

Only images not on the host are pulled: those present are used as they are, and those the project builds (`build:`)
are compose's to build. The pull is the Docker Engine API's `POST /images/create`, whose JSON event stream is what
`docker pull` itself draws its bars from (one event per layer and step: {"id", "status", "progressDetail": {"current",
"total"}}, an "error" event on failure); credentials are the ones `docker login` stored (config.json's auths,
credsStore, credHelpers). When the engine is not a local Unix socket (an ssh:// or tcp:// DOCKER_HOST, a context), the
docker CLI pulls instead, with a status line and no byte counts.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner

DOCKER_HUB = "https://index.docker.io/v1/"
DEFAULT_SOCKET = Path("/var/run/docker.sock")
DONE = ("Already exists", "Pull complete", "Download complete")


class PullUI(Protocol):
    def start(self, model: str) -> None: ...
    def update(self, model: str, status: str, completed: int | None, total: int | None) -> None: ...
    def done(self, model: str, ok: bool, message: str) -> None: ...


@dataclass
class PullState:
    """One image's pull as its events tell it: bytes per layer (downloaded of total) and the last status."""

    layers: dict[str, tuple[int, int]] = field(default_factory=dict)
    status: str = "waiting"
    error: str = ""

    def feed(self, event: dict[str, Any]) -> None:
        if event.get("error") or event.get("errorDetail"):
            self.error = str(event.get("error") or (event.get("errorDetail") or {}).get("message", ""))
            return
        layer, status = str(event.get("id") or ""), str(event.get("status") or "")
        detail = event.get("progressDetail") or {}
        self.status = status if not layer or status.startswith("Pulling from") else f"{status} {layer}"
        if not layer or status.startswith("Pulling from"):
            return
        total = self.layers.get(layer, (0, 0))[1]
        if status == "Downloading" and detail.get("total"):
            self.layers[layer] = (int(detail.get("current") or 0), int(detail["total"]))
        elif status in DONE or status in ("Verifying Checksum", "Extracting"):
            self.layers[layer] = (total, total)  # downloaded whole (a layer already here counts as nothing to get)
        elif status == "Pulling fs layer" or status == "Waiting":
            self.layers.setdefault(layer, (0, 0))

    @property
    def completed(self) -> int:
        return sum(current for current, _ in self.layers.values())

    @property
    def total(self) -> int | None:
        """The bytes to download, once every layer's size is known."""
        sizes = [total for _, total in self.layers.values()]
        return sum(sizes) if sizes and all(sizes) else None


def images_to_pull(images: dict[str, bool], present: Callable[[str], bool]) -> list[str]:
    """Of {image: built by compose}, those to pull: not built here and not on the host, each once, in order."""
    return [image for image, built in images.items() if image and not built and not present(image)]


def registry_of(image: str) -> str:
    """The registry an image reference names, as config.json's keys spell it (Docker Hub's long form)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def registry_auth(image: str, config_dir: Path | None = None) -> str | None:
    """The X-Registry-Auth header for `image`'s registry from what `docker login` stored, or None (anonymous)."""
    folder = config_dir or Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    registry = registry_of(image)
    helper = (config.get("credHelpers") or {}).get(registry) or config.get("credsStore")
    username = password = ""
    if helper:
        try:
            done = subprocess.run([f"docker-credential-{helper}", "get"], input=registry, capture_output=True,
                                  text=True, timeout=30, check=False)  # fmt: skip
            found = json.loads(done.stdout) if done.returncode == 0 else {}
            username, password = found.get("Username", ""), found.get("Secret", "")
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
    if not password:
        stored = (config.get("auths") or {}).get(registry) or {}
        if stored.get("auth"):
            username, _, password = base64.b64decode(stored["auth"]).decode().partition(":")
    if not password:
        return None
    doc = {"username": username, "password": password, "serveraddress": registry}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def engine_socket(environ: dict[str, str] | None = None) -> Path | None:
    """The engine's local Unix socket (DOCKER_HOST unix://..., else the default one), None when it is elsewhere."""
    host = (environ if environ is not None else os.environ).get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return Path(host.removeprefix("unix://"))
    if host or os.environ.get("DOCKER_CONTEXT"):
        return None
    return DEFAULT_SOCKET if DEFAULT_SOCKET.exists() else None


def api_events(socket: Path, image: str, auth: str | None) -> Iterator[dict[str, Any]]:
    """POST /images/create?fromImage=IMAGE on the engine's socket: its events, one JSON object a line."""
    import httpx

    headers = {"X-Registry-Auth": auth} if auth else {}
    transport = httpx.HTTPTransport(uds=str(socket))
    timeout = httpx.Timeout(60, read=600)
    with (
        httpx.Client(transport=transport, base_url="http://docker", timeout=timeout) as client,
        client.stream("POST", "/images/create", params={"fromImage": image}, headers=headers) as response,
    ):
        if response.status_code >= 400:
            said = response.read().decode(errors="replace")
            with contextlib.suppress(ValueError):
                said = json.loads(said).get("message", said)
            yield {"error": said.strip()}
            return
        for line in response.iter_lines():
            if line.strip():
                yield json.loads(line)


def cli_events(runner: Runner, image: str) -> Iterator[dict[str, Any]]:
    """`docker pull IMAGE` for an engine the API cannot be reached at: one event when it is done."""
    done = runner.run(["docker", "pull", image], check=False, changes=False)
    said = (done.stderr or done.stdout).strip().splitlines()
    if done.ok:
        yield {"status": f"Status: Downloaded newer image for {image}"}
    else:
        yield {"error": said[-1] if said else f"docker pull exited {done.returncode}"}


def pull_failed(image: str, error: str) -> UserError:
    return UserError(
        f"Pulling {image} failed: {error.rstrip('.')}. Nothing was started and the root was not changed.",
        "If this host reaches registries only through a mirror, set it (`registry_mirror:` in answers.yaml, then "
        f"`{INV} render`); for a private registry, `sudo docker login REGISTRY` first; then `{SUDO_INV} deploy` again.",
    )


def pull_images(images: Iterable[str], bars: PullUI, events: Callable[[str], Iterable[dict[str, Any]]]) -> list[str]:
    """Pull each image in turn with its bar; the first failure is a UserError naming it. Returns those pulled."""
    pulled = []
    for image in images:
        bars.start(image)
        state = PullState()
        for event in events(image):
            state.feed(event)
            if state.error:
                break
            bars.update(image, state.status, state.completed, state.total)
        if state.error:
            bars.done(image, False, state.error)
            raise pull_failed(image, state.error)
        size = state.total or state.completed
        bars.done(image, True, f"pulled ({size / 1e6:.1f} MB)" if size else "pulled")
        pulled.append(image)
    return pulled


def events_for(runner: Runner) -> Callable[[str], Iterable[dict[str, Any]]]:
    """How this host pulls: the engine API on its local socket, else the docker CLI."""
    socket = engine_socket()
    if socket is None:
        return lambda image: cli_events(runner, image)
    return lambda image: api_events(socket, image, registry_auth(image))


def present(runner: Runner) -> Callable[[str], bool]:
    """Whether an image is on the host (`docker image inspect`)."""
    return lambda image: runner.run(["docker", "image", "inspect", image], check=False, changes=False).ok
