"""AI Platform tasks. `inv --list` shows them, `inv --help TASK` explains one.

Each task parses its flags, calls one library function and prints the result; the work lives in aiplatform/.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke import Task, task
from invoke.exceptions import Exit

from aiplatform import __version__
from aiplatform.cli import console, prompts, tables
from aiplatform.cli.brokenpipe import quiet_on_broken_pipe
from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError
from aiplatform.paths import ANSWERS_FILE, GENERATED_DIR, HARDWARE_PROFILE

if TYPE_CHECKING:  # imported where used: `import tasks` (inv --list, --help) loads no catalog, settings or rich
    from aiplatform.inputs.context import Context

quiet_on_broken_pipe()

# One meaning per letter in every task; flags not listed here have no short form.
SHORT_FLAGS = {"yes": "y", "dry_run": "n", "json_": "j", "root": "r", "out": "o", "answers": "a", "set": "s"}


class PlatformTask(Task):  # type: ignore[misc]
    """A task whose short flags come from SHORT_FLAGS instead of invoke's first-free-letter guess, and whose
    positional arguments named in `optional_positional` may be left out."""

    optional_positional: tuple[str, ...] = ()

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Any]:
        # invoke pops each flag's help while it builds the arguments: keep it for the next parse (tests run many)
        from aiplatform.cli import optional_positional  # noqa: F401  (the parser's rules for positionals and --help)

        saved = dict(self.help)
        try:
            arguments = list(super().get_arguments(ignore_unknown_help))
        finally:
            self.help = saved
        return [_optional(arg) if arg.name in self.optional_positional else arg for arg in arguments]

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(name)
        opts["names"] = [opts["names"][0], *([short] if short else [])]
        return opts


def _optional(argument: Any) -> Any:
    from aiplatform.cli.optional_positional import OptionalPositional, RestPositional

    # an iterable one takes every word left after the others (`inv settings set a=1 b=2`)
    return (RestPositional if argument.kind is list else OptionalPositional)(
        names=argument.names,
        kind=argument.kind,
        default=None,
        help=argument.help,
        positional=True,
        attr_name=argument.attr_name,
    )


def user_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a UserError into a red message and its exit code: a user mistake never shows a traceback."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            if kwargs.get("root") is not None:  # one rule for every task's --root, before anything uses it
                from aiplatform.inputs.root import root_flag

                kwargs["root"] = str(root_flag(kwargs["root"]))
            return body(*args, **kwargs)
        except UserError as exc:
            console.error(exc.message)
            if exc.fix:
                console.err.print(f"  {exc.fix}", markup=False)
            raise Exit(code=exc.exit_code) from None
        except (KeyboardInterrupt, EOFError):
            console.error("interrupted: nothing more was done")
            raise Exit(code=130) from None

    return wrapper


def platform_task(*args: Any, **kwargs: Any) -> Any:
    """@task with PlatformTask's short flags; the body's UserErrors become messages."""

    optional = kwargs.pop("optional_positional", ())

    def decorate(body: Callable[..., Any]) -> Any:
        made = task(klass=PlatformTask, **kwargs)(user_errors(body))
        made.optional_positional = tuple(optional)
        return made

    if len(args) == 1 and callable(args[0]) and not kwargs:  # used bare: @platform_task
        return decorate(args[0])
    return decorate


def _context(
    answers: str | None = None,
    root: str | None = None,
    profile: str | None = None,
    settings: list[str] | None = None,
    out: Path = GENERATED_DIR,
    **kwargs: Any,
) -> Context:
    from aiplatform.inputs.context import Context
    from aiplatform.inputs.settings import parse_assignments

    flags: dict[str, Any] = parse_assignments(settings or [])
    if root is not None:
        flags["root"] = root
    if profile:
        flags["profile"] = profile
    kwargs.setdefault("answers_must_exist", bool(answers))  # a path given explicitly that is not there: a typo
    return Context(answers=Path(answers) if answers else ANSWERS_FILE, flags=flags, generated=out, **kwargs)


def _is_host(text: str) -> bool:
    from aiplatform.inputs.settings import OllamaNode

    try:
        OllamaNode(address=text)
    except ValueError:
        return False
    return True


def _report_broken(ctx: Context) -> None:
    """Name the catalog folders that were left out (each command that does not use them keeps working)."""
    for name, (message, _fix) in ctx.catalog.broken.items():
        console.warn(f"service folder {name!r} left out: {message}")


def _seconds(timeout: str | None) -> int | None:
    """--timeout as a number of seconds (None: not given)."""
    if timeout is not None and not str(timeout).isdigit():
        raise UserError(f"--timeout {timeout!r}: expected a number of seconds, like --timeout 300.")
    return int(timeout) if timeout else None


def _progress(line: str) -> None:
    """One line of progress of a long task (backup, restore), on stderr."""
    console.err.print(f"  {line}", markup=False)


def _out(out: str | None) -> Path:
    return Path(out) if out else GENERATED_DIR


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


_HELP = {
    "answers": f"answers file (default: {ANSWERS_FILE.name} in the project)",
    "root": "platform root on the host (default: the one generated/ was rendered for, else /mnt/data/ai-platform; "
    "env AI_PLATFORM_ROOT)",
    "profile": "tier profile: auto, minimal, standard or performance",
    "set": "set one setting for this command only, KEY=VALUE (repeatable; highest precedence); not kept: the next "
    "command without it goes back to answers.yaml (`inv settings set KEY=VALUE` keeps it)",
    "json": "print JSON instead of a table",
    "out": "the generated tree (default: generated/ in the project)",
    "yes": "do not ask for confirmation",
    "dry_run": "print what would be done and change nothing",
}


def _help(*names: str, **extra: str) -> dict[str, str]:
    return {**{name: _HELP[name] for name in names}, **extra}


@platform_task
def version(c):
    """Print the tool's version (`inv --version` prints invoke's own)."""
    import invoke

    console.out.print(f"ai-platform {__version__} (invoke {invoke.__version__}, Python {sys.version.split()[0]})")


@platform_task(
    help=_help("root", "json", "set", write=f"write <root>/{HARDWARE_PROFILE} (needs write access to the root)"),
    iterable=["set"],
)
def detect(c, root=None, json_=False, write=False, set=None):
    """Measure this host (CPU, RAM, disk, NVIDIA GPUs); pick its tier and default models. Read-only unless --write."""
    from aiplatform.host.runner import Runner
    from aiplatform.inputs.hardware import format_profile_env, report_for

    ctx = _context(root=root, settings=set, live_hardware=True)
    settings = ctx.resolved.settings
    hardware, source = ctx.hardware_at(settings.root)
    report = report_for(hardware, ctx.profiles_dir)
    if json_:
        _print_json(report.as_dict())
    else:
        console.out.print(tables.hardware_table(report, source))
    for warning in report.warnings:
        console.warn(warning)
    if write:
        Runner().write(settings.root / HARDWARE_PROFILE, format_profile_env(report, __version__).encode(), 0o644)


@platform_task(
    help=_help(
        "answers",
        "profile",
        "root",
        "out",
        "json",
        "set",
        action="get KEY..., set KEY=VALUE... (kept in answers.yaml), unset KEY... (back to the default); "
        "none: every setting",
        keys="after the action: the KEYs (get, unset) or KEY=VALUE pairs (set; lists comma-separated, a=1,b=2 for "
        "maps, or YAML flow: [..], {..})",
    ),
    iterable=["set", "keys"],
    positional=["action", "keys"],
    optional_positional=["action", "keys"],
)
def settings(c, action=None, keys=None, answers=None, profile=None, root=None, out=None, json_=False, set=None):
    """Show the merged settings and where each value comes from (default, profile, answers, env, flag, ...);
    `settings get KEY` shows one, `settings set KEY=VALUE` keeps one in answers.yaml (comments kept), `settings
    unset KEY` takes one out. Secrets are never shown nor written to answers.yaml."""
    ctx = _context(answers, root, profile, set, out=_out(out))
    if action:
        _settings_action(ctx, action, keys or [], json_)
        return
    _report_broken(ctx)
    resolved = ctx.resolved
    stored = ctx.stored_secrets()
    if json_:
        rows = resolved.table(stored)
        _print_json(
            {"tier": resolved.tier, "settings": {key: {"value": value, "source": src} for key, value, src in rows}}
        )
    else:
        console.out.print(tables.settings_table(resolved, stored))


def _settings_action(ctx: Context, action: str, words: list[str], json_: bool) -> None:
    """`inv settings get|set|unset ...`."""
    from aiplatform.host.runner import Runner
    from aiplatform.manage import settings as keeping

    if action == "get":
        found = keeping.get_settings(ctx, words)
        if json_:
            _print_json({got.key: got.as_dict() for got in found})
            return
        for got in found:  # the value alone on stdout (for `$(inv settings get domain)`), where it comes from on stderr
            console.out.print(keeping.format_value(got.value))
            console.err.print(f"  {got.key}: {got.source} ({got.where})", markup=False)
        return
    if action not in ("set", "unset"):
        verb = "set" if "=" in action else "get"
        raise UserError(f"`{INV} settings {action}`: expected get, set or unset. Did you mean `{INV} settings {verb} "
                        f"{action}`?", f"`{INV} --help settings`")  # fmt: skip
    if action == "unset" and not words:
        raise UserError(
            f"`{INV} settings unset` needs a key, like `{INV} settings unset ssl_mode`.", f"`{INV} settings` lists all."
        )
    runner = Runner(echo=lambda _: None)
    if action == "set":
        result = keeping.change_settings(ctx, runner, values=keeping.parse_pairs(words))
    else:
        result = keeping.change_settings(ctx, runner, remove=words)
    for change in result.changes:
        if change.after is None:
            console.ok(f"{change.key} taken out of {result.path} (was {keeping.format_value(change.before)})")
        else:
            was = "" if change.before is None else f" (was {keeping.format_value(change.before)})"
            console.ok(f"{change.key} = {keeping.format_value(change.after)} in {result.path}{was}")
    for key in result.unchanged:
        console.out.print(f"{key}: already so in {result.path}, nothing to change.")
    for warning in result.warnings:
        console.warn(warning)
    if result.changes:
        console.out.print(f"Not applied yet: `{INV} render` applies it to generated/, then `{INV} diff` shows the "
                          f"change and `{SUDO_INV} deploy` makes it.")  # fmt: skip


@platform_task(
    help=_help(
        "answers",
        "profile",
        "root",
        "out",
        "set",
        no_input="never ask questions: use answers.yaml, the environment and defaults",
        ask="ask the questionnaire again (at a terminal), the current answers as defaults; only its keys change",
        target="k8s: also generated/k8s/, the platform for Kubernetes (k3s); compose: without it (default: as before)",
    ),
    iterable=["set"],
)
def render(c, answers=None, profile=None, root=None, out=None, no_input=False, ask=False, set=None, target=None):
    """Render the whole platform tree into generated/ from templates, profiles and settings. Touches nothing else."""
    from aiplatform.generated import build

    if ask and no_input:
        raise UserError("--ask and --no-input contradict each other: one asks the questions, the other never does.")
    asks = not no_input and sys.stdin.isatty()
    if answers and not Path(answers).exists() and not asks:
        console.warn(f"{answers} does not exist: rendering without an answers file (defaults, environment, flags).")
    ctx = _context(answers, root, profile, set, out=_out(out), answers_must_exist=False)
    _report_broken(ctx)
    if target not in (None, "compose", "k8s"):
        raise UserError(f"--target {target!r} is not a target: compose or k8s.", f"`{INV} render --target k8s`")
    result = build.render_command(ctx, _out(out), interactive=not no_input, ask=ask, target=target)
    for warning in result.warnings:
        console.warn(warning)
    console.out.print(tables.render_summary(result))
    not_mapped = result.rendered.tree.get("k8s/not-mapped.txt")
    if not_mapped:  # what the Kubernetes tree could not carry over, and what to do instead
        console.out.print(f"Not mapped to Kubernetes ({result.out}/k8s/not-mapped.txt):\n{not_mapped.data.decode()}")


@platform_task(
    help=_help(
        "root",
        "out",
        exit_code="exit 1 when the root differs from generated/",
        stat="only the list of files with lines added and removed",
        target="compose (default) or k8s: the cluster kubectl reaches, from generated/k8s/",
    )
)
def diff(c, root=None, out=None, exit_code=False, stat=False, target="compose"):
    """Show what `inv deploy` would change in the root: a unified diff of generated/ against it, secrets masked."""
    if target != "compose":  # k8s: `kubectl diff --server-side`, exit 1 when the cluster differs
        from aiplatform.k8s import cli as k8s

        k8s.check_target(target)
        return k8s.diff(_out(out))
    from aiplatform.generated import build
    from aiplatform.generated.diff import diff_trees

    out_dir = _out(out)
    target = build.rendered_root(out_dir, root)
    stale = build.stale_reason(out_dir)
    if stale:
        console.warn(stale)
    result = diff_trees(out_dir, target)
    console.out.print(tables.diff_report(result, out_dir, target, stat=stat))
    if exit_code and result.differs:
        raise Exit(code=1)


def _services(only: str | None) -> list[str] | None:
    return [name.strip() for name in only.split(",") if name.strip()] if only else None


@platform_task(
    help=_help(
        "root",
        "out",
        "yes",
        "dry_run",
        only="only these services (comma-separated), with what they need",
        timeout="seconds to wait for health (default: the slowest service's start period + 60)",
        no_configure="do not run configure after a healthy deploy",
        target="compose (default) or k8s: the cluster kubectl reaches, from generated/k8s/",
    )
)
def deploy(c, root=None, out=None, yes=False, dry_run=False, only=None, timeout=None, no_configure=False,
           target="compose"):  # fmt: skip
    """Apply generated/ to the root (changed files backed up), start services in tiers, wait for health, configure."""
    if target != "compose":  # k8s: server-side apply tier by tier, each waited for (--timeout each), then prune
        from aiplatform.k8s import cli as k8s

        k8s.check_target(target)
        if only:
            raise UserError("--only is for the compose target: --target k8s applies the whole render.")
        return k8s.deploy(_out(out), yes, dry_run, _seconds(timeout))
    from aiplatform.engine import deploy as deploying
    from aiplatform.generated import build
    from aiplatform.generated.stamp import read_stamp
    from aiplatform.host.runner import Runner

    seconds = _seconds(timeout)
    out_dir = _out(out)
    options = deploying.DeployOptions(
        out=out_dir,
        root=build.rendered_root(out_dir, root),
        yes=yes,
        dry_run=dry_run,
        timeout=seconds,
        only=_services(only),
    )
    ui = prompts.DeployConsole(interactive=sys.stdin.isatty())
    result = deploying.deploy(options, Runner(dry_run=dry_run), build.stale_reason(out_dir), ui)
    if dry_run:
        console.out.print(f"Dry run: nothing was changed in {options.root} or Docker.")
        if result.blocked:  # every check was shown, and the plan: a real deploy would stop here
            raise deploying.preflight_error(result.blocked, dry_run=True)
        return
    console.out.print(tables.deploy_report(result, read_stamp(out_dir)))
    if not result.ok:
        raise Exit(code=1)
    if not no_configure:
        console.step("configuring the services through their APIs (`--no-configure` skips this)")
        _configure(options.root, Runner(), options.only, json_=False)


def _configure(root: Path, runner: Any, only: list[str] | None, json_: bool) -> None:
    from aiplatform.configure.facts import load_facts
    from aiplatform.configure.run import run_configure

    facts = load_facts(root, _context(root=str(root)).catalog)
    progress = (lambda step: None) if json_ else (lambda step: console.err.print(tables.configure_line(step)))
    report = run_configure(facts, runner, progress, only)
    if json_:
        _print_json(report.as_dict())
    else:
        console.out.print(tables.configure_report(report, runner.dry_run))
    if not report.ok:
        raise Exit(code=1)


@platform_task(
    help=_help(
        "root",
        "out",
        "dry_run",
        "json",
        only="only these services (comma-separated: litellm, open-webui, dify, n8n, flowise, monitoring, tailscale...)",
    )
)
def configure(c, root=None, out=None, dry_run=False, json_=False, only=None):
    """Finish every service through its own API (admins, keys, model connections) and prove a chat through LiteLLM."""
    from aiplatform.generated import build
    from aiplatform.host.runner import Runner

    target = build.rendered_root(_out(out), root)
    _configure(target, Runner(dry_run=dry_run), _services(only), json_)


def _change(ctx: Context, out: Path, user_dir: Path, root: str | None, settings: list[str] | None) -> Any:
    """make_context for manage.changes: the tasks' context over another answers file (a preview's) or the owner's."""

    def make(answers: Path | None) -> Context:
        made = _context(str(answers or ctx.answers), root, None, settings, out=out, user_services_dir=user_dir)
        made.answers_must_exist = False
        return made

    return make


