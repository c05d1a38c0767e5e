"""What render works from (Platform) and the values derived from it for the whole platform: addresses and URLs,
master.env, the hardware reading, the secrets the enabled services want. No templates here."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiplatform import __version__
from aiplatform.inputs.catalog import Catalog, SecretSpec, ServiceSpec
from aiplatform.inputs.hardware import Hardware, HardwareReport
from aiplatform.inputs.secrets import BACKUP_PASSPHRASE, PLATFORM_SECRETS, service_secrets
from aiplatform.inputs.settings import Settings
from aiplatform.paths import TEMPLATES_DIR


@dataclass(frozen=True)
class Platform:
    """Everything render needs, already resolved. `secret_names` are the keys of credentials.env (no values)."""

    settings: Settings
    tier: str
    catalog: Catalog
    hardware: Hardware
    host_ip: str
    secrets: Mapping[str, str]
    templates_dir: Path = TEMPLATES_DIR
    version: str = __version__
    locked: Mapping[str, str] = field(default_factory=dict)  # image -> digest, from images.lock (`inv upgrade`)

    @property
    def address(self) -> str:
        """Where users reach the platform: the domain, or the host's IP."""
        return self.settings.domain or self.host_ip

    @property
    def uses_ip(self) -> bool:
        return self.settings.is_ip_domain() or not self.settings.domain


def enabled_services(platform: Platform) -> list[ServiceSpec]:
    return platform.catalog.enabled(platform.settings.services)


def ollama_needs_firewall(settings: Settings) -> bool:
    """Ollama bound beyond loopback and not meant for the LAN: its port must be limited to this host and Docker."""
    return not ipaddress.ip_address(settings.ollama_bind).is_loopback and not settings.ollama_expose_lan


def url_host(host: str) -> str:
    """A host as a URL or `host:port` writes it: an IPv6 address in brackets ([2001:db8::1]), anything else as is."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def host_port(host: str, port: int | str) -> str:
    """`host:port`, an IPv6 host in brackets: `[2001:db8::1]:443` (without them the port reads as part of it)."""
    return f"{url_host(host)}:{port}"


def ollama_base_url(settings: Settings) -> str:
    return f"http://host.docker.internal:{settings.ollama_port}"


@dataclass(frozen=True)
class PoolNode:
    """One Ollama that LiteLLM sends requests to: this host's own ("local") or an `ollama_nodes` entry."""

    label: str
    url: str  # what LiteLLM calls (this host's: through host.docker.internal)
    weight: int
    models: tuple[str, ...]
    gpu: bool = True


def ollama_pool(settings: Settings) -> list[PoolNode]:
    pool = [PoolNode("local", ollama_base_url(settings), 1, tuple(settings.models))] if settings.ollama_local else []
    for node in settings.ollama_nodes:
        pool.append(PoolNode(node.label, node.url, node.weight, tuple(node.models or settings.models), node.gpu))
    return pool


def node_firewall_context(node: PoolNode, platform_host: str, settings: Settings) -> dict[str, object]:
    """What a node's firewall script needs: the ports it admits from the platform host (Ollama, the exporters)."""
    try:
        family: int | None = ipaddress.ip_address(platform_host).version
    except ValueError:
        family = None  # a host name
    ports = [urlsplit_port(node.url), 9100, *([9400] if node.gpu else [])]
    return {"node_label": node.label, "node_gpu": node.gpu, "platform_host": platform_host,
            "platform_family": family, "ports": ports, "settings": settings}  # fmt: skip


def node_entry(node: PoolNode) -> dict[str, object]:
    return {"name": node.label, "url": node.url, "models": list(node.models), "gpu": node.gpu}


def urlsplit_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def routes(platform: Platform, services: list[ServiceSpec]) -> list[dict[str, Any]]:
    """Caddy site blocks: one per enabled service with a route, with the address it is served at."""
    out = []
    for spec in services:
        if spec.route:
            out.append(
                {"service": spec.name, "site": site_address(platform, spec), "route": spec.route, "auth": spec.auth}
            )
    return out


def caddy_auth(services: list[ServiceSpec]) -> bool:
    """Whether Caddy asks for the admin's password in front of one of these (a route with `auth: caddy`)."""
    return any(spec.route is not None and spec.auth == "caddy" for spec in services)


