"""Folders of the owner's catalog (`services/NAME/`, searched after the built-in one), made two ways.

`inv add --new NAME` bakes the cookiecutter template (asking its questions at a terminal, with free ports as
defaults). `inv add --from-compose FILE --name NAME` turns an owner's compose file into such a folder, which render
then treats like any catalog service: it sets labels, networks, restart policy and logging itself, routes the
service's port through Caddy, and refuses what would reach past the container.

The file is first checked by `docker compose config` (no engine needed; a missing compose plugin is named as
missing, never blamed on the file); `from_project` then works on compose's normalized JSON alone. Per container: a
port published beyond 127.0.0.1 is refused (Caddy routes to the service instead); what reaches past the container is
refused unless --allow-privileged (then declared in service.yaml, where the owner sees it): `privileged`, the host's
network, process table, IPC, hostname, cgroup or user namespace, added capabilities, devices and device rules,
security options that lift a confinement, and every bind mount outside the file's own folder (the host's /, /etc,
/var/run, the Docker or containerd socket, a link to one: read-only ones go under `host_paths:`); joining another
container's namespace, `volumes_from` a container that is not the file's own, `cgroup_parent` and compose profiles
are refused whatever is allowed. An image that is not pinned is refused (the catalog takes only pinned ones); `build:`
is refused (give an image). Every `${VAR}` the file uses becomes a secret of the service (generated into
credentials.env), so no value of the file's environment is copied anywhere. Relative bind mounts (under the file's
folder) land under the root's data/NAME/, the service's own data folder.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from aiplatform.commands import INV, SUDO_INV
from aiplatform.engine.docker import Docker, require_compose
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.inputs import new_service
from aiplatform.inputs.catalog import DOCKER_SOCKETS, Catalog
from aiplatform.inputs.images import image_problem
from aiplatform.inputs.new_service import Question
from aiplatform.paths import COOKIECUTTER_DIR

DROPPED = ("container_name", "restart", "networks", "logging", "labels", "ports", "healthcheck", "image", "expose")
DATA = "@@AI_PLATFORM_DATA@@"  # stands for the root's data/ until the template is written
NAME = new_service.NAME


AskAnswer = Callable[[Question, str, Callable[[str], str | None]], str]  # (question, default, problem) -> answer


def bake_new(name: str, catalog: Catalog, target: Path, runner: Runner, ask: AskAnswer | None = None) -> Path:
    """Write `target/name/` from the cookiecutter template; returns the folder. With `ask` (a person at a terminal),
    each question is asked and its answer checked as it is given (new_service.py's rules, the ones the template's hook
    checks); without, the defaults (with free ports) are taken."""
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.main import cookiecutter

    _check_name(name, "NAME", catalog, target)
    answers = new_service_answers(name, catalog, ask)
    with tempfile.TemporaryDirectory(prefix="ai-platform-new-") as scratch:
        saved, tempfile.tempdir = tempfile.tempdir, scratch  # cookiecutter leaves each hook's copy in $TMPDIR
        try:
            made = Path(cookiecutter(str(COOKIECUTTER_DIR), no_input=True, output_dir=f"{scratch}/out",
                                     extra_context=answers))  # fmt: skip
        except CookiecutterException as exc:  # its hook printed the rules the answers broke
            raise UserError(
                f"cookiecutter-service made nothing: {exc}.", f"Run `{INV} add --new {name}` again."
            ) from None
        finally:
            tempfile.tempdir = saved
        for path in sorted(p for p in made.rglob("*") if p.is_file()):
            runner.write(target / name / path.relative_to(made), path.read_bytes())
    return target / name


def new_service_answers(name: str, catalog: Catalog, ask: AskAnswer | None) -> dict[str, str]:
    """The template's answers: `name`, free ports as defaults, each other question through `ask` when given."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    ports = {"host_port": _free_host_port(catalog), "ip_port": _free_ip_port(catalog)}
    taken = {"host_port": _host_ports(catalog), "ip_port": _ip_ports(catalog)}
    answers = {"name": name, **{key: str(port) for key, port in ports.items()}}
    if ask is None:
        return answers
    jinja = SandboxedEnvironment(undefined=StrictUndefined)
    for question in new_service.questions(COOKIECUTTER_DIR):
        if question.key == "name":
            continue
        default = answers.get(question.key) or jinja.from_string(question.default).render(cookiecutter=answers)

        def problem(value: str, question: Question = question) -> str | None:
            found = new_service.answer_problem(question.key, value, list(question.choices) or None)
            if found is None and value.isdigit() and int(value) in taken.get(question.key, set()):
                found = f"{question.key}: {value} is taken by another service of the catalog"
            return found

        answers[question.key] = ask(question, default, problem)
    return answers