@platform_task(
    help=_help(
        "answers",
        "root",
        "out",
        "yes",
        "dry_run",
        "set",
        service="the service(s) to add, comma-separated (none, at a terminal: a menu)",
        from_compose="make a service of your own from this compose file (with --name)",
        name="the name of the service --from-compose makes",
        new="make a new service NAME from the cookiecutter template, then add it",
        allow_privileged="accept a service that asks for root-equivalent privileges (Docker socket, host network...)",
        no_configure="do not configure the new service after deploying it",
    ),
    iterable=["set"],
    positional=["service"],
    optional_positional=["service"],
)
def add(
    c,
    service=None,
    from_compose=None,
    name=None,
    new=None,
    yes=False,
    dry_run=False,
    allow_privileged=False,
    no_configure=False,
    answers=None,
    root=None,
    out=None,
    set=None,
):
    """Add a service to the platform: recorded in answers.yaml, rendered, shown, deployed alone, configured."""
    from aiplatform import paths
    from aiplatform.host.runner import Runner
    from aiplatform.manage import changes, importer

    out_dir = _out(out)
    ctx = _context(answers, root, None, set, out=out_dir)
    _report_broken(ctx)
    interactive = sys.stdin.isatty()
    if not (service or from_compose or new) and not interactive:
        rows = changes.menu_rows(ctx)
        console.out.print(tables.services_list(rows), soft_wrap=True)
        console.error(f"no service named: give one, like `{SUDO_INV} add {rows[0].name if rows else 'NAME'}`")
        raise Exit(code=2)
    if service:  # a name that cannot be added is said first, not after the host's checks
        changes.check_add(ctx, _services(service), allow_privileged)
    runner = Runner(dry_run=dry_run)
    ui = prompts.ChangeConsole(interactive)
    blocked = changes.preflight(ctx, out_dir, runner, ui)  # before any question: the menu, a new service's, Apply?
    if not (service or from_compose or new):
        kind, value = prompts.choose_service(changes.menu_rows(ctx))
        service, from_compose, new = (value if kind == k else None for k in ("add", "compose", "new"))
        if from_compose and not name:
            name = prompts.ask_text("Name of the service (lower-case letters, digits, dashes)")
    if from_compose and not name:
        raise UserError("--from-compose needs --name: the name the service gets.", f"`{SUDO_INV} add --from-compose "
                        f"{from_compose} --name NAME`")  # fmt: skip
    user_dir = paths.USER_SERVICES_DIR
    catalog_was_there = user_dir.exists()
    with contextlib.ExitStack() as stack:
        made: Path | None = None
        if from_compose or new:
            if dry_run:  # made in a scratch copy of the owner's catalog, which stays as it is
                scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ai-platform-add-")))
                user_dir = scratch / "services"
                if paths.USER_SERVICES_DIR.is_dir():
                    shutil.copytree(paths.USER_SERVICES_DIR, user_dir)
            maker = Runner(echo=lambda _: None) if dry_run else Runner()
            if from_compose:
                made = importer.import_compose(Path(from_compose), name, ctx.catalog, user_dir, maker, allow_privileged)
            else:
                made = importer.bake_new(new, ctx.catalog, user_dir, maker, prompts.ask_answer if interactive else None)
            console.step(f"made {made}")
            if from_compose and (note := importer.auth_note(made)):
                console.step(note)
            service = made.name
        try:
            result = changes.change_services(
                _change(ctx, out_dir, user_dir, root, set),
                out_dir,
                runner,
                ui,
                add=_services(service),
                allow_privileged=allow_privileged,
                yes=yes,
            )
        except BaseException:
            if made is not None and not dry_run:  # nothing half-made stays in the owner's catalog
                importer.discard(made, catalog_was_there, Runner())
            raise
    if dry_run:
        _dry_run_said(result, blocked)
        return
    _after_change(result, out_dir, no_configure)


