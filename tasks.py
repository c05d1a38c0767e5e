"""AI Platform tasks. `inv --list` shows them, `inv --help TASK` explains one.

Each task parses its flags, calls one library function and prints the result; the work lives in aiplatform/.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from aiplatform import __version__
from aiplatform.cli import console, prompts, tables
from aiplatform.errors import UserError
from aiplatform.inputs.context import Context
from aiplatform.inputs.hardware import format_profile_env, report_for
from aiplatform.inputs.settings import parse_assignments
from aiplatform.paths import ANSWERS_FILE, GENERATED_DIR, HARDWARE_PROFILE


def user_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a UserError into a red message and its exit code: a user mistake never shows a traceback."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except UserError as exc:
            console.error(exc.message)
            if exc.fix:
                console.err.print(f"  {exc.fix}", markup=False)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            console.error("interrupted")
            raise Exit(code=130) from None

    return wrapper


def _context(
    answers: str | None = None,
    root: str | None = None,
    profile: str | None = None,
    settings: list[str] | None = None,
    **kwargs: Any,
) -> Context:
    flags: dict[str, Any] = parse_assignments(settings or [])
    flags.update({key: value for key, value in (("root", root), ("profile", profile)) if value})
    kwargs.setdefault("answers_must_exist", bool(answers))  # a path given explicitly that is not there: a typo
    return Context(answers=Path(answers) if answers else ANSWERS_FILE, flags=flags, **kwargs)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


_HELP = {
    "answers": f"answers file (default: {ANSWERS_FILE.name} in the project)",
    "root": "platform root on the host (default /mnt/data/ai-platform, env AI_PLATFORM_ROOT)",
    "profile": "tier profile: auto, minimal, standard or performance",
    "set": "set one setting, KEY=VALUE (repeatable; highest precedence)",
    "json": "print JSON instead of a table",
    "out": "the generated tree (default: generated/ in the project)",
    "yes": "do not ask for confirmation",
    "dry_run": "print what would be done and change nothing",
}


def _help(*names: str, **extra: str) -> dict[str, str]:
    return {**{name: _HELP[name] for name in names}, **extra}


@task(
    help=_help("root", "json", "set", write=f"write <root>/{HARDWARE_PROFILE} (needs write access to the root)"),
    iterable=["set"],
)
@user_errors
def detect(c, root=None, json_=False, write=False, set=None):
    """Measure this host (CPU, RAM, disk, NVIDIA GPUs); pick its tier and default models. Read-only unless --write."""
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
        from aiplatform.host import hostfs

        target = settings.root / HARDWARE_PROFILE
        hostfs.write_file(target, format_profile_env(report, __version__).encode(), 0o644)
        console.ok(f"wrote {target}")


@task(help=_help("answers", "profile", "root", "json", "set"), iterable=["set"])
@user_errors
def settings(c, answers=None, profile=None, root=None, json_=False, set=None):
    """Show the merged settings and where each value comes from (default, profile, answers, env, flag)."""
    resolved = _context(answers, root, profile, set).resolved
    if json_:
        _print_json(
            {
                "tier": resolved.tier,
                "settings": {key: {"value": value, "source": source} for key, value, source in resolved.table()},
            }
        )
    else:
        console.out.print(tables.settings_table(resolved))


@task(
    help=_help(
        "answers",
        "profile",
        "root",
        "out",
        "set",
        no_input="never ask questions: use answers.yaml, the environment and defaults",
    ),
    iterable=["set"],
)
@user_errors
def render(c, answers=None, profile=None, root=None, out=None, no_input=False, set=None):
    """Render the whole platform tree into generated/ from templates, profiles and settings. Touches nothing else."""
    from aiplatform.generated import build

    asks = not no_input and sys.stdin.isatty()
    if answers and not Path(answers).exists() and not asks:
        console.warn(f"{answers} does not exist: rendering without an answers file (defaults, environment, flags).")
    ctx = _context(answers, root, profile, set, answers_must_exist=False)
    result = build.render_command(ctx, Path(out) if out else GENERATED_DIR, interactive=not no_input)
    console.out.print(tables.render_summary(result))


@task(help=_help("root", "out", exit_code="exit 1 when the root differs from generated/"))
@user_errors
def diff(c, root=None, out=None, exit_code=False):
    """Show what `inv deploy` would change in the root: a unified diff of generated/ against it, secrets masked."""
    from aiplatform.generated import build
    from aiplatform.generated.diff import diff_trees

    out_dir = Path(out) if out else GENERATED_DIR
    target = build.rendered_root(out_dir, root)
    stale = build.stale_reason(out_dir)
    if stale:
        console.warn(stale)
    result = diff_trees(out_dir, target)
    console.out.print(tables.diff_report(result, out_dir, target))
    if exit_code and result.differs:
        raise Exit(code=1)


def _generated(out: str | None, root: str | None) -> tuple[Path, Path]:
    from aiplatform.generated import build

    out_dir = Path(out) if out else GENERATED_DIR
    return out_dir, build.rendered_root(out_dir, root)


@task(
    help=_help(
        "root",
        "out",
        "yes",
        "dry_run",
        only="only these services (comma-separated), with what they need",
        timeout="seconds to wait for health (default: the slowest service's start period + 60)",
    )
)
@user_errors
def deploy(c, root=None, out=None, yes=False, dry_run=False, only=None, timeout=None):
    """Apply generated/ to the root (changed files backed up), then start services in tiers and wait for health."""
    from aiplatform.engine import deploy as deploying
    from aiplatform.generated import build
    from aiplatform.generated.stamp import read_stamp
    from aiplatform.host.runner import Runner

    if timeout is not None and not str(timeout).isdigit():
        raise UserError(f"--timeout {timeout!r}: expected a number of seconds, like --timeout 300.")
    out_dir, target = _generated(out, root)
    stale = build.stale_reason(out_dir)
    options = deploying.DeployOptions(
        out=out_dir,
        root=target,
        yes=yes,
        dry_run=dry_run,
        timeout=int(timeout) if timeout else None,
        only=[name.strip() for name in only.split(",") if name.strip()] if only else None,
    )
    ui = prompts.DeployConsole(interactive=sys.stdin.isatty())
    result = deploying.deploy(options, Runner(dry_run=dry_run), stale, ui)
    if dry_run:
        console.out.print("Dry run: nothing was changed.")
        return
    console.out.print(tables.deploy_report(result, (read_stamp(out_dir) or {}).get("urls", {})))
    if not result.ok:
        raise Exit(code=1)


def _cleanup_root(root: str | None) -> Path:
    """--root, else the root generated/ was rendered for, else the settings' root."""
    from aiplatform.generated import build

    if root:
        return Path(root).expanduser().absolute()
    try:
        return build.rendered_root(GENERATED_DIR)
    except UserError:
        return _context().resolved.settings.root


