"""`inv add` and `inv remove`: one more service (or one fewer) on a running platform, as one reviewed change.

The change is recorded in answers.yaml (the owner's file: comments and order kept), rendered first into a copy of
generated/ to show what it would do (files, and the containers deploy would create, recreate — with why — or reload
without a restart), then, once confirmed, applied: answers.yaml written, generated/ rendered, deployed (which touches
only what the change needs), and the new service configured. `remove --purge` also deletes the service's data:
its volumes, its folders under data/, its Postgres databases and users, its secrets — listed with sizes first.
Everything that can make the change fail is checked before any question (`preflight`: deploy's own checks, every row
shown), and the ports the change adds once the preview knows them, before "Apply?".
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiplatform.backup.take import POSTGRES
from aiplatform.commands import INV, SUDO_INV
from aiplatform.engine import deploy as deploying
from aiplatform.engine.docker import PROJECT, Docker
from aiplatform.engine.project import Project, load_project
from aiplatform.envfile import format_env, read_env
from aiplatform.errors import UserError
from aiplatform.generated import build
from aiplatform.host import checks
from aiplatform.host.checks import Check
from aiplatform.host.runner import Runner
from aiplatform.inputs.answers import with_list
from aiplatform.inputs.catalog import ServiceSpec
from aiplatform.inputs.context import Context
from aiplatform.inputs.secrets import CREDENTIALS_HEADER, PLATFORM_SECRETS, service_secrets
from aiplatform.paths import CREDENTIALS_ENV, dir_size
from aiplatform.render.platform import public_url


@dataclass
class MenuRow:
    name: str
    description: str
    needs: str  # RAM, disk, databases, the services it brings along
    url: str


def menu_rows(ctx: Context) -> list[MenuRow]:
    """The catalog's optional services not enabled yet, as the `inv add` menu shows them."""
    platform = build.shell_platform(ctx)
    enabled = {spec.name for spec in ctx.catalog.enabled(ctx.resolved.settings.services)}
    rows = []
    for name in ctx.catalog.optional:
        spec = ctx.catalog.services[name]
        if name in enabled:
            continue
        needs = [f"{spec.needs.ram_gb:g} GB RAM", f"{spec.needs.disk_gb:g} GB disk"]
        needs += [f"database {db.name}" for db in spec.databases]
        needs += [f"+{dep}" for dep in spec.depends_on if dep not in enabled and not ctx.catalog.services[dep].core]
        local = [p.split(":")[1] for c in spec.containers.values() for p in c.publish]
        url = public_url(platform, spec) if spec.route else (f"localhost:{local[0]}" if local else "")
        rows.append(MenuRow(spec.name, spec.description, ", ".join(needs), url))
    return rows


class ChangeUI(deploying.DeployUI, Protocol):
    def purge_plan(self, items: list[tuple[str, int | None]]) -> None: ...
    def ask(self, question: str) -> bool: ...


@dataclass
class ChangeResult:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    plan: deploying.Plan | None = None
    deployed: deploying.DeployResult | None = None
    purged: list[tuple[str, int | None]] = field(default_factory=list)
    answers: Path | None = None
    root: Path | None = None
    blocked: list[Check] = field(default_factory=list)  # a dry run's failed checks of the ports the change adds


def _answers_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else ""
    except OSError as exc:
        raise UserError(f"Cannot read {path}: {exc.strerror}.") from None


def preflight(ctx: Context, out: Path, runner: Runner, ui: deploying.DeployUI) -> list[Check]:
    """Everything that can make the change fail, checked before any question (the menu, a new service's questions,
    "Apply?"): deploy's own preflight over generated/ as it is (root writable, engine, compose, generated/ fresh, its
    ports, disk), every row shown. A failure is a UserError; a dry run returns the failures instead, after which its
    preview still shows. The ports a change adds are checked once the preview knows them (`change_services`)."""
    try:
        project = load_project(out)
    except UserError:  # never rendered: no ports of its own yet
        project = Project(out)
    docker = Docker(runner, project.compose_files, project.env_files)
    stale = build.stale_reason(out)
    found = deploying.preflight(out, ctx.resolved.settings.root, project, docker, stale, runner.dry_run)
    ui.checks(found)
    failed = [check for check in found if check.status == "fail"]
    if failed and not runner.dry_run:
        raise deploying.preflight_error(failed)
    return failed