@platform_task(
    help=_help(
        "answers",
        "root",
        "out",
        "yes",
        "dry_run",
        service="the service to remove",
        purge="also delete its data: volumes, data/ folders, databases and users, secrets (listed first, with sizes)",
    )
)
def remove(c, service, purge=False, yes=False, dry_run=False, answers=None, root=None, out=None):
    """Remove a service: its containers go; its data and secrets stay unless --purge. Core services stay."""
    from aiplatform import paths
    from aiplatform.host.runner import Runner
    from aiplatform.manage import changes

    out_dir = _out(out)
    ctx = _context(answers, root, None, None, out=out_dir)
    _report_broken(ctx)
    changes.check_remove(ctx, service)  # a name that cannot be removed is said first, not after the host's checks
    runner, ui = Runner(dry_run=dry_run), prompts.ChangeConsole(sys.stdin.isatty())
    blocked = changes.preflight(ctx, out_dir, runner, ui)  # before any question
    result = changes.change_services(
        _change(ctx, out_dir, paths.USER_SERVICES_DIR, root, None),
        out_dir,
        runner,
        ui,
        remove=service.strip(),
        purge=purge,
        yes=yes,
    )
    if dry_run:
        _dry_run_said(result, blocked)
        return
    _after_change(result, out_dir, no_configure=True)


