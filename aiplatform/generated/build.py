"""The render command: ask (when a person is there), gather inputs, render, write generated/.

Reading the credentials stores (the root's and the previous render's) and the host's IP happens here, so
render.render_tree itself stays pure; writing is tree.write_tree's job.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiplatform import __version__
from aiplatform.cli import console
from aiplatform.commands import INV, SUDO_INV
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.generated.files import Tree
from aiplatform.generated.stamp import inputs_hash, read_stamp, staleness, with_stamp
from aiplatform.generated.write import WriteResult, last_tree, recover, render_lock, write_tree
from aiplatform.host.net import primary_ip
from aiplatform.inputs.context import Context
from aiplatform.inputs.root import root_problem
from aiplatform.inputs.secrets import (
    CADDY_ADMIN_HASH,
    SecretChanges,
    admin_password_problem,
    basic_auth_hash,
    resolve_secrets,
)
from aiplatform.inputs.settings import ENV_PREFIX, SECRET_KEYS, Settings, flag_name, letsencrypt_warning
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV, PROFILES_DIR, TEMPLATES_DIR
from aiplatform.render.platform import Platform, caddy_auth, enabled_services, public_url, wanted_secrets
from aiplatform.render.tree import render_tree


def explicit_secrets(settings: Settings) -> dict[str, str]:
    """Secrets the user gave as settings (env, flags, questionnaire), under their credentials.env names."""
    values = {}
    for key in SECRET_KEYS:
        secret = getattr(settings, key)
        if secret is not None and secret.get_secret_value():
            values[key.upper()] = secret.get_secret_value()
    return values


@dataclass
class Rendered:
    platform: Platform
    tree: Tree
    secret_changes: SecretChanges
    inputs: str


def shell_platform(ctx: Context, host_ip: str | None = None) -> Platform:
    """The platform these settings describe, without its secrets: enough for names, URLs and plans."""
    resolved = ctx.resolved
    return Platform(
        settings=resolved.settings,
        tier=resolved.tier,
        catalog=ctx.catalog,
        hardware=ctx.hardware,
        host_ip=host_ip or primary_ip(),
        secrets={},
        templates_dir=ctx.services_dir.parent,
        locked=ctx.locked,
    )


def build_platform(ctx: Context, out: Path, host_ip: str | None = None) -> tuple[Platform, SecretChanges]:
    settings = ctx.resolved.settings
    shell = shell_platform(ctx, host_ip)
    values, changes = resolve_secrets(
        wanted_secrets(shell),
        explicit=explicit_secrets(settings),
        root_store=read_env(settings.root / CREDENTIALS_ENV),
        previous=read_env(last_tree(out) / CREDENTIALS_ENV),
    )
    if caddy_auth(enabled_services(shell)):  # Caddy's basic_auth checks the admin password against its hash
        known = values.get(CADDY_ADMIN_HASH, "")
        values[CADDY_ADMIN_HASH] = basic_auth_hash(values["ADMIN_PASSWORD"], known)
        if values[CADDY_ADMIN_HASH] != known:
            (changes.changed if known else changes.added).append(CADDY_ADMIN_HASH)
        values = dict(sorted(values.items()))
    return replace(shell, secrets=values), changes


def current_inputs(ctx: Context, host_ip: str) -> str:
    """The inputs hash for this context: what the stamp of an up-to-date generated/ holds."""
    resolved = ctx.resolved
    hardware = ctx.hardware
    public = resolved.settings.public()
    for key in SECRET_KEYS:  # a key given once is kept in credentials.env; its absence later is not a change
        public.pop(key, None)
    parts: dict[str, Any] = {
        "version": __version__,
        "tier": resolved.tier,
        "settings": public,
        "host_ip": host_ip,
        "hardware": {
            "cores": hardware.cpu_cores,
            "ram": hardware.ram_gb,
            "gpus": [g.name for g in hardware.gpus],
            "vram": hardware.vram_mb,
        },
    }
    templates = ctx.services_dir.parent if ctx.services_dir.parent.exists() else TEMPLATES_DIR
    profiles = ctx.profiles_dir if ctx.profiles_dir.exists() else PROFILES_DIR
    answers = [ctx.answers, ctx.lockfile] if ctx.answers else [ctx.lockfile]
    user = [ctx.user_services_dir] if ctx.user_services_dir and ctx.user_services_dir.is_dir() else []
    return inputs_hash(parts, [templates, profiles, *user], answers)


def service_urls(platform: Platform) -> dict[str, dict[str, str]]:
    """Where each container is opened: on the host (its 127.0.0.1 port) and, for a route's upstream, through Caddy."""
    urls: dict[str, dict[str, str]] = {}
    for spec in enabled_services(platform):
        for name, container in spec.containers.items():
            local = [p for p in container.publish if p.startswith("127.0.0.1:")]
            if local:
                urls.setdefault(name, {})["local"] = f"http://localhost:{local[0].split(':')[1]}"
        if spec.route:
            upstream = spec.route.upstream.split(":")[0]
            urls.setdefault(upstream, {})["public"] = public_url(platform, spec)
    return dict(sorted(urls.items()))


