"""The whole job on a Debian 12 guest with systemd as PID 1, driven over ssh and checked from outside with testinfra.

The tests run in this file's order on one guest, each from the state the one before left: boot, setup (with the
Ollama stand-in as the installed Ollama), setup's and doctor's words for each way the seed's Ollama service broke.
"""

from __future__ import annotations

import json
import shlex
import socket
import time
from typing import Any

from tests.vm.conftest import PROJECT, record
from tests.vm.machine import Machine

INV = f"cd {PROJECT} && .venv/bin/inv"
DROPIN = "/etc/systemd/system/ollama.service.d/override.conf"


def inv(machine: Machine, args: str, timeout: float = 900) -> tuple[int, str]:
    done = machine.ssh(f"{INV} {args} 2>&1", timeout=timeout, check=False)
    return done.returncode, done.stdout


def doctor(machine: Machine, args: str = "") -> dict[str, dict[str, str]]:
    """`inv doctor --json`: each check by name."""
    code, out = inv(machine, f"doctor --json {args}", timeout=300)
    try:
        found: dict[str, Any] = json.loads(out[out.index("{") :])
    except ValueError as exc:
        raise AssertionError(f"inv doctor --json (exit {code}) printed no JSON:\n{out}") from exc
    return {check["name"]: check for check in found["checks"]}


def failed(checks: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: f"{c['detail']} (fix: {c['fix']})" for name, c in checks.items() if c["status"] == "fail"}


def test_boot_systemd_is_pid_1_and_sshd_runs(guest: Any) -> None:
    assert guest.file("/proc/1/comm").content_string.strip() == "systemd"
    assert guest.service("ssh").is_running
    assert guest.socket("tcp://0.0.0.0:22").is_listening
    assert guest.system_info.distribution == "debian" and guest.system_info.release.startswith("12")


def test_setup_installs_the_dropin_and_ollama_answers(machine: Machine, guest: Any) -> None:
    started = time.monotonic()
    code, out = inv(machine, "setup --docker-source distro --yes", timeout=1500)
    record("inv setup in the guest", time.monotonic() - started)
    assert code == 0, out
    dropin = guest.file(DROPIN)
    assert dropin.exists and 'Environment="OLLAMA_HOST=0.0.0.0:11434"' in dropin.content_string
    ollama = guest.service("ollama")
    assert ollama.is_enabled and ollama.is_running
    # the drop-in is in force: the service's environment has it and the stand-in listens on every address
    environment = guest.check_output("systemctl show ollama -p Environment")
    assert "OLLAMA_HOST=0.0.0.0:11434" in environment
    assert guest.socket("tcp://0.0.0.0:11434").is_listening
    assert guest.process.get(comm="ollama").user == "ollama"
    # daemon.json written and Docker restarted with it
    assert guest.check_output("docker info --format '{{.LiveRestoreEnabled}} {{.LoggingDriver}}'") == "true json-file"
    # the tier's models pulled through the API
    tags = json.loads(guest.check_output("curl -fsS http://127.0.0.1:11434/api/tags"))
    assert {m["name"] for m in tags["models"]} >= {"llama3.2:3b", "nomic-embed-text:latest"}
    checks = doctor(machine)
    assert not failed(checks), checks
    for step in ("ollama 1: systemd unit active", "ollama 2: port listening", "ollama 3: API answers"):
        assert checks[step]["status"] == "ok", checks[step]
    # a second setup changes nothing
    code, out = inv(machine, "setup --docker-source distro --yes", timeout=900)
    assert code == 0, out
    assert "to do" not in out, out


STEP_UNIT, STEP_PORT, STEP_API = "ollama 1: systemd unit active", "ollama 2: port listening", "ollama 3: API answers"
SETUP_AGAIN = "setup --docker-source distro --yes --skip-models"


