"""Ollama stays on its GPU hosts (a systemd service, as with compose): in the cluster each host of LiteLLM's pool is
a Service without a selector, `ollama-<node>`, whose EndpointSlice holds the host's address (a host given by name
is an ExternalName Service instead). Pods call `http://ollama-<node>:PORT` where compose called the host's address
or host.docker.internal."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from aiplatform.k8s.labels import PLATFORM
from aiplatform.k8s.objects import meta
from aiplatform.k8s.translate import slug
from aiplatform.render.platform import PoolNode

SERVICE = "ollama"  # the name label of these objects


def service_name(node: PoolNode) -> str:
    return f"ollama-{slug(node.label)}"


def rewrites(pool: list[PoolNode]) -> dict[str, str]:
    """Each node's URL as compose's containers call it -> the URL of its Service."""
    return {node.url: f"http://{service_name(node)}:{urlsplit(node.url).port}" for node in pool}


def node_objects(node: PoolNode, host_ip: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The Service (and EndpointSlice) of one pool node; the local one is this host, `host_ip`."""
    url = urlsplit(node.url)
    address = host_ip if node.label == "local" else str(url.hostname)
    name, port = service_name(node), int(url.port or 11434)
    ports = [{"name": "http", "port": port, "protocol": "TCP"}]
    try:
        family = f"IPv{ipaddress.ip_address(address).version}"
    except ValueError:  # a host name: the cluster's DNS answers with its CNAME
        spec = {"type": "ExternalName", "externalName": address, "ports": ports}
        return [{"apiVersion": "v1", "kind": "Service", "metadata": meta(name, labels), "spec": spec}]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, labels), "spec": {"ports": ports}}
    slice_labels = {**labels, "kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": PLATFORM}
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta(name, slice_labels),
        "addressType": family,
        "endpoints": [{"addresses": [address]}],
        "ports": ports,
    }
    return [service, endpoints]