def _new_ports(out: Path, preview_out: Path, runner: Runner) -> list[Check]:
    """The checks of the host ports the change publishes that generated/ does not yet."""
    try:
        known = {port for _, port, _ in load_project(out).host_ports()}
    except UserError:
        known = set()
    preview = load_project(preview_out)
    docker = Docker(runner, preview.compose_files, preview.env_files)
    running = docker.containers() if docker.engine_error() is None else None
    return [c for c in checks.ports(preview, running) if int(c.name.split()[-1]) not in known]


def check_add(ctx: Context, names: list[str], allow_privileged: bool) -> list[str]:
    """The services to add, each checked: known, optional, not on yet, privileges accepted when root-equivalent."""
    settings = ctx.resolved.settings
    for name in names:
        spec = ctx.catalog.require(name)
        if spec.core:
            raise UserError(f"{name!r} is a core service: it always runs.", f"`{INV} status` shows it.")
        granted = spec.root_equivalent
        if granted and not allow_privileged and name not in settings.privileged_services:
            raise UserError(
                f"{name!r} asks for {', '.join(granted)}: that is root on this host.",
                f"If you accept it: `{SUDO_INV} add {name} --allow-privileged`.",
            )
    fresh = [name for name in dict.fromkeys(names) if name not in settings.services]
    if not fresh:
        raise UserError(f"{', '.join(names)} already enabled: nothing to add.", f"`{INV} info` lists what runs.")
    return fresh


def check_remove(ctx: Context, name: str) -> ServiceSpec:
    """The service to remove: optional, enabled, and nothing else enabled depends on it."""
    spec = ctx.catalog.require(name)
    settings = ctx.resolved.settings
    if spec.core:
        raise UserError(f"{name!r} is a core service: the platform needs it.", "Core services cannot be removed.")
    if name not in settings.services:
        raise UserError(f"{name!r} is not enabled: nothing to remove.", f"`{INV} info` lists what runs.")
    enabled = ctx.catalog.enabled([n for n in settings.services if n != name])  # with what those bring along
    dependants = [s.name for s in enabled if name in s.depends_on] if name in {s.name for s in enabled} else []
    if dependants:
        raise UserError(
            f"{', '.join(dependants)} depend{'s' if len(dependants) == 1 else ''} on {name!r}.",
            f"Remove {' and '.join(dependants)} first (`{SUDO_INV} remove {dependants[0]}`).",
        )
    return spec


def change_services(
    make_context: Callable[[Path | None], Context],
    out: Path,
    runner: Runner,
    ui: ChangeUI,
    *,
    add: list[str] | None = None,
    remove: str | None = None,
    allow_privileged: bool = False,
    purge: bool = False,
    yes: bool = False,
) -> ChangeResult:
    """Preview, confirm and apply one change of the enabled services. `make_context(answers)` builds the context
    the tasks would (None: the owner's answers file)."""
    ctx = make_context(None)
    assert ctx.answers is not None
    result = ChangeResult(answers=ctx.answers)
    before = _answers_text(ctx.answers)
    if add:
        result.added = check_add(ctx, add, allow_privileged)
        accepted = [n for n in result.added if allow_privileged and ctx.catalog.services[n].root_equivalent]
        text = with_list(before, ctx.answers, "services", add=result.added, default=ctx.resolved.settings.services)
        if accepted:
            text = with_list(text, ctx.answers, "privileged_services", add=accepted, default=[])
    else:
        assert remove is not None
        spec = check_remove(ctx, remove)
        result.removed = [remove]
        text = with_list(before, ctx.answers, "services", remove=[remove], default=ctx.resolved.settings.services)
    with tempfile.TemporaryDirectory(prefix="ai-platform-change-") as scratch:
        preview_out = Path(scratch) / "generated"
        if out.is_dir():
            shutil.copytree(out, preview_out, symlinks=True)
        preview_answers = Path(scratch) / "answers.yaml"
        preview_answers.write_text(text)
        if ctx.lockfile.is_file():  # the digests upgrade locked: the preview pins the same images
            shutil.copy2(ctx.lockfile, Path(scratch) / ctx.lockfile.name)
        preview = build.render_command(make_context(preview_answers), preview_out, interactive=False)
        result.root = preview.root
        options = deploying.DeployOptions(out=preview_out, root=preview.root, dry_run=True, checked=True)
        result.plan = deploying.deploy(options, Runner(dry_run=True, echo=lambda _: None), None, ui).plan
        ports = _new_ports(out, preview_out, runner)
    if ports:
        ui.checks(ports)
    result.blocked = [check for check in ports if check.status == "fail"]
    if result.blocked and not runner.dry_run:  # before the question: nothing was changed
        raise deploying.preflight_error(result.blocked)
    purging = purge_plan(spec, result.root, Docker(runner), ctx) if remove and purge else None
    listed = purging.items() if purging else []  # read before deploy drops the service's compose file
    if listed:
        ui.purge_plan(listed)
    if runner.dry_run:
        return result
    what = f"add {', '.join(result.added)}" if add else f"remove {remove}" + (" and DELETE its data" if purge else "")
    if not yes and not ui.ask(f"Apply this change ({what})?"):
        verb = "add" if add else "remove"
        raise UserError("Cancelled: nothing was changed.", f"`{SUDO_INV} {verb} ... --yes` applies it without asking.")
    runner.write(ctx.answers, text.encode(), 0o644)  # preflight (before any question) found nothing in the way
    try:
        build.render_command(make_context(None), out, interactive=False)
        options = deploying.DeployOptions(out=out, root=result.root, yes=True, checked=True)
        result.deployed = deploying.deploy(options, runner, build.stale_reason(out), ui)
    except BaseException:  # deploy could not run: answers.yaml and generated/ as they were
        runner.write(ctx.answers, before.encode(), 0o644)
        with contextlib.suppress(UserError):  # the first error is the one to show
            build.render_command(make_context(None), out, interactive=False)
        raise
    if purging and result.deployed.ok:
        purge_service(purging, result.root, out, Docker(runner), runner)
        build.render_command(make_context(None), out, interactive=False)  # generated/ stamped without the secrets
        result.purged = listed
    return result


