"""Input that reaches a generated file cannot change what that file means: systemd units, compose files, env files
and the Caddyfile get values escaped for them, or the value is refused with a message naming it."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from aiplatform.envfile import format_env, parse_env
from aiplatform.errors import UserError
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.images import image_problem
from aiplatform.inputs.settings import Settings
from aiplatform.paths import TEMPLATES_DIR
from aiplatform.render.platform import Platform
from aiplatform.render.templates import systemd_quote
from aiplatform.render.tree import render_tree

from .conftest import PROJECT, run_inv
from .test_render import CATALOG, NO_GPU, fixed_secrets, scenario_platform


def settings_error(**values) -> str:
    """The message `inv settings` gives for these --set values (it must fail cleanly)."""
    args = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    result = run_inv("settings", "--answers", str(PROJECT / "tests/unit/empty-answers.yaml"), *args)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ollama_origins", "http://a\nExecStartPre=/bin/rm -rf /"),
        ("ollama_keep_alive", "5m\nExecStartPre=/bin/true"),
        ("root", "/srv/ai\nExecStartPre=/bin/true"),
        ("admin_name", "Boss\rX"),
        ("domain", "ai.example.com\n"),
        ("models", "llama3\tx"),
    ],
)
def test_control_characters_are_refused_and_named(key, value):
    message = settings_error(**{key: value})
    assert f"key '{key}'" in message and "control characters" in message


def test_secret_with_a_newline_is_refused_without_showing_it():
    result = run_inv(
        "settings",
        "--answers",
        str(PROJECT / "tests/unit/empty-answers.yaml"),
        env={"AI_PLATFORM_ADMIN_PASSWORD": "Secret-Line-One\nSecond-Line"},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "AI_PLATFORM_ADMIN_PASSWORD" in result.stderr and "control characters" in result.stderr
    assert "Secret-Line-One" not in result.stderr + result.stdout


def test_a_newline_never_reaches_an_env_file():
    with pytest.raises(UserError, match="ADMIN_NAME holds a line break"):
        format_env({"ADMIN_NAME": "a\nB=1"})


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"domain": "999.1.1.1"}, "looks like an IPv4 address but is not one"),
        ({"domain": "ai.example.123"}, "expected a domain name"),
        ({"root": ""}, "empty path"),
        ({"admin_email": "a{b}@example.com"}, "expected an email"),
        ({"ollama_origins": "http://a b"}, "no spaces, commas or quotes"),
        ({"registry_mirror": "reg${POSTGRES_PASSWORD}"}, "compose would interpolate"),
        ({"registry_mirror": "https://mirror.local:5000"}, "is not a registry address like registry.local:5000"),
        ({"registry_mirror": "mirror.local:5000 --insecure"}, "is not a registry address like registry.local:5000"),
        ({"images": "litellm=ghcr.io/x/litellm:${LITELLM_MASTER_KEY}"}, "compose would interpolate"),
        ({"images": "litellm=ghcr.io/berriai/litellm:main"}, "is not pinned"),
        ({"redis_maxmemory": "lots"}, "256mb"),
    ],
)
def test_values_that_would_mislead_a_consumer_are_refused(values, fragment):
    message = settings_error(**values)
    assert fragment in message, message


def test_one_rule_for_pinned_images_in_catalog_and_settings(tmp_path):
    for image in ("ghcr.io/berriai/litellm:main", "postgres:16-alpine", "redis", "x:latest", "x:main-stable"):
        assert image_problem(image) is not None, image
    for image in (
        "postgres:16.15-alpine",
        "ghcr.io/berriai/litellm:v1.89.7-stable",
        "local/x:test",
        "r@sha256:" + "a" * 64,
    ):
        assert image_problem(image) is None, image
    services = tmp_path / "services"
    shutil.copytree(TEMPLATES_DIR / "services", services)
    spec = services / "litellm" / "service.yaml"
    spec.write_text(re.sub(r"image: \S+", "image: ghcr.io/berriai/litellm:main", spec.read_text()))
    assert re.search("is not pinned", refused(services, "litellm"))
    assert "is not pinned" in settings_error(images="litellm=ghcr.io/berriai/litellm:main")


def _drop_in(root: str) -> str:
    settings = Settings(models=["m"], embedding_model="m", root=root, ollama_origins=["https://a.example", "app://*"])
    platform = Platform(settings, "minimal", CATALOG, NO_GPU, "192.0.2.10", fixed_secrets(settings, NO_GPU))
    return render_tree(platform)["config/ollama/override.conf"].data.decode()


def _systemd_words(line: str) -> list[str]:
    """Split one unit-file value as systemd does (quotes, C escapes), then undo %% and $$."""
    words, word, quoted, i = [], None, False, 0
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line):
            word = (word or "") + line[i + 1]
            i += 2
            continue
        if char == '"':
            quoted = not quoted
            word = word or ""
        elif char == " " and not quoted:
            if word is not None:
                words.append(word)
            word = None
        else:
            word = (word or "") + char
        i += 1
    if word is not None:
        words.append(word)
    return [w.replace("%%", "%").replace("$$", "$") for w in words]


def test_drop_in_quotes_a_root_with_spaces_quotes_and_specifiers():
    root = '/srv/my ai "platform" 100%n $HOME'
    text = _drop_in(root)
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStartPre="))
    assert _systemd_words(exec_line.removeprefix("ExecStartPre=+")) == ["/bin/sh", f"{root}/scripts/ollama-firewall.sh"]
    origins = next(line for line in text.splitlines() if "OLLAMA_ORIGINS" in line)
    assert _systemd_words(origins.removeprefix("Environment=")) == ["OLLAMA_ORIGINS=https://a.example,app://*"]
    assert [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")] == [
        "[Service]",
        *["Environment"] * 6,
        "ExecStartPre",
    ]


def test_systemd_quote_escapes_what_systemd_would_expand():
    assert systemd_quote('a "b" \\ 5%') == '"a \\"b\\" \\\\ 5%%"'
    assert systemd_quote("$HOME", exec_line=True) == '"$$HOME"'


# --- the catalog -----------------------------------------------------------------------------------------------


def refused(services, name: str) -> str:
    """The error of a service folder the catalog left out; the others are still read, and enabling it says why."""
    catalog = load_catalog(services)
    assert name not in catalog.services and "postgres" in catalog.services
    with pytest.raises(UserError) as caught:
        catalog.require(name)
    assert catalog.broken[name][0] in str(caught.value)
    return catalog.broken[name][0]


def _catalog_copy(tmp_path):
    services = tmp_path / "services"
    shutil.copytree(TEMPLATES_DIR / "services", services)
    return services


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_a_service_that_depends_on_itself_is_refused(tmp_path):
    services = _catalog_copy(tmp_path)
    _edit(services / "n8n" / "service.yaml", "depends_on: [postgres]", "depends_on: [postgres, n8n]")
    assert re.search("names the service itself", refused(services, "n8n"))


def test_a_dependency_cycle_is_refused(tmp_path):
    services = _catalog_copy(tmp_path)
    _edit(services / "n8n" / "service.yaml", "depends_on: [postgres]", "depends_on: [postgres, flowise]")
    _edit(services / "flowise" / "service.yaml", "depends_on: [postgres]", "depends_on: [postgres, n8n]")
    assert re.search("cycle", refused(services, "n8n")) and re.search("cycle", refused(services, "flowise"))


def test_a_subdomain_with_a_space_is_refused(tmp_path):
    services = _catalog_copy(tmp_path)
    _edit(services / "n8n" / "service.yaml", "subdomain: n8n", "subdomain: my n8n")
    assert re.search(r"route\.subdomain", refused(services, "n8n"))


def test_a_port_on_all_interfaces_is_refused_by_the_catalog(tmp_path):
    services = _catalog_copy(tmp_path)
    _edit(services / "n8n" / "service.yaml", '"127.0.0.1:5678:5678"', '"5678:5678"')
    assert re.search(r"must bind 127\.0\.0\.1", refused(services, "n8n"))


@pytest.mark.parametrize(("old", "new", "key"), [
    ("    user: n8n\n", "    user: N8N\n", "databases.0.user"),
    ("    format: hex64\n", "    format: hex64\n    size: 3\n", "secrets.0.size"),
    ("  - step: owner account\n", "  - step: owner account\n    retry: 3\n", "setup.0.retry"),
])  # fmt: skip
def test_an_error_in_a_list_item_of_service_yaml_points_at_its_own_line(tmp_path, old, new, key):
    services = _catalog_copy(tmp_path)
    path = services / "n8n" / "service.yaml"
    _edit(path, old, new)
    line = 1 + path.read_text().splitlines().index(new.splitlines()[-1])
    assert f"{path} line {line}: key {key!r}: " in refused(services, "n8n")


@pytest.mark.parametrize(("old", "new", "key"), [
    ("litellm_key: true", "litellm_key: true\nlitelm_model: gpt", "'litelm_model'"),
    ("    port: 5678\n", "    port: 5678\n    restart_policy: always\n", "'containers.n8n.restart_policy'"),
    ("  ip_port: 5443", "  ip_port: 5443\n  tls: off", "'route.tls'"),
])  # fmt: skip
def test_a_service_yaml_key_the_catalog_does_not_know_is_refused_naming_the_key_and_file(tmp_path, old, new, key):
    services = _catalog_copy(tmp_path)
    _edit(services / "n8n" / "service.yaml", old, new)
    message = refused(services, "n8n")
    assert f"{services / 'n8n' / 'service.yaml'} line " in message and f"key {key}" in message, message


@pytest.mark.parametrize("port", [0, 65536])
def test_a_route_ip_port_outside_1_to_65535_is_refused(tmp_path, port):
    services = _catalog_copy(tmp_path)
    _edit(services / "n8n" / "service.yaml", "ip_port: 5443", f"ip_port: {port}")
    assert re.search(r"route\.ip_port", refused(services, "n8n"))


def _render_with(tmp_path, service: str, addition: str, services_on=("n8n", "monitoring")):
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    compose = templates / "services" / service / "compose.yml.j2"
    text = compose.read_text()
    first = next(
        line
        for line in text.splitlines()
        if line.startswith("  ") and line.endswith(":") and not line.startswith("   ")
    )
    compose.write_text(text.replace(first + "\n", first + "\n" + addition, 1))
    catalog = load_catalog(templates / "services")
    settings = Settings(models=["m"], embedding_model="m", services=list(services_on))
    platform = Platform(settings, "minimal", catalog, NO_GPU, "192.0.2.10", fixed_secrets(settings, NO_GPU), templates)
    return render_tree(platform)


@pytest.mark.parametrize(
    ("addition", "fragment"),
    [
        ("    image: evil/n8n:1.0.0\n", "sets image"),
        ("    network_mode: host\n", "network_mode"),
        ("    privileged: true\n", "privileged"),
        ("    cap_add: [NET_ADMIN]\n", "cap_add"),
        ('    labels:\n      ai-platform.managed: "false"\n', "ai-platform.managed"),
        ("    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n", "'volumes' is given twice"),
        ('    ports:\n      - "5679:5679"\n', "on all interfaces"),
    ],
)
def test_a_template_cannot_override_what_the_platform_sets(tmp_path, addition, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        _render_with(tmp_path, "n8n", addition)


def test_the_docker_socket_needs_a_declared_privilege(tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    compose = templates / "services" / "n8n" / "compose.yml.j2"
    _edit(
        compose, "      - n8n-data:/home/node/.n8n\n", "      - n8n-data:/home/node/.n8n\n      - /run/docker.sock:/s\n"
    )
    settings = Settings(models=["m"], embedding_model="m", services=["n8n"])
    catalog = load_catalog(templates / "services")
    platform = Platform(settings, "minimal", catalog, NO_GPU, "192.0.2.10", fixed_secrets(settings, NO_GPU), templates)
    with pytest.raises(UserError, match="mounts the Docker socket"):
        render_tree(platform)
    spec = templates / "services" / "n8n" / "service.yaml"
    _edit(spec, "    host_ollama: true\n", "    host_ollama: true\n    privileges: [docker-socket]\n")
    platform = Platform(
        settings, "minimal", load_catalog(templates / "services"), NO_GPU, "192.0.2.10", platform.secrets, templates
    )
    assert "/run/docker.sock:/s" in render_tree(platform)["docker/docker-compose.n8n.yml"].data.decode()


def test_a_templates_own_labels_are_kept_and_the_platforms_win(tmp_path):
    tree = _render_with(tmp_path, "n8n", "    labels:\n      com.example.team: ai\n")
    labels = yaml.safe_load(tree["docker/docker-compose.n8n.yml"].data)["services"]["n8n"]["labels"]
    assert labels["com.example.team"] == "ai" and labels["ai-platform.managed"] == "true"


def test_privileges_come_from_service_yaml():
    tree = render_tree(scenario_platform("everything-domain-performance"))
    monitoring = yaml.safe_load(tree["docker/docker-compose.monitoring.yml"].data)["services"]
    assert "/dev/disk/:/dev/disk:ro" in monitoring["cadvisor"]["volumes"]
    assert any(arg.startswith("--disable_metrics=") for arg in monitoring["cadvisor"]["command"])
    assert monitoring["node-exporter"]["pid"] == "host"
    assert monitoring["dcgm-exporter"]["cap_add"] == ["SYS_ADMIN"]
    for name, container in monitoring.items():
        if name not in ("node-exporter", "dcgm-exporter"):
            assert not {"privileged", "pid", "cap_add", "network_mode"} & set(container), name


def test_every_compose_value_from_settings_is_a_literal_to_compose(tmp_path):
    # `$` in a setting would be interpolated by compose unless doubled: an admin name with `${POSTGRES_PASSWORD}`
    # stays that text.
    settings = Settings(models=["m"], embedding_model="m", admin_name="Me ${POSTGRES_PASSWORD}")
    platform = Platform(settings, "minimal", CATALOG, NO_GPU, "192.0.2.10", fixed_secrets(settings, NO_GPU))
    tree = render_tree(platform)
    compose = yaml.safe_load(tree["docker/docker-compose.open-webui.yml"].data)
    assert compose["services"]["open-webui"]["environment"]["WEBUI_ADMIN_NAME"] == "Me $${POSTGRES_PASSWORD}"
    assert parse_env(tree["config/master.env"].data.decode())["ADMIN_NAME"] == "Me ${POSTGRES_PASSWORD}"
