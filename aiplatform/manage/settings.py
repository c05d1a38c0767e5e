"""`inv settings get / set / unset`: one setting read back with where it comes from, or kept in answers.yaml.

`set` and `unset` check answers.yaml as they would leave it with the same model and messages as answers.yaml and
`--set` (plus each given value alone, so a variable or flag above it cannot hide a bad one) before anything is
written; on any error answers.yaml stays as it was. Only the lines of the keys that change are rewritten (comments,
blank lines and order kept: inputs.answers.with_values). Nothing is applied: `inv render` does that.

Secrets are refused, never written to answers.yaml (it is not protected): they reach config/credentials.env
(mode 0600) through a render, `inv render --ask` (asked hidden) or AI_PLATFORM_<KEY> for one render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.inputs.answers import with_values
from aiplatform.inputs.context import Context
from aiplatform.inputs.settings import (
    ENV_PREFIX,
    SECRET_KEYS,
    PendingAnswers,
    Resolved,
    Settings,
    check_known,
    flag_name,
    letsencrypt_warning,
    parse_value,
)
from aiplatform.paths import STAMP_FILE
from aiplatform.yamlfile import load_yaml

# The secrets the questionnaire asks for (hidden): `inv render --ask` gives them anew.
ASKED_SECRETS = ("admin_password", "openai_api_key", "anthropic_api_key", "tailscale_authkey")


@dataclass
class Got:
    """One setting as `inv settings get` shows it: its value (a secret masked) and where it comes from."""

    key: str
    value: Any
    source: str  # default, profile, answers, env, flag, previous render, credentials
    where: str  # the file and line, variable or flag that holds it

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "where": self.where}


def get_settings(ctx: Context, keys: list[str]) -> list[Got]:
    """The value and source of each key (secrets masked: `****` when set, else None)."""
    if not keys:
        raise UserError(
            f"`{INV} settings get` needs a key, like `{INV} settings get domain`.", f"`{INV} settings` lists them all."
        )
    for key in keys:
        check_known(key, f"`{INV} settings get {key}`", f"`{INV} settings` lists every key with its value.")
    resolved = ctx.resolved
    rows = {key: (value, source) for key, value, source in resolved.table(ctx.stored_secrets())}
    found = []
    for key in keys:
        value, source = rows[key]
        found.append(Got(key, value, source.split(" (")[0], _where(ctx, resolved, key, source)))
    return found


def _where(ctx: Context, resolved: Resolved, key: str, source: str) -> str:
    if source.startswith("credentials ("):
        return source[len("credentials (") : -1]
    if source == "answers" and resolved.answers_path is not None:
        return load_yaml(resolved.answers_path).where(key)
    if source == "env":
        return f"{ENV_PREFIX}{key.upper()}"
    if source == "flag":
        return flag_name(key)
    if source == "profile":
        return str(ctx.profiles_dir / f"{resolved.tier}.yaml")
    if source == "previous render" and ctx.generated is not None:
        return str(ctx.generated / STAMP_FILE)
    return "built-in default"


def format_value(value: Any) -> str:
    """A value as one line of text: lists comma-separated, maps name=value (as --set and the env take them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(format_value(item) if not isinstance(item, dict) else str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{name}={item}" for name, item in value.items())
    return str(value)


@dataclass
class Change:
    key: str
    before: Any  # None: not in answers.yaml
    after: Any  # None: taken out of answers.yaml


@dataclass
class SetResult:
    """What `settings set` / `unset` did to answers.yaml, and what to say about it."""

    path: Path
    changes: list[Change]
    created: bool = False
    unchanged: list[str] = field(default_factory=list)  # keys that already had that value / were not there
    warnings: list[str] = field(default_factory=list)


def parse_pairs(items: list[str]) -> dict[str, str]:
    """`KEY=VALUE` words as a dict; a word without `=` is a UserError."""
    if not items:
        raise UserError(
            f"`{INV} settings set` needs KEY=VALUE, like `{INV} settings set domain=ai.example.com`.",
            f"`{INV} settings` lists the keys; `{INV} --help settings` explains values.",
        )
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(
                f"`{INV} settings set {item}`: expected KEY=VALUE, like `{INV} settings set ssl_mode=selfsigned` "
                "(lists comma-separated: services=dify,n8n).",
                f"`{INV} settings get {key.strip() or 'KEY'}` shows the current value.",
            )
        values[key.strip()] = value
    return values


def _refuse_secret(key: str, verb: str) -> None:
    variable = f"{ENV_PREFIX}{key.upper()}"
    once = f"`read -rs {variable} && export {variable} && {INV} render; unset {variable}`"
    fix = (f"`{INV} render --ask` asks for it hidden (the other answers are the defaults), or give it to one render: "
           if key in ASKED_SECRETS else "Give it to one render: ")  # fmt: skip
    raise UserError(
        f"`{INV} settings {verb} {key}`: {key} is a secret and is never written to answers.yaml (it is not protected); "
        "a render keeps it in config/credentials.env (mode 0600) from the moment it is given once.",
        f"{fix}{once}, then `{SUDO_INV} deploy`.",
    )


def change_settings(
    ctx: Context, runner: Runner, values: dict[str, str] | None = None, remove: list[str] | None = None
) -> SetResult:
    """Set `values` (KEY: text as typed) and take `remove` out of the answers file, after checking the result."""
    assert ctx.answers is not None
    path = ctx.answers
    values, remove = values or {}, remove or []
    verb = "set" if values else "unset"
    given = {key: f"`{INV} settings set {key}=...`" for key in values}
    given.update({key: f"`{INV} settings unset {key}`" for key in remove})
    for key in [*values, *remove]:
        check_known(key, given[key], f"{path} was not changed. `{INV} settings` lists every key.")
        if key in SECRET_KEYS:
            _refuse_secret(key, verb)
    parsed = {key: parse_value(key, raw) for key, raw in values.items()}
    exists = path.exists()
    if values:
        ctx.answers_must_exist = False  # `set` makes it
    doc = load_yaml(path) if exists else None  # a bounded read of a regular file, with YAML's limits
    text, before = (doc.text, doc.data) if doc else ("", {})
    after = {key: value for key, value in before.items() if key not in remove} | parsed
    try:
        resolved = ctx.resolve(PendingAnswers(after, given))
    except UserError as exc:
        fix = exc.fix if "was not changed" in exc.fix else f"{path} was not changed. {exc.fix}".strip()
        raise UserError(exc.message, fix, exc.exit_code) from None
    typed = Settings.model_validate(parsed).model_dump(mode="json") if parsed else {}
    # booleans and numbers as YAML's own (true, 4), the rest as given: a list as a list, a string as typed
    written = {key: typed[key] if isinstance(typed[key], (bool, int, float)) else parsed[key] for key in parsed}
    result = SetResult(path, [], created=not exists)
    for key, value in written.items():
        if key in before and before[key] == value:
            result.unchanged.append(key)
        else:
            result.changes.append(Change(key, before.get(key), value))
    for key in remove:
        if key in before:
            result.changes.append(Change(key, before[key], None))
        else:
            result.unchanged.append(key)
    changed = {change.key for change in result.changes}
    if changed:
        new_text = with_values(
            text, path, {k: v for k, v in written.items() if k in changed}, [k for k in remove if k in changed]
        )
        runner.write(path, new_text.encode(), path.stat().st_mode & 0o777 if exists else 0o644)
    else:
        result.created = False
    for key in [*values, *remove]:
        source = resolved.sources[key]
        if source in ("env", "flag"):
            named = f"{ENV_PREFIX}{key.upper()}" if source == "env" else flag_name(key)
            result.warnings.append(
                f"{named} overrides {key} while it is given: `{INV} settings get {key}` shows "
                f"{format_value(resolved.settings.public()[key])!r}."
            )
    if {"domain", "ssl_mode"} & changed:
        warning = letsencrypt_warning(resolved.settings)
        if warning:
            result.warnings.append(warning)
    return result
