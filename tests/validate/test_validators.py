"""Every generated artifact passes the real tool that will consume it (see ../shared/reference/environment.md)."""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from aiplatform.envfile import parse_env
from tests.standins.ollama_unit import OLLAMA_UNIT

from .conftest import require


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_docker_compose_config_over_the_whole_project(rendered):
    docker = require("docker")
    files = sorted((rendered / "docker").glob("docker-compose.*.yml"))
    args = [
        docker,
        "compose",
        "--env-file",
        str(rendered / "config/master.env"),
        "--env-file",
        str(rendered / "config/credentials.env"),
    ]
    for path in files:
        args += ["-f", str(path)]
    # A clean environment: the shell's variables must not fill in what the env files should define.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    result = run(*args, "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", f"compose warned: {result.stderr}"
    import json

    project = json.loads(result.stdout)
    assert project["name"] == "ai-platform"
    containers = {c for path in files for c in yaml.safe_load(path.read_text())["services"]}
    assert set(project["services"]) == containers


def test_caddy_validate(rendered):
    caddy = require("caddy")
    result = run(
        caddy,
        "validate",
        "--config",
        str(rendered / "config/caddy/Caddyfile"),
        "--adapter",
        "caddyfile",
        env={
            **os.environ,
            "XDG_DATA_HOME": str(rendered.parent / "caddy-data"),
            "XDG_CONFIG_HOME": str(rendered.parent / "caddy-config"),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_promtool_check_config(rendered):
    promtool = require("promtool")
    result = run(promtool, "check", "config", str(rendered / "config/prometheus/prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_grafana_provisioning_is_well_formed(rendered):
    # Grafana has no offline checker: check the shape its provisioning reader requires.
    datasources = yaml.safe_load((rendered / "config/grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert datasources["apiVersion"] == 1 and datasources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((rendered / "config/grafana/provisioning/dashboards/ai-platform.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    import json

    dashboard = json.loads((rendered / "config/grafana/dashboards/ai-platform.json").read_text())
    assert dashboard["uid"] == "ai-platform" and dashboard["panels"]


def test_systemd_analyze_verify_ollama_override(rendered, tmp_path):
    analyze = require("systemd-analyze")
    binary = tmp_path / "ollama"
    binary.write_text("#!/bin/sh\nexec sleep infinity\n")
    binary.chmod(0o755)
    units = tmp_path / "units"
    (units / "ollama.service.d").mkdir(parents=True)
    (units / "ollama.service").write_text(OLLAMA_UNIT.format(binary=binary))
    override = (rendered / "config/ollama/override.conf").read_text()
    (units / "ollama.service.d" / "override.conf").write_text(override)
    # setup puts the firewall script where the drop-in's ExecStartPre expects it, under the root
    script = rendered / "scripts/ollama-firewall.sh"
    if script.exists():
        root = Path(parse_env((rendered / "config/master.env").read_text())["BASE_DIR"])
        (root / "scripts").mkdir(parents=True, exist_ok=True)
        (root / "scripts/ollama-firewall.sh").write_bytes(script.read_bytes())
        (root / "scripts/ollama-firewall.sh").chmod(0o755)
        assert "ExecStartPre=+" in override
    result = run(analyze, "verify", str(units / "ollama.service"), env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"})
    # systemd-analyze reports unknown keys and bad syntax as warnings with exit code 0: read its output too.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert "OLLAMA_HOST=" in override


def test_systemd_analyze_catches_a_broken_override(tmp_path):
    # The check above can fail: a drop-in with an unknown key is reported.
    analyze = require("systemd-analyze")
    units = tmp_path / "units"
    (units / "ollama.service.d").mkdir(parents=True)
    (units / "ollama.service").write_text(OLLAMA_UNIT.format(binary="/bin/sleep"))
    (units / "ollama.service.d" / "override.conf").write_text("[Service]\nEnviroment=OLLAMA_HOST=0.0.0.0\n")
    result = run(analyze, "verify", str(units / "ollama.service"), env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"})
    assert "Unknown key" in result.stderr


def test_litellm_loads_its_config(rendered):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price list
    try:
        from litellm.proxy._types import ConfigYAML
        from litellm.types.router import Deployment
    except ImportError:
        pytest.fail("litellm is not installed: `nox -s validate` installs the version the image runs.")

    config = yaml.safe_load((rendered / "config/litellm/config.yaml").read_text())
    ConfigYAML.model_validate(copy.deepcopy(config))
    for entry in config["model_list"]:
        Deployment(**copy.deepcopy(entry))
    # Every os.environ/VAR the config reads is set in the LiteLLM container's environment.
    compose = yaml.safe_load((rendered / "docker/docker-compose.litellm.yml").read_text())
    environment = compose["services"]["litellm"]["environment"]
    wanted = {value.split("/", 1)[1] for value in _strings(config) if value.startswith("os.environ/")}
    assert wanted <= set(environment), f"not in the container's environment: {wanted - set(environment)}"
    credentials = parse_env((rendered / "config/credentials.env").read_text())
    assert credentials["LITELLM_MASTER_KEY"].startswith("sk-")


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def test_postgres_init_script_is_valid_sh(rendered):
    for script in sorted((rendered / "config/postgres/init").glob("*.sh")):
        result = run("sh", "-n", str(script))
        assert result.returncode == 0, f"{script}: {result.stderr}"
        assert os.stat(script).st_mode & 0o111, f"{script} is not executable"


def test_litellm_loader_rejects_a_model_without_its_provider_model():
    # The loader check above can fail: an entry whose litellm_params lack `model` is refused.
    try:
        from litellm.types.router import Deployment
    except ImportError:
        pytest.fail("litellm is not installed: `nox -s validate` installs the version the image runs.")
    with pytest.raises(Exception, match="model"):
        Deployment(model_name="x", litellm_params={"api_base": "http://h:1"})


def test_the_validators_are_the_releases_the_images_run():
    # caddy validate and the streaming test mean something for the image only when they run the same Caddy.
    import re as regex

    from aiplatform.inputs.catalog import load_catalog
    from aiplatform.paths import SERVICES_DIR

    catalog = load_catalog(SERVICES_DIR)
    pinned = regex.search(r":(\d+\.\d+\.\d+)", catalog.services["caddy"].containers["caddy"].image).group(1)
    assert run(require("caddy"), "version").stdout.startswith(f"v{pinned} "), "run through `nox -s validate`"
    from importlib.metadata import version

    import litellm  # noqa: F401  (installed by the session)

    image = catalog.services["litellm"].containers["litellm"].image
    assert image.endswith(f":v{version('litellm')}"), (image, version("litellm"))
