"""The first-run questionnaire of `inv render`: asked only at a terminal when no answers file exists.

Non-secret answers are saved to answers.yaml (so the next render asks nothing); secret answers (admin password,
API keys) are returned as settings for this one render, which keeps them in config/credentials.env only.
"""

from __future__ import annotations

from typing import Any, Protocol

import yaml
from pydantic import ValidationError
from rich.prompt import Confirm, Prompt
from rich.text import Text

from aiplatform.cli import console
from aiplatform.commands import INV
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.inputs.context import Context
from aiplatform.inputs.secrets import admin_password_problem
from aiplatform.inputs.settings import Settings, is_ip


class Asker(Protocol):
    def text(self, prompt: str, default: str) -> str: ...
    def secret(self, prompt: str) -> str: ...
    def choice(self, prompt: str, choices: list[str], default: str) -> str: ...
    def confirm(self, prompt: str, default: bool) -> bool: ...


class TerminalAsker:
    """Questions on the terminal with rich; secrets are typed hidden."""

    def text(self, prompt: str, default: str) -> str:
        return Prompt.ask(prompt, default=default, console=console.out)

    def secret(self, prompt: str) -> str:
        return Prompt.ask(prompt, default="", password=True, show_default=False, console=console.out)

    def choice(self, prompt: str, choices: list[str], default: str) -> str:
        return Prompt.ask(prompt, choices=choices, default=default, console=console.out)

    def confirm(self, prompt: str, default: bool) -> bool:
        return Confirm.ask(prompt, default=default, console=console.out)


def _problem(key: str, value: Any) -> str | None:
    try:
        Settings.model_validate({key: value})
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return None


def _ask_valid(asker: Asker, key: str, prompt: str, default: str) -> str:
    while True:
        value = asker.text(prompt, default).strip()
        problem = _problem(key, value)
        if problem is None:
            return value
        console.error(f"{value!r}: {problem}")


def _ask_admin_password(asker: Asker) -> str:
    """One password for every app's admin: asked again, with the rule it breaks, until every app would take it."""
    while True:
        value = asker.secret("Admin password for every app (empty: generate one)")
        problem = admin_password_problem(value) if value else None
        if problem is None:
            return value
        console.error(problem)


def ask(ctx: Context, asker: Asker, default_address: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Ask every question; return (answers for answers.yaml, secret settings for this render)."""
    console.out.print(
        Text.assemble(
            ("AI Platform setup", "bold"), " — answers are saved to answers.yaml; secrets only to credentials.env."
        )
    )
    domain = _ask_valid(asker, "domain", "Domain name or IP address the platform is reached at", default_address)
    if is_ip(domain):
        console.out.print("An IP address cannot get a public certificate: TLS will be self-signed (Caddy's own CA).")
        ssl_mode = "selfsigned"
    else:
        ssl_mode = asker.choice("TLS certificates", ["letsencrypt", "selfsigned", "none"], "letsencrypt")
    email_default = "admin@example.com" if is_ip(domain) else f"admin@{domain}"
    admin_email = _ask_valid(asker, "admin_email", "Admin email", email_default)
    secrets = {
        "admin_password": _ask_admin_password(asker),
        "openai_api_key": asker.secret("OpenAI API key (optional, empty: none)"),
        "anthropic_api_key": asker.secret("Anthropic API key (optional, empty: none)"),
        "tailscale_authkey": asker.secret("Tailscale auth key to reach the platform over a tailnet (optional)"),
    }
    defaults = Settings.model_fields["services"].default
    services, privileged = [], []
    for name in ctx.catalog.optional:
        spec = ctx.catalog.services[name]
        granted = spec.root_equivalent
        warning = f" It asks for {', '.join(granted)}: root on this host." if granted else ""
        if asker.confirm(f"Enable {name}? ({spec.description}{warning})", name in defaults):
            services.append(name)
            privileged += [name] if granted else []  # accepted here, as `inv add --allow-privileged` would
    answers: dict[str, Any] = {"domain": domain, "ssl_mode": ssl_mode, "admin_email": admin_email, "services": services}
    if privileged:
        answers["privileged_services"] = privileged
    console.out.print(Text("\nSummary", style="bold"))
    for key, value in answers.items():
        console.out.print(f"  {key}: {', '.join(value) if isinstance(value, list) else value}", markup=False)
    given = [key for key, value in secrets.items() if value]
    console.out.print(f"  secrets given: {', '.join(given) or 'none'} (the rest are generated)", markup=False)
    if not asker.confirm("Proceed?", True):
        raise UserError("Cancelled: nothing was written.", f"Run `{INV} render` again to answer anew.")
    return answers, {key: value for key, value in secrets.items() if value}


def ask_and_save(ctx: Context, default_address: str, asker: Asker | None = None) -> dict[str, str]:
    """Run the questionnaire, save answers.yaml, and return the secret answers as settings flags."""
    assert ctx.answers is not None
    try:
        answers, secrets = ask(ctx, asker or TerminalAsker(), default_address)
    except EOFError:  # Ctrl-D at a prompt
        raise UserError(
            "Cancelled: the input ended (Ctrl-D) before the questions were answered; nothing was written.",
            f"Run `{INV} render` again, or `{INV} render --no-input` to render from defaults and the environment.",
        ) from None
    text = "# Answers of the `inv render` questionnaire. Edit freely; `inv settings` shows the result.\n"
    Runner().write(ctx.answers, (text + yaml.safe_dump(answers, sort_keys=False)).encode(), 0o644)
    return secrets
