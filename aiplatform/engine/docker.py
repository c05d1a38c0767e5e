"""The Docker engine as the platform sees it: what runs (read through python-on-whales, and `docker ps`/`inspect`
JSON for the containers deploy polls) and the commands that change it (built as argv lists and run through the
Runner, so they are echoed and honour --dry-run).

Everything the platform creates carries the label `ai-platform.managed=true`; containers also belong to the compose
project `ai-platform`. Queries select by those, so nothing else on the host is ever touched.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from python_on_whales import DockerClient
from python_on_whales.client_config import ClientNotFoundError
from python_on_whales.exceptions import DockerException

from aiplatform.commands import SUDO_INV
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner

T = TypeVar("T")
PROJECT = "ai-platform"
MANAGED = "ai-platform.managed=true"
NO_CLI = "the docker CLI is not installed"
NO_COMPOSE = "Docker Compose v2 (the `docker compose` CLI plugin) is not installed"
COMPOSE_FIX = (
    f"Install it: Docker's docker-compose-plugin package (what `{SUDO_INV} setup` installs), or the distribution's "
    "compose v2 package (Ubuntu: docker-compose-v2; Debian 13: docker-compose); then `docker compose version`."
)
NETWORKS = {"ai-platform": False, "ai-backend": True}  # name -> internal (no route out: databases live there)


@dataclass
class ContainerInfo:
    id: str
    name: str
    container: str  # the compose service name
    service: str  # the catalog service (label)
    config_hash: str  # ai-platform.config-hash: what render made it from
    compose_hash: str  # com.docker.compose.config-hash: what compose made it from
    state: str  # created | running | exited | restarting | ...
    health: str  # healthy | unhealthy | starting | "" (no healthcheck)
    exit_code: int
    image: str
    ports: list[str] = field(default_factory=list)
    managed: bool = True

    def settled(self, oneshot: bool) -> bool:
        """Where it should be: a one-shot finished with exit 0, anything else up and healthy."""
        return self.state == "exited" and self.exit_code == 0 if oneshot else self.ready

    @property
    def ready(self) -> bool:
        """Up and healthy (or up with no healthcheck)."""
        return self.state == "running" and self.health in ("healthy", "")


def _engine_errors(method: Callable[..., T]) -> Callable[..., T]:
    """A query the engine cannot answer (it stopped, the socket went away) is a UserError, not a traceback."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except ClientNotFoundError:
            raise UserError(NO_CLI, f"Install Docker with `{SUDO_INV} setup`.") from None
        except DockerException as exc:
            detail = (exc.stderr or exc.stdout or str(exc)).strip().splitlines()[-1:]
            raise UserError(
                f"Docker did not answer: {' '.join(detail)}.", "Check `docker info`, then try again."
            ) from None

    return wrapper