def _check_name(name: str, flag: str, catalog: Catalog, target: Path) -> None:
    if not NAME.fullmatch(name):
        raise UserError(f"{flag} {name!r}: lower-case letters, digits and dashes, starting with a letter.")
    if name in catalog.services or (target / name).exists():
        raise UserError(f"A service named {name!r} exists already ({catalog.folders.get(name, target / name)}).",
                        "Choose another name.")  # fmt: skip


def import_compose(
    path: Path, name: str, catalog: Catalog, target: Path, runner: Runner, allow_privileged: bool = False
) -> Path:
    """Write `target/name/` (service.yaml + compose.yml.j2) from the compose file at `path`; returns the folder."""
    _check_name(name, "--name", catalog, target)
    if not path.is_file():
        raise UserError(f"--from-compose {path}: no such file.")
    require_compose(Docker(runner), f"checking {path} before it is imported")
    checked = runner.run(["docker", "compose", "-f", str(path), "config", "--no-interpolate", "--format", "json"],
                         check=False, changes=False)  # fmt: skip
    if not checked.ok:
        detail = (checked.stderr or checked.stdout).strip().splitlines()[-3:]
        raise UserError(f"{path} is not a compose file `docker compose config` accepts: {' '.join(detail)}")
    spec, template = from_project(json.loads(checked.stdout), path, name, catalog, allow_privileged)
    folder = target / name
    runner.write(folder / "service.yaml", yaml.safe_dump(spec, sort_keys=False, width=120).encode())
    runner.write(folder / "compose.yml.j2", template.encode())
    return folder


