"""The platform on the guest, after test_vm.py's setup (same guest, file order): the core tier rendered and deployed
with the integration session's stand-in images (built on this host, given to the guest on a Docker data root disk
made here: tests/vm/docker_disk.py; no registry here), configured, then the guest rebooted with nothing run after
it, the backup timer, and cleanup --purge.

Only the core tier (Caddy, LiteLLM, Open WebUI, Postgres, Qdrant, Redis): the optional services' stand-ins would add
minutes of an emulated CPU and prove nothing more about the host. configure's chat goes from the LiteLLM container's
key-API stand-in through qemu's NAT to the real LiteLLM proxy on this host, then to an Ollama stand-in here
(tests/vm/forward.py relays it), as the integration session does on one machine.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiplatform.envfile import parse_env
from tests.integration.standins.images import HOST_LITELLM_PORT
from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import OllamaStandIn, free_port
from tests.vm.conftest import PROJECT, record
from tests.vm.machine import Machine
from tests.vm.test_vm import PROBE_IMAGE, from_container, inv

ROOT = "/mnt/data/ai-platform"  # the default root: render and deploy are given no --root
GENERATED = f"{PROJECT}/generated"
ANSWERS = "/root/answers.yaml"
# Owner data written before the reboot and read after it: a Postgres row and a Qdrant point.
ROW = "written before the reboot"
PSQL = "docker exec ai-platform-postgres psql -U postgres -v ON_ERROR_STOP=1 -tAc"
QDRANT = f"""\
import json, sys
from pathlib import Path
from aiplatform.backup.qdrant import Qdrant
from aiplatform.envfile import parse_env
from aiplatform.host.runner import Runner
key = parse_env(Path("{GENERATED}/config/credentials.env").read_text())["QDRANT_API_KEY"]
qdrant = Qdrant(Runner(echo=lambda _: None), key)
if sys.argv[1] == "write":
    qdrant.call("PUT", "/collections/vm_notes", {{"vectors": {{"size": 3, "distance": "Cosine"}}}})
    qdrant.call("PUT", "/collections/vm_notes/points?wait=true",
                {{"points": [{{"id": 1, "vector": [0.1, 0.2, 0.3], "payload": {{"text": "{ROW}"}}}}]}})
found = qdrant.call("POST", "/collections/vm_notes/points/scroll", {{"limit": 10}}, changes=False)["points"]
print(json.dumps([point["payload"] for point in found]))
"""  # run in the guest by points(): `python - write` adds the point first, `python - read` only reads


def points(machine: Machine, write: bool = False) -> list[dict[str, Any]]:
    mode = "write" if write else "read"
    out = machine.ssh(f"cd {PROJECT} && .venv/bin/python - {mode} <<'EOF'\n{QDRANT}EOF\n", timeout=300).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def healthy_status(machine: Machine, timeout: float) -> tuple[float, dict[str, Any]]:
    """Poll `inv status --json` (read-only) until it exits 0: seconds taken and the last status."""
    started = time.monotonic()
    code, out = 1, ""
    while time.monotonic() - started < timeout:
        code, out = inv(machine, "status --json", timeout=300)
        if code == 0:
            return time.monotonic() - started, json.loads(out[out.index("{") :])
        time.sleep(10)
    raise AssertionError(f"inv status still unhealthy after {timeout:.0f} s (exit {code}):\n{out}")


@pytest.fixture(scope="module")
def loaded(machine: Machine, core_images: dict[str, str]) -> dict[str, str]:
    """The core tier's images, found by the guest's Docker (after setup restarted it) on the data root disk that
    conftest's machine mounts on /var/lib/docker."""
    refs = sorted(set(core_images.values()))
    found = machine.ssh(f"docker image inspect --format '{{{{.Id}}}}' {shlex.join(refs)}", timeout=120, check=False)
    assert found.returncode == 0, f"the guest's Docker lacks the core images {refs}:\n{found.stdout}{found.stderr}"
    return core_images


@pytest.fixture(scope="module")
def rendered(machine: Machine, loaded: dict[str, str]) -> Iterator[Path]:
    """`inv render` of the core tier in the guest; a copy of its generated/ on this host (for the LiteLLM proxy)."""
    answers = yaml.safe_dump({"services": [], "images": loaded})
    machine.ssh(f"cat >{ANSWERS} <<'EOF'\n{answers}EOF", timeout=60)
    code, out = inv(machine, f"render --no-input --answers {ANSWERS}", timeout=600)
    assert code == 0, out
    with tempfile.TemporaryDirectory(prefix="vm-generated-") as folder:
        copy = Path(folder) / "generated"
        copy.mkdir()
        machine.get(f"tar -C {GENERATED} -cf - .", Path(folder) / "generated.tar", timeout=120)
        subprocess.run(["tar", "-C", str(copy), "-xf", str(Path(folder) / "generated.tar")], check=True)
        yield copy


@pytest.fixture(scope="module")
def gateway(machine: Machine, rendered: Path) -> Iterator[OllamaStandIn]:
    """The real LiteLLM proxy on this host with the guest's config, in front of an Ollama stand-in here; the
    guest's port 4001 relayed to it (the firewall opened for that port: test plumbing, not the product's)."""
    models = parse_env((rendered / "config/master.env").read_text())["DEFAULT_MODELS"].split(",")
    port = free_port()
    with (
        OllamaStandIn(models=models, host="127.0.0.1") as ollama,
        litellm_proxy(rendered, rendered.parent / "litellm", ollama.url, host="127.0.0.1", port=port, timeout=180),
    ):
        machine.put(["cat", str(Path(__file__).with_name("forward.py"))], "cat >/root/forward.py", timeout=60)
        machine.ssh(
            f"systemd-run --unit=litellm-forward /usr/bin/python3 /root/forward.py {HOST_LITELLM_PORT} 10.0.2.2 {port}"
            f" && iptables -I INPUT -p tcp --dport {HOST_LITELLM_PORT} -j ACCEPT",
            timeout=120,
        )
        try:
            yield ollama
        finally:
            machine.ssh(
                f"systemctl stop litellm-forward; iptables -D INPUT -p tcp --dport {HOST_LITELLM_PORT} -j ACCEPT",
                timeout=120,
                check=False,
            )


