"""Render the Kubernetes (k3s) target: the compose tree render just made, read back, as a kustomize tree. Pure.

    k8s/kustomization.yaml       namespace ai-platform, the tool's labels, the Secret from credentials.env, one
                                 ConfigMap per config file or folder a container mounts
    k8s/credentials.env          the Secret's source (mode 0600, git-ignored): kustomize reads only files below it
    k8s/config/...               the config files the ConfigMaps are made of (Ollama's URLs as the cluster has them)
    k8s/namespace.yaml, k8s/<service>/<kind>-<name>.yaml, k8s/ollama/...
    k8s/not-mapped.txt           what has no faithful Kubernetes form, and what to do instead

Reading the compose files keeps both targets one description: the same images (digests included), environment,
commands, ports and healthchecks. objects.py says how each container becomes objects; translate.py how a compose
entry becomes a container.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from aiplatform.envfile import parse_env
from aiplatform.generated.files import RenderedFile, Tree, sha256
from aiplatform.inputs.catalog import ServiceSpec
from aiplatform.k8s import objects, ollama
from aiplatform.k8s.labels import COMMON_LABELS, NAME, NAMESPACE, PLATFORM, TIER_ORDER, service_labels
from aiplatform.k8s.translate import SECRET, Container, Mount, Vars, mount_of, translate
from aiplatform.render.platform import Platform, enabled_services, ollama_pool

K8S = "k8s"
NOT_MAPPED = f"{K8S}/not-mapped.txt"
CREDENTIALS = "credentials.env"
KUBERNETES_VERSION = "1.36"  # the Kubernetes (k3s v1.36) release the tree is validated against
# What runs instead of a container that cannot run in a cluster, by container name.
INSTEAD = {
    "jupyterhub": "JupyterHub with KubeSpawner (the zero-to-jupyterhub chart): notebooks as pods, not containers "
    "spawned through the Docker socket",
    "cadvisor": "the kubelet's own cAdvisor metrics (each node's /metrics/cadvisor); Prometheus's `cadvisor` job "
    "finds no target",
    "node-exporter": "a node-exporter DaemonSet (hostPID, the host's / read-only), as kube-prometheus-stack runs "
    "it, or the exporter on each host; Prometheus's `node` job finds no target",
}
STATIC_NOTES = [
    "Ollama stays on the GPU hosts (the systemd service `inv setup` installs): LiteLLM and Open WebUI call the "
    "Services ollama-<node> (ollama/), whose EndpointSlices hold the hosts' addresses (a host given by name: an "
    "ExternalName Service).",
    "Host firewall scripts (scripts/ollama-firewall.sh, scripts/nodes/*) stay per node: on a k3s node also admit "
    "the pod network (10.42.0.0/16 by default) to Ollama's port, and open 6443/tcp (the API server; agents to the "
    "server), 10250/tcp (the kubelet) and 8472/udp (flannel's VXLAN) between the nodes only.",
    "Ports compose publishes on 127.0.0.1 are not published: `kubectl -n ai-platform port-forward svc/NAME PORT` "
    "reaches one. Caddy alone is exposed, by a LoadBalancer Service k3s's built-in balancer serves on the nodes.",
]


@dataclass
class K8sTree:
    files: Tree = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _Dumper(yaml.SafeDumper):
    """Plain YAML: a value used twice (a probe's command) is written twice, not as an anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(*docs: dict[str, Any]) -> RenderedFile:
    return RenderedFile(yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, width=120).encode())


def _rewrite(text: str, urls: dict[str, str]) -> str:
    for old, new in urls.items():
        text = text.replace(old, new)
    return text


def _named_ports(texts: list[str], names: list[str]) -> dict[str, set[int]]:
    """container -> the ports other containers and config files reach it on (`name:port` anywhere in them)."""
    found: dict[str, set[int]] = {name: set() for name in names}
    pattern = re.compile(rf"(?<![\w.-])({'|'.join(map(re.escape, names))}):(\d{{1,5}})\b")
    for text in texts:
        for name, port in pattern.findall(text):
            found[name].add(int(port))
    return found


def _catalog_ports(spec: ServiceSpec, found: dict[str, set[int]]) -> None:
    for name, container in spec.containers.items():
        if container.port and name in found:
            found[name].add(container.port)
    targets = [m.target for m in spec.metrics]
    if spec.route:
        targets += [spec.route.upstream, *(p.upstream for p in spec.route.paths.values())]
    for target in targets:
        name, _, port = target.partition(":")
        if name in found:
            found[name].add(int(port))