def healthy_again(machine: Machine) -> None:
    machine.ssh("systemctl daemon-reload && systemctl restart ollama", timeout=120)
    checks: dict[str, dict[str, str]] = {}
    for _ in range(10):  # the stand-in takes a few seconds to listen on an emulated CPU
        checks = doctor(machine)
        if not failed(checks):
            return
        time.sleep(3)
    raise AssertionError(f"doctor still fails after the break was undone: {failed(checks)}")


def test_masked_unit_named_by_doctor_and_setup(machine: Machine) -> None:
    # masked as `systemctl mask ollama` leaves it: the unit file a symlink to /dev/null in /etc/systemd/system (mask
    # refuses while the installer's unit file is there, and `mask --runtime` is outranked by it: neither masks)
    machine.ssh(
        "systemctl stop ollama && cp /etc/systemd/system/ollama.service /root/ollama.service "
        "&& rm /etc/systemd/system/ollama.service && systemctl mask ollama",
        timeout=120,
    )
    try:
        step = doctor(machine)[STEP_UNIT]
        assert step["status"] == "fail" and step["detail"] == "unit ollama is masked", step
        assert "systemctl unmask ollama" in step["fix"], step
        code, out = inv(machine, SETUP_AGAIN)
        assert code != 0 and "masked" in out, out
    finally:
        machine.ssh("systemctl unmask ollama && cp /root/ollama.service /etc/systemd/system/", timeout=120)
    healthy_again(machine)


def test_port_held_by_another_process_named(machine: Machine) -> None:
    # what else could hold Ollama's port: a plain HTTP server, started first, on every address
    machine.ssh(
        "systemctl stop ollama && systemd-run --unit=port-holder python3 -m http.server 11434 "
        "&& sleep 3 && systemctl start ollama",
        timeout=120,
    )
    try:
        code, out = inv(machine, SETUP_AGAIN)
        assert code != 0, out
        assert "port 11434 is held by python3" in out and "not ollama" in out, out
        journal = machine.ssh("journalctl -u ollama -n 20 --no-pager").stdout
        assert "bind: address already in use" in journal, journal  # the stand-in said it as Ollama does
    finally:
        machine.ssh("systemctl stop port-holder", timeout=120, check=False)
    healthy_again(machine)


def test_ollama_bound_to_loopback_only_named(machine: Machine) -> None:
    # an owner's later drop-in that puts OLLAMA_HOST back to loopback: containers (and nodes) cannot reach Ollama
    machine.ssh(
        "printf '[Service]\\nEnvironment=OLLAMA_HOST=127.0.0.1:11434\\n' >/etc/systemd/system/ollama.service.d/"
        "zz-loopback.conf && systemctl daemon-reload && systemctl restart ollama && sleep 5",
        timeout=120,
    )
    try:
        step = doctor(machine, "--ollama-url http://10.0.2.15:11434")[STEP_PORT]
        assert step["status"] == "fail", step
        assert step["detail"] == "bound to 127.0.0.1 only: the override was not applied", step
    finally:
        machine.ssh("rm -f /etc/systemd/system/ollama.service.d/zz-loopback.conf", timeout=60)
    healthy_again(machine)


def test_api_answering_500_named(machine: Machine) -> None:
    # the stand-in's knob (not Ollama's): GET /api/version answers HTTP 500
    machine.ssh(
        "printf '[Service]\\nEnvironment=OLLAMA_STANDIN_VERSION_STATUS=500\\n' >/etc/systemd/system/ollama.service.d/"
        "zz-standin-500.conf && systemctl daemon-reload && systemctl restart ollama && sleep 5",
        timeout=120,
    )
    try:
        checks = doctor(machine)
        assert checks[STEP_PORT]["status"] == "ok", checks[STEP_PORT]
        step = checks[STEP_API]
        assert step["status"] == "fail" and "GET /api/version answered HTTP 500" in step["detail"], step
        code, out = inv(machine, SETUP_AGAIN)
        assert code != 0 and "HTTP 500" in out, out
        assert "ollama-diagnostics-" in out, out  # setup saved what it saw
    finally:
        machine.ssh("rm -f /etc/systemd/system/ollama.service.d/zz-standin-500.conf", timeout=60)
    healthy_again(machine)


