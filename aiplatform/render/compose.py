"""One compose file per service: the template's own keys merged with what every container must have.

Compose templates write only what is particular to a service (command, environment, volumes); this module adds the
parts every container must have, so no template can forget them: the image (catalog tag, per-container override or
registry-mirror prefix), container_name, restart policy, labels (managed, service, config hash), networks,
healthcheck, host-gateway for the host's Ollama, log rotation and depends_on from service.yaml. It then checks the
contracts (published ports on 127.0.0.1 except the proxy) and writes YAML with a stable key order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jinja2
import yaml

from aiplatform.errors import UserError
from aiplatform.generated.files import RenderedFile, Tree
from aiplatform.inputs.catalog import DOCKER_SOCKETS, PRIVILEGES, ContainerSpec, ServiceSpec, bind_source
from aiplatform.inputs.images import locked_image
from aiplatform.inputs.settings import Settings
from aiplatform.render.confighash import LABEL, build_file, config_hash_of, hashed_files
from aiplatform.render.platform import Platform
from aiplatform.render.templates import header, render_template, template_file
from aiplatform.yamlfile import parse_yaml

CONTAINER_KEY_ORDER = (
    "image",
    "build",
    "container_name",
    "restart",
    "user",
    "entrypoint",
    "command",
    "environment",
    "ports",
    "volumes",
    "networks",
    "extra_hosts",
    "depends_on",
    "healthcheck",
    "labels",
    "logging",
)
# Keys only service.yaml and the settings set: a template setting them would bypass the catalog's contracts.
RESERVED_KEYS = ("image", "container_name", "restart", "healthcheck", "networks", "logging")
# Keys that widen what a container may do to the host: set by render from service.yaml `privileges:` only.
PRIVILEGE_KEYS = ("privileged", "network_mode", "pid", "ipc", "userns_mode", "cap_add", "security_opt", "devices",
                  "device_cgroup_rules", "uts", "cgroup", "cgroup_parent")  # fmt: skip


def compose_file(
    env: jinja2.Environment,
    spec: ServiceSpec,
    context: dict[str, Any],
    platform: Platform,
    services: list[ServiceSpec],
    owned: Tree,
) -> RenderedFile:
    """The service's compose file; `owned` are its rendered config files (what its containers mount)."""
    template = f"services/{spec.name}/compose.yml.j2"
    text = render_template(env, template, {**context, "service": spec})
    where = template_file(env, template)  # templates/services/NAME/... or the owner's catalog
    doc = parse_yaml(text, f"{where} (as rendered)")[1] or {}  # a key given twice is refused
    body = doc.get("services") or {}
    gpu = platform.hardware.gpu_available
    wanted = {name: c for name, c in spec.containers.items() if gpu or not c.requires_gpu}
    unknown = set(body) - set(spec.containers)
    if unknown:
        raise UserError(f"{where}: defines {', '.join(sorted(unknown))}, not listed under containers: in service.yaml.")
    out_services: dict[str, Any] = {}
    for cname, cspec in wanted.items():
        extra = dict(body.get(cname) or {})
        _check_template_keys(where, cname, extra)
        defaults = container_defaults(cname, cspec, spec, platform, services)
        labels = {**(extra.pop("labels", None) or {}), **defaults["labels"]}  # the platform's labels win
        merged = {**_merge(defaults, extra), "labels": labels}
        _check_ports(where, spec, cname, merged)
        _check_binds(where, cname, cspec, merged, platform.settings.root)
        _check_volumes_from(where, cname, spec, merged)
        out_services[cname] = {key: merged[key] for key in _ordered(merged)}

    volumes = doc.get("volumes") or {}
    declared = {name: {**(value or {}), "labels": _labels(spec)} for name, value in sorted(volumes.items())}
    if sorted(volumes) != sorted(spec.volumes):
        raise UserError(f"{where}: declares volumes {sorted(volumes)} but service.yaml lists {sorted(spec.volumes)}.")
    for cname, container in out_services.items():
        files = hashed_files(cname, bool(spec.containers[cname].reload), container, owned, platform.settings.root)
        hashed = config_hash_of(container, declared, files)
        container["labels"][f"{LABEL}.config-hash"] = hashed
    compose: dict[str, Any] = {"name": "ai-platform", "services": out_services}
    compose["networks"] = {name: {"external": True} for name in _networks(out_services)}
    if declared:
        compose["volumes"] = declared
    top = f"# {header(f'templates/services/{spec.name}/')}\n# {spec.description}\n"
    return RenderedFile((top + yaml.safe_dump(compose, sort_keys=False, width=120)).encode())


