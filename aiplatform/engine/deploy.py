"""Deploy: preflight, apply generated/ to the root (with backups), then bring the project up and wait for health.

The whole platform is one compose project made of the per-service files. What must change is decided the way
compose decides it: a container whose `com.docker.compose.config-hash` label differs from `docker compose config
--hash` is recreated (render's ai-platform.config-hash label makes a changed config file such a change), a missing
one is created, a stopped one started. Only those are named to one `docker compose up --detach --wait`, which adds
what they depend on (running ones are left as they are; the one-shot postgres-init runs again and creates a new
service's database) and starts them in dependency order — services depend on the tiers before them (infra → ai →
apps) with `condition: service_healthy`; monitoring and the proxy need nothing before them (Caddy resolves its
upstreams per request) — in parallel where the graph allows, so the wall time follows the critical path. Naming
only the changed containers matters: compose recreates the dependents of a recreated container when they are part
of the same `up`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from aiplatform.commands import INV, SUDO_INV
from aiplatform.engine import pull as pulling
from aiplatform.engine.docker import ContainerInfo, Docker
from aiplatform.engine.project import ExpectedContainer, Project, load_project
from aiplatform.engine.pull import PullUI
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.generated.diff import TreeDiff, applied_tree, diff_trees, mask, maskable
from aiplatform.generated.files import Tree
from aiplatform.generated.stamp import read_stamp
from aiplatform.host import checks
from aiplatform.host.checks import Check
from aiplatform.host.runner import Runner
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV, STAMP_FILE

ROOT_DIRS = ["config", "docker", "data", "logs", "scripts", "backups"]
Progress = Callable[[dict[str, str]], None]


@dataclass
class Plan:
    files: TreeDiff
    containers: dict[str, str]  # container -> create | recreate | start | unchanged
    remove: list[ContainerInfo] = field(default_factory=list)  # the platform's, no longer in generated/
    tree: Tree = field(default_factory=dict)  # generated/ as planned: what apply copies, even if it changes meanwhile
    reasons: dict[str, str] = field(default_factory=dict)  # container to recreate -> why
    reloads: dict[str, list[str]] = field(default_factory=dict)  # running container -> its changed config files

    @property
    def changes(self) -> bool:
        changing = any(action != "unchanged" for action in self.containers.values())
        return self.files.differs or changing or bool(self.remove)


@dataclass
class Failure:
    container: str
    state: str
    health_log: list[str]
    logs: str


@dataclass
class DeployResult:
    plan: Plan
    root: Path = Path()
    applied: bool = False
    backed_up: list[str] = field(default_factory=list)
    backup_dir: Path | None = None
    created: list[str] = field(default_factory=list)
    reloaded: dict[str, list[str]] = field(default_factory=dict)  # container -> the config files it re-read
    recreated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    states: dict[str, ContainerInfo] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""  # what compose printed
    blocked: list[Check] = field(default_factory=list)  # a dry run's failed preflight checks
    pulled: list[str] = field(default_factory=list)  # images pulled before the start

    @property
    def ok(self) -> bool:
        return not self.failures and not self.not_started


def preflight(
    out: Path, root: Path, project: Project, docker: Docker, stale: str | None, dry_run: bool = False
) -> list[Check]:
    """Every check before a deploy (and before add/remove ask anything), all run and all returned: one failure does
    not hide the rows after it. In a dry run, what only a real deploy needs (write access, an engine, compose) and a
    stale generated/ warn instead of failing."""
    found = [checks.root_writable(root), checks.engine(docker), checks.compose(docker), checks.fresh(stale)]
    if dry_run:
        for check in found:
            if check.status == "fail":  # a dry run writes nothing and starts nothing: looking needs none of them
                check.status = "warn"
        if found[1].status != "ok":  # a fresh box: the file plan still holds, and every container would be created
            found[1].detail += " (dry run: every container is shown as to create)"
    engine = found[1].status == "ok"
    found.extend(checks.ports(project, docker.containers() if engine else None))
    found.append(checks.disk(root))
    port = read_env(out / MASTER_ENV).get("OLLAMA_PORT", "11434")
    found.append(checks.ollama_api(f"http://127.0.0.1:{port}", docker.runner))
    return found


def usable(found: list[Check]) -> bool:
    """The engine and compose answered: deploy (or a plan) can ask them."""
    return all(check.status == "ok" for check in found if check.name in ("docker engine", "compose v2"))


def preflight_error(failed: list[Check], dry_run: bool = False) -> UserError:
    """One paragraph naming every failed check, and their fixes."""
    said = "; ".join(f"{c.name}: {c.detail.rstrip('.')}" for c in failed)
    head = "Dry run: a real run would stop at its preflight: " if dry_run else "Preflight failed: "
    return UserError(head + said + ".", " ".join(dict.fromkeys(c.fix for c in failed if c.fix)))


def _previous(root: Path) -> dict[str, ExpectedContainer]:
    """The containers as the root's compose files (the last deploy) define them; none before a first deploy."""
    try:
        return load_project(root).containers
    except UserError:
        return {}