class Docker:
    def __init__(self, runner: Runner, compose_files: list[Path] | None = None, env_files: list[Path] | None = None):
        self.runner = runner
        self.client = DockerClient(
            compose_files=list(compose_files or []),
            compose_env_files=list(env_files or []),
            compose_project_name=PROJECT,
        )

    # --- reads -----------------------------------------------------------------------------------------------------

    def engine_error(self) -> str | None:
        """None when the engine answers, else why not."""
        try:
            self.client.system.info()
        except DockerException as exc:
            return (exc.stderr or exc.stdout or str(exc)).strip().splitlines()[-1]
        except (FileNotFoundError, ClientNotFoundError):
            return NO_CLI
        return None

    def compose_version(self) -> str | None:
        try:
            return str(self.client.compose.version())
        except (DockerException, FileNotFoundError, ClientNotFoundError):
            return None

    def containers(self) -> list[ContainerInfo]:
        """Every container with the platform label or in the ai-platform compose project, running or not.

        Read with one `docker ps` per selector and one `docker inspect` (plain JSON, read once): deploy polls this
        while compose replaces containers, so a container may vanish between the two calls and is then skipped.
        """
        ids: set[str] = set()
        for selector in (MANAGED, f"com.docker.compose.project={PROJECT}"):
            listed = self.runner.run(
                ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={selector}"], changes=False, check=False
            )
            if not listed.ok:
                raise UserError(f"Docker did not answer: {listed.stderr.strip()}", "Check `docker info`.")
            ids.update(listed.stdout.split())
        found: list[dict[str, Any]] = []
        inspected = self.runner.run(["docker", "inspect", *sorted(ids)], changes=False, check=False) if ids else None
        if inspected is not None and inspected.ok:
            found = json.loads(inspected.stdout)
        elif inspected is not None:  # one went away meanwhile: look at each on its own
            for cid in sorted(ids):
                one = self.runner.run(["docker", "inspect", cid], changes=False, check=False)
                found += json.loads(one.stdout) if one.ok else []
        return sorted((_info(item) for item in found), key=lambda c: c.name)

    def image_digest(self, image: str) -> str:
        """The registry digest (sha256:...) of a local image, "" when it has none (built here) or is not here."""
        done = self.runner.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image],
                               changes=False, check=False)  # fmt: skip
        digests = json.loads(done.stdout) if done.ok and done.stdout.strip() else []
        return str((digests or ["@"])[0]).partition("@")[2]

    @_engine_errors
    def networks(self) -> list[str]:
        return sorted(n.name for n in self.client.network.list(filters=[("label", MANAGED)]))

    @_engine_errors
    def all_network_names(self) -> set[str]:
        return {n.name for n in self.client.network.list()}

    @_engine_errors
    def volumes(self) -> list[tuple[str, str]]:
        """(name, mountpoint) of every labelled volume."""
        return sorted((v.name, str(v.mountpoint)) for v in self.client.volume.list(filters=[("label", MANAGED)]))

    def health_log(self, name: str) -> list[str]:
        try:
            health = self.client.container.inspect(name).state.health
        except DockerException:
            return []
        if health is None or not health.log:
            return []
        return [f"exit {entry.exit_code}: {(entry.output or '').strip()}" for entry in health.log[-5:]]

    def logs(self, name: str, tail: int = 50) -> str:
        try:
            return str(self.client.container.logs(name, tail=tail))
        except DockerException as exc:
            return f"(no logs: {exc.stderr or exc})"

    def compose_hashes(self) -> dict[str, str]:
        """compose service -> the config hash compose would give its container now (`config --hash '*'`)."""
        result = self.runner.run([*self.compose_command(), "config", "--hash", "*"], changes=False)
        return dict(line.split(None, 1) for line in result.stdout.splitlines() if line.strip())

    def compose_command(self) -> list[str]:
        try:
            return [str(part) for part in self.client.client_config.docker_compose_cmd]
        except ClientNotFoundError:
            raise UserError(NO_CLI, f"Install Docker with `{SUDO_INV} setup`.") from None

    # --- changes (through the runner) ----------------------------------------------------------------------------

    def ensure_networks(self) -> list[str]:
        """Create the platform's networks when missing (labelled; ai-backend internal); return those created."""
        existing = self.all_network_names()
        created = []
        for name, internal in NETWORKS.items():
            if name in existing:
                continue
            argv = [
                "docker",
                "network",
                "create",
                "--driver",
                "bridge",
                "--label",
                MANAGED,
                "--label",
                f"com.docker.compose.project={PROJECT}",
            ]
            if internal:
                argv.append("--internal")
            self.runner.run([*argv, name])
            created.append(name)
        return created

    def remove_containers(self, ids: list[str]) -> None:
        if ids:
            self.runner.run(["docker", "rm", "--force", "--volumes", *ids])

    def remove_networks(self, names: list[str], attempts: int = 10, pause: float = 1.0) -> None:
        """Remove the networks. Docker may keep a removed container's endpoint on its network for a moment ("has
        active endpoints"): an endpoint whose container is gone is disconnected by force, and the removal retried
        for up to `attempts` x `pause` seconds. A container that still exists is never disconnected."""
        if not names or self.runner.run(["docker", "network", "rm", *names], check=False).ok:
            return
        for name in names:
            for attempt in range(attempts):
                if name not in self.all_network_names():
                    break
                for endpoint in self._stale_endpoints(name):
                    self.runner.run(["docker", "network", "disconnect", "--force", name, endpoint], check=False)
                result = self.runner.run(["docker", "network", "rm", name], check=attempt == attempts - 1)
                if result.ok:
                    break
                time.sleep(pause)

    def _stale_endpoints(self, network: str) -> list[str]:
        """Names of the endpoints on `network` whose container no longer exists."""
        found = self.runner.run(
            ["docker", "network", "inspect", "--format", "{{json .Containers}}", network], check=False, changes=False
        )
        endpoints = (json.loads(found.stdout or "null") or {}) if found.ok else {}
        alive = set(self.runner.run(["docker", "ps", "-aq", "--no-trunc"], changes=False).stdout.split())
        return sorted(str(e.get("Name", cid)) for cid, e in endpoints.items() if cid not in alive)

    def remove_volumes(self, names: list[str]) -> None:
        if names:
            self.runner.run(["docker", "volume", "rm", "--force", *names])

    def remove_images(self, images: list[str]) -> None:
        for image in images:
            self.runner.run(["docker", "image", "rm", image], check=False)


def _info(item: dict[str, Any]) -> ContainerInfo:
    """A ContainerInfo from one `docker inspect` entry."""
    config, state = item.get("Config") or {}, item.get("State") or {}
    labels = config.get("Labels") or {}
    ports = []
    for container_port, bindings in ((item.get("NetworkSettings") or {}).get("Ports") or {}).items():
        for binding in bindings or []:
            if ":" in (binding.get("HostIp") or ""):
                continue  # the IPv6 twin of an IPv4 binding
            ports.append(f"{binding.get('HostIp') or '0.0.0.0'}:{binding.get('HostPort')}->{container_port}")
    name = str(item.get("Name", "")).lstrip("/")
    return ContainerInfo(
        id=item["Id"],
        name=name,
        container=labels.get("com.docker.compose.service", labels.get("ai-platform.container", name)),
        service=labels.get("ai-platform.service", ""),
        config_hash=labels.get("ai-platform.config-hash", ""),
        compose_hash=labels.get("com.docker.compose.config-hash", ""),
        state=state.get("Status", ""),
        health=(state.get("Health") or {}).get("Status", ""),
        exit_code=state.get("ExitCode") or 0,
        image=config.get("Image", ""),
        ports=sorted(ports),
        managed=labels.get("ai-platform.managed") == "true",
    )


def require_compose(docker: Docker, needed_for: str) -> None:
    """A UserError naming the missing tool (the docker CLI, or its compose v2 plugin) and how to install it, so
    that a failure of `docker compose` is never taken for a fault of the files it was given."""
    if docker.compose_version():
        return
    if docker.engine_error() == NO_CLI:
        raise UserError(
            f"{NO_CLI[0].upper()}{NO_CLI[1:]}: {needed_for} needs it.", f"Install Docker with `{SUDO_INV} setup`."
        )
    raise UserError(f"{NO_COMPOSE}: {needed_for} needs it.", COMPOSE_FIX)


def require_engine(docker: Docker) -> None:
    error = docker.engine_error()
    if error:
        raise UserError(
            f"The Docker engine does not answer: {error}.",
            f"Start it (`sudo systemctl start docker`) or install it with `{SUDO_INV} setup`.",
        )