def _dry_run_said(result: Any, blocked: list[Any]) -> None:
    """The end of add/remove --dry-run: nothing changed, and exit 1 when a real run would stop at a check."""
    from aiplatform.engine import deploy as deploying

    console.out.print(f"Dry run: nothing was changed (answers.yaml, generated/, {result.root}, Docker).")
    if blocked or result.blocked:
        raise deploying.preflight_error([*blocked, *result.blocked], dry_run=True)


def _after_change(result: Any, out_dir: Path, no_configure: bool) -> None:
    from aiplatform.configure.info import platform_info
    from aiplatform.generated.stamp import read_stamp
    from aiplatform.host.runner import Runner

    assert result.deployed is not None and result.root is not None
    console.out.print(tables.deploy_report(result.deployed, read_stamp(out_dir)))
    console.out.print(tables.change_summary(result))
    if not result.deployed.ok:
        raise Exit(code=1)
    if result.added and not no_configure:
        console.step(f"configuring {', '.join(result.added)} (`--no-configure` skips this)")
        _configure(result.root, Runner(), [*result.added, "litellm"], json_=False)
    if result.added:
        found = platform_info(out_dir, result.root, _context(root=str(result.root)).catalog, show_secrets=False)
        found.services = [s for s in found.services if s.service in result.added]
        console.out.print(tables.info_table(found))


