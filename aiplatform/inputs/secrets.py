"""Secrets: generated once with a CSPRNG in the format each consumer needs, then kept forever.

Every secret the enabled services declare (service.yaml `secrets:` and database passwords) plus the platform's own
(ADMIN_PASSWORD, optional cloud API keys) is resolved in this order, first wins: a value the user gave explicitly
(questionnaire, AI_PLATFORM_* variable, --set) > the root's config/credentials.env > the previous
generated/config/credentials.env > a new random value. So re-rendering never changes a secret, a newly enabled
service only adds keys, and a disabled service's keys stay (its volumes still hold data encrypted with them).
Values live only in credentials.env (mode 0600); templates never see them.
"""

from __future__ import annotations

import base64
import re
import secrets as random
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from aiplatform.inputs.catalog import ADMIN_PASSWORD, SecretSpec, ServiceSpec

_ALPHANUMERIC = string.ascii_letters + string.digits


CREDENTIALS_HEADER = "Secrets of the platform, generated once and kept: mode 0600, never commit."
# One admin password for every app: MLflow wants at least 12 characters, n8n at most 64 with a digit and an
# upper-case letter, Dify a letter and a digit, Flowise a lower- and an upper-case letter, a digit and a character that
# is neither, bcrypt (Open WebUI, Caddy) at most 72 bytes.
ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)
ADMIN_PASSWORD_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda pw: 12 <= len(pw) <= 64, "12 to 64 characters (MLflow at least 12, n8n at most 64)"),
    (lambda pw: len(pw.encode()) <= 72, "at most 72 bytes as UTF-8 (bcrypt, Open WebUI)"),
    (lambda pw: any(c in string.ascii_lowercase for c in pw), "a lower-case letter a-z (Flowise)"),
    (lambda pw: any(c in string.ascii_uppercase for c in pw), "an upper-case letter A-Z (n8n, Flowise)"),
    (lambda pw: any(c in string.digits for c in pw), "a digit 0-9 (n8n, Dify, Flowise)"),
    (lambda pw: any(c not in ASCII_ALNUM for c in pw), "a character that is none of a-z, A-Z, 0-9 (Flowise)"),
)  # ASCII classes, as the apps' own checks are (Flowise's /[a-z]/, n8n's /[A-Z]/ and /\d/): `Ä` or `²` counts for none


def admin_password_problem(password: str) -> str | None:
    """The rules of the apps' sign-up forms `password` breaks, as one sentence, or None when every app takes it."""
    broken = [rule for check, rule in ADMIN_PASSWORD_RULES if not check(password)]
    return "the admin password needs " + "; ".join(broken) if broken else None


def generate(fmt: str) -> str:
    """A new random value in format `fmt` (one of catalog.SecretSpec's formats)."""
    if fmt == "admin_password":
        # two random halves around "-": safe in URLs, env files and JSON, and a non-alphanumeric for Flowise
        return f"{_password(12)}-{_password(12)}"
    if fmt == "password":
        return _password(24)
    if fmt == "hex32":
        return random.token_hex(16)
    if fmt == "hex64":
        return random.token_hex(32)
    if fmt == "token":
        return _password(40)
    if fmt == "litellm_key":
        return "sk-" + random.token_hex(24)
    if fmt == "base64_32":
        return base64.b64encode(random.token_bytes(32)).decode()
    raise ValueError(f"unknown secret format {fmt!r}")


def _password(length: int) -> str:
    # Letters and digits only: safe inside URLs (postgresql://user:pw@host) and shell words. At least one upper,
    # lower and digit: n8n wants a digit and an upper-case letter, Dify a letter and a digit.
    while True:
        value = "".join(random.choice(_ALPHANUMERIC) for _ in range(length))
        if any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value):
            return value


PLATFORM_SECRETS = (SecretSpec(name=ADMIN_PASSWORD, format="admin_password", description="admin of every web UI"),)
# Secrets that exist only when the user gives them (no random default).
OPTIONAL_SECRETS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TAILSCALE_AUTHKEY", "BACKUP_REMOTE_SECRET")
# The backups' passphrase, generated once when backup_encrypt is on (keep a copy off the box: it opens them).
BACKUP_PASSPHRASE = SecretSpec(name="BACKUP_PASSPHRASE", format="token", description="opens encrypted backups")


# The admin password's bcrypt hash, for Caddy's `basic_auth` in front of the routes with `auth: caddy`.
CADDY_ADMIN_HASH = "CADDY_ADMIN_HASH"
CADDY_USER = "admin"  # the user name Caddy's basic_auth asks for (the password is ADMIN_PASSWORD)


def basic_auth_hash(password: str, known: str) -> str:
    """The bcrypt hash Caddy checks the admin password against: the known one while it still matches `password` (a
    new salt on every render would change credentials.env and recreate Caddy each time), else a new one."""
    import bcrypt

    if known.startswith("$2"):
        try:
            if bcrypt.checkpw(password.encode(), known.encode()):
                return known
        except ValueError:  # not a hash bcrypt can read: made again
            pass
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def litellm_key_name(service: str) -> str:
    """The credentials.env name of the LiteLLM virtual key a consuming service uses instead of the master key."""
    return "LITELLM_KEY_" + re.sub(r"[^A-Z0-9]", "_", service.upper())


def service_secrets(spec: ServiceSpec) -> list[SecretSpec]:
    """What a service declares, with each database password as a `password` secret and its LiteLLM key."""
    found = {secret.name: secret for secret in spec.secrets}
    if spec.litellm_key:
        name = litellm_key_name(spec.name)
        found[name] = SecretSpec(name=name, format="litellm_key", description=f"{spec.name}'s key to LiteLLM")
    for db in spec.databases:
        found.setdefault(
            db.password, SecretSpec(name=db.password, format="password", description=f"{db.user} in Postgres")
        )
    return list(found.values())


@dataclass
class SecretChanges:
    """Which secret names were added or changed by this resolution (never the values)."""

    added: list[str]
    changed: list[str]


def resolve_secrets(
    wanted: Iterable[SecretSpec],
    explicit: Mapping[str, str],
    root_store: Mapping[str, str],
    previous: Mapping[str, str],
) -> tuple[dict[str, str], SecretChanges]:
    """Every wanted secret's value (explicit > root store > previous render > new), plus optional ones given."""
    values: dict[str, str] = {}
    changes = SecretChanges([], [])
    wanted_names = [(spec.name, spec.format) for spec in wanted]
    for name, fmt in [*wanted_names, *((name, None) for name in OPTIONAL_SECRETS)]:
        known = root_store.get(name) or previous.get(name) or ""
        value = explicit.get(name) or known or (generate(fmt) if fmt else "")
        if not value:
            continue  # an optional secret nobody gave
        if not known:
            changes.added.append(name)
        elif value != known:
            changes.changed.append(name)
        values[name] = value
    # Keys no enabled service wants now (one was disabled) are kept: its data still needs them when it comes back.
    for name, value in {**previous, **root_store}.items():
        values.setdefault(name, value)
    return dict(sorted(values.items())), changes
