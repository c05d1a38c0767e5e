"""The Kubernetes renderer (aiplatform/k8s/), pure: the k8s/ files render makes, read as YAML. No kubectl here
(tests/validate/test_k8s.py builds and validates the tree with the real tools)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from aiplatform.envfile import parse_env
from aiplatform.generated.build import render_command, render_platform
from aiplatform.generated.diff import applied_tree
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.context import Context
from aiplatform.k8s.labels import MANAGED_BY, NAME, PART_OF, TIER_LABEL
from aiplatform.k8s.translate import Vars

from .conftest import fake_nvml

EVERYTHING = {
    "domain": "ai.example.com",
    "ssl_mode": "letsencrypt",
    "admin_email": "owner@example.com",
    "services": ["dify", "n8n", "flowise", "monitoring", "mlflow", "jupyterhub", "milvus"],
    "privileged_services": ["jupyterhub"],
    "openai_api_key": "sk-unit-openai",
    "ollama_nodes": [{"address": "192.168.10.21"}, {"address": "gpu3.lan", "port": 11500}],
}
CATALOG = load_catalog()
TIERS = {c: spec.tier for spec in CATALOG.services.values() for c in spec.containers} | {
    name: spec.tier for name, spec in CATALOG.services.items()
}


def _render(base: Path, flags: dict, gpus=()) -> dict:
    ctx = Context(
        answers=base / "answers.yaml",
        flags={"root": str(base / "root"), **flags},
        environ={},
        nvml=fake_nvml(list(gpus)),
    )
    return render_platform(ctx, base / "generated", host_ip="192.0.2.10", target="k8s").tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict:
    return _render(tmp_path_factory.mktemp("k8s"), EVERYTHING, [("NVIDIA RTX 4090", 24564)])


def _objects(tree: dict) -> list[tuple[str, dict]]:
    found = []
    for path, file in tree.items():
        if path.startswith("k8s/") and path.endswith(".yaml") and not path.startswith("k8s/config/"):
            found += [(path, doc) for doc in yaml.safe_load_all(file.data) if doc and doc["kind"] != "Kustomization"]
    return found


def _kind(tree: dict, kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in _objects(tree) if doc["kind"] == kind}


def _workloads(tree: dict) -> dict[str, dict]:
    return {**_kind(tree, "Deployment"), **_kind(tree, "StatefulSet"), **_kind(tree, "Job")}


def _container(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]["containers"][0]


def test_compose_stays_the_default_and_unchanged(tmp_path):
    ctx = Context(answers=tmp_path / "answers.yaml", flags={"root": str(tmp_path / "root")}, environ={},
                  nvml=fake_nvml([]))  # fmt: skip
    compose = render_platform(ctx, tmp_path / "generated", host_ip="192.0.2.10").tree
    both = render_platform(ctx, tmp_path / "generated", host_ip="192.0.2.10", target="k8s").tree
    assert not any(p.startswith("k8s/") for p in compose)
    fresh = (".aiplatform.json", "config/credentials.env")  # the stamp; secrets are new in each unwritten render
    assert {p: f for p, f in both.items() if not p.startswith("k8s/") and p not in fresh} == {
        p: f for p, f in compose.items() if p not in fresh
    }


def test_a_render_without_a_target_keeps_the_targets_generated_has(tmp_path):
    """After `inv render --target k8s`, a plain `inv render` (as add, settings set and upgrade run it) renders k8s/
    again rather than dropping it; `--target compose` drops it."""
    ctx = Context(answers=tmp_path / "answers.yaml", flags={"root": str(tmp_path / "root")}, environ={},
                  nvml=fake_nvml([]))  # fmt: skip
    out = tmp_path / "generated"
    for target, has_k8s in (("k8s", True), (None, True), ("compose", False), (None, False)):
        render_command(ctx, out, interactive=False, target=target)
        assert (out / "k8s" / "kustomization.yaml").is_file() == has_k8s, target
        assert (out / "docker" / "docker-compose.litellm.yml").is_file(), target


def test_every_object_carries_the_labels_and_its_tier(tree):
    objects = _objects(tree)
    assert len(objects) > 50
    for path, doc in objects:
        labels = doc["metadata"]["labels"]
        assert labels[PART_OF] == labels[MANAGED_BY] == "ai-platform", path
        service = path.split("/")[1] if path.count("/") == 2 else None
        if service in CATALOG.services:
            assert labels[NAME] == service and labels[TIER_LABEL] == CATALOG.services[service].tier, path
        else:
            assert labels[TIER_LABEL] in ("infra", "ai"), path


def test_every_healthcheck_becomes_a_startup_and_readiness_probe(tree):
    deployments = {**_kind(tree, "Deployment"), **_kind(tree, "StatefulSet")}
    checked = 0
    for spec in CATALOG.enabled(EVERYTHING["services"]):
        for name, cspec in spec.containers.items():
            if name not in deployments or not cspec.healthcheck:
                continue
            container = _container(deployments[name])
            startup, ready = container["startupProbe"], container["readinessProbe"]
            command = startup["exec"]["command"]
            if cspec.healthcheck[0] == "CMD":
                assert command == cspec.healthcheck[1:], name
            else:
                assert command[:2] == ["/bin/sh", "-c"], name
            assert ready["exec"] == startup["exec"]
            assert startup["periodSeconds"] * startup["failureThreshold"] >= cspec.health_timeout, name
            if cspec.health_path:
                assert any(cspec.health_path in arg for arg in command), name
            checked += 1
    assert checked >= 15


def test_no_secret_value_outside_credentials_env(tree):
    secrets = parse_env(tree["config/credentials.env"].data.decode())
    assert tree["k8s/credentials.env"].mode == 0o600
    assert parse_env(tree["k8s/credentials.env"].data.decode()) == secrets
    assert "credentials.env" in tree["k8s/.gitignore"].data.decode().split()
    values = [v for v in secrets.values() if len(v) >= 8]
    for path, file in tree.items():
        if path.startswith("k8s/") and path != "k8s/credentials.env":
            text = file.data.decode()
            assert not [v for v in values if v in text], path


def test_only_caddy_is_exposed(tree):
    services = _kind(tree, "Service")
    exposed = {name for name, svc in services.items() if svc["spec"].get("type") not in ("ClusterIP", None)}
    exposed -= {name for name, svc in services.items() if svc["spec"].get("type") == "ExternalName"}
    assert exposed == {"caddy"}
    assert services["caddy"]["spec"]["type"] == "LoadBalancer"
    assert {p["port"] for p in services["caddy"]["spec"]["ports"]} >= {80, 443}


def test_claims_are_held_by_one_pod_and_shared_ones_are_co_located(tree):
    workloads = _workloads(tree)
    claims = _kind(tree, "PersistentVolumeClaim")
    holders: dict[str, list[str]] = {}
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, name
                holders.setdefault(volume["persistentVolumeClaim"]["claimName"], []).append(name)
        if workload["kind"] == "Deployment" and any("persistentVolumeClaim" in v for v in pod.get("volumes", [])):
            assert workload["spec"]["replicas"] == 1 and workload["spec"]["strategy"] == {"type": "Recreate"}, name
        if workload["kind"] == "StatefulSet":
            assert workload["spec"]["replicas"] == 1
    assert set(holders) == set(claims)
    shared = {claim: names for claim, names in holders.items() if len(names) > 1}
    assert "dify-storage" in shared
    for claim, names in shared.items():
        owners = [n for n in names if "affinity" not in workloads[n]["spec"]["template"]["spec"]]
        assert len(owners) == 1, (claim, names)
        for name in set(names) - set(owners):
            term = workloads[name]["spec"]["template"]["spec"]["affinity"]["podAffinity"]
            (rule,) = term["requiredDuringSchedulingIgnoredDuringExecution"]
            assert rule["topologyKey"] == "kubernetes.io/hostname"
            assert rule["labelSelector"]["matchLabels"] == workloads[owners[0]]["spec"]["selector"]["matchLabels"]


def test_gpu_workloads_get_runtime_class_limit_and_toleration(tree):
    gpu = [w for w in _workloads(tree).values() if "nvidia.com/gpu" in str(w)]
    assert [w["metadata"]["name"] for w in gpu] == ["dcgm-exporter"]
    pod = gpu[0]["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


def test_one_shots_are_jobs_named_by_their_content(tmp_path, tree):
    jobs = _kind(tree, "Job")
    assert {re.sub(r"-[0-9a-f]{10}$", "", n) for n in jobs} == {"postgres-init", "dify-permissions",
                                                                 "flowise-permissions"}  # fmt: skip
    fewer = _render(tmp_path / "fewer", {**EVERYTHING, "services": ["n8n"]})
    init = [n for n in jobs if n.startswith("postgres-init-")]
    assert len(init) == 1
    assert init != [n for n in _kind(fewer, "Job") if n.startswith("postgres-init-")]  # fewer databases to make


def test_network_policies_mirror_the_compose_networks(tree):
    policies = _kind(tree, "NetworkPolicy")
    assert set(policies) == {w["metadata"]["name"].rsplit("-", 1)[0] if w["kind"] == "Job" else n
                             for n, w in _workloads(tree).items()}  # fmt: skip
    assert policies["caddy"]["spec"]["ingress"] == [{}]
    postgres = policies["postgres"]["spec"]  # only on ai-backend, compose's internal network
    assert postgres["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"ai-platform/network.ai-backend": "true"}}}]}
    ]
    assert "Egress" in postgres["policyTypes"]
    assert "Egress" not in policies["litellm"]["spec"]["policyTypes"]


def test_ollama_hosts_are_services_without_selectors(tree):
    services, slices = _kind(tree, "Service"), _kind(tree, "EndpointSlice")
    assert "selector" not in services["ollama-local"]["spec"]
    assert slices["ollama-local"]["endpoints"] == [{"addresses": ["192.0.2.10"]}]
    assert slices["ollama-192-168-10-21"]["endpoints"] == [{"addresses": ["192.168.10.21"]}]
    port = {"name": "http", "port": 11500, "protocol": "TCP"}
    assert services["ollama-gpu3-lan"]["spec"] == {"type": "ExternalName", "externalName": "gpu3.lan", "ports": [port]}
    litellm = tree["k8s/config/litellm/config.yaml"].data.decode()
    assert "http://ollama-192-168-10-21:11434" in litellm and "192.168.10.21" not in litellm
    assert not [p for p, f in tree.items() if p.startswith("k8s/") and b"host.docker.internal" in f.data]


def test_kustomization_lists_every_object_and_generates_the_secret_and_configs(tree):
    kustomization = yaml.safe_load(tree["k8s/kustomization.yaml"].data)
    assert kustomization["namespace"] == "ai-platform"
    files = {p[4:] for p in tree if p.endswith(".yaml") and not p.startswith(("k8s/config/", "k8s/kustomization"))
             and p.startswith("k8s/")}  # fmt: skip
    assert set(kustomization["resources"]) == files
    assert kustomization["secretGenerator"][0]["envs"] == ["credentials.env"]
    maps = {m["name"]: m for m in kustomization["configMapGenerator"]}
    assert {"litellm-config-yaml", "caddy", "prometheus"} <= set(maps)
    for m in maps.values():
        for entry in m["files"]:
            assert f"k8s/{entry.split('=', 1)[1]}" in tree


def test_what_does_not_map_is_said(tree):
    text = tree["k8s/not-mapped.txt"].data.decode()
    for words in ("jupyterhub/jupyterhub is not rendered", "KubeSpawner", "cadvisor is not rendered",
                  "/metrics/cadvisor", "6443/tcp", "10250/tcp", "8472/udp", "dify-storage is shared", "co-located",
                  "mlflow/mlflow: its image"):  # fmt: skip
        assert words in text
    assert "jupyterhub" not in _workloads(tree) and "cadvisor" not in _workloads(tree)


def test_interpolation_becomes_kubernetes_own():
    variables = Vars({"REDIS_PASSWORD"}, {"BASE_DIR": "/srv/ai"})
    used: set[str] = set()
    assert variables.convert("redis://:${REDIS_PASSWORD}@redis/2", used) == "redis://:$(REDIS_PASSWORD)@redis/2"
    assert used == {"REDIS_PASSWORD"}
    assert variables.convert('echo "$$f" ${BASE_DIR}', set()) == 'echo "$$f" /srv/ai'  # k8s reads $$ as $
    assert (
        variables.convert("pg_isready -U $${POSTGRES_USER}", set(), expands=False) == "pg_isready -U ${POSTGRES_USER}"
    )
    with pytest.raises(ValueError, match="REDIS_PASSWORD"):
        variables.convert("${REDIS_PASSWORD}", set(), expands=False)


def test_a_secret_inside_a_value_is_read_from_an_entry_of_its_own_first(tree):
    open_webui = _container(_kind(tree, "Deployment")["open-webui"])
    names = [e["name"] for e in open_webui["env"]]
    database = next(e for e in open_webui["env"] if e["name"] == "DATABASE_URL")
    assert "$(OPENWEBUI_DB_PASSWORD)@postgres" in database["value"]
    assert names.index("OPENWEBUI_DB_PASSWORD") < names.index("DATABASE_URL")
    key = next(e for e in open_webui["env"] if e["name"] == "OPENAI_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "credentials", "key": "LITELLM_KEY_OPEN_WEBUI"}
    assert "LITELLM_KEY_OPEN_WEBUI" not in names  # read whole: no entry of its own needed


def test_a_compose_deploy_never_copies_the_kubernetes_tree_into_the_root(tmp_path, tree):
    """generated/k8s/ (its own copy of the secrets included) is kubectl's to apply, not a file of the root."""
    generated = tmp_path / "generated"
    for path, file in tree.items():
        (generated / path).parent.mkdir(parents=True, exist_ok=True)
        (generated / path).write_bytes(file.data)
    applied = applied_tree(generated)
    assert "k8s/credentials.env" in tree and "config/credentials.env" in applied
    assert not [path for path in applied if path.startswith("k8s/")]
