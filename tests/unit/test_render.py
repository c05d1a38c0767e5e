"""render: golden trees, determinism, secrets kept once and only in credentials.env, and template errors."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

import pytest
import yaml

from aiplatform.envfile import format_env, parse_env
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.context import Context
from aiplatform.inputs.hardware import Gpu, Hardware, format_profile_env, make_report
from aiplatform.inputs.settings import Settings
from aiplatform.paths import SERVICES_DIR, TEMPLATES_DIR
from aiplatform.render.platform import Platform
from aiplatform.render.tree import render_tree

from .conftest import fake_nvml, run_inv

GOLDEN = Path(__file__).parent / "golden"
CATALOG = load_catalog(SERVICES_DIR)
NO_GPU = Hardware(8, "Test CPU", 16, "/mnt", 500, 1000, "SSD", (), "no NVIDIA GPU found")
ONE_GPU = Hardware(16, "Test CPU", 64, "/mnt", 900, 2000, "SSD", (Gpu("NVIDIA RTX 4090", 24564, "550.54.14"),))


def fixed_secrets(platform_settings: Settings, hardware: Hardware, extra: dict | None = None) -> dict[str, str]:
    """Placeholder values (deterministic) for every secret the platform wants."""
    from aiplatform.render.platform import wanted_secrets

    shell = Platform(platform_settings, "x", CATALOG, hardware, "192.0.2.10", {})
    return {s.name: f"SECRET-{s.name}-value" for s in wanted_secrets(shell)} | (extra or {})


SCENARIOS = {
    "defaults-ip-minimal": dict(
        settings=Settings(models=["llama3.2:3b", "nomic-embed-text"]),
        tier="minimal",
        hardware=NO_GPU,
    ),
    "everything-domain-performance": dict(
        settings=Settings(
            domain="ai.example.com",
            ssl_mode="letsencrypt",
            admin_email="owner@example.com",
            services=["dify", "n8n", "flowise", "monitoring"],
            models=["llama3.1:8b", "nomic-embed-text", "codellama:13b"],
            ollama_keep_alive="30m",
            ollama_num_parallel=4,
            ollama_max_loaded_models=3,
            ollama_flash_attention=True,
        ),
        tier="performance",
        hardware=ONE_GPU,
        extra={"OPENAI_API_KEY": "sk-openai-test-key", "ANTHROPIC_API_KEY": "sk-ant-test-key"},
    ),
}


def scenario_platform(name: str) -> Platform:
    case = SCENARIOS[name]
    secrets = fixed_secrets(case["settings"], case["hardware"], case.get("extra"))
    return Platform(case["settings"], case["tier"], CATALOG, case["hardware"], "192.0.2.10", secrets)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden_tree(scenario, golden):
    tree = render_tree(scenario_platform(scenario))
    golden.check(GOLDEN / scenario, {path: file.data for path, file in tree.items()})


def test_everything_scenario_has_the_optional_parts():
    tree = render_tree(scenario_platform("everything-domain-performance"))
    assert {
        "docker/docker-compose.dify.yml",
        "docker/docker-compose.n8n.yml",
        "docker/docker-compose.flowise.yml",
    } <= set(tree)
    monitoring = yaml.safe_load(tree["docker/docker-compose.monitoring.yml"].data)
    assert "dcgm-exporter" in monitoring["services"]  # a GPU is present
    litellm = yaml.safe_load(tree["config/litellm/config.yaml"].data)
    names = [m["model_name"] for m in litellm["model_list"]]
    assert names == ["llama3.1:8b", "nomic-embed-text", "codellama:13b", "openai/*", "anthropic/*"]
    assert litellm["model_list"][1]["model_info"] == {"mode": "embedding"}
    caddy = tree["config/caddy/Caddyfile"].data.decode()
    assert "email owner@example.com" in caddy and "n8n.ai.example.com {" in caddy and "tls internal" not in caddy


def test_no_gpu_means_no_dcgm_exporter():
    tree = render_tree(scenario_platform("defaults-ip-minimal"))
    monitoring = yaml.safe_load(tree["docker/docker-compose.monitoring.yml"].data)
    assert "dcgm-exporter" not in monitoring["services"]
    assert "dcgm" not in tree["config/prometheus/prometheus.yml"].data.decode()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_compose_contracts(scenario):
    tree = render_tree(scenario_platform(scenario))
    master = parse_env(tree["config/master.env"].data.decode())
    credentials = parse_env(tree["config/credentials.env"].data.decode())
    for path, file in tree.items():
        if not path.startswith("docker/"):
            continue
        doc = yaml.safe_load(file.data)
        assert doc["name"] == "ai-platform"
        assert doc["networks"] and all(net["external"] for net in doc["networks"].values())
        for cname, container in doc["services"].items():
            spec = CATALOG.services[CATALOG.containers[cname]]
            image = container["image"]
            assert ":" in image and not image.endswith((":latest", ":main-latest")), image
            assert container["restart"] in ("unless-stopped", "no")
            labels = container["labels"]
            assert labels["ai-platform.managed"] == "true" and labels["ai-platform.service"] == spec.name
            assert re.fullmatch(r"[0-9a-f]{16}", labels["ai-platform.config-hash"])
            for port in container.get("ports", []):
                assert spec.tier == "proxy" or port.startswith("127.0.0.1:"), (cname, port)
            if spec.tier == "infra":
                assert container["networks"] == ["ai-backend"], f"{cname} must sit on ai-backend only"
            if container.get("extra_hosts"):
                assert container["extra_hosts"] == ["host.docker.internal:host-gateway"]
        for volume in (doc.get("volumes") or {}).values():
            assert volume["labels"]["ai-platform.managed"] == "true"
        # every ${VAR} a compose file uses is defined by an env file
        for name in re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", file.data.decode()):
            assert name in credentials or name in master, f"{path} uses ${{{name}}}, defined nowhere"
    published = {
        p
        for path, f in tree.items()
        if path.startswith("docker/")
        for c in yaml.safe_load(f.data)["services"].values()
        for p in c.get("ports", [])
    }
    assert "127.0.0.1:4000:4000" in published and "127.0.0.1:8080:8080" in published
    assert {"80:80", "443:443"} <= published


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_no_secret_value_outside_credentials_env(scenario):
    platform = scenario_platform(scenario)
    tree = render_tree(platform)
    assert tree["config/credentials.env"].mode == 0o600
    values = parse_env(tree["config/credentials.env"].data.decode())
    assert set(values) == set(platform.secrets)
    for path, file in tree.items():
        if path == "config/credentials.env":
            continue
        for name, value in values.items():
            assert value.encode() not in file.data, f"secret {name} leaked into {path}"


def test_unknown_service_lists_the_known_ones(tmp_path, answers):
    path = answers("services: [dify, jupyter]\n")
    result = run_inv("render", "--no-input", "--answers", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "unknown service 'jupyter'" in result.stderr
    assert "Optional services: dify, flowise, jupyterhub, milvus, mlflow, n8n, monitoring." in result.stderr
    assert not (tmp_path / "out").exists()


def test_undefined_template_value_names_template_and_value(tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    compose = templates / "services" / "redis" / "compose.yml.j2"
    compose.write_text(compose.read_text() + "# {{ settings.redis_max_clients }}\n")
    catalog = load_catalog(templates / "services")
    platform = Platform(
        Settings(models=["m"], embedding_model="m"),
        "minimal",
        catalog,
        NO_GPU,
        "192.0.2.10",
        {},
        templates_dir=templates,
    )
    with pytest.raises(UserError) as caught:
        render_tree(platform)
    message = str(caught.value)
    assert "services/redis/compose.yml.j2 line" in message
    assert "redis_max_clients" in message


def test_registry_mirror_and_override_change_only_the_image():
    base = scenario_platform("defaults-ip-minimal")
    plain = render_tree(base)
    settings = base.settings.model_copy(
        update={"registry_mirror": "mirror.local:5000", "images": {"litellm": "local/litellm:test"}}
    )
    mirrored = render_tree(Platform(settings, base.tier, CATALOG, base.hardware, base.host_ip, base.secrets))
    for path in plain:
        before, after = plain[path].data.decode(), mirrored[path].data.decode()
        if not path.startswith("docker/"):
            assert before == after, path
            continue
        changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
        for old, new in changed:
            assert re.match(r"\s+(image|ai-platform\.config-hash):", old), (path, old, new)
    litellm = yaml.safe_load(mirrored["docker/docker-compose.litellm.yml"].data)["services"]["litellm"]
    assert litellm["image"] == "local/litellm:test"
    redis = yaml.safe_load(mirrored["docker/docker-compose.redis.yml"].data)["services"]["redis"]
    assert redis["image"] == "mirror.local:5000/" + CATALOG.services["redis"].containers["redis"].image


# --- the render command: files on disk -------------------------------------------------------------------------


def _ctx(tmp_path, **flags) -> Context:
    """A context whose root holds the hardware profile setup would have written (a fixed reading: free disk space
    measured live would differ between two renders)."""
    profile = tmp_path / "root" / "config" / "hardware-profile.env"
    if not profile.exists():
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(
            format_profile_env(make_report(NO_GPU, "minimal", ["llama3.2:3b", "nomic-embed-text"], 2.3), "test")
        )
    return Context(
        answers=tmp_path / "answers.yaml",
        flags={"root": str(tmp_path / "root"), **flags},
        environ={},
        nvml=fake_nvml([]),
    )


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_render_twice_is_byte_identical_and_writes_nothing(tmp_path):
    out = tmp_path / "generated"
    first = render_command(_ctx(tmp_path), out, interactive=False)
    assert first.written.created and not first.written.changed
    before = _snapshot(out)
    second = render_command(_ctx(tmp_path), out, interactive=False)
    assert not (second.written.created or second.written.changed or second.written.removed)
    assert _snapshot(out) == before  # same bytes, same inodes, same mtimes: nothing was rewritten
    assert stat.S_IMODE(os.stat(out / "config/credentials.env").st_mode) == 0o600


def test_secrets_are_kept_and_root_credentials_win(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    first = parse_env((out / "config/credentials.env").read_text())
    # the root's credentials.env (what a deploy applied) wins over the previous render
    root_config = tmp_path / "root" / "config"
    root_config.mkdir(parents=True, exist_ok=True)
    (root_config / "credentials.env").write_text(format_env({"REDIS_PASSWORD": "FromTheRoot123"}))
    render_command(_ctx(tmp_path), out, interactive=False)
    second = parse_env((out / "config/credentials.env").read_text())
    assert second["REDIS_PASSWORD"] == "FromTheRoot123"
    assert {k: v for k, v in second.items() if k != "REDIS_PASSWORD"} == {
        k: v for k, v in first.items() if k != "REDIS_PASSWORD"
    }
    # enabling a service only adds its keys
    render_command(_ctx(tmp_path, services=["n8n", "monitoring"]), out, interactive=False)
    third = parse_env((out / "config/credentials.env").read_text())
    assert set(third) - set(second) == {"N8N_ENCRYPTION_KEY", "N8N_DB_PASSWORD", "LITELLM_KEY_N8N"}
    assert all(third[k] == v for k, v in second.items())


def test_secret_formats(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path, services=["dify", "n8n", "flowise", "monitoring"]), out, interactive=False)
    values = parse_env((out / "config/credentials.env").read_text())
    assert re.fullmatch(r"sk-[0-9a-f]{48}", values["LITELLM_MASTER_KEY"])
    assert re.fullmatch(r"[0-9a-f]{64}", values["N8N_ENCRYPTION_KEY"])
    password = values["ADMIN_PASSWORD"]
    assert re.fullmatch(r"^(?=.*[a-zA-Z])(?=.*\d).{8,}$", password)  # Dify's rule
    assert 8 <= len(password) <= 30 and re.search(r"[A-Z]", password) and re.search(r"\d", password)  # n8n's
    assert len(set(values.values())) == len(values) - 0  # every secret is its own random value


def test_failed_render_leaves_previous_tree_intact(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    before = _snapshot(out)
    with pytest.raises(UserError):
        render_command(_ctx(tmp_path, services=["nope"]), out, interactive=False)
    assert _snapshot(out) == before


def test_changed_setting_rewrites_only_affected_files(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    result = render_command(_ctx(tmp_path, ollama_keep_alive="45m"), out, interactive=False)
    assert sorted(result.written.changed) == [".aiplatform.json", "config/ollama/override.conf"]


def test_render_cli_without_terminal_never_blocks(tmp_path):
    result = run_inv(
        "render",
        "--answers",
        str(tmp_path / "absent.yaml"),
        "--out",
        str(tmp_path / "g"),
        "--root",
        str(tmp_path / "root"),
        stdin="",
    )
    assert result.returncode == 0, result.stderr
    assert "Next: inv diff" in result.stdout
    assert "absent.yaml does not exist: rendering without an answers file" in result.stderr
    assert not (tmp_path / "absent.yaml").exists()
    assert (tmp_path / "g" / "docker" / "docker-compose.caddy.yml").is_file()


def test_catalog_services_match_folders():
    assert sorted(CATALOG.services) == sorted(p.name for p in SERVICES_DIR.iterdir() if (p / "service.yaml").exists())


def _hashes(tree) -> dict[str, str]:
    return {
        name: c["labels"]["ai-platform.config-hash"]
        for path, f in tree.items()
        if path.startswith("docker/")
        for name, c in yaml.safe_load(f.data)["services"].items()
    }


def test_config_hash_follows_each_containers_own_config():
    base = scenario_platform("defaults-ip-minimal")
    before = _hashes(render_tree(base))
    more_models = base.settings.model_copy(update={"models": [*base.settings.models, "phi3:mini"]})
    after = _hashes(render_tree(Platform(more_models, base.tier, CATALOG, base.hardware, base.host_ip, base.secrets)))
    assert sorted(k for k in before if before[k] != after[k]) == ["litellm"]  # its mounted config.yaml changed
    with_n8n = base.settings.model_copy(update={"services": ["monitoring", "n8n"]})
    secrets = {**base.secrets, "N8N_DB_PASSWORD": "x" * 24, "N8N_ENCRYPTION_KEY": "y" * 64}
    added = _hashes(render_tree(Platform(with_n8n, base.tier, CATALOG, base.hardware, base.host_ip, secrets)))
    assert added["postgres"] == before["postgres"]  # a new database: the init job changes, Postgres does not
    assert added["postgres-init"] != before["postgres-init"]


def test_status_recomputes_the_labels_render_wrote(tmp_path):
    from aiplatform.generated.files import read_tree
    from aiplatform.render.confighash import expected_hashes

    out = tmp_path / "generated"
    render_command(_ctx(tmp_path, services=["dify", "n8n", "monitoring"]), out, interactive=False)
    tree = read_tree(out)
    for path in (p for p in tree if p.startswith("docker/")):
        doc = yaml.safe_load(tree[path].data)
        spec = CATALOG.services[path.split(".")[1]]
        labels = {n: c["labels"]["ai-platform.config-hash"] for n, c in doc["services"].items()}
        assert expected_hashes(spec, doc, tree, tmp_path / "root") == labels, path
    (out / "config/litellm/config.yaml").write_text("# hand edit\n")
    litellm = yaml.safe_load(read_tree(out)["docker/docker-compose.litellm.yml"].data)
    recomputed = expected_hashes(CATALOG.services["litellm"], litellm, read_tree(out), tmp_path / "root")
    assert recomputed["litellm"] != litellm["services"]["litellm"]["labels"]["ai-platform.config-hash"]


def test_secrets_given_as_settings_reach_only_credentials_env(tmp_path):
    from aiplatform.generated.build import render_platform

    given = {"admin_password": "Given-Admin-Pw-123", "openai_api_key": "sk-given-openai-456"}
    ctx = Context(
        answers=tmp_path / "answers.yaml",
        flags={"root": str(tmp_path / "root"), **given},
        environ={"AI_PLATFORM_ANTHROPIC_API_KEY": "sk-ant-given-789"},
        nvml=fake_nvml([]),
    )
    tree = render_platform(ctx, tmp_path / "generated", host_ip="192.0.2.10").tree
    credentials = parse_env(tree["config/credentials.env"].data.decode())
    assert credentials["ADMIN_PASSWORD"] == "Given-Admin-Pw-123"
    assert credentials["ANTHROPIC_API_KEY"] == "sk-ant-given-789"
    for path, file in tree.items():  # the stamp (which records flags and env) included
        if path != "config/credentials.env":
            for value in credentials.values():
                assert value.encode() not in file.data, f"a secret leaked into {path}"


# --- what the real images need ----------------------------------------------------------------------------------


def _compose(tree, service):
    return yaml.safe_load(tree[f"docker/docker-compose.{service}.yml"].data)["services"]


def test_open_webui_reaches_local_models_only_through_litellm():
    tree = render_tree(scenario_platform("defaults-ip-minimal"))
    container = _compose(tree, "open-webui")["open-webui"]
    env = container["environment"]
    assert env["ENABLE_OLLAMA_API"] == "false" and "OLLAMA_BASE_URL" not in env
    assert env["OPENAI_API_BASE_URL"] == "http://litellm:4000/v1"
    # embeddings too: LiteLLM's OpenAI-compatible API, Open WebUI's own key, the model under LiteLLM's name for it
    assert env["RAG_EMBEDDING_ENGINE"] == "openai" and env["RAG_OPENAI_API_BASE_URL"] == "http://litellm:4000/v1"
    assert env["RAG_OPENAI_API_KEY"] == env["OPENAI_API_KEY"] == "${LITELLM_KEY_OPEN_WEBUI}"
    litellm = yaml.safe_load(tree["config/litellm/config.yaml"].data)["model_list"]
    embedding = [m["model_name"] for m in litellm if m.get("model_info", {}).get("mode") == "embedding"]
    assert embedding == [env["RAG_EMBEDDING_MODEL"]] == ["nomic-embed-text"]
    assert not [name for name in env if "OLLAMA" in name and name != "ENABLE_OLLAMA_API"]
    assert "extra_hosts" not in container  # nothing of it asks the host's Ollama


def test_litellm_serves_its_docs_at_docs_and_caches_only_when_asked_with_a_ttl():
    base = scenario_platform("defaults-ip-minimal")
    tree = render_tree(base)
    assert _compose(tree, "litellm")["litellm"]["environment"]["DOCS_URL"] == "/docs"
    assert "cache" not in yaml.safe_load(tree["config/litellm/config.yaml"].data)["litellm_settings"]
    cached = base.settings.model_copy(update={"litellm_cache": True, "litellm_cache_ttl": 120})
    config = yaml.safe_load(
        render_tree(Platform(cached, base.tier, CATALOG, base.hardware, base.host_ip, base.secrets))[
            "config/litellm/config.yaml"
        ].data
    )["litellm_settings"]
    assert (
        config["cache"] is True and config["cache_params"]["ttl"] == 120 and config["cache_params"]["type"] == "redis"
    )
    command = _compose(tree, "redis")["redis"]["command"]
    assert command[command.index("--maxmemory") + 1] == "512mb"
    assert command[command.index("--maxmemory-policy") + 1] == "volatile-lru"  # only keys with a TTL are evicted


def test_dify_as_upstreams_nginx_routes_it():
    tree = render_tree(scenario_platform("everything-domain-performance"))
    dify = _compose(tree, "dify")
    assert dify["dify-plugin-daemon"]["extra_hosts"] == ["host.docker.internal:host-gateway"]
    assert dify["dify-api"]["environment"]["INTERNAL_FILES_URL"] == "http://dify-api:5001"
    assert dify["dify-api"]["environment"]["ENDPOINT_URL_TEMPLATE"] == "https://dify.ai.example.com/e/{hook_id}"
    caddy = tree["config/caddy/Caddyfile"].data.decode()
    site = caddy[caddy.index("dify.ai.example.com {") :].split("\n}\n")[0]
    for path in ("/mcp*", "/triggers*"):
        assert f"handle {path} {{\n\t\treverse_proxy dify-api:5001\n" in site
    assert 'header_up Dify-Hook-Url "{scheme}://{host}{uri}"' in site


def test_prometheus_scrapes_only_what_answers_without_a_secret():
    tree = render_tree(scenario_platform("everything-domain-performance"))
    jobs = [job["job_name"] for job in yaml.safe_load(tree["config/prometheus/prometheus.yml"].data)["scrape_configs"]]
    assert "flowise" not in jobs  # Flowise 3.x wants an API key for /api/v1/metrics
    assert {"prometheus", "node", "cadvisor", "grafana", "n8n", "dcgm"} <= set(jobs)


def test_streamed_answers_are_not_compressed_by_caddy():
    caddy = render_tree(scenario_platform("defaults-ip-minimal"))["config/caddy/Caddyfile"].data.decode()
    # encode wraps every response it handles and holds its headers back (caddy#6293): only static files get it
    encodes = re.findall(r"^\s*encode\b.*$", caddy, re.M)
    assert encodes == ["\tencode @static zstd gzip"], encodes
    static = re.search(r"@static path (.+)", caddy)
    assert static and all(pattern.startswith("*.") for pattern in static.group(1).split())


def _with(services: list[str], **update) -> Platform:
    base = scenario_platform("defaults-ip-minimal")
    settings = base.settings.model_copy(update={"services": services, "privileged_services": ["jupyterhub"], **update})
    return Platform(settings, base.tier, CATALOG, base.hardware, base.host_ip, fixed_secrets(settings, NO_GPU))


@pytest.mark.parametrize(("container", "service"), [("mlflow", "mlflow"), ("jupyterhub", "jupyterhub")])
def test_a_derived_image_is_built_from_the_pinned_catalog_image(container, service):
    spec = CATALOG.services[service].containers[container]
    tree = render_tree(_with([service]))
    compose = _compose(tree, service)[container]
    assert compose["image"] == spec.build.tag
    assert compose["build"] == {"context": f"{tree_root()}/docker/build/{container}"}
    assert list(compose)[:3] == ["image", "build", "container_name"]  # what runs, how it is built, then the rest
    dockerfile = tree[f"docker/build/{container}/Dockerfile"].data.decode()
    assert f"FROM {spec.image}\n" in dockerfile and re.search(r"==\d+\.\d+", dockerfile)  # the driver pinned too
    mirrored = render_tree(_with([service], registry_mirror="mirror.local:5000"))
    assert f"FROM mirror.local:5000/{spec.image}\n" in mirrored[f"docker/build/{container}/Dockerfile"].data.decode()
    overridden = render_tree(_with([service], images={container: "local/standin:1.0"}))
    assert f"docker/build/{container}/Dockerfile" not in overridden  # an override brings its own image
    assert "build" not in _compose(overridden, service)[container]


def tree_root() -> str:
    return str(scenario_platform("defaults-ip-minimal").settings.root)


def test_mlflow_keeps_its_runs_in_postgres_and_answers_only_its_hosts():
    tree = render_tree(_with(["mlflow"], domain="ai.example.com"))
    env = _compose(tree, "mlflow")["mlflow"]["environment"]
    assert env["MLFLOW_BACKEND_STORE_URI"] == "postgresql+psycopg2://mlflow:${MLFLOW_DB_PASSWORD}@postgres:5432/mlflow"
    assert "mlflow.ai.example.com" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert "config/postgres/init/mlflow.sh" in tree


def test_jupyterhub_notebooks_carry_the_platforms_labels_network_and_a_litellm_key():
    tree = render_tree(_with(["jupyterhub"]))
    config = tree["config/jupyterhub/jupyterhub_config.py"].data.decode()
    compile(config, "jupyterhub_config.py", "exec")  # Python that parses
    assert '"ai-platform.managed": "true"' in config and 'network_name = "ai-platform"' in config
    assert 'os.environ["LITELLM_KEY_JUPYTERHUB"]' in config and "SECRET-" not in config
    hub = _compose(tree, "jupyterhub")["jupyterhub"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in hub["volumes"]
    assert hub["environment"]["LITELLM_KEY_JUPYTERHUB"] == "${LITELLM_KEY_JUPYTERHUB}"


def test_milvus_keeps_minio_and_etcd_unpublished():
    containers = _compose(render_tree(_with(["milvus"])), "milvus")
    assert "ports" not in containers["milvus-minio"] and "ports" not in containers["milvus-etcd"]
    assert containers["milvus-minio"]["networks"] == ["ai-backend"]
    assert containers["milvus"]["ports"] == ["127.0.0.1:19530:19530"]
    assert containers["milvus"]["environment"]["MINIO_ACCESS_KEY_ID"] == "${MILVUS_MINIO_ACCESS_KEY}"


def test_a_file_mounted_with_the_long_syntax_is_in_the_containers_config_hash():
    from aiplatform.generated.files import RenderedFile
    from aiplatform.render.confighash import mounted_files

    root = Path("/srv/ai")
    files = {"config/app/app.yml": RenderedFile(b"a: 1\n"), "config/other.yml": RenderedFile(b"b: 2\n")}
    short = {"volumes": ["/srv/ai/config/app:/etc/app:ro"]}
    long = {"volumes": [{"type": "bind", "source": "/srv/ai/config/app/app.yml", "target": "/etc/app.yml"}]}
    assert list(mounted_files(short, files, root)) == ["config/app/app.yml"]
    assert list(mounted_files(long, files, root)) == ["config/app/app.yml"]
