"""Read-only checks of the host, each with a verdict (ok / warn / fail), what was found and the fix.

Deploy runs them as its preflight and doctor prints them; none of them changes anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from aiplatform.backup.manifest import describe_last
from aiplatform.commands import INV, SUDO_INV
from aiplatform.engine.docker import COMPOSE_FIX, NO_COMPOSE, ContainerInfo, Docker
from aiplatform.engine.project import Project
from aiplatform.host.net import listeners
from aiplatform.host.ollama import Budgets, wait_for_ollama
from aiplatform.host.runner import Runner
from aiplatform.paths import LEGACY_ROOTS, nearest_existing

MIN_FREE_GB = 2  # below this deploy refuses: images and databases need room
LOW_FREE_GB = 10  # below this it warns


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def root_writable(root: Path) -> Check:
    target = nearest_existing(root)
    if os.access(target, os.W_OK):
        return Check("root", "ok", f"{root} is writable")
    return Check("root", "fail", f"no permission to write {target}", "Run the command with sudo.")


def engine(docker: Docker) -> Check:
    error = docker.engine_error()
    if error is None:
        return Check("docker engine", "ok", "answers")
    return Check(
        "docker engine", "fail", error, f"Start Docker (`sudo systemctl start docker`) or run `{SUDO_INV} setup`."
    )


def compose(docker: Docker) -> Check:
    version = docker.compose_version()
    if version:
        return Check("compose v2", "ok", version)
    return Check("compose v2", "fail", NO_COMPOSE, COMPOSE_FIX)


def fresh(reason: str | None) -> Check:
    if reason is None:
        return Check("generated/", "ok", "up to date")
    return Check("generated/", "fail", reason, f"Run `{INV} render`, review with `{INV} diff`, then deploy again.")


def ports(project: Project, running: list[ContainerInfo] | None) -> list[Check]:
    """Every host port the project publishes is free, or held by this platform's own container. `running` None: the
    engine could not be asked, so a held port may be the platform's own (a warning that says so)."""
    ours = {int(p.split("->")[0].rsplit(":", 1)[1]) for c in running or [] if c.managed for p in c.ports}
    found = []
    for ip, port, container in project.host_ports():
        name = f"port {port}"
        held = listeners(port)
        if port in ours:
            found.append(Check(name, "ok", f"held by the platform's own {container}"))
        elif not held:
            found.append(Check(name, "ok", f"free ({ip})"))
        elif running is None:
            found.append(Check(name, "warn", f"{port} is in use by {held[0].holder}: the platform's own container? "
                               "(the engine did not answer)", "Check it once Docker answers."))  # fmt: skip
        else:
            found.append(
                Check(
                    name,
                    "fail",
                    f"{port} is already in use by {held[0].holder}",
                    "Stop that process, or change the port in templates/services/…/service.yaml.",
                )
            )
    return found


def last_backup(root: Path) -> Check:
    """How old the last backup is and whether it worked (<root>/logs/backup-last.json)."""
    status, line = describe_last(root)
    fix = "" if status == "ok" else f"Run `{SUDO_INV} backup` (and `{SUDO_INV} backup --schedule daily`)."
    return Check("backup", status, line, fix)


def disk(root: Path) -> Check:
    target = nearest_existing(root)
    free_gb = psutil.disk_usage(str(target)).free / 1024**3
    detail = f"{free_gb:.0f} GB free on {target}"
    if free_gb < MIN_FREE_GB:
        return Check("disk", "fail", detail, f"Free at least {MIN_FREE_GB} GB (docker system prune, old backups/).")
    if free_gb < LOW_FREE_GB:
        return Check("disk", "warn", detail, "Images and models need room: free some space soon.")
    return Check("disk", "ok", detail)


def ollama_api(url: str, runner: Runner) -> Check:
    """The host's Ollama answers (a warning for deploy: the platform starts without it); ollama.py does the asking."""
    result = wait_for_ollama(
        url, runner=runner, budgets=Budgets(unit=0, port=1, api=3), check_unit=False, expect_process=None
    )
    if result.ok:
        return Check("ollama api", "ok", f"{url} version {result.version}")
    failed = next(step for step in result.steps if step.status == "fail")
    return Check(
        "ollama api",
        "warn",
        f"{url}: {failed.detail}",
        f"Run `{SUDO_INV} setup`, or `{INV} doctor` to see why it does not answer.",
    )


def legacy_roots() -> list[Path]:
    """Roots of the platform's original scripts that exist on this host."""
    return [path.expanduser() for path in LEGACY_ROOTS if path.expanduser().is_dir()]
