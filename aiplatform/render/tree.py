"""Render the whole platform tree: settings + catalog + hardware + secrets in, {relative path: file} out. Pure.

Each enabled service gives its compose file (compose.py) and the config files it owns; the platform adds master.env,
credentials.env, the hardware reading and the Ollama drop-in, firewall script and AppArmor profile.

Templates see settings and names, never secret values: compose files say `${VAR}`, LiteLLM `os.environ/VAR`,
init scripts read the environment. Only config/credentials.env holds values.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import jinja2

from aiplatform.envfile import format_env
from aiplatform.generated.files import RenderedFile, Tree
from aiplatform.inputs.catalog import ServiceSpec
from aiplatform.inputs.secrets import CADDY_USER, CREDENTIALS_HEADER
from aiplatform.render.compose import compose_file, resolve_image
from aiplatform.render.confighash import build_file
from aiplatform.render.platform import (
    Platform,
    PoolNode,
    caddy_auth,
    enabled_services,
    hardware_env,
    master_env,
    node_firewall_context,
    ollama_base_url,
    ollama_needs_firewall,
    ollama_pool,
    public_url,
    routes,
    url_host,
)
from aiplatform.render.templates import environment, header, render_template


def render_tree(platform: Platform) -> Tree:
    """The complete generated/ tree (without the stamp) for this platform."""
    env = environment((platform.templates_dir,), tuple(platform.catalog.catalog_dirs))
    services = enabled_services(platform)
    context = _context(platform, services)
    tree: Tree = {}
    for spec in services:
        files = _service_files(env, spec, context, services)
        compose = compose_file(env, spec, context, platform, services, files)
        tree[f"docker/docker-compose.{spec.name}.yml"] = compose
        tree.update(files)
    tree["config/master.env"] = RenderedFile(format_env(master_env(platform, services), header("settings")).encode())
    tree["config/credentials.env"] = RenderedFile(
        format_env(platform.secrets, CREDENTIALS_HEADER).encode(),
        0o600,
    )
    tree["config/hardware-profile.env"] = RenderedFile(
        format_env(hardware_env(platform), header("the hardware reading")).encode()
    )
    for name, template in (("override.conf", "ollama-override.conf.j2"), ("apparmor-ollama", "apparmor-ollama.j2")):
        tree[f"config/ollama/{name}"] = RenderedFile(render_template(env, f"platform/{template}", context).encode())
    if context["ollama_firewall"]:
        script = render_template(env, "platform/ollama-firewall.sh.j2", context)
        tree["scripts/ollama-firewall.sh"] = RenderedFile(script.encode(), 0o755)
    for node in context["ollama_pool"]:  # each node's own firewall, for its owner to read (setup --node runs it)
        if node.label != "local":
            script = _node_firewall(env, context, node, platform)
            tree[f"scripts/nodes/{node.label}/ollama-firewall.sh"] = RenderedFile(script.encode(), 0o755)
    tree[".gitignore"] = RenderedFile(b"# Secrets stay out of version control.\nconfig/credentials.env\n")
    return dict(sorted(tree.items()))


def _node_firewall(
    env: jinja2.Environment, context: dict[str, Any], node: PoolNode, platform: Platform, platform_host: str = ""
) -> str:
    node_context = {**context, **node_firewall_context(node, platform_host or platform.host_ip, platform.settings)}
    return render_template(env, "platform/ollama-node-firewall.sh.j2", node_context)


def node_firewall_script(platform: Platform, platform_host: str, gpu: bool, label: str) -> str:
    """The firewall of this host as an Ollama node of the platform at `platform_host` (`inv setup --node`)."""
    env = environment((platform.templates_dir,), tuple(platform.catalog.catalog_dirs))
    settings = platform.settings
    node = PoolNode(label, f"http://localhost:{settings.ollama_port}", 1, tuple(settings.models), gpu)
    return _node_firewall(env, _context(platform, enabled_services(platform)), node, platform, platform_host)


def _context(platform: Platform, services: list[ServiceSpec]) -> dict[str, Any]:
    settings = platform.settings
    root = settings.root
    names = [spec.name for spec in services]
    return {
        "settings": settings,
        "tier": platform.tier,
        "hardware": platform.hardware,
        "gpu": platform.hardware.gpu_available,
        "address": platform.address,
        "uses_ip": platform.uses_ip,
        "host_ip": platform.host_ip,
        "root": str(root),
        "paths": {name: str(root / name) for name in ("config", "docker", "data", "logs", "scripts", "backups")},
        "enabled": names,
        "services": {spec.name: spec for spec in services},
        "routes": routes(platform, services),
        "caddy_auth": caddy_auth(services),
        "caddy_user": CADDY_USER,
        "databases": [(spec, db) for spec in services for db in spec.databases],
        "secret_names": sorted(platform.secrets),
        "ollama_base_url": ollama_base_url(settings),
        "ollama_firewall": ollama_needs_firewall(settings),
        "ollama_pool": ollama_pool(settings),
        "ollama_pooled": len(ollama_pool(settings)) > 1,
        "public_url": lambda name: public_url(platform, platform.catalog.services[name]),
        "public_host": lambda name: re.sub(r"^https?://", "", public_url(platform, platform.catalog.services[name])),
        "public_hostname": lambda name: url_host(
            urlsplit(public_url(platform, platform.catalog.services[name])).hostname or ""
        ),
        "version": platform.version,
    }


# --- compose files ---------------------------------------------------------------------------------------------


def _service_files(
    env: jinja2.Environment, spec: ServiceSpec, context: dict[str, Any], services: list[ServiceSpec]
) -> Tree:
    files: Tree = {}
    for file in spec.files:
        template = f"services/{spec.name}/{file.template}"
        if file.each == "database":
            for owner, db in context["databases"]:
                text = render_template(env, template, {**context, "service": spec, "owner": owner, "db": db})
                files[file.path.format(name=db.name)] = RenderedFile(text.encode(), file.mode)
        else:
            text = render_template(env, template, {**context, "service": spec})
            files[file.path] = RenderedFile(text.encode(), file.mode)
    for cname, container in spec.containers.items():
        if container.build and cname not in context["settings"].images:  # an override brings its own image
            base = resolve_image(cname, container.image, context["settings"])  # behind the registry mirror, if any
            text = render_template(
                env, f"services/{spec.name}/{container.build.dockerfile}", {**context, "service": spec, "base": base}
            )
            files[build_file(cname)] = RenderedFile(text.encode())
    return files