def make_plan(out: Path, root: Path, project: Project, docker: Docker | None, only: list[str] | None) -> Plan:
    """What deploy would do to each selected container (with what it depends on): create, recreate, start or none.
    Without an engine (`docker` None: a dry run on a fresh box) every container is to be created."""
    running = {c.container: c for c in docker.containers()} if docker else {}
    expected = docker.compose_hashes() if docker else {}
    selected = _with_dependencies(project, project.containers_of(only) if only else list(project.containers))
    actions = {name: _action(project, name, running.get(name), expected.get(name, "")) for name in selected}
    # A service switched off: its containers go (its volumes and data stay). Not with --only: that deploys a part.
    remove = [] if only else [c for name, c in running.items() if name not in project.containers and c.managed]
    files = diff_trees(out, root)
    changed = [item.path for item in files.files]
    reasons, reloads = {}, {}
    previous = _previous(root)
    for name, action in actions.items():
        touched = project.containers[name].mounted(root, changed)
        if action == "recreate":
            keys = project.containers[name].changed_keys(previous[name]) if name in previous else []
            reasons[name] = ", ".join([*keys, *touched]) + " changed" if keys or touched else "its definition changed"
        elif action == "unchanged" and touched and project.containers[name].reload:
            reloads[name] = touched  # it re-reads them itself: no restart
    return Plan(files, actions, remove, applied_tree(out, root), reasons, reloads)


def _action(project: Project, name: str, current: ContainerInfo | None, expected_hash: str) -> str:
    if current is None:
        return "create"
    if current.compose_hash != expected_hash:
        return "recreate"
    oneshot = project.containers[name].oneshot
    return "unchanged" if current.settled(oneshot) or (not oneshot and current.state == "running") else "start"


def to_bring_up(plan: Plan, project: Project) -> list[str]:
    """The containers `up` must name: those that change (compose adds what they depend on)."""
    return [name for name in project.containers if plan.containers.get(name, "unchanged") != "unchanged"]


def apply_files(runner: Runner, out: Path, root: Path, tree: Tree | None = None) -> tuple[list[str], Path]:
    """Copy generated/ (or the tree planned from it) into the root: changed files backed up first, removed files
    backed up then deleted."""
    tree = tree if tree is not None else applied_tree(out, root)
    stamp = read_stamp(root)
    removed = [p for p in (stamp.files if stamp else {}) if p not in tree and (root / p).is_file()]
    backup_dir = root / "backups" / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    runner.make_dirs(root, ROOT_DIRS)
    files = {path: (file.data, file.mode) for path, file in tree.items() if path != STAMP_FILE.as_posix()}
    backed_up = runner.backup_and_write(root, files, removed, backup_dir)
    stamp_file = tree[STAMP_FILE.as_posix()]
    runner.write(root / STAMP_FILE, stamp_file.data, stamp_file.mode)  # last: it records what was applied
    return backed_up, backup_dir