def container_defaults(
    cname: str, cspec: ContainerSpec, spec: ServiceSpec, platform: Platform, services: list[ServiceSpec]
) -> dict[str, Any]:
    """What every container gets from service.yaml and settings, before the template's own keys."""
    settings = platform.settings
    out: dict[str, Any] = {
        "image": locked_image(
            resolve_image(cname, cspec.build.tag if cspec.build else cspec.image, settings), dict(platform.locked)
        ),
        "container_name": f"ai-platform-{cname}",
        "restart": "no" if cspec.oneshot else "unless-stopped",
        "networks": list(cspec.networks),
        "labels": {
            **_labels(spec),
            f"{LABEL}.container": cname,
            **({f"{LABEL}.reload": json.dumps(cspec.reload)} if cspec.reload else {}),
        },
        "logging": {
            "driver": "json-file",
            "options": {"max-size": settings.docker_log_max_size, "max-file": str(settings.docker_log_max_file)},
        },
    }
    if cspec.build and cname not in settings.images:  # compose builds it when the tag is not there yet
        out["build"] = {"context": str(settings.root / Path(build_file(cname)).parent)}
    _apply_privileges(out, cspec)
    if cspec.publish:
        out["ports"] = list(cspec.publish)
    if cspec.host_ollama:
        out["extra_hosts"] = ["host.docker.internal:host-gateway"]
    if cspec.healthcheck:
        out["healthcheck"] = {
            "test": list(cspec.healthcheck),
            "interval": "5s",
            "timeout": "5s",
            "retries": 3,
            "start_period": f"{cspec.health_timeout}s",
        }
    depends = _depends_on(spec, platform, services)
    if depends:
        out["depends_on"] = depends
    return out


def _apply_privileges(container: dict[str, Any], cspec: ContainerSpec) -> None:
    """What service.yaml's `privileges:` grant, as compose keys (docker-socket only permits the template's mount)."""
    for item in cspec.privileges:
        if item == "privileged":
            container["privileged"] = True
        elif item == "host-pid":
            container["pid"] = "host"
        elif item == "host-network":
            container["network_mode"] = "host"
            container.pop("networks", None)  # compose refuses networks beside network_mode
        elif item in _HOST_NAMESPACES:
            key, value = _HOST_NAMESPACES[item]
            container[key] = value
        elif ":" in item and item.split(":", 1)[0] in _VALUED:
            kind, value = item.split(":", 1)
            listed = _VALUED[kind]
            if listed:
                container.setdefault(listed, []).append(value)


_HOST_NAMESPACES = {"host-ipc": ("ipc", "host"), "host-uts": ("uts", "host"), "host-cgroup": ("cgroup", "host"),
                    "host-userns": ("userns_mode", "host")}  # fmt: skip
# valued privileges and the list key they add to (host-path only permits the template's mount)
_VALUED = {"cap": "cap_add", "device": "devices", "device-rule": "device_cgroup_rules", "security-opt": "security_opt",
           "host-path": None}  # fmt: skip


def _check_template_keys(where: str, cname: str, extra: dict[str, Any]) -> None:
    reserved = [key for key in RESERVED_KEYS if key in extra]
    if reserved:
        raise UserError(
            f"{where}: {cname} sets {', '.join(reserved)}; these come from service.yaml.",
            "Move them to the service's service.yaml (images can be overridden with the `images:` setting).",
        )
    privileges = [key for key in PRIVILEGE_KEYS if key in extra]
    if privileges:
        raise UserError(
            f"{where}: {cname} sets {', '.join(privileges)}, which widen what it may do to the host.",
            f"Declare them in service.yaml as `privileges:` ({', '.join(PRIVILEGES)}, cap:NAME, device:/dev/X, "
            "device-rule:RULE, security-opt:VALUE) instead.",
        )
    platform_labels = sorted(key for key in (extra.get("labels") or {}) if str(key).startswith(f"{LABEL}."))
    if platform_labels:
        raise UserError(
            f"{where}: {cname} sets the label(s) {', '.join(platform_labels)}, which the platform owns.",
            "Remove them: render sets every ai-platform.* label itself.",
        )