@platform_task(
    help=_help(
        "root",
        "out",
        "dry_run",
        to="the folder the backup goes in (default: <root>/backups)",
        only="only these services (comma-separated; the config and Postgres' roles always)",
        remote="also copy it to this rclone remote, NAME:PATH, configured in rclone (default: the settings' remote)",
        no_remote="do not copy it off the box, even when a remote is set",
        schedule="daily, weekly or off: a systemd timer that runs the backup (and its off-box copy)",
        list="list the backups (here and on the remote) and what each holds",
    )
)
def backup(c, to=None, only=None, remote=None, no_remote=False, schedule=None, list=False, dry_run=False, root=None,
           out=None):  # fmt: skip
    """Back up databases, vector collections, data and config (with credentials) into <root>/backups; copy it off."""
    from aiplatform.backup import remote as remotes
    from aiplatform.backup import schedule as scheduling
    from aiplatform.backup.manifest import complete_backups
    from aiplatform.backup.take import BackupOptions, take_backup
    from aiplatform.generated import build
    from aiplatform.host.runner import Runner

    # The deployed root is all a backup reads: --root needs no generated/ (the timer's unit passes it)
    target = Path(root).expanduser().absolute() if root else build.rendered_root(_out(out))
    ctx = _context(root=str(target))
    runner = Runner(dry_run=dry_run)
    dest = Path(to).expanduser().absolute() if to else target / "backups"
    if schedule is not None:
        if schedule not in ("daily", "weekly", "off"):
            raise UserError(f"--schedule {schedule!r}: expected daily, weekly or off.")
        for line in scheduling.install(schedule, target, runner):
            console.out.print(line)
        return
    off_box = remotes.given(remote) if remote else None  # checked before anything runs: rclone runs as root
    undefined: UserError | None = None  # the settings' remote, when they cannot define it: after the local backup
    if no_remote:
        off_box = None
    elif not remote:
        try:
            off_box = remotes.from_root(target, runner)
        except UserError as exc:
            undefined = exc
    if list:
        if undefined:
            raise undefined
        on_remote = remotes.listed(off_box, runner) if off_box else []
        console.out.print(tables.backups_table(complete_backups(dest), dest, on_remote, off_box), soft_wrap=True)
        return
    report = take_backup(BackupOptions.for_root(target, dest, _services(only)), ctx.catalog, runner, _progress)
    if dry_run:
        console.out.print(f"Dry run: nothing was written and no container stopped ({report.path} not made).")
        return
    console.out.print(tables.backup_summary(report))
    if undefined:
        raise UserError(f"{report.path.name} is complete here but was not copied off the box: {undefined.message}",
                        undefined.fix)  # fmt: skip
    if off_box:
        console.step(f"copying {report.path.name} to {off_box.target} (rclone), then `rclone check`")
        copied = remotes.copy_off(report.path, off_box, runner)
        console.out.print(tables.copy_summary(copied))


@platform_task(
    help=_help(
        "root",
        "yes",
        "dry_run",
        backup="the backup folder (or its name in <root>/backups)",
        only="only these services (comma-separated; the config and Postgres' roles always)",
    )
)
def restore(c, backup, only=None, yes=False, dry_run=False, root=None):
    """Restore a backup: checksums and Postgres version checked first, secrets before data, services brought up and
    checked for health."""
    from aiplatform.backup import restore as restoring
    from aiplatform.host.runner import Runner

    path = Path(backup).expanduser()
    if not path.is_absolute() and not path.exists():
        base = Path(root).expanduser().absolute() if root else _context().resolved.settings.root
        path = base / "backups" / backup
    path = path.absolute()
    from aiplatform.backup.manifest import read_manifest

    read_manifest(path)  # an unfinished or foreign folder is named before anything else
    target = Path(root) if root else _context().resolved.settings.root  # never the backup's own word for it
    manifest, items, replaced = restoring.plan(path, target, _services(only))
    given = _context(root=str(target)).resolved.settings.backup_passphrase if manifest.encrypted else None
    passphrase = restoring.passphrase_for(path, manifest, target, given.get_secret_value() if given else "")
    if dry_run:
        restoring.refuse_newer_dumps(manifest, items, Runner(dry_run=True))
    else:  # every precondition before the first write
        restoring.preflight(target, items, manifest, path, Runner())
    console.out.print(tables.restore_plan(path, manifest, replaced))
    if dry_run:
        console.out.print("Dry run: nothing was restored.")
        return
    if not yes:
        prompts.confirm(f"Replace the above in {target} with the backup's?", "restore replaces data",
                        f"{SUDO_INV} restore {path} --yes", f"{SUDO_INV} restore {path} --dry-run")  # fmt: skip
    report = restoring.restore(path, target, items, manifest, Runner(), _progress,
                               prompts.DeployConsole(sys.stdin.isatty()), passphrase)  # fmt: skip
    console.out.print(tables.restore_summary(report))
    if not report.ok:
        raise Exit(code=1)


