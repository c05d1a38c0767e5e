"""Day two on a deployed platform: its logs, a command or a shell in a container, restarting one service, stopping
and starting the whole platform (data kept), and where a service answers.

Everything goes through the one compose project `ai-platform` that deploy made, with the same compose and env files:
the root's once deployed (its credentials.env is root's own, so that takes sudo), else generated/'s, which hold the
same secrets (render keeps them). A name on the command line is a catalog service (all its containers) or one
container; the commands are argv lists run through the Runner, so they are echoed and `--dry-run` prints them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiplatform.commands import INV, SUDO_INV
from aiplatform.engine.docker import ContainerInfo, Docker, require_compose, require_engine
from aiplatform.engine.project import COMPOSE_GLOB, Project, load_project
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner

if TYPE_CHECKING:
    from aiplatform.inputs.catalog import Catalog

# A shell in any image: bash where the image has it, else the POSIX sh every image with a shell has.
DEFAULT_SHELL = ["sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"]
# What `docker logs --since` accepts: a duration (10m, 1h30m), a Unix time, or a date with an optional time and zone.
_SINCE = re.compile(
    r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+"
    r"|\d+(\.\d+)?"
    r"|\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?"
)
URL_KINDS = ("local", "public", "tailnet")  # on this host, through Caddy, on the tailnet
Progress = Callable[[str], None]


def platform_project(out: Path, root: Path) -> Project:
    """The compose project the running containers were made from: the root's files once deploy wrote them and they
    can all be read here, else generated/'s."""
    try:
        deployed = any(root.glob(COMPOSE_GLOB))
    except OSError:
        deployed = False
    if deployed and all(os.access(path, os.R_OK) for path in Project(root).env_files):
        return load_project(root)
    return load_project(out)


@dataclass(frozen=True)
class Selection:
    """What a name on the command line stands for."""

    name: str
    containers: list[str]
    service: bool  # a service (all its containers), not one container


def select(project: Project, name: str) -> Selection:
    """A catalog service of the project (all its containers) or one of its containers (as compose or as `docker ps`
    names it, ai-platform-NAME); any other name is a UserError listing the valid ones."""
    wanted = name.strip()
    for candidate in dict.fromkeys([wanted, wanted.removeprefix("ai-platform-")]):
        if candidate in project.services():
            return Selection(candidate, project.containers_of([candidate]), service=True)
        if candidate in project.containers:
            return Selection(candidate, [candidate], service=False)
    raise UserError(
        f"{name!r} is neither a service nor a container of this platform (its compose files are in "
        f"{project.directory / 'docker'}). Services: {', '.join(project.services())}. "
        f"Containers: {', '.join(sorted(project.containers))}.",
        f"Name one of those (`{INV} status` lists them); a catalog service that is not enabled yet is added with "
        f"`{SUDO_INV} add NAME`.",
    )


def check_since(since: str) -> str:
    """--since as `docker logs` takes it; anything else is a UserError with examples."""
    if not _SINCE.fullmatch(since.strip()):
        raise UserError(
            f"--since {since!r}: expected a duration (10m, 2h, 1h30m), a date (2026-01-31) or a date and time "
            "(2026-01-31T08:00:00, with Z or +01:00 for a zone other than this host's).",
            f"For example `{INV} logs --since 30m`.",
        )
    return since.strip()


def exec_container(project: Project, selection: Selection) -> str:
    """The one container a command runs in: the one named, the service's container of the same name, or its only
    long-running one; a service with several is a UserError naming them."""
    if not selection.service or selection.name in selection.containers:
        return selection.name
    running = [name for name in selection.containers if not project.containers[name].oneshot]
    if len(running) == 1:
        return running[0]
    raise UserError(
        f"{selection.name} has {len(running)} containers ({', '.join(running)}): name the one to run in.",
        f"For example `{INV} exec {running[0]}`.",
    )


def restart_targets(project: Project, selection: Selection) -> list[str]:
    """The containers a restart of `selection` restarts: a service's long-running ones (a one-shot such as
    postgres-init runs again only when named itself)."""
    if not selection.service:
        return selection.containers
    return [name for name in selection.containers if not project.containers[name].oneshot]


@dataclass
class Outcome:
    """What stop, start or restart did: the containers acted on, and how long until they were where they should be."""

    containers: list[str] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0


