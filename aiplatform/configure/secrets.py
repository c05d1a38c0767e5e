"""Secrets that only a service can make (n8n's API key): kept in the root's credentials.env beside the ones render
generated. Deploy never drops a key the root holds and generated/ lacks, and the next render takes it over."""

from __future__ import annotations

from aiplatform.configure.steps import StepContext
from aiplatform.envfile import format_env, read_env
from aiplatform.inputs.secrets import CREDENTIALS_HEADER
from aiplatform.paths import CREDENTIALS_ENV


def store_secret(ctx: StepContext, name: str, value: str) -> None:
    path = ctx.facts.root / CREDENTIALS_ENV
    values = {**read_env(path), name: value}
    ctx.runner.write(path, format_env(dict(sorted(values.items())), CREDENTIALS_HEADER).encode(), 0o600)
    ctx.facts.secrets[name] = value  # what the steps after this one read