@platform_task(
    help=_help(
        "answers",
        "root",
        "out",
        "yes",
        "json",
        check="only list what would change (nothing is pulled, written or restarted)",
        postgres_major="allow a Postgres major-version change: dump, new cluster, restore (the old data is kept)",
        timeout="seconds to wait for health before rolling back (default: as deploy)",
    )
)
def upgrade(
    c, check=False, yes=False, postgres_major=False, timeout=None, json_=False, answers=None, root=None, out=None
):
    """Move to the images the catalog now pins: backup first, pull, lock digests, deploy; roll back if unhealthy."""
    from aiplatform.backup.take import BackupOptions, take_backup
    from aiplatform.host.runner import Runner
    from aiplatform.manage import upgrade as upgrading

    seconds = _seconds(timeout)
    out_dir = _out(out)

    def make_context() -> Context:
        return _context(answers, root, None, None, out=out_dir, answers_must_exist=False)

    runner = Runner()
    plan = upgrading.make_plan(make_context, out_dir, runner)
    if json_:
        _print_json({"root": str(plan.root), "changes": [change.__dict__ for change in plan.changes]})
    else:
        console.out.print(tables.upgrade_plan(plan), soft_wrap=True)
    if check or not plan.pending:
        return
    if not yes:
        prompts.confirm("Back up, then upgrade these containers?", "upgrade restarts services",
                        f"{SUDO_INV} upgrade --yes", f"{INV} upgrade --check")  # fmt: skip

    def backup() -> Path:
        return take_backup(BackupOptions.for_root(plan.root), make_context().catalog, runner, _progress).path

    result = upgrading.upgrade(make_context, out_dir, plan, runner, prompts.DeployConsole(sys.stdin.isatty()), backup,
                               console.step, postgres_major, seconds)  # fmt: skip
    if result.ok:
        console.out.print(tables.deploy_report(result.deployed, None))
        console.out.print(f"Upgraded; backup taken first: {result.backup}")
        return
    if result.rolled_back is not None:
        console.out.print(tables.deploy_report(result.rolled_back, None))
    console.error(upgrading.explain_rollback(result))
    raise Exit(code=1)


@platform_task(help=_help("root", "out", "json", show_secrets="print the passwords too (the root's need sudo)"))
def info(c, root=None, out=None, json_=False, show_secrets=False):
    """URLs and logins of every enabled service, and LiteLLM's API; passwords only with --show-secrets. No Docker."""
    from aiplatform.configure.info import platform_info
    from aiplatform.generated import build

    out_dir = _out(out)
    target = build.rendered_root(out_dir, root)
    found = platform_info(out_dir, target, _context(root=str(target)).catalog, show_secrets)
    if json_:
        _print_json(found.as_dict())
    else:
        console.out.print(tables.info_table(found))


@platform_task(help=_help("root", "out", "json", target="compose (default) or k8s: each workload's ready/desired"))
def status(c, root=None, out=None, json_=False, target="compose"):
    """For each service of generated/: state, health, image, ports, URL and drift; orphans. Exit 1 if unhealthy."""
    if target != "compose":
        from aiplatform.k8s import cli as k8s

        k8s.check_target(target)
        return k8s.status(_out(out), json_)
    from aiplatform.engine.docker import Docker, require_engine
    from aiplatform.engine.status import platform_status
    from aiplatform.generated import build
    from aiplatform.host.runner import Runner

    out_dir = _out(out)
    target = build.rendered_root(out_dir, root)
    docker = Docker(Runner())
    require_engine(docker)
    report = platform_status(out_dir, target, _context(root=str(target)).catalog, docker)
    if json_:
        _print_json(report.as_dict())
    else:
        console.out.print(tables.status_table(report))
    if not report.healthy:
        raise Exit(code=1)


_NAME = "a service (all its containers) or one container, as `inv status` lists them"


def _platform(root: str | None, out: str | None, dry_run: bool = False) -> Any:
    """The platform's compose project (the root's files once deployed, else generated/'s), driven by a Runner."""
    from aiplatform.engine import operate
    from aiplatform.generated import build
    from aiplatform.host.runner import Runner

    out_dir = _out(out)
    target = build.rendered_root(out_dir, root)
    return operate.Platform(operate.platform_project(out_dir, target), Runner(dry_run=dry_run), target)


def _count(flag: str, value: str | None) -> int | None:
    if value is not None and not str(value).isdigit():
        raise UserError(f"{flag} {value!r}: expected a number, like {flag} 100.")
    return int(value) if value is not None else None


@platform_task(
    help=_help(
        "root",
        "out",
        service=_NAME + " (none: the whole platform)",
        follow="keep showing new lines until Ctrl-C",
        since="only lines since then: a duration (10m, 2h) or a date (2026-01-31, 2026-01-31T08:00:00)",
        tail="only the last N lines of each container",
    ),
    positional=["service"],
    optional_positional=["service"],
)
def logs(c, service=None, follow=False, since=None, tail=None, root=None, out=None):
    """Show the logs of a service, a container or the whole platform (through its compose project)."""
    from aiplatform.engine import operate

    platform = _platform(root, out)
    selection = operate.select(platform.project, service) if service else None
    code = platform.logs(selection, follow, since, _count("--tail", tail))
    if code:
        raise Exit(code=code)