class Platform:
    """`docker compose` on the platform's project, through the runner."""

    def __init__(self, project: Project, runner: Runner, root: Path | None = None) -> None:
        self.project = project
        self.root = root or project.directory  # the platform root (its data/), whichever folder's files are used
        self.runner = runner
        self.docker = Docker(runner, project.compose_files, project.env_files)

    def compose(self, *args: str) -> list[str]:
        return [*self.docker.compose_command(), *args]

    def require_engine(self, task: str) -> None:
        """The engine answers and compose v2 is there (a dry run only prints, so it goes on without them)."""
        if not self.runner.dry_run:
            require_engine(self.docker)
            require_compose(self.docker, f"`{INV} {task}`")

    # --- on the user's terminal ------------------------------------------------------------------------------------

    def logs(
        self, selection: Selection | None, follow: bool = False, since: str | None = None, tail: int | None = None
    ) -> int:
        """Show the logs of the selection's containers (all of the platform's without one); compose's exit code."""
        options = [*(["--follow"] if follow else []), *(["--since", check_since(since)] if since else [])]
        options += ["--tail", str(tail)] if tail is not None else []
        self.require_engine("logs")
        return self.runner.attach(self.compose("logs", *options, *(selection.containers if selection else [])))

    def exec(self, selection: Selection, command: list[str], tty: bool) -> int:
        """Run `command` (a shell when empty) in the selection's container; its exit code."""
        container = exec_container(self.project, selection)
        self.require_engine("exec")
        return self.runner.attach(
            self.compose("exec", *([] if tty else ["-T"]), container, *(command or DEFAULT_SHELL))
        )

    # --- changes ---------------------------------------------------------------------------------------------------

    def restart(self, selection: Selection, timeout: int | None, progress: Progress) -> Outcome:
        """Restart the selection's containers (nothing else: `--no-deps`) and wait until they are up and healthy."""
        containers = restart_targets(self.project, selection)
        self.require_engine("restart")
        self._require_existing(containers)
        started = time.monotonic()
        self.runner.run(self.compose("restart", "--no-deps", *containers))
        return self._settle(containers, timeout, progress, started)

    def stop(self) -> Outcome:
        """Stop every container of the platform. Containers, volumes and data stay: `start` brings them back."""
        self.require_engine("stop")
        up = ("running", "restarting", "paused")
        running = [] if self.runner.dry_run else [c.container for c in self._states() if c.state in up]
        if running or self.runner.dry_run:
            self.runner.run(self.compose("stop"))
        return Outcome(running, dry_run=self.runner.dry_run)

    def start(self, timeout: int | None, progress: Progress) -> Outcome:
        """Start the platform's existing containers as they are (nothing recreated: `compose start`, in dependency
        order, one-shots run again), then wait until every one is up and healthy, or done."""
        self.require_engine("start")
        containers = list(self.project.containers)
        self._require_existing(containers)
        started = time.monotonic()
        self.runner.run(self.compose("start"))
        return self._settle(containers, timeout, progress, started)

    # --- helpers ---------------------------------------------------------------------------------------------------

    def _states(self) -> list[ContainerInfo]:
        return [c for c in self.docker.containers() if c.container in self.project.containers]

    def _require_existing(self, containers: list[str]) -> None:
        """Each container exists (stopped or running): start and restart never create one, deploy does."""
        if self.runner.dry_run:
            return
        present = {c.container for c in self._states()}
        missing = [name for name in containers if name not in present]
        if missing:
            raise UserError(
                f"No container for {', '.join(missing)}: not deployed yet, or removed since (`inv cleanup`).",
                f"Run `{SUDO_INV} deploy` to create it from {self.project.directory}.",
            )

    def _settle(self, containers: list[str], timeout: int | None, progress: Progress, started: float) -> Outcome:
        """Wait until each container is where it should be (a one-shot done, anything else up and healthy); one that
        fails or is late is a UserError naming it and how to see why."""
        outcome = Outcome(containers, dry_run=self.runner.dry_run)
        if self.runner.dry_run:
            return outcome
        limit = timeout if timeout is not None else self.project.default_timeout()
        shown: dict[str, str] = {}
        while True:
            states = {c.container: c for c in self._states()}
            pending = {}
            for name in containers:
                state = states.get(name)
                text = describe(state)
                if state is not None and state.settled(self.project.containers[name].oneshot):
                    text = "done" if self.project.containers[name].oneshot else "ready"
                else:
                    pending[name] = text
                if shown.get(name) != text:
                    progress(f"{name}: {text}")
                    shown[name] = text
            outcome.seconds = time.monotonic() - started
            if not pending:
                return outcome
            if outcome.seconds > limit or any(_failed(states.get(n), self.project, n) for n in pending):
                late = ", ".join(f"{name} ({text})" for name, text in pending.items())
                raise UserError(
                    f"Not where it should be after {outcome.seconds:.0f} s: {late}.",
                    f"`{INV} logs {next(iter(pending))}` shows why; `{INV} status` shows the whole platform.",
                )
            time.sleep(1)


