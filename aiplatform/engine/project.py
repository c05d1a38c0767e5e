"""The compose project as rendered: which containers generated/ (or the root) defines, with their labels and ports.

Read straight from the docker/docker-compose.*.yml files: render wrote the labels literally, so no engine and no
interpolation are needed to know what should run.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from aiplatform.commands import INV
from aiplatform.errors import UserError
from aiplatform.inputs.catalog import bind_source
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV

COMPOSE_GLOB = "docker/docker-compose.*.yml"


@dataclass(frozen=True)
class ExpectedContainer:
    container: str
    service: str
    config_hash: str
    oneshot: bool
    ports: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    start_period: int = 0  # seconds: how long the service may take to become healthy
    mounts: tuple[str, ...] = ()  # bind-mount sources, as written in the compose file (absolute host paths)
    reload: tuple[str, ...] = ()  # the command that makes it re-read its mounted config (label ai-platform.reload)
    keys: dict[str, str] = field(default_factory=dict, compare=False)  # compose key -> digest of its value
    image: str = ""
    built: bool = False  # compose builds its image (`build:`): never pulled

    def changed_keys(self, before: ExpectedContainer) -> list[str]:
        """The compose keys whose values differ from `before` (the same container as the root defines it)."""
        return sorted(k for k in {*self.keys, *before.keys} if self.keys.get(k) != before.keys.get(k))

    def mounted(self, root: Path, paths: list[str]) -> list[str]:
        """Those of `paths` (relative to the root) that this container sees through a bind mount."""
        inside = []
        for source in self.mounts:
            if Path(source).is_relative_to(root):
                prefix = Path(source).relative_to(root).as_posix()
                inside += [p for p in paths if p == prefix or p.startswith(prefix + "/")]
        return sorted(set(inside))

    @property
    def name(self) -> str:
        return f"ai-platform-{self.container}"


@dataclass
class Project:
    directory: Path
    containers: dict[str, ExpectedContainer] = field(default_factory=dict)

    @property
    def compose_files(self) -> list[Path]:
        return sorted(self.directory.glob(COMPOSE_GLOB))

    @property
    def env_files(self) -> list[Path]:
        return [self.directory / MASTER_ENV, self.directory / CREDENTIALS_ENV]

    def services(self) -> list[str]:
        return sorted({c.service for c in self.containers.values()})

    def containers_of(self, services: list[str]) -> list[str]:
        return [name for name, c in self.containers.items() if c.service in services]

    def data_folders(self, containers: list[str], root: Path) -> list[Path]:
        """The folders under the root's data/ that these containers bind-mount (their data on the host)."""
        data = root / "data"
        found = {
            Path(source)
            for name in containers
            if name in self.containers
            for source in self.containers[name].mounts
            if Path(source).is_relative_to(data) and Path(source) != data
        }
        return sorted(found)

    def default_timeout(self) -> int:
        """Seconds to wait for the whole project: the slowest start period plus room for its retries."""
        return max((c.start_period for c in self.containers.values()), default=0) + 60

    def host_ports(self) -> list[tuple[str, int, str]]:
        """(host ip, port, container) for every published TCP port."""
        found = []
        for container in self.containers.values():
            for mapping in container.ports:
                if mapping.endswith("/udp"):
                    continue
                parts = mapping.split("/")[0].split(":")
                ip = parts[0] if len(parts) == 3 else "0.0.0.0"
                found.append((ip, int(parts[-2]), container.container))
        return sorted(found)


def seconds(duration: str) -> int:
    """A compose duration ("240s", "1m30s", "2h") in whole seconds; anything else counts as 0."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    return int(sum(float(number) * units[unit] for number, unit in parts))


def load_project(directory: Path) -> Project:
    """The containers defined by `directory`'s compose files; none is a UserError naming `inv render`."""
    files = sorted(directory.glob(COMPOSE_GLOB))
    if not files:
        raise UserError(f"{directory} has no compose files ({COMPOSE_GLOB}).", f"Run `{INV} render` first.")
    project = Project(directory)
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"{path}: not valid YAML ({exc}).", f"Run `{INV} render` to regenerate it.") from None
        services = doc.get("services") if isinstance(doc, dict) else None
        if not isinstance(services, dict) or not all(isinstance(body, dict) for body in services.values()):
            raise UserError(
                f"{path}: not a compose file render would write (edited by hand?).",
                f"Run `{INV} render` to regenerate it.",
            )
        for name, body in services.items():
            labels = body.get("labels") or {}
            project.containers[name] = ExpectedContainer(
                container=name,
                service=labels.get("ai-platform.service", re.sub(r"^docker-compose\.|\.yml$", "", path.name)),
                config_hash=labels.get("ai-platform.config-hash", ""),
                oneshot=body.get("restart") == "no",
                image=str(body.get("image") or ""),
                built="build" in body,
                ports=tuple(str(p) for p in body.get("ports") or []),
                depends_on=tuple(body.get("depends_on") or ()),
                start_period=seconds(str((body.get("healthcheck") or {}).get("start_period", "0s"))),
                mounts=tuple(_sources(body.get("volumes") or [])),
                reload=tuple(json.loads(labels.get("ai-platform.reload", "[]"))),
                keys={key: _digest(value) for key, value in body.items() if key != "labels"},
            )
    return project


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _sources(volumes: list[object]) -> list[str]:
    """The host paths of a compose service's bind mounts (named volumes left out)."""
    return [source for source in map(bind_source, volumes) if source.startswith("/")]