def _command(c: Any, cmd: str | None) -> list[str]:
    """The command of `inv exec`: one quoted argument, or the words after `--` (as typed, when they can be read)."""
    import shlex

    if cmd and c.remainder:
        raise UserError("Give the command either as one quoted argument or after `--`, not both.")
    if not (cmd or c.remainder):
        return []
    tail = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    if not cmd and " ".join(tail) == c.remainder:
        return tail
    try:
        return shlex.split(cmd or c.remainder)
    except ValueError as exc:
        raise UserError(f"The command {cmd or c.remainder!r} cannot be split into words: {exc}.") from None


@platform_task(
    name="exec",
    help=_help(
        "root",
        "out",
        service=_NAME + "; a service with several runs in the one of the same name",
        cmd="the command, as one quoted argument or after `--` (default: a shell, bash where the image has it)",
    ),
    positional=["service", "cmd"],
    optional_positional=["cmd"],
)
def exec_(c, service, cmd=None, root=None, out=None):
    """Run a command in a running container (a shell when none is given) on this terminal; exits with its code."""
    from aiplatform.engine import operate

    platform = _platform(root, out)
    code = platform.exec(operate.select(platform.project, service), _command(c, cmd), tty=sys.stdin.isatty())
    if code:
        raise Exit(code=code)


@platform_task(
    help=_help(
        "root",
        "out",
        "dry_run",
        service=_NAME,
        timeout="seconds to wait for health (default: the slowest service's start period + 60)",
    ),
    positional=["service"],
)
def restart(c, service, dry_run=False, timeout=None, root=None, out=None):
    """Restart a service's containers (or one container), nothing else, and wait until they are healthy again."""
    from aiplatform.engine import operate

    platform = _platform(root, out, dry_run)
    done = platform.restart(operate.select(platform.project, service), _seconds(timeout), _progress)
    if dry_run:
        console.out.print("Dry run: nothing was restarted.")
        return
    console.out.print(f"Restarted {', '.join(done.containers)}: up and healthy after {done.seconds:.0f} s.")


@platform_task(help=_help("root", "out", "dry_run"))
def stop(c, dry_run=False, root=None, out=None):
    """Stop the whole platform. Its containers, volumes and data stay: `inv start` brings it back as it was."""
    platform = _platform(root, out, dry_run)
    done = platform.stop()
    if dry_run:
        console.out.print("Dry run: nothing was stopped.")
    elif not done.containers:
        console.out.print("Nothing was running.")
    else:
        console.out.print(
            f"Stopped {len(done.containers)} containers; their data stays in {platform.root / 'data'} "
            f"and the volumes. `{INV} start` brings them back."
        )


@platform_task(
    help=_help(
        "root",
        "out",
        "dry_run",
        timeout="seconds to wait for health (default: the slowest service's start period + 60)",
    )
)
def start(c, dry_run=False, timeout=None, root=None, out=None):
    """Start the whole platform as it was stopped (after `inv stop` or a reboot): nothing recreated, then healthy."""
    platform = _platform(root, out, dry_run)
    done = platform.start(_seconds(timeout), _progress)
    if dry_run:
        console.out.print("Dry run: nothing was started.")
        return
    console.out.print(f"Started {len(done.containers)} containers: healthy (or done) after {done.seconds:.0f} s.")


def _urls(service: str, root: str | None, out: str | None) -> Any:
    from aiplatform.engine import operate
    from aiplatform.generated import build

    out_dir = _out(out)
    target = build.rendered_root(out_dir, root)
    selection = operate.select(operate.platform_project(out_dir, target), service)
    return operate.where(selection, out_dir, target, _context(root=str(target)).catalog)


@platform_task(help=_help("root", "out", "json", service=_NAME), positional=["service"])
def url(c, service, json_=False, root=None, out=None):
    """Print where a service answers: on this host, through Caddy, on the tailnet. No Docker needed."""
    from aiplatform.engine import operate

    found = _urls(service, root, out)
    if json_:
        _print_json([{"container": u.container, "kind": u.kind, "url": u.url} for u in found])
    else:
        console.out.print("\n".join(operate.url_lines(found)))


@platform_task(name="open", help=_help("root", "out", service=_NAME), positional=["service"])
def open_(c, service, root=None, out=None):
    """Print where a service answers and open it in this desktop's browser (on a box without one: only print)."""
    import os

    from aiplatform.engine import operate
    from aiplatform.host.runner import Runner

    found = _urls(service, root, out)
    console.out.print("\n".join(operate.url_lines(found)))
    if not (operate.browser_usable(os.environ, os.geteuid()) and Runner().open_url(operate.url_to_open(found))):
        console.out.print(operate.no_browser(found))