def test_deploy_and_configure_the_core_tier(machine: Machine, gateway: OllamaStandIn, loaded: dict[str, str]) -> None:
    started = time.monotonic()
    code, out = inv(machine, "deploy --yes", timeout=1800)
    record("inv deploy + configure of the core tier in the guest", time.monotonic() - started)
    assert code == 0, out
    assert "did not become healthy" not in out and "FAILED" not in out, out
    assert "key for open-webui" in out, out
    # configure's chat went through the LiteLLM container's stand-in and the real LiteLLM to Ollama
    assert any(call.endpoint == "/api/chat" for call in gateway.chats), [c.endpoint for c in gateway.chats]
    _, status = healthy_status(machine, 300)
    names = {row["container"] for row in status["services"]}
    assert names >= set(loaded), status
    # the owner's data, to be found again after the reboot
    machine.ssh(f"{PSQL} {shlex.quote(f'create table vm_kept (note text); insert into vm_kept values ({ROW!r})')}")
    assert points(machine, write=True) == [{"text": ROW}]


def test_reboot_brings_everything_back_with_its_data(machine: Machine, guest: Any) -> None:
    record("reboot (systemctl reboot until ssh answers)", machine.reboot(900))
    # nothing is run in the guest but reads: Docker's restart policy and systemd bring everything back
    seconds, status = healthy_status(machine, 900)
    record("after the reboot, until inv status is healthy", seconds)
    assert guest.service("docker").is_running and guest.service("ollama").is_running
    assert status["healthy"] and all(row["healthy"] for row in status["services"]), status
    assert machine.ssh(f"{PSQL} 'select note from vm_kept'").stdout.strip() == ROW
    assert points(machine) == [{"text": ROW}]
    # the firewall came back with the box: containers still reach Ollama under ufw's default deny
    machine.ssh(PROBE_IMAGE, timeout=300)  # made by test_vm's firewall test, unless it was deselected
    assert " 200 OK" in from_container(machine, "bridge")


def test_backup_timer_runs_a_complete_backup(machine: Machine, guest: Any) -> None:
    code, out = inv(machine, "backup --schedule daily", timeout=300)
    assert code == 0, out
    assert "ai-platform-backup.timer" in guest.check_output("systemctl list-timers --all --no-pager")
    assert guest.service("ai-platform-backup.timer").is_enabled
    started = time.monotonic()
    machine.ssh("systemctl start ai-platform-backup.service", timeout=1200)  # a oneshot: start waits for the end
    record("the timer's backup (systemctl start ai-platform-backup.service)", time.monotonic() - started)
    assert guest.check_output("systemctl show ai-platform-backup.service -p Result") == "Result=success"
    found = last_backup(machine)
    assert found["problems"] == [], found
    assert {("postgres", "postgres-globals"), ("platform", "config")} <= {
        (item["service"], item["kind"]) for item in found["items"]
    }, found
    assert ["qdrant", "vm_notes"] in [[item["kind"], item["name"]] for item in found["items"]], found
    code, out = inv(machine, "status --json", timeout=300)
    last = json.loads(out[out.index("{") :])["last_backup"]
    assert last["status"] == "ok" and " h ago" in last["detail"], last


CHECK_BACKUP = f"""\
import json
from pathlib import Path
from aiplatform.backup.manifest import complete_backups, read_manifest, verify
found = complete_backups(Path("{ROOT}/backups"))
manifest = read_manifest(found[-1])
print(json.dumps({{"problems": verify(found[-1], manifest), "items": [i.model_dump() for i in manifest.items]}}))
"""


def last_backup(machine: Machine) -> dict[str, Any]:
    """The newest complete backup in the guest: its manifest's items and what verify (checksums, sizes) finds."""
    out = machine.ssh(f"cd {PROJECT} && .venv/bin/python -c {shlex.quote(CHECK_BACKUP)}", timeout=300).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_cleanup_purge_leaves_the_hosts_tools(machine: Machine, guest: Any) -> None:
    code, out = inv(machine, "cleanup --purge --yes", timeout=900)
    assert code == 0, out
    assert machine.ssh("docker ps -aq --filter label=ai-platform.managed=true").stdout.strip() == ""
    assert machine.ssh("docker volume ls -q --filter label=ai-platform.managed=true").stdout.strip() == ""
    # the root goes, all but backups/ (what `inv restore` needs after a purge), which still holds the timer's backup
    assert guest.file(ROOT).listdir() == ["backups"]
    assert last_backup(machine)["problems"] == []
    # the timer backed up this root: left behind it would fail every day on a root that is gone
    assert "ai-platform-backup.timer" not in machine.ssh("systemctl list-timers --all --no-pager").stdout
    assert not guest.file("/etc/systemd/system/ai-platform-backup.service").exists
    # seed script 0's promise: what the host needs for the next install stays
    for package in ("docker.io", "git", "curl"):
        assert guest.package(package).is_installed, package
    assert guest.file("/usr/local/bin/ollama").exists and guest.service("ollama").is_running