def bring_up(
    docker: Docker,
    project: Project,
    containers: list[str],
    watched: list[str],
    timeout: int,
    progress: Progress,
    poll: float = 1.0,
) -> DeployResult:
    """`compose up --detach --wait` for `containers`, reporting the states of `watched` while it runs."""
    result = DeployResult(plan=Plan(TreeDiff(), {}))
    before = {c.container: c.id for c in docker.containers()}
    docker.ensure_networks()
    started = time.monotonic()
    proc = None
    if containers:
        argv = [*docker.compose_command(), "up", "--detach", "--wait", "--wait-timeout", str(timeout)]
        proc = docker.runner.start([*argv, *containers])
    output: list[str] = []
    if proc is not None:
        reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
        reader.start()
        while proc.poll() is None:
            progress(_describe(project, watched, {c.container: c for c in docker.containers()}))
            if time.monotonic() - started > timeout + 30:  # compose should have given up by now
                proc.terminate()
            time.sleep(poll)
        reader.join(timeout=5)
    result.seconds = time.monotonic() - started
    result.output = "".join(output)
    states = {c.container: c for c in docker.containers()}
    progress(_describe(project, watched, states))
    result.states = states
    timed_out = result.seconds >= timeout
    for name in watched:
        state = states.get(name)
        if state is None or state.state == "created":
            result.not_started.append(name)
        if state is None:
            continue
        if before.get(name) is None:
            result.created.append(name)
        elif before[name] != state.id:
            result.recreated.append(name)
        else:
            result.unchanged.append(name)
        if state.state != "created" and not _settled(project, name, state) and (timed_out or not _starting(state)):
            result.failures.append(
                Failure(name, _status(project, name, state), docker.health_log(state.name), docker.logs(state.name))
            )
    settled = all(name in states and _settled(project, name, states[name]) for name in watched)
    if proc is not None and proc.returncode != 0 and not result.failures and not settled:
        # compose stopped on something no container shows (a missing image, a mount the host refuses, ...).
        # With everything settled it is compose's `--wait` refusing a one-shot that exited 0 when nothing in the
        # same `up` waits for it (docker/compose#10596): the deploy did what it should.
        raise UserError(
            "docker compose up failed:\n" + result.output.strip()[-3000:],
            f"Fix the error above, then run `{SUDO_INV} deploy` again (`{INV} status` shows what is up).",
        )
    return result


def _starting(state: ContainerInfo) -> bool:
    return state.state == "running" and state.health == "starting"


def _with_dependencies(project: Project, containers: list[str]) -> list[str]:
    wanted: list[str] = []
    pending = list(containers)
    while pending:
        name = pending.pop(0)
        if name in wanted or name not in project.containers:
            continue
        wanted.append(name)
        pending.extend(project.containers[name].depends_on)
    return [name for name in project.containers if name in wanted]


def _settled(project: Project, name: str, state: ContainerInfo) -> bool:
    return state.settled(project.containers[name].oneshot)


def _status(project: Project, name: str, state: ContainerInfo | None) -> str:
    if state is None:
        return "waiting"
    if project.containers[name].oneshot:
        if state.state == "exited":
            return "done" if state.exit_code == 0 else f"failed (exit {state.exit_code})"
        return "running" if state.state == "running" else state.state
    if state.state == "running":
        return {"healthy": "healthy", "unhealthy": "unhealthy", "starting": "starting", "": "running"}[state.health]
    if state.state == "exited":
        return f"exited ({state.exit_code})"
    return state.state


def _describe(project: Project, names: list[str], states: dict[str, ContainerInfo]) -> dict[str, str]:
    return {name: _status(project, name, states.get(name)) for name in names}


def reload(docker: Docker, project: Project, plan: Plan, result: DeployResult) -> None:
    """Make each running container whose config files changed re-read them (its `reload` command)."""
    for name, touched in plan.reloads.items():
        state = result.states.get(name)
        if state is None or state.state != "running":
            continue
        done = docker.runner.run(
            ["docker", "exec", state.name, *project.containers[name].reload], check=False, timeout=60
        )
        if done.ok:
            result.reloaded[name] = touched
        else:
            said = (done.stderr + done.stdout).strip()
            result.failures.append(
                Failure(name, f"reloading {', '.join(touched)} failed (exit {done.returncode})", [], said)
            )


