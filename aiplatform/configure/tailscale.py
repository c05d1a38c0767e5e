"""Tailscale (optional): with an auth key given once (TAILSCALE_AUTHKEY in credentials.env), this host joins the
tailnet under its hostname and serves Open WebUI (and LiteLLM when `tailscale_serve_litellm` is on) over the
tailnet's HTTPS; the tailnet URLs are reported. Without a key: skipped, with the sentence that enables it.

The key reaches `tailscale up` as `--auth-key=file:PATH` (never in a command line anyone can list), from a file
that exists only while the command runs.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from aiplatform.commands import INV, SUDO_INV
from aiplatform.configure.facts import Facts
from aiplatform.configure.model import Outcome, StepFailed, StepSkipped, already, done
from aiplatform.configure.steps import Step, StepContext

KEY = "TAILSCALE_AUTHKEY"
KEY_FILE = "config/.tailscale-authkey"
HOW = (
    f"give an auth key once: `AI_PLATFORM_TAILSCALE_AUTHKEY=tskey-... {INV} render`, then `{SUDO_INV} setup` "
    f"(installs tailscale) and `{SUDO_INV} configure`"
)


def steps(facts: Facts) -> list[Step]:
    found: list[Step] = [("tailnet joined", join), ("Open WebUI served", _serve("open-webui", 443))]
    if facts.master.get("TAILSCALE_SERVE_LITELLM") == "true":
        found.append(("LiteLLM served", _serve("litellm", 8443)))
    return found


def _ready(ctx: StepContext) -> None:
    if not ctx.facts.secrets.get(KEY):
        raise StepSkipped(f"no Tailscale auth key: to use a tailnet, {HOW}")
    if shutil.which("tailscale") is None:
        raise StepSkipped(f"tailscale is not installed: `{SUDO_INV} setup` installs it (the key is given)")


def _status(ctx: StepContext) -> dict[str, Any]:
    result = ctx.runner.run(["tailscale", "status", "--json"], check=False, changes=False, timeout=30)
    if result.returncode != 0:  # with --json it answers even when logged out: this is tailscaled not answering
        raise StepFailed(
            f"`tailscale status --json` failed: {result.stderr.strip()[:200]}",
            "`sudo systemctl status tailscaled` says why the Tailscale daemon is not running; "
            "`sudo systemctl restart tailscaled`, then run this again.",
        )
    try:
        data = json.loads(result.stdout or "{}")
    except ValueError:
        raise StepFailed(f"`tailscale status --json` did not answer JSON: {result.stderr.strip()[:200]}") from None
    return data if isinstance(data, dict) else {}


def _host(status: dict[str, Any]) -> str:
    return str((status.get("Self") or {}).get("DNSName") or "").rstrip(".")


def join(ctx: StepContext) -> Outcome:
    _ready(ctx)
    status = _status(ctx)
    hostname = ctx.facts.master.get("TAILSCALE_HOSTNAME") or "ai-platform"
    if status.get("BackendState") == "Running":
        return already(f"as {_host(status) or hostname}")
    ctx.act(f"join the tailnet as {hostname}")
    key_file = ctx.facts.root / KEY_FILE
    ctx.runner.write(key_file, ctx.facts.secrets[KEY].encode(), 0o600)
    try:
        ctx.runner.run(["tailscale", "up", f"--auth-key=file:{key_file}", f"--hostname={hostname}"], timeout=120)
    finally:
        ctx.runner.remove_file(key_file)
    return done(f"as {_host(_status(ctx)) or hostname}")


def _serve(container: str, port: int) -> Any:
    def serve(ctx: StepContext) -> Outcome:
        _ready(ctx)
        target = ctx.facts.local_url(container)
        if target is None:
            raise StepFailed(f"{container} publishes no port on 127.0.0.1 to serve.")
        host = _host(_status(ctx))
        url = f"https://{host}" + ("" if port == 443 else f":{port}")
        served = ctx.runner.run(["tailscale", "serve", "status", "--json"], check=False, changes=False, timeout=30)
        if f'"{target}"' in served.stdout and f":{port}" in served.stdout:
            return already(url)
        ctx.act(f"serve {container} on the tailnet at {url}")
        ctx.runner.run(["tailscale", "serve", "--bg", f"--https={port}", target], timeout=60)
        return done(url)

    return serve