def describe(state: ContainerInfo | None) -> str:
    if state is None:
        return "missing"
    if state.state == "exited":
        return f"exited (exit {state.exit_code})"
    return state.state + (f", {state.health}" if state.health else "")


def _failed(state: ContainerInfo | None, project: Project, name: str) -> bool:
    """Settled somewhere it should not be: gone, exited (a one-shot with an error), or marked unhealthy."""
    if state is None or state.health == "unhealthy":
        return True
    return state.state == "exited" and (state.exit_code != 0 or not project.containers[name].oneshot)


# --- where a service answers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Url:
    container: str
    kind: str  # local | public | tailnet
    url: str


def urls(selection: Selection, stamped: Mapping[str, Mapping[str, str]], tailnet: Mapping[str, str]) -> list[Url]:
    """The selection's URLs, container by container: those render stamped (`local` on this host, `public` through
    Caddy) and the tailnet one of a service of the same name (`tailnet`: service -> URL, what `inv info` found)."""
    found = []
    for container in selection.containers:
        known = {**stamped.get(container, {}), **({"tailnet": tailnet[container]} if container in tailnet else {})}
        found += [Url(container, kind, known[kind]) for kind in URL_KINDS if kind in known]
    if not found:
        raise UserError(
            f"{selection.name} has no URL: no route through Caddy and no port on this host.",
            f"`{INV} info` lists the services that have one.",
        )
    return found


def url_lines(found: list[Url]) -> list[str]:
    """One line per URL, never cut: container, kind, URL."""
    width = max(len(u.container) for u in found)
    return [f"{u.container:<{width}}  {u.kind:<7}  {u.url}" for u in found]


def url_to_open(found: list[Url]) -> str:
    """The URL a browser on this host opens: of the first container with a route through Caddy (the one meant for
    people), else the first; on this host, its local URL first."""
    routed = [u.container for u in found if u.kind == "public"]
    container = routed[0] if routed else found[0].container
    mine = {u.kind: u.url for u in found if u.container == container}
    return next(mine[kind] for kind in URL_KINDS if kind in mine)


def no_browser(found: list[Url]) -> str:
    """What to do instead on a box where no browser opens: a URL that works from the owner's own machine."""
    away = [u for u in found if u.kind != "local"]
    if away:
        return f"No browser opens here (no desktop session, or root): open {away[0].url} from your own machine."
    port = urlsplit(found[0].url).port or 80
    return (
        f"No browser opens here (no desktop session, or root), and {found[0].url} answers on this host only: from "
        f"your own machine, tunnel to it (`ssh -L {port}:localhost:{port} THIS-HOST`) and open it there."
    )


def browser_usable(environ: Mapping[str, str], euid: int) -> bool:
    """A browser started here would show up on someone's screen: a graphical session, and not root (browsers refuse
    to run as root, and sudo drops the session's variables anyway)."""
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")) and euid != 0


def where(selection: Selection, out: Path, root: Path, catalog: Catalog) -> list[Url]:
    """The selection's URLs as `inv info` knows them: from the folder it reads (the root once deployed, else
    generated/), with the tailnet ones it finds."""
    from aiplatform.configure.info import platform_info
    from aiplatform.generated.stamp import read_stamp

    info = platform_info(out, root, catalog, show_secrets=False)
    stamp = read_stamp(info.source)
    tailnet = {s.service: s.urls["tailnet"] for s in info.services if "tailnet" in s.urls}
    return urls(selection, stamp.urls if stamp else {}, tailnet)
