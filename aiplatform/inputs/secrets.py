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
import secrets as random
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiplatform.inputs.catalog import SecretSpec, ServiceSpec

_ALPHANUMERIC = string.ascii_letters + string.digits


def generate(fmt: str) -> str:
    """A new random value in format `fmt` (one of catalog.SecretSpec's formats)."""
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


PLATFORM_SECRETS = (SecretSpec(name="ADMIN_PASSWORD", format="password", description="admin of every web UI"),)
# Secrets that exist only when the user gives them (no random default).
OPTIONAL_SECRETS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def service_secrets(spec: ServiceSpec) -> list[SecretSpec]:
    """What a service declares, with each database password as a `password` secret."""
    found = {secret.name: secret for secret in spec.secrets}
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
