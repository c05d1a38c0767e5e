"""Which LiteLLM key configure last put into each app's credential: n8n and Flowise never show a stored key again and
Dify only a masked one, so without a record a key rotated in credentials.env (and registered in LiteLLM, which drops
the old one) would never reach them.

The record is config/configure-state.json in the root (kept by backups with the rest of config/): per service, the
credential's id in that app and a fingerprint of the key it was given — a short sha256 of a prefix and the key,
never the key, so the file is not a secret. A credential with no record, or another fingerprint, gets the current key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aiplatform.configure.steps import StepContext

STATE_FILE = Path("config/configure-state.json")


def fingerprint(key: str) -> str:
    return hashlib.sha256(b"ai-platform pushed key\0" + key.encode()).hexdigest()[:16]


def _read(ctx: StepContext) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((ctx.facts.root / STATE_FILE).read_text())
    except (OSError, ValueError):  # none yet, or unreadable: every credential counts as unrecorded
        return {}
    pushed = data.get("pushed") if isinstance(data, dict) else None
    return {k: v for k, v in pushed.items() if isinstance(v, dict)} if isinstance(pushed, dict) else {}


def held(ctx: StepContext, service: str, ident: str, key: str) -> str:
    """What the credential `ident` of `service` holds: "" when configure last gave it `key`, else why it needs it."""
    recorded = _read(ctx).get(service, {}).get(ident)
    if recorded == fingerprint(key):
        return ""
    return "it held an older key" if recorded else "configure had no record of the key it held"


def remember(ctx: StepContext, service: str, keys: dict[str, str]) -> None:
    """Record that `service`'s credentials (id -> key) now hold these keys; its other records are dropped."""
    pushed = _read(ctx)
    wanted = {ident: fingerprint(key) for ident, key in sorted(keys.items())}
    if pushed.get(service) == wanted:
        return
    pushed[service] = wanted
    text = json.dumps({"pushed": dict(sorted(pushed.items()))}, indent=2) + "\n"
    ctx.runner.write(ctx.facts.root / STATE_FILE, text.encode(), 0o644)