@platform_task(
    help=_help(
        "root",
        "yes",
        "dry_run",
        purge="also delete volumes, data/, the root itself and its backup timer",
        images="also delete the images the platform's containers used",
    )
)
def cleanup(c, root=None, yes=False, dry_run=False, purge=False, images=False):
    """Remove the platform's containers and networks (by label); volumes and data only with --purge. No packages."""
    from aiplatform.engine import cleanup as cleaning
    from aiplatform.engine.docker import Docker
    from aiplatform.host.runner import Runner

    target = Path(root).expanduser().absolute() if root else _context().resolved.settings.root
    docker = Docker(Runner(dry_run=dry_run))
    plan = cleaning.make_plan(docker, target, purge, images)
    console.out.print(tables.cleanup_plan(plan))
    unseen = UserError(  # a dry run without an engine shows the files only: a plan it could not finish
        f"Docker's engine did not answer ({plan.no_engine}): its containers, networks and volumes were not listed.",
        f"Start Docker (sudo systemctl start docker), then run `{SUDO_INV} cleanup --dry-run` again.",
    )
    if plan.empty:
        if plan.no_engine:
            raise unseen
        console.out.print("Nothing to remove: no container, network or volume carries the platform's label.")
        return
    if not (yes or dry_run):
        question = "Delete all of the above, including DATA?" if purge else "Remove the containers and networks above?"
        prompts.confirm(question, "cleanup deletes things", f"{INV} cleanup --yes", f"{INV} cleanup --dry-run")
    result = cleaning.remove(docker, plan)
    if dry_run:
        console.out.print("Dry run: nothing was removed.")
        if plan.no_engine:
            raise unseen
        return
    console.out.print(tables.cleanup_summary(result, cleaning.kept(docker, target, purge, images)))


@platform_task(
    help=_help(
        "yes",
        "dry_run",
        "root",
        "set",
        skip_docker="leave Docker and daemon.json alone",
        skip_nvidia="leave the NVIDIA toolkit alone",
        skip_ollama="leave Ollama alone",
        skip_models="do not pull models",
        models="models to pull instead of the tier's (comma-separated)",
        docker_source="docker (Docker's apt repository, default) or distro (Debian/Ubuntu packages)",
        apparmor="auto (only after a denial), always or never: the AppArmor profile for ollama",
        node="prepare this box as an Ollama node of a platform (with --platform-host): no platform container",
        platform_host="the platform host's address, the only one the node's firewall admits (with --node)",
        k3s_server="install k3s as this cluster's server (nothing else: no Docker, no Ollama)",
        k3s_agent="install k3s as an agent joining --server ADDR (its token from --token-file or K3S_TOKEN)",
        server="the k3s server's address an agent joins (with --k3s-agent)",
        token_file="a file only root reads holding the server's join token (with --k3s-agent)",
        airgap="install k3s from this folder's k3s binary, install.sh and airgap image tarball (no downloads)",
    ),
    iterable=["set"],
)
def setup(
    c,
    yes=False,
    dry_run=False,
    root=None,
    skip_docker=False,
    skip_nvidia=False,
    skip_ollama=False,
    skip_models=False,
    models=None,
    docker_source="docker",
    apparmor="auto",
    node=False,
    platform_host=None,
    set=None,
    k3s_server=False,
    k3s_agent=False,
    server=None,
    token_file=None,
    airgap=None,
):
    """Prepare the host: Docker, NVIDIA toolkit, Ollama as a systemd service whose API answers, the tier's models."""
    if k3s_server or k3s_agent or server or token_file or airgap:  # the Kubernetes target's nodes instead
        from aiplatform.k8s import cli as k8s

        def gpu() -> bool:
            return bool(_context(root=root, settings=set, live_hardware=True).hardware.gpu_available)

        return k8s.setup(k3s_server, k3s_agent, server, token_file, airgap, yes, dry_run, gpu)
    from aiplatform.host.runner import Runner
    from aiplatform.host.setup import SetupOptions, run_setup

    choices = {
        "docker_source": (docker_source, ("docker", "distro")),
        "apparmor": (apparmor, ("auto", "always", "never")),
    }
    for flag, (value, allowed) in choices.items():
        if value not in allowed:
            raise UserError(f"--{flag.replace('_', '-')} {value!r}: expected one of {', '.join(allowed)}.")
    if bool(node) != bool(platform_host):
        raise UserError(
            "--node and --platform-host go together: a node admits Ollama only from its platform host.",
            f"`{SUDO_INV} setup --node --platform-host 192.168.1.10` (the platform host's address).",
        )
    if platform_host and not _is_host(platform_host):
        raise UserError(f"--platform-host {platform_host!r}: expected a host name or an IP address.")
    options = SetupOptions(
        node=platform_host or "",
        skip_docker=skip_docker,
        skip_nvidia=skip_nvidia,
        skip_ollama=skip_ollama,
        docker_source=docker_source,
        apparmor=apparmor,
    )
    wanted = [m.strip() for m in models.split(",") if m.strip()] if models else None
    ctx = _context(root=root, settings=set, live_hardware=True)
    report = run_setup(
        ctx,
        options,
        Runner(dry_run=dry_run),
        prompts.SetupConsole(sys.stdin.isatty()),
        yes=yes,
        models=wanted,
        skip_models=skip_models,
    )
    console.out.print(tables.setup_report(report, dry_run))
    if not report.ok:
        raise Exit(code=1)


@platform_task(help=_help("root", "out", "json", ollama_url="check this Ollama URL instead of the local service"))
def doctor(c, root=None, out=None, ollama_url=None, json_=False):
    """Read-only checks of setup and deploy: Docker, compose, NVIDIA, Ollama's three steps, ports, disk, old roots."""
    from aiplatform.host.doctor import run_doctor
    from aiplatform.host.runner import Runner

    ctx = _context(root=root, out=_out(out), live_hardware=True)
    settings = ctx.resolved.settings
    found = run_doctor(
        runner=Runner(),
        root=settings.root,
        out=_out(out),
        gpu=ctx.hardware.gpu_available,
        ollama_url=ollama_url,
        ollama_port=settings.ollama_port,
    )
    if json_:
        _print_json({"ok": all(c.status != "fail" for c in found), "checks": [c.as_dict() for c in found]})
    else:
        console.out.print(tables.checks_table(found, title=f"Doctor (root {settings.root})"))
    if any(check.status == "fail" for check in found):
        raise Exit(code=1)