def render_platform(ctx: Context, out: Path, host_ip: str | None = None, target: str | None = None) -> Rendered:
    """The full tree for this context, stamped, ready to be written to `out`. With `target` k8s it holds k8s/ too
    (the same platform for Kubernetes); without a target, k8s/ is rendered again when `out` has it."""
    ip = host_ip or primary_ip()
    platform, changes = build_platform(ctx, out, ip)
    inputs = current_inputs(ctx, ip)
    tree = render_tree(platform)
    if target == "k8s" or (target is None and (last_tree(out) / "k8s" / "kustomization.yaml").is_file()):
        from aiplatform.k8s.render import render_k8s

        tree.update(render_k8s(platform, tree).files)
    tree = with_stamp(
        tree,
        version=__version__,
        profile=platform.settings.profile,
        tier=platform.tier,
        root=str(platform.settings.root),
        admin_email=platform.settings.admin_email,
        services=[spec.name for spec in enabled_services(platform)],
        inputs=inputs,
        urls=service_urls(platform),
        sources={
            "answers": str(ctx.answers.absolute()) if ctx.answers else None,
            "flags": {key: value for key, value in ctx.flags.items() if key not in SECRET_KEYS},
            "env": {
                name: value
                for name, value in sorted(ctx.environ.items())
                if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower() not in SECRET_KEYS
            },
        },
    )
    return Rendered(platform, tree, changes, inputs)


@dataclass
class RenderResult:
    out: Path
    rendered: Rendered
    written: WriteResult
    warnings: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.rendered.platform.settings.root