def _claim_owners(entries: dict[str, Any], spec: ServiceSpec, root: str) -> dict[str, str]:
    """claim -> the first long-running container that mounts it (the others are scheduled beside it)."""
    owners: dict[str, str] = {}
    for name, entry in entries.items():
        cspec = spec.containers.get(name)
        if cspec and cspec.oneshot:
            continue
        for volume in entry.get("volumes") or []:
            mount = mount_of(volume, root)
            if mount.kind == "pvc":
                owners.setdefault(mount.name, name)
    return owners


class _Builder:
    """Collects the files, ConfigMaps, claims and notes of one render."""

    def __init__(self, platform: Platform, tree: Tree) -> None:
        self.platform, self.tree = platform, tree
        self.out = K8sTree()
        self.configmaps: dict[str, dict[str, Any]] = {}
        self.claims: dict[str, list[str]] = {}  # claim -> the containers that mount it, owner first
        self.claim_labels: dict[str, dict[str, str]] = {}
        self.urls = ollama.rewrites(ollama_pool(platform.settings))

    def write(self, path: str, *docs: dict[str, Any]) -> None:
        self.out.files[f"{K8S}/{path}"] = _dump(*docs)

    def config_volume(self, mount: Mount, labels: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], bytes]:
        """The ConfigMap of a mounted config file or folder (made once, its files copied below k8s/config/), the
        volume and mount of it, and its files' bytes."""
        source = mount.source
        files = {p: f for p, f in self.tree.items() if p == source or p.startswith(f"{source}/")}
        if not files:
            raise ValueError(f"{source} is mounted but render made no such file or folder")
        single = source in files
        keys = {p: (p.rsplit("/", 1)[-1] if single else p[len(source) + 1 :].replace("/", "__")) for p in files}
        if mount.name not in self.configmaps:
            for path, file in files.items():
                text = _rewrite(file.data.decode(), self.urls)
                self.out.files[f"{K8S}/{path}"] = RenderedFile(text.encode())
            self.configmaps[mount.name] = {
                "name": mount.name,
                "files": [f"{keys[p]}={p}" for p in sorted(files)],
                "options": {"labels": labels},
            }
        items = [{"key": keys[p], "path": p[len(source) + 1 :] if not single else keys[p]} for p in sorted(files)]
        for item, path in zip(items, sorted(files), strict=True):
            if files[path].mode & 0o111:
                item["mode"] = 0o555  # type: ignore[assignment]
        volume = {"name": f"config-{mount.name}"[:63], "configMap": {"name": mount.name, "items": items}}
        volume_mount = {"name": volume["name"], "mountPath": mount.path, "readOnly": True}
        if single:
            volume_mount["subPath"] = keys[source]
        return volume, volume_mount, b"".join(files[p].data for p in sorted(files))

    def container(
        self, spec: ServiceSpec, c: Container, labels: dict[str, str], oneshot: bool, owners: dict[str, str]
    ) -> None:
        """The objects of one container, into its service's folder."""
        volumes: dict[str, dict[str, Any]] = {}
        mounts, inputs = [], b""
        owner = None
        for mount in c.mounts:
            if mount.kind == "config":
                volume, volume_mount, data = self.config_volume(mount, self.labels_of(spec))
                inputs += data
            else:
                volume = {"name": mount.name, "persistentVolumeClaim": {"claimName": mount.name}}
                volume_mount = {
                    "name": mount.name,
                    "mountPath": mount.path,
                    **({"readOnly": True} if mount.read_only else {}),
                }
                self.claims.setdefault(mount.name, []).append(c.name)
                self.claim_labels.setdefault(mount.name, labels)
                if owners.get(mount.name, c.name) != c.name:
                    owner = owners[mount.name]
            volumes.setdefault(volume["name"], volume)
            mounts.append(volume_mount)
        if mounts:
            c.spec["volumeMounts"] = mounts
        owner_selector = objects.selector(labels, owner) if owner else None
        template = objects.pod_template(c, labels, list(volumes.values()), owner_selector)
        folder = spec.name
        if oneshot:
            secrets = dict(self.platform.secrets)
            inputs += "".join(f"{k}={sha256(secrets.get(k, '').encode())}\n" for k in sorted(c.secrets)).encode()
            made = objects.job(c, labels, template, inputs)
            self.write(f"{folder}/job-{c.name}.yaml", made)
        else:
            stateful = spec.tier == "infra" and any(m.kind == "pvc" for m in c.mounts)
            made = objects.workload(c, labels, template, stateful)
            self.write(f"{folder}/{made['kind'].lower()}-{c.name}.yaml", made)
            if c.ports:
                self.write(f"{folder}/service-{c.name}.yaml", objects.service(c, labels, spec.tier == "proxy"))
        self.write(f"{folder}/networkpolicy-{c.name}.yaml", objects.network_policy(c, labels, spec.tier == "proxy"))

    def labels_of(self, spec: ServiceSpec) -> dict[str, str]:
        return service_labels(spec.name, spec.tier)