@task(help=_help("root", "out", "json"))
@user_errors
def status(c, root=None, out=None, json_=False):
    """For each service of generated/: state, health, image, ports, URL and drift; orphans. Exit 1 if unhealthy."""
    from aiplatform.engine.docker import Docker, require_engine
    from aiplatform.engine.status import platform_status
    from aiplatform.host.runner import Runner

    out_dir, target = _generated(out, root)
    docker = Docker(Runner())
    require_engine(docker)
    report = platform_status(out_dir, target, _context(root=str(target)).catalog, docker)
    if json_:
        _print_json(report.as_dict())
    else:
        console.out.print(tables.status_table(report))
    if not report.healthy:
        raise Exit(code=1)


@task(
    help=_help(
        "root",
        "yes",
        "dry_run",
        purge="also delete volumes, data/ and the root itself",
        images="also delete the images the platform's containers used",
    )
)
@user_errors
def cleanup(c, root=None, yes=False, dry_run=False, purge=False, images=False):
    """Remove the platform's containers and networks (by label); volumes and data only with --purge. No packages."""
    from aiplatform.engine import cleanup as cleaning
    from aiplatform.engine.docker import Docker, require_engine
    from aiplatform.host.runner import Runner

    target = _cleanup_root(root)
    docker = Docker(Runner(dry_run=dry_run))
    require_engine(docker)
    plan = cleaning.make_plan(docker, target, purge, images)
    console.out.print(tables.cleanup_plan(plan))
    if plan.empty:
        console.out.print("Nothing to remove: no container, network or volume carries the platform's label.")
        return
    if not (yes or dry_run):
        if not sys.stdin.isatty():
            raise UserError(
                "cleanup deletes things and no one is at a terminal to confirm.",
                "Run `inv cleanup --yes` (see the plan first with `inv cleanup --dry-run`).",
            )
        from rich.prompt import Confirm

        question = "Delete all of the above, including DATA?" if purge else "Remove the containers and networks above?"
        if not Confirm.ask(question, default=False, console=console.out):
            raise UserError("Cancelled: nothing was removed.")
    result = cleaning.remove(docker, plan)
    if dry_run:
        console.out.print("Dry run: nothing was removed.")
        return
    console.out.print(tables.cleanup_summary(result, cleaning.kept(docker, target, purge, images)))


@task(
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
    ),
    iterable=["set"],
)
@user_errors
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
    set=None,
):
    """Prepare the host: Docker, NVIDIA toolkit, Ollama as a systemd service whose API answers, the tier's models."""
    from aiplatform.host.runner import Runner
    from aiplatform.host.setup import SetupOptions, run_setup

    choices = {
        "docker_source": (docker_source, ("docker", "distro")),
        "apparmor": (apparmor, ("auto", "always", "never")),
    }
    for flag, (value, allowed) in choices.items():
        if value not in allowed:
            raise UserError(f"--{flag.replace('_', '-')} {value!r}: expected one of {', '.join(allowed)}.")
    options = SetupOptions(
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


@task(help=_help("root", "out", "json", ollama_url="check this Ollama URL instead of the local service"))
@user_errors
def doctor(c, root=None, out=None, ollama_url=None, json_=False):
    """Read-only checks of setup and deploy: Docker, compose, NVIDIA, Ollama's three steps, ports, disk, old roots."""
    from aiplatform.host.doctor import run_doctor
    from aiplatform.host.runner import Runner

    ctx = _context(root=root, live_hardware=True)
    settings = ctx.resolved.settings
    found = run_doctor(
        runner=Runner(),
        root=settings.root,
        out=Path(out) if out else GENERATED_DIR,
        gpu=ctx.hardware.gpu_available,
        ollama_url=ollama_url,
        ollama_port=settings.ollama_port,
    )
    if json_:
        _print_json({"ok": all(c.status != "fail" for c in found), "checks": [c.as_dict() for c in found]})
    else:
        console.out.print(tables.checks_table(found, title="Doctor"))
    if any(check.status == "fail" for check in found):
        raise Exit(code=1)
