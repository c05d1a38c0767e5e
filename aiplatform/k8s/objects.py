"""The Kubernetes objects of one service's containers: workloads, Services, claims, network policies. Pure dicts.

Choices, each the same for every service:
- A container that holds a claim runs as one replica that lets go of it before its successor starts: a
  StatefulSet in the infra tier (the databases), else a Deployment with the Recreate strategy. Every other
  workload (a Job too) that mounts the same claim is scheduled onto the node of the claim's owner (pod affinity
  on the host name): claims are ReadWriteOnce, so sharing one means co-location (Dify's api and worker).
- Pods reach only what compose let them reach: each one's NetworkPolicy admits traffic from pods of the networks
  it is on (the `ai-platform/network.<name>` labels), and a pod only on the internal network `ai-backend` may
  reach only that network and the cluster's DNS. Caddy alone is admitted from anywhere.
- Pods get no service links (`N8N_PORT=tcp://...` variables break apps) and no API token (none talks to the API).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiplatform.k8s.labels import NAME
from aiplatform.k8s.translate import Container

COMPONENT = "app.kubernetes.io/component"
NETWORK = "ai-platform/network."  # + the compose network's name
INTERNAL = "ai-backend"  # compose's internal network: no way out
HOST = "kubernetes.io/hostname"
GPU_RUNTIME = "nvidia"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def meta(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "labels": dict(labels)}


def selector(labels: dict[str, str], container: str) -> dict[str, str]:
    return {NAME: labels[NAME], COMPONENT: container}


def pod_template(
    c: Container, labels: dict[str, str], volumes: list[dict[str, Any]], owner: dict[str, str] | None
) -> dict[str, Any]:
    """The pod of one container: its labels (selector, networks), volumes, GPU runtime, affinity to a claim's owner."""
    pod_labels = {**labels, **selector(labels, c.name), **{f"{NETWORK}{n}": "true" for n in c.networks}}
    spec: dict[str, Any] = {"enableServiceLinks": False, "automountServiceAccountToken": False, "containers": [c.spec]}
    if volumes:
        spec["volumes"] = volumes
    if c.gpu:
        spec["runtimeClassName"] = GPU_RUNTIME
        spec["tolerations"] = [GPU_TOLERATION]
    if owner is not None:
        term = {"labelSelector": {"matchLabels": owner}, "topologyKey": HOST}
        spec["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {"metadata": {"labels": pod_labels}, "spec": spec}


def workload(c: Container, labels: dict[str, str], template: dict[str, Any], stateful: bool) -> dict[str, Any]:
    """A long-running container: StatefulSet or Deployment, one replica (the platform is one of each)."""
    spec: dict[str, Any] = {"replicas": 1, "selector": {"matchLabels": selector(labels, c.name)}, "template": template}
    if stateful:
        spec["serviceName"] = c.name
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(c.name, labels), "spec": spec}
    if any(m.kind == "pvc" for m in c.mounts):
        spec["strategy"] = {"type": "Recreate"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(c.name, labels), "spec": spec}


def job(c: Container, labels: dict[str, str], template: dict[str, Any], inputs: bytes) -> dict[str, Any]:
    """A one-shot container as a Job named with the hash of its content and of the files it reads (`inputs`): a
    Job's template cannot change, so a changed one is a new Job (and the old one is pruned)."""
    template["spec"]["restartPolicy"] = "OnFailure"
    spec = {"backoffLimit": 10, "template": template}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode() + inputs).hexdigest()[:10]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(f"{c.name}-{digest}", labels), "spec": spec}


def service(c: Container, labels: dict[str, str], exposed: bool) -> dict[str, Any]:
    """The Service other pods call the container by (its compose name). Exposed (Caddy): a LoadBalancer on the
    ports compose published, which k3s's built-in balancer serves on the nodes' addresses."""
    if exposed:
        ports = [{"name": f"{proto.lower()}-{host}", "port": host, "targetPort": target, "protocol": proto}
                 for host, target, proto in c.published]  # fmt: skip
    else:
        ports = [{"name": f"tcp-{p}", "port": p, "targetPort": p, "protocol": "TCP"} for p in c.ports]
    spec: dict[str, Any] = {"type": "LoadBalancer" if exposed else "ClusterIP", "selector": selector(labels, c.name)}
    spec["ports"] = ports
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(c.name, labels), "spec": spec}


def claim(name: str, labels: dict[str, str], size_gi: int) -> dict[str, Any]:
    """A ReadWriteOnce claim of the cluster's default storage class (k3s: local-path, on the node using it first)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(name, labels),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{size_gi}Gi"}}},
    }


def network_policy(c: Container, labels: dict[str, str], exposed: bool) -> dict[str, Any]:
    """Who may reach the container's pods (and, on the internal network only, where they may go)."""
    peers = [{"podSelector": {"matchLabels": {f"{NETWORK}{n}": "true"}}} for n in c.networks]
    ingress: list[dict[str, Any]] = [{}] if exposed else [{"from": peers}]
    spec: dict[str, Any] = {"podSelector": {"matchLabels": selector(labels, c.name)}, "ingress": ingress}
    spec["policyTypes"] = ["Ingress"]
    if c.networks == [INTERNAL]:
        dns = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
        spec["policyTypes"].append("Egress")
        spec["egress"] = [
            {"to": peers},
            {"to": [dns], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        ]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(c.name, labels),
            "spec": spec}  # fmt: skip