def _check_binds(where: str, cname: str, cspec: ContainerSpec, container: dict[str, Any], root: Path) -> None:
    """A bind mount stays under the root (the service's data and config), or mounts a host path service.yaml
    names: read-only under the container's `host_paths:`, read-write as a `host-path:` privilege, the Docker socket
    with `docker-socket`."""
    for volume in container.get("volumes", []):
        source = bind_source(volume)
        if "$" in source.replace("$$", ""):  # compose would fill it in at deploy: what it mounts is unknown here
            raise UserError(
                f"{where}: {cname} mounts {source!r}, which compose fills in from a variable.",
                "Write the path in the template (paths.data, paths.config) or mount a named volume.",
            )
        source = source.replace("$$", "$")  # compose's escape of a literal $ (a root may hold one)
        if not source.startswith(("/", ".", "~")):
            continue  # a named volume
        host = os.path.normpath(source if source.startswith("/") else str(root / "docker" / source))
        if Path(host).is_relative_to(root):
            continue
        if host in DOCKER_SOCKETS:
            if "docker-socket" not in cspec.privileges:
                raise UserError(
                    f"{where}: {cname} mounts the Docker socket ({host}): that is root on the host.",
                    "Declare `privileges: [docker-socket]` for the container in service.yaml if it truly needs it.",
                )
            continue
        if f"host-path:{host}" in cspec.privileges or (host in cspec.host_paths and _read_only(volume)):
            continue
        said = "read-write " if host in cspec.host_paths else ""
        raise UserError(
            f"{where}: {cname} mounts the host's {host} {said}(outside the platform root {root}).",
            f"Mount it read-only and name it under `host_paths:` of {cname} in service.yaml, or declare "
            f"`privileges: [host-path:{host}]` there if it must write (that is root on the host).",
        )


def _read_only(volume: object) -> bool:
    if isinstance(volume, dict):
        return bool(volume.get("read_only"))
    parts = str(volume).split(":")
    return len(parts) > 2 and "ro" in parts[-1].split(",")


def _check_volumes_from(where: str, cname: str, spec: ServiceSpec, container: dict[str, Any]) -> None:
    """`volumes_from` only names containers of the same service: another one's would hand over its data (or the
    Docker socket of a service allowed to mount it)."""
    for entry in container.get("volumes_from") or []:
        other = str(entry).removeprefix("service:").split(":")[0]
        if other not in spec.containers or str(entry).startswith("container:"):
            raise UserError(
                f"{where}: {cname} takes the volumes of {entry!r}, not a container of {spec.name}.",
                f"Mount what it needs by name instead, or take volumes_from one of {', '.join(spec.containers)}.",
            )


def _depends_on(spec: ServiceSpec, platform: Platform, services: list[ServiceSpec]) -> dict[str, Any]:
    enabled = {s.name: s for s in services}
    gpu = platform.hardware.gpu_available
    out: dict[str, Any] = {}
    for dep_name in spec.depends_on:
        dep = enabled[dep_name]
        for cname, cspec in dep.containers.items():
            if cspec.requires_gpu and not gpu:
                continue
            if cspec.oneshot:
                condition = "service_completed_successfully"
            elif cspec.healthcheck:
                condition = "service_healthy"
            else:
                condition = "service_started"
            out[cname] = {"condition": condition}
    return out


def resolve_image(container: str, image: str, settings: Settings) -> str:
    """An explicit `images:` override wins; else the catalog image, behind the registry mirror when one is set."""
    if container in settings.images:
        return settings.images[container]
    if settings.registry_mirror:
        return f"{settings.registry_mirror.rstrip('/')}/{image}"
    return image


def _labels(spec: ServiceSpec) -> dict[str, str]:
    return {f"{LABEL}.managed": "true", f"{LABEL}.service": spec.name}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Template keys over defaults: mappings merge, lists append, scalars replace."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def _ordered(container: dict[str, Any]) -> list[str]:
    known = [key for key in CONTAINER_KEY_ORDER if key in container]
    return known + sorted(key for key in container if key not in CONTAINER_KEY_ORDER)


def _check_ports(where: str, spec: ServiceSpec, cname: str, container: dict[str, Any]) -> None:
    for mapping in container.get("ports", []):
        text = str(mapping)
        if spec.tier != "proxy" and not text.startswith("127.0.0.1:"):
            raise UserError(
                f"{where}: {cname} publishes {text!r} on all interfaces.",
                "Only the proxy (Caddy) may; publish other ports as 127.0.0.1:HOST:CONTAINER.",
            )


def _networks(services: dict[str, Any]) -> list[str]:
    return sorted({net for container in services.values() for net in container.get("networks", [])})
