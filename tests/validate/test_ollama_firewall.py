"""The rendered ollama-firewall.sh run for real with iptables, in network namespaces that stand for the host, a
machine on the LAN and a container on a Docker bridge (a Linux bridge named br-*, as compose names them)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiplatform.generated.build import render_platform
from aiplatform.inputs.context import Context

from ..unit.conftest import fake_nvml
from .conftest import require

PORT = 11434


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


def reaches(namespace: str, address: str) -> bool:
    probe = f"import socket; socket.create_connection(({address!r}, {PORT}), timeout=2).close()"
    return sh("ip", "netns", "exec", namespace, "python3", "-c", probe, check=False).returncode == 0


def _namespaces_possible() -> str:
    """A tag for this run's namespace and link names; skips (fails in CI) where namespaces cannot be made."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("network namespaces need root (nox -s validate runs as root in CI)")
        pytest.skip("network namespaces need root")
    require("ip")
    require("iptables")
    return str(os.getpid())[-5:]


def _made(names: tuple[str, ...], commands: list[list[str]]) -> Iterator[tuple[str, ...]]:
    """Run the commands that make the namespaces `names`, yield them, delete them afterwards."""
    try:
        for command in commands:
            sh(*command)
        yield names
    finally:
        for name in names:
            sh("ip", "netns", "del", name, check=False)


@pytest.fixture
def network():
    """host <-veth-> lan (10.99.0.0/24), host <-bridge br-aiptest-> container (172.31.99.0/24)."""
    tag = _namespaces_possible()
    host, lan, box = f"aiph{tag}", f"aipl{tag}", f"aipc{tag}"
    commands = [
        *(["ip", "netns", "add", name] for name in (host, lan, box)),
        ["ip", "link", "add", f"vh{tag}", "netns", host, "type", "veth", "peer", "name", f"vl{tag}", "netns", lan],
        ["ip", "link", "add", f"vb{tag}", "netns", host, "type", "veth", "peer", "name", f"vc{tag}", "netns", box],
        ["ip", "-n", host, "link", "add", "br-aiptest", "type", "bridge"],
        ["ip", "-n", host, "link", "set", f"vb{tag}", "master", "br-aiptest"],
        ["ip", "-n", host, "addr", "add", "10.99.0.1/24", "dev", f"vh{tag}"],
        ["ip", "-n", lan, "addr", "add", "10.99.0.2/24", "dev", f"vl{tag}"],
        ["ip", "-n", host, "addr", "add", "fd00:99::1/64", "dev", f"vh{tag}", "nodad"],
        ["ip", "-n", lan, "addr", "add", "fd00:99::2/64", "dev", f"vl{tag}", "nodad"],
        ["ip", "-n", host, "addr", "add", "172.31.99.1/24", "dev", "br-aiptest"],
        ["ip", "-n", box, "addr", "add", "172.31.99.2/24", "dev", f"vc{tag}"],
    ]
    for name in (host, lan, box):
        commands.append(["ip", "-n", name, "link", "set", "lo", "up"])
    for name, link in (
        (host, f"vh{tag}"),
        (host, f"vb{tag}"),
        (host, "br-aiptest"),
        (lan, f"vl{tag}"),
        (box, f"vc{tag}"),
    ):
        commands.append(["ip", "-n", name, "link", "set", link, "up"])
    yield from _made((host, lan, box), commands)