def masked_failures(result: DeployResult, root: Path) -> list[Failure]:
    """Failures with every secret value masked out of their logs."""
    values = maskable(read_env(root / CREDENTIALS_ENV).values())
    return [
        Failure(f.container, f.state, [mask(line, values) for line in f.health_log], mask(f.logs, values))
        for f in result.failures
    ]


class DeployUI(Protocol):
    def checks(self, found: list[Check]) -> None: ...
    def plan(self, plan: Plan) -> None: ...
    def confirm(self, plan: Plan) -> bool: ...
    def progress(self, states: dict[str, str]) -> None: ...
    def pull_progress(self) -> AbstractContextManager[PullUI]: ...


def pull_missing(project: Project, plan: Plan, runner: Runner, ui: DeployUI) -> list[str]:
    """Pull the images of the containers to create or recreate that are not on the host (nor built by compose), each
    with its bar, before anything is changed; a failed pull is a UserError naming the image."""
    changing = [name for name, action in plan.containers.items() if action in ("create", "recreate")]
    wanted = {project.containers[name].image: project.containers[name].built for name in changing}
    missing = pulling.images_to_pull(wanted, pulling.present(runner))
    if not missing:
        return []
    with ui.pull_progress() as bars:
        return pulling.pull_images(missing, bars, pulling.events_for(runner))


@dataclass
class DeployOptions:
    out: Path
    root: Path
    yes: bool = False
    dry_run: bool = False
    only: list[str] | None = None
    timeout: int | None = None
    checked: bool = False  # the preflight was shown already (add/remove): shown again only when something fails


def deploy(options: DeployOptions, runner: Runner, stale: str | None, ui: DeployUI) -> DeployResult:
    """Preflight, plan, (confirm), apply files, bring up; a failed check or a cancel is a UserError, nothing done.
    A dry run shows every check and the plan even when a check fails (the result's `blocked` lists those)."""
    out, root = options.out, options.root
    generated = load_project(out)
    if options.only:
        unknown = sorted(set(options.only) - set(generated.services()))
        if unknown:
            raise UserError(
                f"--only names {', '.join(unknown)}, not in generated/ ({', '.join(generated.services())})."
            )
    docker = Docker(runner, generated.compose_files, generated.env_files)
    found = preflight(out, root, generated, docker, stale, options.dry_run)
    failed = [check for check in found if check.status == "fail"]
    if not options.checked or (failed and not options.dry_run):  # add/remove showed them before asking anything
        ui.checks(found)
    if failed and not options.dry_run:
        raise preflight_error(failed)
    plan = make_plan(out, root, generated, docker if usable(found) else None, options.only)
    ui.plan(plan)
    if options.dry_run:
        return DeployResult(plan, root, blocked=failed)
    if plan.changes and not options.yes and not ui.confirm(plan):
        raise UserError(
            "Cancelled: nothing was changed.", f"Run `{SUDO_INV} deploy --yes` to apply without a question."
        )
    result_pulled = pull_missing(generated, plan, runner, ui)  # before anything changes; the timeout is not running
    backed_up, backup_dir = apply_files(runner, out, root, plan.tree)
    docker.remove_containers([c.id for c in plan.remove])
    project = load_project(root)
    live = Docker(runner, project.compose_files, project.env_files)
    timeout = options.timeout or project.default_timeout()
    result = bring_up(live, project, to_bring_up(plan, project), list(plan.containers), timeout, ui.progress)
    result.plan, result.root, result.applied, result.backed_up = plan, root, True, backed_up
    result.pulled = result_pulled
    reload(live, project, plan, result)
    result.backup_dir = backup_dir if backed_up else None
    result.failures = masked_failures(result, root)
    return result
