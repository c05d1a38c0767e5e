"""The questionnaire of `inv render`: asked only at a terminal, when no answers file exists or with `--ask`.

Non-secret answers are saved to answers.yaml (so the next render asks nothing); secret answers (admin password,
API keys) are returned as settings for this one render, which keeps them in config/credentials.env only. Asked
again (`inv render --ask`), the current settings are the defaults, an empty secret keeps the current one, and only
the asked keys of answers.yaml change (its comments and other keys stay).
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import ValidationError
from rich.prompt import Confirm, Prompt
from rich.text import Text

from aiplatform.cli import console
from aiplatform.commands import INV
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.inputs.answers import with_values
from aiplatform.inputs.context import Context
from aiplatform.inputs.secrets import admin_password_problem
from aiplatform.inputs.settings import LETSENCRYPT_NEEDS, Settings, internal_domain, is_ip
from aiplatform.yamlfile import load_yaml, read_text


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


def _ask_admin_password(asker: Asker, empty: str) -> str:
    """One password for every app's admin: asked again, with the rule it breaks, until every app would take it."""
    while True:
        value = asker.secret(f"Admin password for every app (empty: {empty})")
        problem = admin_password_problem(value) if value else None
        if problem is None:
            return value
        console.error(problem)


def _ask_tls(asker: Asker, domain: str, default: str) -> str:
    """How Caddy serves TLS; an IP gets self-signed, and letsencrypt for a name only a local network knows is
    warned about (Let's Encrypt would never certify it) and kept only when confirmed."""
    if is_ip(domain):
        console.out.print("An IP address cannot get a public certificate: TLS will be self-signed (Caddy's own CA).")
        return "selfsigned"
    internal = internal_domain(domain)
    default = "selfsigned" if internal and default == "letsencrypt" else default
    ssl_mode = asker.choice("TLS certificates", ["letsencrypt", "selfsigned", "none"], default)
    if ssl_mode == "letsencrypt" and internal:
        console.warn(f"{internal}: {LETSENCRYPT_NEEDS}. On a local network use selfsigned (Caddy's own CA).")
        if not asker.confirm("Use letsencrypt anyway (the name is public after all)?", False):
            console.out.print("TLS will be self-signed (Caddy's own CA).")
            return "selfsigned"
    return ssl_mode


def ask(
    ctx: Context, asker: Asker, default_address: str, current: Settings | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Ask every question, with `current` settings as the defaults when given (asked again); return (answers for
    answers.yaml, secret settings for this render)."""
    console.out.print(
        Text.assemble(
            ("AI Platform setup", "bold"), " — answers are saved to answers.yaml; secrets only to credentials.env."
        )
    )
    address = (current.domain if current else "") or default_address
    domain = _ask_valid(asker, "domain", "Domain name or IP address the platform is reached at", address)
    ssl_mode = _ask_tls(asker, domain, current.ssl_mode if current else "letsencrypt")
    email_default = "admin@example.com" if is_ip(domain) else f"admin@{domain}"
    email_default = current.admin_email if current else email_default
    admin_email = _ask_valid(asker, "admin_email", "Admin email", email_default)
    keep = "keep the current one" if current else None
    secrets = {
        "admin_password": _ask_admin_password(asker, keep or "generate one"),
        "openai_api_key": asker.secret(f"OpenAI API key (optional, empty: {keep or 'none'})"),
        "anthropic_api_key": asker.secret(f"Anthropic API key (optional, empty: {keep or 'none'})"),
        "tailscale_authkey": asker.secret(
            "Tailscale auth key to reach the platform over a tailnet (optional" + (f", empty: {keep})" if keep else ")")
        ),
    }
    defaults = current.services if current else Settings.model_fields["services"].default
    accepted = current.privileged_services if current else []
    services, privileged = [], [name for name in accepted if name not in ctx.catalog.optional]
    for name in ctx.catalog.optional:
        spec = ctx.catalog.services[name]
        granted = spec.root_equivalent
        warning = f" It asks for {', '.join(granted)}: root on this host." if granted else ""
        if asker.confirm(f"Enable {name}? ({spec.description}{warning})", name in defaults):
            services.append(name)
            privileged += [name] if granted or name in accepted else []  # accepted, as `add --allow-privileged`
    answers: dict[str, Any] = {"domain": domain, "ssl_mode": ssl_mode, "admin_email": admin_email, "services": services}
    if privileged or accepted:
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
    """Run the questionnaire, save answers.yaml, and return the secret answers as settings flags. When answers.yaml
    exists (`inv render --ask`), its settings are the defaults and only the asked keys of it change."""
    assert ctx.answers is not None
    again = ctx.answers.exists()
    current = ctx.resolved.settings if again else None
    try:
        answers, secrets = ask(ctx, asker or TerminalAsker(), default_address, current)
    except EOFError:  # Ctrl-D at a prompt
        raise UserError(
            "Cancelled: the input ended (Ctrl-D) before the questions were answered; nothing was written.",
            f"Run `{INV} render` again, or `{INV} render --no-input` to render from defaults and the environment.",
        ) from None
    text = (
        read_text(ctx.answers)
        if again
        else "# Answers of the `inv render` questionnaire. Edit freely; `inv settings` shows the result.\n"
    )
    if current is not None:  # asked again: only what the answers change (a default taken leaves its line alone)
        before = load_yaml(ctx.answers).data
        answers = {
            key: value
            for key, value in answers.items()
            if value != (before[key] if key in before else current.model_dump(mode="json")[key])
        }
    mode = ctx.answers.stat().st_mode & 0o777 if again else 0o644
    Runner().write(ctx.answers, with_values(text, ctx.answers, answers).encode(), mode)
    ctx.forget_settings()  # merged again from the file just written
    return secrets