# What ufw (and firewalld) leave in INPUT: policy DROP, loopback and established traffic accepted, nothing else.
UFW_LIKE_INPUT = [
    ["-P", "INPUT", "DROP"],
    ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
    ["-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
]


@pytest.mark.parametrize("policy", ["accept", "default-deny"])
def test_firewall_admits_loopback_and_docker_bridges_only(network, tmp_path, policy):
    host, lan, box = network
    if policy == "default-deny":
        for tables in ("iptables", "ip6tables"):
            for rule in UFW_LIKE_INPUT:
                sh("ip", "netns", "exec", host, tables, "-w", *rule)
    ctx = Context(
        answers=tmp_path / "answers.yaml", flags={"root": str(tmp_path / "root")}, environ={}, nvml=fake_nvml([])
    )
    tree = render_platform(ctx, tmp_path / "generated", host_ip="192.0.2.1").tree
    script = tmp_path / "ollama-firewall.sh"
    script.write_bytes(tree["scripts/ollama-firewall.sh"].data)
    script.chmod(0o755)
    # Like Ollama (Go) on a wildcard address, the listener takes IPv4 and IPv6 alike (a dual-stack socket on ::).
    listener = subprocess.Popen(
        ["ip", "netns", "exec", host, "python3", "-m", "http.server", str(PORT), "--bind", "::"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not reaches(host, "127.0.0.1") and time.monotonic() < deadline:
            time.sleep(0.2)
        if policy == "accept":
            assert reaches(lan, "10.99.0.1"), "without the rule, the LAN reaches Ollama's port"
            assert reaches(lan, "fd00:99::1"), "without the rule, the LAN reaches it over IPv6 too"
        for _ in range(2):  # a second run rebuilds the chain in place: still one jump, same rules
            sh("ip", "netns", "exec", host, "/bin/sh", str(script))
        rules = sh("ip", "netns", "exec", host, "iptables", "-w", "-S").stdout
        assert rules.count("-j AI_PLATFORM_OLLAMA") == 1, rules
        rules6 = sh("ip", "netns", "exec", host, "ip6tables", "-w", "-S").stdout
        assert rules6.count("-j AI_PLATFORM_OLLAMA") == 1, rules6
        assert reaches(host, "127.0.0.1")
        assert reaches(host, "10.99.0.1")  # the host's own LAN address goes through lo
        assert reaches(box, "172.31.99.1")  # a container on a compose bridge (accepted, not handed back to INPUT)
        assert not reaches(lan, "10.99.0.1")  # another machine on the LAN
        assert not reaches(lan, "fd00:99::1")  # ... over IPv6 as well
        assert reaches(host, "::1")
    finally:
        listener.terminate()
        listener.wait(timeout=5)
    assert Path(script).read_text().startswith("#!/bin/sh")


@pytest.fixture
def node_network():
    """node <-veth-> platform host (10.98.0.0/24), node <-veth-> another LAN host (10.97.0.0/24)."""
    tag = _namespaces_possible()
    node, platform, lan = f"aipn{tag}", f"aipp{tag}", f"aipq{tag}"
    commands = [
        *(["ip", "netns", "add", name] for name in (node, platform, lan)),
        ["ip", "link", "add", f"np{tag}", "netns", node, "type", "veth", "peer", "name", f"pn{tag}", "netns", platform],
        ["ip", "link", "add", f"nl{tag}", "netns", node, "type", "veth", "peer", "name", f"ln{tag}", "netns", lan],
        ["ip", "-n", node, "addr", "add", "10.98.0.1/24", "dev", f"np{tag}"],
        ["ip", "-n", platform, "addr", "add", "10.98.0.2/24", "dev", f"pn{tag}"],
        ["ip", "-n", node, "addr", "add", "10.97.0.1/24", "dev", f"nl{tag}"],
        ["ip", "-n", lan, "addr", "add", "10.97.0.2/24", "dev", f"ln{tag}"],
    ]
    for name, link in ((node, f"np{tag}"), (node, f"nl{tag}"), (platform, f"pn{tag}"), (lan, f"ln{tag}")):
        commands.append(["ip", "-n", name, "link", "set", link, "up"])
    commands += [["ip", "-n", name, "link", "set", "lo", "up"] for name in (node, platform, lan)]
    yield from _made((node, platform, lan), commands)


def test_a_nodes_firewall_admits_the_platform_host_and_not_the_lan(node_network, tmp_path):
    node, platform, lan = node_network
    answers = tmp_path / "answers.yaml"
    answers.write_text("ollama_nodes: [{address: 10.98.0.1, name: gpu2}]\n")
    ctx = Context(answers=answers, flags={"root": str(tmp_path / "root")}, environ={}, nvml=fake_nvml([]))
    tree = render_platform(ctx, tmp_path / "generated", host_ip="10.98.0.2").tree  # the platform host's address
    script = tmp_path / "node-firewall.sh"
    script.write_bytes(tree["scripts/nodes/gpu2/ollama-firewall.sh"].data)
    listener = subprocess.Popen(
        ["ip", "netns", "exec", node, "python3", "-m", "http.server", str(PORT), "--bind", "::"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not reaches(node, "127.0.0.1") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reaches(lan, "10.97.0.1"), "without the rule, the LAN reaches the node's Ollama"
        for _ in range(2):
            sh("ip", "netns", "exec", node, "/bin/sh", str(script))
        assert reaches(platform, "10.98.0.1")  # LiteLLM, from the platform host
        assert reaches(node, "127.0.0.1")
        assert not reaches(lan, "10.97.0.1")  # another host on the LAN
        rules = sh("ip", "netns", "exec", node, "iptables", "-w", "-S").stdout
        assert rules.count(f"--dport {PORT} -j AI_PLATFORM_NODE") == 1 and "--dport 9100" in rules
    finally:
        listener.terminate()
        listener.wait(timeout=5)