def render_command(
    ctx: Context, out: Path, interactive: bool, ask: bool = False, target: str | None = None
) -> RenderResult:
    """Ask the questionnaire when a person is at a terminal and there is no answers file (or `ask`: again, the
    current answers as defaults), then render into `out`.

    One render at a time writes `out` (a lock beside it; a second one waits for the first)."""
    at_terminal = interactive and sys.stdin.isatty() and ctx.answers is not None
    if ask and not at_terminal:
        raise UserError(
            "--ask asks the questions at a terminal, and there is none here (or --no-input was given).",
            f"Run `{INV} render --ask` in a terminal, or keep single settings with `{INV} settings set KEY=VALUE`.",
        )
    one_shot = [flag_name(key) for key in ctx.flags if key != "root" and key not in SECRET_KEYS]
    if at_terminal and ctx.answers is not None and (ask or not ctx.answers.exists()):
        from aiplatform.inputs.questionnaire import ask_and_save

        secrets = ask_and_save(ctx, default_address=primary_ip())
        ctx.flags.update(secrets)
    with render_lock(out, on_wait=console.warn):
        recover(out)  # first: an interrupted render's old tree holds the previous secrets
        rendered = render_platform(ctx, out, target=target)
        written = write_tree(out, rendered.tree)
    result = RenderResult(out, rendered, written)
    result.warnings += credentials_warnings(out, rendered.platform.settings.root, written)
    if one_shot:  # a --root is kept by the stamp; the rest is not
        result.warnings.append(
            f"{', '.join(one_shot)} applied to this render only, not kept: the next `{INV} render` or `{INV} add` "
            f"without it goes back to answers.yaml. `{INV} settings set KEY=VALUE` keeps a setting."
        )
    letsencrypt = letsencrypt_warning(rendered.platform.settings)
    if letsencrypt:
        result.warnings.append(letsencrypt)
    problem = admin_password_problem(rendered.platform.secrets.get("ADMIN_PASSWORD", ""))
    if problem:  # a password kept from before the apps' rules were known
        result.warnings.append(
            f"ADMIN_PASSWORD in credentials.env breaks the apps' rules ({problem}): configure's sign-ups will be "
            f"refused. Give a new one once: `AI_PLATFORM_ADMIN_PASSWORD=... {INV} render`."
        )
    return result


def credentials_warnings(out: Path, root: Path, written: WriteResult) -> list[str]:
    """What to say about credentials.env files readable by others: generated/'s was just set back to 0600, the
    root's is set back by the next deploy."""
    found = []
    old_mode = written.modes_fixed.get(CREDENTIALS_ENV.as_posix())
    if old_mode is not None:
        found.append(f"{out / CREDENTIALS_ENV} was mode {old_mode:04o} (readable by others): set back to 0600.")
    problem = loose_mode(root / CREDENTIALS_ENV)
    if problem:
        found.append(f"{problem}: `{SUDO_INV} deploy` sets it back to 0600 (or `sudo chmod 600` it now).")
    return found


def loose_mode(path: Path) -> str | None:
    """`PATH is mode 0644 (readable by other users)` when a secrets file grants anything to group or others."""
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        return None
    return f"{path} is mode {mode:04o} (readable by other users)" if mode & 0o077 else None


def rendered_root(out: Path, root: str | None = None) -> Path:
    """The root generated/ was rendered for (its master.env BASE_DIR); a different --root is a UserError."""
    master = read_env(out / MASTER_ENV)
    if not master.get("BASE_DIR"):
        raise UserError(f"{out} has no rendered tree ({out / MASTER_ENV} is missing).", f"Run `{INV} render` first.")
    if problem := root_problem(master["BASE_DIR"]):
        raise UserError(
            f"{out / MASTER_ENV} names the root {master['BASE_DIR']!r}, which is no platform root: {problem}.",
            f"Run `{INV} render --root /mnt/data/ai-platform` (the platform's own folder) again.",
        )
    rendered = Path(master["BASE_DIR"])
    if root and Path(root).expanduser().absolute() != rendered:
        raise UserError(
            f"{out} was rendered for root {rendered}, not {root}.", f"Run `{INV} render --root {root}` first."
        )
    return rendered


def stale_reason(out: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """Why generated/ no longer matches templates, profiles, answers and settings (None when it does).

    The answers file, flags and AI_PLATFORM_* variables render was given are in the stamp: the check rebuilds the
    same context from them (sudo drops the caller's environment), so only a change of templates, profiles, the
    answers file's content or the hardware makes generated/ stale."""
    stamp = read_stamp(out)
    if stamp is None:
        return staleness(out, "")
    answers = stamp.sources.get("answers")
    recorded = stamp.sources.get("env") or {}
    ctx = Context(
        answers=Path(answers) if answers else None,
        flags=stamp.sources.get("flags") or {},
        environ=recorded if environ is None else environ,
        generated=out,
    )
    return staleness(out, current_inputs(ctx, primary_ip()))
