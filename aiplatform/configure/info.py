"""`inv info`: every enabled service's URLs (on this host, through Caddy, on the tailnet) and how to sign in, read
from generated/ (or the root once deployed) — no Docker needed. Passwords are shown only when asked; otherwise the
line says which secret in which file holds it."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiplatform.commands import INV
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.generated.stamp import Stamp, read_stamp
from aiplatform.host.runner import Runner
from aiplatform.inputs.catalog import Catalog
from aiplatform.inputs.secrets import CADDY_USER
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV

TAILNET_PORTS = {"open-webui": 443, "litellm": 8443}  # what configure serves on the tailnet


SECRET_KINDS = {"password": "password", "api_key": "API key"}


@dataclass
class ServiceInfo:
    service: str
    description: str
    # local | public | tailnet -> URL of the container the route goes to (the service's own), then
    # "<container> <kind>" -> URL of each other container with one (monitoring: Grafana's, then "prometheus local")
    urls: dict[str, str] = field(default_factory=dict)
    main: str = ""  # the container the plain kinds are of, when other containers have URLs too
    user: str = ""
    password: str = ""  # the value with --show-secrets, else where it is kept
    secret_kind: str = ""  # what `password` is: "password" or "API key"
    note: str = ""

    def labelled_urls(self) -> list[tuple[str, str]]:
        """(label, URL), each label naming its container when the service has several with URLs."""
        return [
            (f"{self.main} {kind}" if self.main and " " not in kind else kind, url) for kind, url in self.urls.items()
        ]


@dataclass
class Info:
    source: Path  # the folder read: the root when deployed, else generated/
    services: list[ServiceInfo]
    litellm_base: dict[str, str]
    shown: bool  # passwords shown

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "litellm_base_url": self.litellm_base,
            "services": [asdict(s) for s in self.services],
        }


def platform_info(out: Path, root: Path, catalog: Catalog, show_secrets: bool, tailnet: str | None = None) -> Info:
    """What is where. The root is read when deploy stamped it, else generated/; `tailnet` is this host's tailnet
    name (None: asked of `tailscale status`, when tailscale is installed)."""
    source = root if _readable_stamp(root) else out
    stamp = read_stamp(source)
    if stamp is None:
        raise UserError(f"Nothing is rendered in {out} yet.", f"Run `{INV} render` first.")
    master = read_env(source / MASTER_ENV)
    credentials, where = _credentials(source, out, show_secrets)
    host = tailnet if tailnet is not None else tailnet_name(master)
    services = [_service(name, stamp, catalog, master, credentials, where, host) for name in stamp.services]
    litellm = stamp.urls.get("litellm", {})
    base = {kind: f"{url}/v1" for kind, url in litellm.items()}
    if host and master.get("TAILSCALE_SERVE_LITELLM") == "true":
        base["tailnet"] = f"https://{host}:8443/v1"
    return Info(source, services, base, show_secrets)


def _readable_stamp(root: Path) -> bool:
    try:
        return read_stamp(root) is not None
    except UserError:
        return False


def _credentials(source: Path, out: Path, show: bool) -> tuple[dict[str, str], Path]:
    """The secrets (read only when they are to be shown) and the file that holds them."""
    path = source / CREDENTIALS_ENV
    if not show:
        return {}, path
    try:
        return read_env(path), path
    except UserError:  # the root's is root's own: generated/ holds the same values until a deploy
        if source != out and (out / CREDENTIALS_ENV).is_file():
            return read_env(out / CREDENTIALS_ENV), out / CREDENTIALS_ENV
        raise


def _service(
    name: str,
    stamp: Stamp,
    catalog: Catalog,
    master: dict[str, str],
    credentials: dict[str, str],
    where: Path,
    tailnet: str,
) -> ServiceInfo:
    spec = catalog.services.get(name)
    info = ServiceInfo(name, spec.description if spec else "")
    containers = [c for c in (spec.containers if spec else []) if stamp.urls.get(c)]
    upstream = spec.route.upstream.split(":")[0] if spec is not None and spec.route is not None else ""
    own = upstream if upstream in containers else containers[0] if containers else ""
    for container in sorted(containers, key=lambda c: c != own):  # the service's own first, the rest in order
        for kind, url in stamp.urls[container].items():
            info.urls[kind if container == own else f"{container} {kind}"] = url
    if len(containers) > 1:
        info.main = own
    if tailnet and name in TAILNET_PORTS and (name != "litellm" or master.get("TAILSCALE_SERVE_LITELLM") == "true"):
        port = TAILNET_PORTS[name]
        info.urls["tailnet"] = f"https://{tailnet}" + ("" if port == 443 else f":{port}")
    if spec is not None and spec.login is not None:
        info.user = spec.login.user.replace("{admin_email}", master.get("ADMIN_EMAIL", "")).replace(
            "{admin_name}", master.get("ADMIN_NAME", "")
        )
        secret = spec.login.password
        info.password = credentials.get(secret, "") if credentials else f"{secret} in {where}"
        info.secret_kind = SECRET_KINDS[spec.login.kind]
        info.note = spec.login.note
    if spec is not None and spec.auth == "caddy":  # Caddy's basic auth asks first, for the platform's admin
        if spec.login is None:
            info.user = CADDY_USER
            info.password = credentials.get("ADMIN_PASSWORD", "") if credentials else f"ADMIN_PASSWORD in {where}"
            info.note = "Caddy's sign-in (basic auth) in front of it"
        else:
            info.note = "; ".join(filter(None, [info.note, f"Caddy asks first: {CADDY_USER} and ADMIN_PASSWORD"]))
    return info


def tailnet_name(master: dict[str, str]) -> str:
    """This host's name on the tailnet, when tailscale runs here (read-only)."""
    if not shutil.which("tailscale"):
        return ""
    done = Runner().run(["tailscale", "status", "--json"], check=False, changes=False, timeout=10)
    try:
        return str((json.loads(done.stdout or "{}").get("Self") or {}).get("DNSName") or "").rstrip(".")
    except ValueError:
        return ""
