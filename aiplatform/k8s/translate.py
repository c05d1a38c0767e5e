"""One container of a rendered compose file, as a Kubernetes container and what its pod needs. Pure.

The input is the compose file render already wrote (so both targets share images, digests, environment, commands
and healthchecks by construction); the output says what maps and, for what does not, why (`problems`, `notes`).

Interpolation: compose fills `${VAR}` from credentials.env (secrets) and master.env. A secret becomes a
`secretKeyRef` (an env entry of its own name, placed first, when a longer value or the command uses it: Kubernetes
expands `$(VAR)` from earlier entries); any other variable is written as its value. A literal `$` (compose's `$$`)
is written `$$`, Kubernetes' escape, where Kubernetes expands (env, command, args), and as `$` in probes.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from aiplatform.inputs.catalog import DOCKER_SOCKETS

SECRET = "credentials"  # the one Secret, from credentials.env
_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$")
_DURATION = re.compile(r"(\d+)(ms|s|m|h)")
# Compose keys this module maps, or drops on purpose (the platform's own labels, logging, restart and ordering,
# the host-gateway name the Ollama Services replace).
KNOWN_KEYS = {"image", "container_name", "restart", "networks", "labels", "logging", "volumes", "healthcheck",
              "environment", "depends_on", "command", "entrypoint", "ports", "extra_hosts", "build", "user", "pid",
              "devices", "cap_add", "deploy"}  # fmt: skip


@dataclass(frozen=True)
class Mount:
    """A volume of the container: `pvc` (a claim named `name`), or `config` (a file or folder of config/, `source`
    relative to the root), or `host` (a path of the host: does not map)."""

    kind: str
    name: str
    path: str
    read_only: bool
    source: str = ""


@dataclass
class Container:
    name: str
    spec: dict[str, Any]  # the Kubernetes container
    ports: list[int] = field(default_factory=list)
    published: list[tuple[int, int, str]] = field(default_factory=list)  # (host port, container port, protocol)
    mounts: list[Mount] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    gpu: bool = False
    secrets: set[str] = field(default_factory=set)  # credentials.env keys it reads
    built: bool = False  # its image is built on the box by deploy
    problems: list[str] = field(default_factory=list)  # why it cannot run in a cluster at all
    notes: list[str] = field(default_factory=list)  # what of it does not map (it still runs)


class Vars:
    """The variables compose interpolates: secret names (values never read here) and plain settings."""

    def __init__(self, secrets: set[str], plain: dict[str, str]) -> None:
        self.secrets, self.plain = secrets, plain

    def convert(self, text: str, used: set[str], expands: bool = True, shell: bool = False) -> str:
        """`text` with compose's interpolation turned into Kubernetes' (see the module's docstring). In a probe
        (`expands` False) a secret is read by the shell from the container's environment, so only with `shell`."""

        def one(match: re.Match[str]) -> str:
            token, name = match.group(0), match.group(1)
            if token in ("$$", "$"):  # a lone `$` compose would refuse; keep it literal
                return "$$" if expands else "$"
            if name in self.secrets:
                used.add(name)
                if expands:
                    return f"$({name})"
                if not shell:
                    raise ValueError(f"the healthcheck reads the secret {name} outside a shell")
                return f"${{{name}}}"
            return self.plain.get(name, "")

        return _TOKEN.sub(one, text)


def seconds(value: object, default: int) -> int:
    """Compose's duration (`5s`, `1m30s`, `300ms`) in whole seconds, at least 1."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return max(1, math.ceil(value))
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = sum(int(n) * scale[unit] for n, unit in _DURATION.findall(str(value)))
    return max(1, math.ceil(total))


def _argv(value: object) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def probes(
    test: list[str], check: dict[str, Any], health_timeout: int, used: set[str], variables: Vars
) -> dict[str, Any]:
    """readinessProbe and startupProbe from a compose healthcheck: the same command, the same period and timeout;
    the startup probe allows the catalog's health timeout (or the start period, if longer) before giving up."""
    kind, *rest = test
    if kind == "CMD-SHELL":
        command = ["/bin/sh", "-c", variables.convert(" ".join(rest), used, expands=False, shell=True)]
    else:
        command = [variables.convert(arg, used, expands=False) for arg in rest]
    period, timeout = seconds(check.get("interval"), 5), seconds(check.get("timeout"), 5)
    startup = max(health_timeout, seconds(check.get("start_period"), 0))
    base = {"exec": {"command": command}, "periodSeconds": period, "timeoutSeconds": timeout}
    return {
        "startupProbe": {**base, "failureThreshold": max(1, math.ceil(startup / period))},
        "readinessProbe": {**base, "failureThreshold": int(check.get("retries", 3))},
    }


def _env(
    environment: dict[str, Any] | list[str] | None, variables: Vars, used: set[str]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The env entries, and the secrets entries read whole (`KEY: ${SECRET}`, a secretKeyRef of their own);
    secrets inside longer values go to `used`."""
    if isinstance(environment, list):  # KEY=VALUE items
        environment = {item.partition("=")[0]: item.partition("=")[2] for item in environment}
    entries, whole_refs = [], set()
    for key, raw in (environment or {}).items():
        text = "" if raw is None else str(raw)
        whole = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)
        if whole and whole.group(1) in variables.secrets:
            entries.append(secret_env(key, whole.group(1)))
            whole_refs.add(whole.group(1))
        else:
            entries.append({"name": key, "value": variables.convert(text, used)})
    return entries, whole_refs


def secret_env(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}}


def _volume(entry: object, root: str) -> tuple[str, str, bool]:
    """(source, target, read-only) of a compose volume entry, short or long syntax."""
    if isinstance(entry, dict):
        return str(entry.get("source", "")), str(entry["target"]), bool(entry.get("read_only"))
    source, target, *opts = str(entry).split(":")
    return source, target, "ro" in (opts[0].split(",") if opts else [])


def slug(text: str) -> str:
    """A DNS-1123 name made of a path or label: lower case, other characters as dashes."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def mount_of(entry: object, root: str) -> Mount:
    """What a compose volume entry mounts: a claim, a config file or folder, or a host path."""
    source, target, read_only = _volume(entry, root)
    source = source.replace("$$", "$")  # compose's escape (a root may hold a `$`)
    if not source.startswith("/"):
        return Mount("pvc", slug(source), target, read_only)
    path = PurePosixPath(source)
    for folder, kind in (("data", "pvc"), ("config", "config")):
        base = PurePosixPath(root) / folder
        if path == base or base in path.parents:
            rel = path.relative_to(root).as_posix()
            name = slug(rel) if kind == "pvc" else slug(path.relative_to(base).as_posix())
            return Mount(kind, name, target, read_only, rel)
    return Mount("host", source, target, read_only, source)


def _port(mapping: str) -> tuple[int, int, str]:
    spec, _, protocol = mapping.partition("/")
    parts = spec.split(":")
    return int(parts[-2]) if len(parts) > 1 else int(parts[-1]), int(parts[-1]), (protocol or "tcp").upper()


def _gpu(service: dict[str, Any]) -> bool:
    devices = (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
    return any("gpu" in (device.get("capabilities") or []) for device in devices)


def translate(
    name: str, service: dict[str, Any], root: str, variables: Vars, health_timeout: int, ports: set[int]
) -> Container:
    """The container `name` of a compose file; `ports` are the ones the platform reaches it on (its own, routes',
    metrics', and those other containers name)."""
    used: set[str] = set()
    out = Container(name=name, spec={"name": name, "image": str(service["image"])})
    spec = out.spec
    for key in sorted(set(service) - KNOWN_KEYS):
        out.notes.append(f"compose's `{key}` has no mapping here and is left out")
    if "entrypoint" in service:
        spec["command"] = [variables.convert(arg, used) for arg in _argv(service["entrypoint"])]
    if "command" in service:
        spec["args"] = [variables.convert(arg, used) for arg in _argv(service["command"])]
    env, whole_refs = _env(service.get("environment"), variables, used)
    defined = {e["name"] for e in env if e.get("valueFrom", {}).get("secretKeyRef", {}).get("key") == e["name"]}
    helpers = sorted(used - defined)
    clash = [e["name"] for e in env if e["name"] in helpers]
    if clash:
        raise ValueError(f"{name}: the variable {clash[0]} is both a secret's name and set to something else")
    env = [secret_env(key, key) for key in helpers] + env
    out.secrets = used | whole_refs
    out.published = [_port(str(p)) for p in service.get("ports") or []]
    out.ports = sorted(ports | {container for _, container, _ in out.published})
    out.mounts = [mount_of(entry, root) for entry in service.get("volumes") or []]
    out.networks = sorted(service.get("networks") or [])
    out.gpu = _gpu(service)
    out.built = "build" in service
    host = [m.source for m in out.mounts if m.kind == "host"]
    if any(path in DOCKER_SOCKETS for path in host):
        out.problems.append("mounts the Docker engine's socket")
    elif host:
        out.problems.append(f"mounts the host's {', '.join(host)}")
    if service.get("pid") == "host":
        out.problems.append("shares the host's process table (pid: host)")
    if service.get("devices"):
        out.problems.append(f"uses the host's devices {', '.join(map(str, service['devices']))}")
    check = service.get("healthcheck") or {}
    if check.get("test") and not check.get("disable"):
        spec.update(probes(list(check["test"]), check, health_timeout, used, variables))
        missing = sorted(used - defined - set(helpers))
        env = [secret_env(key, key) for key in missing] + env  # a probe's shell reads them from the environment
        out.secrets |= used
    if env:
        spec["env"] = env
    if out.ports:
        spec["ports"] = [{"containerPort": p} for p in out.ports]
    security: dict[str, Any] = {}
    if service.get("user") is not None:
        user, _, group = str(service["user"]).partition(":")
        if user.isdigit() and (not group or group.isdigit()):
            security.update({"runAsUser": int(user), **({"runAsGroup": int(group)} if group else {})})
        else:
            out.notes.append(f"user {service['user']!r} is a name; Kubernetes takes numeric ids (left to the image)")
    if service.get("cap_add"):
        security["capabilities"] = {"add": [str(c) for c in service["cap_add"]]}
    if security:
        spec["securityContext"] = security
    if out.gpu:
        spec["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    return out