def from_project(
    project: dict[str, Any], path: Path, name: str, catalog: Catalog, allow_privileged: bool = False
) -> tuple[dict[str, Any], str]:
    """service.yaml (as a mapping) and compose.yml.j2 (text) from compose's normalized JSON of the file at `path`
    (`docker compose config --format json`); a UserError names what is refused. Reads and writes nothing."""
    services: dict[str, Any] = project.get("services") or {}
    if not services:
        raise UserError(f"{path} defines no service.")
    taken = set(catalog.containers)
    clash = sorted(set(services) & taken)
    if clash:
        raise UserError(f"{path}: {', '.join(clash)} is already a container of the catalog.", "Rename it in the file.")
    spec: dict[str, Any] = {
        "name": name,
        "description": f"Imported from {path.name}.",
        "tier": "apps",
        "containers": {},
    }
    body: dict[str, Any] = {}
    variables: set[str] = set()
    route: dict[str, Any] | None = None
    for cname, service in services.items():
        container, extra, port = _container(path, cname, service, name, allow_privileged, set(services))
        spec["containers"][cname] = container
        body[cname] = extra
        variables |= set(re.findall(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)", json.dumps(extra)))
        if port and route is None:
            route = {"subdomain": name, "ip_port": _free_ip_port(catalog), "upstream": f"{cname}:{port}"}
    if route:
        spec["route"] = route
        spec["auth"] = "caddy"  # no login is assumed: Caddy asks for the admin's (auth_note says so)
    if variables:
        spec["secrets"] = [{"name": var, "format": "token", "description": f"${{{var}}} of {path.name}"}
                           for var in sorted(variables)]  # fmt: skip
    volumes = sorted(project.get("volumes") or {})
    if volumes:
        spec["volumes"] = volumes
    compose = {"services": body, **({"volumes": {v: {} for v in volumes}} if volumes else {})}
    header = f"# Imported from {path} by `inv add --from-compose`: what is particular to {name}.\n"
    text = yaml.safe_dump(compose, sort_keys=False, width=120)
    for marker in ("{{", "{%", "{#"):  # the file's own braces stay text for Jinja
        text = text.replace(marker, "{{ '" + marker + "' }}")
    text = text.replace(DATA, "{{ paths.data }}")
    return spec, header + text


def discard(made: Path, catalog_was_there: bool, runner: Runner) -> None:
    """Remove a service folder made by `inv add` whose change then failed, and the owner's catalog folder with it
    when the add made that too and it holds nothing else: nothing half-made, not even an empty services/, stays."""
    runner.remove_tree(made)
    catalog = made.parent
    if not catalog_was_there and catalog.is_dir() and not any(catalog.iterdir()):
        runner.remove_tree(catalog)


def auth_note(folder: Path) -> str | None:
    """What an imported service's route gets for a login (said after `inv add --from-compose`), or None without one."""
    doc = yaml.safe_load((folder / "service.yaml").read_text()) or {}
    if doc.get("auth") != "caddy":
        return None
    return (
        f"{doc['name']}'s route asks for the platform's admin and password first (Caddy's basic auth, `auth: caddy` in "
        f"{folder / 'service.yaml'}); if it has a login of its own that refuses requests without credentials, set "
        "`auth: app` there instead."
    )


# Sockets that are root on the host, and the folders that hold them (a mount of one reaches the socket).
SOCKETS = (*DOCKER_SOCKETS, "/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock",
           "/run/docker/containerd/containerd.sock")  # fmt: skip
# Host namespaces a container may share: compose key -> the privilege service.yaml declares for "host".
HOST_NAMESPACES = {"network_mode": "host-network", "pid": "host-pid", "ipc": "host-ipc", "uts": "host-uts",
                   "cgroup": "host-cgroup", "userns_mode": "host-userns"}  # fmt: skip
# Values that keep the container to itself (dropped: render decides its networks).
_OWN_NAMESPACE = {"network_mode": ("bridge", "default", "none"), "ipc": ("private", "shareable", "none"),
                  "cgroup": ("private",)}  # fmt: skip
HARDENING = ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true")  # options that only narrow


def _container(
    path: Path, cname: str, service: dict[str, Any], name: str, allow: bool, own: set[str]
) -> tuple[dict[str, Any], dict[str, Any], int | None]:
    where = f"{path}: service {cname}"

    def refuse(what: str, fix: str) -> None:
        raise UserError(f"{where}: {what}.", fix)

    privileges: list[str] = []  # declared in service.yaml
    asked: list[str] = []  # what reaches past the container, said when refused
    host_paths: list[str] = []
    if "build" in service:
        refuse("`build:` is not supported", "Build the image yourself and give it as `image:` with a version tag.")
    image = str(service.get("image") or "")
    problem = image_problem(image) if image else "is missing"
    if problem:  # never accepted: the catalog refuses an unpinned image whatever the owner allows
        refuse(f"image {image!r} {problem}", "Pin it: name:1.2.3 (a release tag) or name@sha256:... .")
    if service.get("profiles"):
        refuse(f"it is in the compose profile(s) {', '.join(map(repr, service['profiles']))}, which the platform does "
               "not use (every service it imports runs)", "Remove `profiles:` from it to run it, or remove the "
               "service from the file.")  # fmt: skip
    if service.get("cgroup_parent"):
        refuse(f"cgroup_parent {service['cgroup_parent']!r} is not supported", "Remove it: the engine places it.")
    if service.get("privileged"):
        privileges.append("privileged")
        asked.append("privileged")
    for key, privilege in HOST_NAMESPACES.items():
        value = service.get(key)
        if value in (None, "") or value in _OWN_NAMESPACE.get(key, ()):
            continue
        if value != "host":  # service:X / container:X: another container's namespace (a platform one's, say)
            refuse(f"{key}: {value!r} joins another container's namespace", f"Remove `{key}:`; the platform "
                   "connects the service to its networks.")  # fmt: skip
        privileges.append(privilege)
        asked.append(f"{key}: host ({privilege})")
    for cap in service.get("cap_add") or []:
        privileges.append(f"cap:{str(cap).upper().removeprefix('CAP_')}")
        asked.append(f"cap_add {cap}")
    for device in service.get("devices") or []:
        spec = device if isinstance(device, str) else ":".join(
            str(device[k]) for k in ("source", "target", "permissions") if device.get(k))  # fmt: skip
        privileges.append(f"device:{spec}")
        asked.append(f"device {spec}")
    for rule in service.get("device_cgroup_rules") or []:
        privileges.append(f"device-rule:{rule}")
        asked.append(f"device_cgroup_rules {rule!r}")
    for option in service.get("security_opt") or []:
        if option in HARDENING:  # kept, and asks for nothing
            privileges.append("security-opt:no-new-privileges:true")
        else:
            privileges.append(f"security-opt:{option}")
            asked.append(f"security_opt {option}")
    for entry in service.get("volumes_from") or []:
        other = str(entry).removeprefix("service:").split(":")[0]
        if str(entry).startswith("container:") or other not in own:
            refuse(f"volumes_from {entry!r} takes the volumes of a container that is not this file's",
                   "Mount what it needs by name instead (a volume of this file, or a folder beside it).")  # fmt: skip
    volumes = []
    for volume in service.get("volumes") or []:
        source, target, mode = volume.get("source", ""), volume.get("target", ""), volume.get("read_only")
        if volume.get("type") == "bind" and Path(source).is_relative_to(path.parent.absolute()):
            # relative in the file (compose made it absolute): the service's own data, under the root's data/
            source = f"{DATA}/{name}/" + Path(source).relative_to(path.parent.absolute()).as_posix()
        elif volume.get("type") == "bind":
            host = os.path.normpath(source)
            real = os.path.realpath(source)  # a link to the socket is the socket
            sockets = [s for s in SOCKETS if Path(s).is_relative_to(real) or Path(s).is_relative_to(host)]
            shown = host + (f" (a link to {real})" if real != host else "")
            if host in DOCKER_SOCKETS:
                privileges.append("docker-socket")
                asked.append("docker-socket")
            else:
                said = f"the host's {shown} " + ("read-only" if mode else "read-write")
                asked.append(said + (f", which holds {sockets[0]}" if sockets else ""))
                if sockets or not mode:  # read-write, or holding a socket (root whatever the mode)
                    privileges.append(f"host-path:{host}")
                else:
                    host_paths.append(host)
            source = host
        elif volume.get("type") not in (None, "volume", "tmpfs"):
            refuse(f"a volume of type {volume.get('type')!r} ({source or target})", "Use a named volume or a folder "
                   "beside the compose file.")  # fmt: skip
        volumes.append(f"{source}:{target}" + (":ro" if mode else "") if source else target)
    if asked and not allow:
        refuse(f"it asks for {', '.join(dict.fromkeys(asked))}, which reach past the container (root on this host)",
               f"Drop it from the file, or accept it with `{SUDO_INV} add ... --allow-privileged`.")  # fmt: skip
    publish, port = [], None
    for mapping in service.get("ports") or []:
        port = port or int(mapping["target"])
        if mapping.get("published"):
            if mapping.get("host_ip") != "127.0.0.1":
                refuse(f"port {mapping['published']} is published on every interface",
                       "Publish it on 127.0.0.1 only (127.0.0.1:PORT:PORT); Caddy routes to the service.")  # fmt: skip
            publish.append(f"127.0.0.1:{mapping['published']}:{mapping['target']}")
    port = port or next((int(p) for p in service.get("expose") or []), None)
    container: dict[str, Any] = {"image": image, "networks": ["ai-platform"], "host_ollama": True}
    if port:
        container["port"] = port
    if publish:
        container["publish"] = publish
    health = service.get("healthcheck") or {}
    if health.get("test") and not health.get("disable"):
        test = health["test"]
        container["healthcheck"] = ["CMD-SHELL", test] if isinstance(test, str) else list(test)
        if container["healthcheck"][0] == "NONE":
            del container["healthcheck"]
    if privileges:
        container["privileges"] = list(dict.fromkeys(privileges))
    if host_paths:
        container["host_paths"] = list(dict.fromkeys(host_paths))
    ignored = (*DROPPED, "privileged", *HOST_NAMESPACES, "cap_add", "devices", "device_cgroup_rules", "security_opt",
               "volumes", "profiles")  # fmt: skip
    extra = {key: value for key, value in service.items() if key not in ignored}
    if volumes:
        extra["volumes"] = volumes
    return container, extra, port


def _host_ports(catalog: Catalog) -> set[int]:
    return {int(p.split(":")[-2]) for spec in catalog.services.values() for c in spec.containers.values()
            for p in c.publish}  # fmt: skip


def _ip_ports(catalog: Catalog) -> set[int]:
    return {spec.route.ip_port for spec in catalog.services.values() if spec.route}


def _free_host_port(catalog: Catalog) -> int:
    used = _host_ports(catalog)
    return next(port for port in range(8100, 65535) if port not in used)


def _free_ip_port(catalog: Catalog) -> int:
    used = _ip_ports(catalog)
    return next(port for port in range(9443, 65535) if port not in used)