def render_k8s(platform: Platform, tree: Tree) -> K8sTree:
    """The k8s/ files for the compose tree `tree` that render_tree made for `platform`, and what did not map."""
    b = _Builder(platform, tree)
    services = enabled_services(platform)
    variables = Vars(set(platform.secrets), parse_env(tree["config/master.env"].data.decode(), "master.env"))
    composes = {
        spec.name: yaml.safe_load(_rewrite(tree[f"docker/docker-compose.{spec.name}.yml"].data.decode(), b.urls))
        for spec in services
    }
    names = [name for doc in composes.values() for name in doc["services"]]
    texts = [yaml.safe_dump(doc) for doc in composes.values()]
    texts += [
        _rewrite(f.data.decode(), b.urls)
        for p, f in tree.items()
        if p.startswith("config/") and p.endswith((".yaml", ".yml", "Caddyfile"))
    ]
    ports = _named_ports(texts, names)
    notes = list(STATIC_NOTES)
    for spec in services:
        _catalog_ports(spec, ports)
        labels = b.labels_of(spec)
        owners = _claim_owners(composes[spec.name]["services"], spec, str(platform.settings.root))
        for name, entry in composes[spec.name]["services"].items():
            cspec = spec.containers.get(name)
            timeout = cspec.health_timeout if cspec else 180
            c = translate(name, entry, str(platform.settings.root), variables, timeout, ports.get(name, set()))
            where = f"{spec.name}/{name}"
            if c.problems:
                instead = INSTEAD.get(name, "run it on a host outside the cluster")
                notes.append(f"{where} is not rendered: it {'; '.join(c.problems)}. Instead: {instead}.")
                continue
            notes += [f"{where}: {note}." for note in c.notes]
            if c.built:
                notes.append(
                    f"{where}: its image {c.spec['image']} is built on the box by deploy: push it to a registry the "
                    "cluster pulls from, or import it on each node (`k3s ctr images import`)."
                )
            if c.gpu:
                notes.append(f"{where}: compose reserves every GPU of the host; here it asks for one nvidia.com/gpu.")
            b.container(spec, c, labels, bool(cspec and cspec.oneshot), owners)
    for claim, users in b.claims.items():
        size = 1
        b.write(f"{b.claim_labels[claim][NAME]}/persistentvolumeclaim-{claim}.yaml",
                objects.claim(claim, b.claim_labels[claim], size))  # fmt: skip
        if len(set(users)) > 1:
            notes.append(
                f"The claim {claim} is shared by {', '.join(dict.fromkeys(users))}: claims are ReadWriteOnce, so "
                "they are co-located on one node (pod affinity); a ReadWriteMany storage class (NFS, Longhorn) "
                "would let them spread."
            )
    ollama_labels = service_labels(ollama.SERVICE, "ai")
    for node in ollama_pool(platform.settings):
        b.write(
            f"ollama/service-{ollama.service_name(node)}.yaml",
            *ollama.node_objects(node, platform.host_ip, ollama_labels),
        )
    namespace_labels = service_labels(PLATFORM, TIER_ORDER[0])
    b.write(
        "namespace.yaml",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": objects.meta(NAMESPACE, namespace_labels)},
    )
    secrets = "".join(f"{key}={value}\n" for key, value in sorted(platform.secrets.items()))
    b.out.files[f"{K8S}/{CREDENTIALS}"] = RenderedFile(secrets.encode(), 0o600)
    b.out.files[f"{K8S}/.gitignore"] = RenderedFile(f"# The Secret's values.\n{CREDENTIALS}\n".encode())
    resources = sorted(
        p[len(K8S) + 1 :] for p in b.out.files if p.endswith(".yaml") and not p.startswith(f"{K8S}/config/")
    )
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "labels": [{"pairs": dict(COMMON_LABELS), "includeSelectors": False, "includeTemplates": True}],
        "resources": resources,
        "secretGenerator": [
            {"name": SECRET, "envs": [CREDENTIALS], "options": {"labels": service_labels(SECRET, TIER_ORDER[0])}}
        ],
        "configMapGenerator": [b.configmaps[name] for name in sorted(b.configmaps)],
    }
    b.out.files[f"{K8S}/kustomization.yaml"] = _dump(kustomization)
    b.out.notes = notes
    b.out.files[NOT_MAPPED] = RenderedFile("".join(f"- {note}\n" for note in notes).encode())
    return b.out