# --- --purge -------------------------------------------------------------------------------------------------------


@dataclass
class Purge:
    """What `remove --purge` deletes, read once before anything goes (the root's compose file names the folders)."""

    volumes: list[tuple[str, Path]]  # (name, mountpoint)
    folders: list[Path]
    databases: list[str]
    users: list[str]
    secrets: list[str]

    def items(self) -> list[tuple[str, int | None]]:
        """Each thing with its size where there are bytes to count."""
        return [
            *((f"volume {name}", dir_size(mount)) for name, mount in self.volumes),
            *((f"folder {folder}", dir_size(folder)) for folder in self.folders),
            *((f"database {db} (Postgres)", None) for db in self.databases),
            *((f"database user {user} (Postgres)", None) for user in self.users),
            *((f"secret {secret} (credentials.env)", None) for secret in self.secrets),
        ]


def purge_plan(spec: ServiceSpec, root: Path, docker: Docker, ctx: Context) -> Purge:
    """The service's volumes, data folders, databases, database users and secrets no other service shares."""
    wanted = {f"{PROJECT}_{volume}" for volume in spec.volumes}
    volumes = docker.volumes() if docker.engine_error() is None else []
    try:
        folders = load_project(root).data_folders(list(spec.containers), root)
    except UserError:
        folders = []
    others = [s for s in ctx.catalog.services.values() if s.name != spec.name]
    shared_users = {db.user for s in others for db in s.databases}
    shared_secrets = {secret.name for s in others for secret in service_secrets(s)} | {s.name for s in PLATFORM_SECRETS}
    return Purge(
        volumes=[(name, Path(mount)) for name, mount in volumes if name in wanted],
        folders=folders,
        databases=[db.name for db in spec.databases],
        users=sorted({db.user for db in spec.databases} - shared_users),
        secrets=sorted({s.name for s in service_secrets(spec)} - shared_secrets),
    )


def purge_service(purge: Purge, root: Path, out: Path, docker: Docker, runner: Runner) -> None:
    """Delete what the plan lists (the service's containers are gone by now)."""
    if docker.engine_error() is None:
        docker.remove_volumes([name for name, _ in purge.volumes])
        for db in purge.databases:
            _psql(runner, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        for user in purge.users:
            _psql(runner, f'DROP ROLE IF EXISTS "{user}"')
    for folder in purge.folders:
        runner.remove_tree(folder)
    for path in (root / CREDENTIALS_ENV, out / CREDENTIALS_ENV):  # else the next render would keep them
        values = read_env(path)
        if set(purge.secrets) & set(values):
            kept = {k: v for k, v in values.items() if k not in purge.secrets}
            runner.write(path, format_env(kept, CREDENTIALS_HEADER).encode(), 0o600)


def _psql(runner: Runner, statement: str) -> Any:
    return runner.run(["docker", "exec", POSTGRES, "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", statement])