# A container image made in the guest from its own bash, timeout and their libraries (no registry here): enough to
# open a TCP connection (bash's /dev/tcp) from a real container on a real Docker network.
PROBE_IMAGE = """\
set -e
docker image inspect vm-probe:1 >/dev/null 2>&1 && exit 0
d=$(mktemp -d)
for f in /usr/bin/bash /usr/bin/timeout $(ldd /usr/bin/bash /usr/bin/timeout | grep -o '/[^ :]*' | sort -u); do
    cp --parents -L "$f" "$d"
done
tar -C "$d" -c . | docker import - vm-probe:1 >/dev/null
rm -rf "$d"
"""
ASK_OLLAMA = (
    'timeout 15 bash -c \'exec 3<>/dev/tcp/{ip}/11434 && printf "GET /api/version HTTP/1.0\\r\\n\\r\\n" >&3 '
    '&& while IFS= read -r line <&3 || [ -n "$line" ]; do echo "$line"; done\' || echo unreachable'
)


def from_container(machine: Machine, network: str) -> str:
    """What a container on `network` gets from Ollama at its network's gateway (the host, as host-gateway is)."""
    gateway = machine.ssh(f"docker network inspect {network} -f '{{{{(index .IPAM.Config 0).Gateway}}}}'").stdout
    command = ASK_OLLAMA.format(ip=gateway.strip())
    return machine.ssh(
        f"docker run --rm --network {network} vm-probe:1 /usr/bin/bash -c {shlex.quote(command)}", timeout=180
    ).stdout


def from_lan(machine: Machine) -> bytes:
    """What the LAN side gets from the guest's port 11434 (through qemu's NAT: packets arrive on the guest's eth0)."""
    with socket.create_connection(("127.0.0.1", machine.ollama_port), timeout=10) as conn:
        conn.settimeout(15)
        conn.sendall(b"GET /api/version HTTP/1.0\r\n\r\n")
        try:
            return conn.recv(200)
        except OSError:  # a timeout or a reset: nothing came back
            return b""


def test_ufw_default_deny_containers_reach_ollama_the_lan_does_not(machine: Machine) -> None:
    machine.ssh(PROBE_IMAGE, timeout=300)
    machine.ssh("docker network inspect vm-probe >/dev/null 2>&1 || docker network create vm-probe", timeout=120)
    machine.ssh("ufw default deny incoming && ufw allow 22/tcp && ufw --force enable", timeout=300)
    assert "Status: active" in machine.ssh("ufw status verbose").stdout
    assert "deny (incoming)" in machine.ssh("ufw status verbose").stdout
    # docker0 (docker run's default) and a compose-style network (its bridge is br-<id>)
    for network in ("bridge", "vm-probe"):
        answer = from_container(machine, network)
        assert " 200 OK" in answer and '"version"' in answer, (network, answer)
    assert from_lan(machine) == b""
    # the same probes can see the other outcome: without the platform's chain ufw's deny drops the containers too,
    # and a rule admitting everyone lets the LAN in
    machine.ssh("iptables -D INPUT -p tcp --dport 11434 -j AI_PLATFORM_OLLAMA")
    try:
        assert "unreachable" in from_container(machine, "bridge")
        machine.ssh("iptables -I INPUT -p tcp --dport 11434 -j ACCEPT")
        assert b" 200 OK" in from_lan(machine)
    finally:
        machine.ssh("iptables -D INPUT -p tcp --dport 11434 -j ACCEPT", check=False)
        machine.ssh("systemctl restart ollama", timeout=120)  # ExecStartPre puts the chain back
    time.sleep(5)
    assert " 200 OK" in from_container(machine, "bridge")
    assert from_lan(machine) == b""