def site_address(platform: Platform, spec: ServiceSpec) -> str:
    """`sub.domain` (a domain) or `https://host:port` (an IP, IPv6 in brackets); http:// when TLS is off."""
    assert spec.route is not None
    mode = platform.settings.ssl_mode
    if platform.uses_ip:
        port = spec.route.ip_port
        if mode == "none":
            port = 80 if port == 443 else port
            return f"http://{host_port(platform.address, port)}"
        return f"https://{host_port(platform.address, port)}"
    host = f"{spec.route.subdomain}.{platform.address}" if spec.route.subdomain else platform.address
    return f"http://{host}" if mode == "none" else host


def public_url(platform: Platform, spec: ServiceSpec) -> str:
    site = site_address(platform, spec)
    if site.startswith("http"):
        return re.sub(r":(80|443)$", "", site)
    return f"https://{site}"


def master_env(platform: Platform, services: list[ServiceSpec]) -> dict[str, object]:
    """Every non-secret setting as the original scripts' keys (paths, domain, tier, hosts and ports, flags)."""
    settings = platform.settings
    hw = platform.hardware
    root = settings.root
    enabled = {spec.name for spec in services}
    values: dict[str, object] = {
        "AI_PLATFORM_VERSION": platform.version,
        "BASE_DIR": root,
        "CONFIG_DIR": root / "config",
        "DOCKER_DIR": root / "docker",
        "DATA_DIR": root / "data",
        "LOGS_DIR": root / "logs",
        "SCRIPTS_DIR": root / "scripts",
        "BACKUPS_DIR": root / "backups",
        "DOMAIN_NAME": platform.address,
        "HOST_IP": platform.host_ip,
        "SSL_MODE": settings.ssl_mode,
        "SYSTEM_TIER": platform.tier,
        "GPU_AVAILABLE": hw.gpu_available,
        "CPU_CORES": hw.cpu_cores,
        "TOTAL_RAM_GB": hw.ram_gb,
        "ADMIN_EMAIL": settings.admin_email,
        "ADMIN_NAME": settings.admin_name,
        "POSTGRES_HOST": "postgres",
        "POSTGRES_PORT": 5432,
        "REDIS_HOST": "redis",
        "REDIS_PORT": 6379,
        "QDRANT_HOST": "qdrant",
        "QDRANT_PORT": 6333,
        "OLLAMA_HOST": host_port(settings.ollama_bind, settings.ollama_port),
        "OLLAMA_PORT": settings.ollama_port,
        "OLLAMA_BASE_URL": ollama_base_url(settings),
        "LITELLM_HOST": "litellm",
        "LITELLM_PORT": 4000,
        "DEFAULT_MODELS": ",".join(settings.models),
        "EMBEDDING_MODEL": settings.embedding_model,
        "TAILSCALE_HOSTNAME": settings.tailscale_hostname,
        "TAILSCALE_SERVE_LITELLM": settings.tailscale_serve_litellm,
        # the Ollama hosts LiteLLM spreads the models over (doctor and status check each)
        "OLLAMA_LOCAL": settings.ollama_local,
        "OLLAMA_NODES": json.dumps([node_entry(n) for n in ollama_pool(settings) if n.label != "local"]),
        # `inv backup` (and its timer) reads these from the root, as deploy applied them
        "BACKUP_KEEP": settings.backup_keep,
        "BACKUP_ENCRYPT": settings.backup_encrypt,
        "BACKUP_REMOTE_TYPE": settings.backup_remote_type,
        "BACKUP_REMOTE_PATH": settings.backup_remote_path,
        "BACKUP_REMOTE_OPTIONS": json.dumps(settings.backup_remote_options, sort_keys=True),
        "BACKUP_REMOTE_SECRET_OPTION": settings.backup_remote_secret_option,
        "BACKUP_REMOTE_KEEP": settings.backup_remote_keep,
    }
    for name in platform.catalog.optional:
        values[f"ENABLE_{name.upper().replace('-', '_')}"] = name in enabled
    return values


def hardware_env(platform: Platform) -> dict[str, object]:
    """The hardware reading render used, in hardware-profile.env's keys (the tier is the hardware's own)."""
    hw = platform.hardware
    return HardwareReport(hw, hw.tier, tuple(platform.settings.models), 0.0).env()


def wanted_secrets(platform: Platform) -> list[SecretSpec]:
    """Every secret the enabled services need, platform secrets first."""
    found = list(PLATFORM_SECRETS)
    if platform.settings.backup_encrypt:
        found.append(BACKUP_PASSPHRASE)
    for spec in enabled_services(platform):
        found.extend(service_secrets(spec))
    return found
