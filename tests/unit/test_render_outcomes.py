"""render/ by what ends up in the tree for a setting: the addresses Caddy serves and the URLs the apps are told, the
files written only when a setting asks for them, the image each container runs, and the config hash that makes
deploy recreate a container when a file it mounts changes (bytes or mode)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from aiplatform.envfile import parse_env
from aiplatform.generated.files import RenderedFile
from aiplatform.render.confighash import config_hash_of, mounted_files
from aiplatform.render.platform import Platform, enabled_services, public_url, site_address, wanted_secrets
from aiplatform.render.tree import render_tree

from .test_render import scenario_platform


def _with(platform: Platform, **settings) -> Platform:
    return replace(platform, settings=platform.settings.model_copy(update=settings))


def _compose(tree, service: str) -> dict:
    return yaml.safe_load(tree[f"docker/docker-compose.{service}.yml"].data)


@pytest.mark.parametrize(("ssl_mode", "scheme", "main_port"), [("selfsigned", "https", 443), ("none", "http", 80)])
def test_by_ip_each_route_is_served_on_its_port_and_the_main_one_on_the_schemes_own(ssl_mode, scheme, main_port):
    platform = _with(scenario_platform("defaults-ip-minimal"), ssl_mode=ssl_mode)
    routed = [spec for spec in enabled_services(platform) if spec.route]
    sites = {spec.name: site_address(platform, spec) for spec in routed}
    assert sites["open-webui"] == f"{scheme}://192.0.2.10:{main_port}"
    assert public_url(platform, platform.catalog.services["open-webui"]) == f"{scheme}://192.0.2.10"
    others = {name: site for name, site in sites.items() if name != "open-webui"}
    assert others and all(site == f"{scheme}://192.0.2.10:{platform.catalog.services[n].route.ip_port}"
                          for n, site in others.items())  # fmt: skip
    caddyfile = render_tree(platform)["config/caddy/Caddyfile"].data.decode()
    assert all(f"\n{site} {{\n" in caddyfile for site in sites.values())


def test_ollamas_firewall_is_written_only_when_it_listens_beyond_this_host_and_not_for_the_lan():
    base = scenario_platform("defaults-ip-minimal")
    assert "scripts/ollama-firewall.sh" in render_tree(base)
    assert "scripts/ollama-firewall.sh" not in render_tree(_with(base, ollama_expose_lan=True))
    assert "scripts/ollama-firewall.sh" not in render_tree(
        _with(base, ollama_bind="172.17.0.1", ollama_expose_lan=True)
    )


def test_the_backup_passphrase_is_wanted_only_when_backups_are_encrypted():
    base = scenario_platform("defaults-ip-minimal")
    assert "BACKUP_PASSPHRASE" not in {s.name for s in wanted_secrets(base)}
    assert "BACKUP_PASSPHRASE" in {s.name for s in wanted_secrets(_with(base, backup_encrypt=True))}
    master = parse_env(render_tree(_with(base, backup_encrypt=True))["config/master.env"].data.decode())
    assert master["BACKUP_ENCRYPT"] == "true"


def test_an_image_override_of_a_built_container_builds_nothing():
    base = _with(scenario_platform("defaults-ip-minimal"), services=["mlflow", "monitoring"])
    built = render_tree(base)
    assert "docker/build/mlflow/Dockerfile" in built and "build" in _compose(built, "mlflow")["services"]["mlflow"]
    tree = render_tree(_with(base, images={"mlflow": "ghcr.io/example/mlflow:1.0"}))
    mlflow = _compose(tree, "mlflow")["services"]["mlflow"]
    assert "docker/build/mlflow/Dockerfile" not in tree and "build" not in mlflow
    assert mlflow["image"] == "ghcr.io/example/mlflow:1.0"


@pytest.mark.parametrize("mirror", ["mirror.local:5000", "mirror.local:5000/", "mirror.local:5000/team/"])
def test_a_registry_mirror_prefixes_every_image_once(mirror):
    tree = render_tree(_with(scenario_platform("defaults-ip-minimal"), registry_mirror=mirror))
    images = [c["image"] for path in tree if path.startswith("docker/docker-compose.")
              for c in yaml.safe_load(tree[path].data)["services"].values()]  # fmt: skip
    assert images and all(image.startswith(mirror.rstrip("/") + "/") and "//" not in image for image in images)


def test_the_config_hash_follows_a_mounted_files_bytes_and_mode_and_files_in_a_mounted_folder():
    from pathlib import Path

    root = Path("/r")
    container = {"image": "x", "volumes": ["/r/config/app:/etc/app:ro", "/r/config/one.conf:/one.conf"]}
    files = {"config/app/a.yml": RenderedFile(b"a"), "config/one.conf": RenderedFile(b"1"),
             "config/other.conf": RenderedFile(b"o")}  # fmt: skip
    assert sorted(mounted_files(container, files, root)) == ["config/app/a.yml", "config/one.conf"]
    base = config_hash_of(container, {}, mounted_files(container, files, root))
    for path, changed in (("config/app/a.yml", RenderedFile(b"b")), ("config/app/a.yml", RenderedFile(b"a", 0o600)),
                          ("config/one.conf", RenderedFile(b"1", 0o755))):  # fmt: skip
        edited = {**files, path: changed}
        assert config_hash_of(container, {}, mounted_files(container, edited, root)) != base, (path, changed)
    unmounted = {**files, "config/other.conf": RenderedFile(b"changed")}
    assert config_hash_of(container, {}, mounted_files(container, unmounted, root)) == base
