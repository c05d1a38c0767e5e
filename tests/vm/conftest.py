"""The VM the tests drive: built (cached), booted, the project copied in and bootstrapped, the Ollama stand-in installed
as upstream's installer installs Ollama; stopped by its pid at the end whatever happened. Timings are printed in the
summary (boot, bootstrap, setup, deploy, ...)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra

from aiplatform.inputs.catalog import load_catalog
from aiplatform.paths import SERVICES_DIR
from tests.integration.standins.images import DEFAULT_VARIANTS, build_standins
from tests.standins.ollama_unit import OLLAMA_UNIT
from tests.vm.docker_disk import MOUNT, docker_disk
from tests.vm.image import GUEST_PROJECT, VM_CACHE, ensure_image
from tests.vm.machine import Machine, kvm_works

REPO = Path(__file__).resolve().parents[2]
PROJECT = GUEST_PROJECT
STANDIN_LIB = "/usr/local/lib/ollama-standin"
TIMINGS: dict[str, float] = {}
NOTES: list[str] = []

# What install.sh does around it: the ollama system user with its home /usr/share/ollama, the unit enabled and started.
INSTALL_OLLAMA = f"""\
set -e
install -D -m 0644 /tmp/ollama_api.py {STANDIN_LIB}/ollama_api.py
install -m 0755 /tmp/ollama_serve.py /usr/local/bin/ollama
id ollama >/dev/null 2>&1 || useradd -r -s /bin/false -U -m -d /usr/share/ollama ollama
cat >/etc/systemd/system/ollama.service <<'EOF'
{OLLAMA_UNIT.format(binary="/usr/local/bin/ollama")}EOF
systemctl daemon-reload
systemctl enable ollama
systemctl restart ollama
"""


# The data root disk (tests/vm/docker_disk.py) mounted on /var/lib/docker, at every boot too; Docker left as it was
# found (running or not), so setup still meets the guest's Docker as Debian installed it. The mount point is made
# here: dockerd makes /var/lib/docker at its first start, which on a slow host had not come when ssh did.
MOUNT_DOCKER_DISK = f"""\
set -e
was=$(systemctl is-active docker.service || true)
systemctl stop docker.socket docker.service
mkdir -p {MOUNT}
echo '/dev/vdb {MOUNT} ext4 defaults 0 2' >>/etc/fstab
systemctl daemon-reload
mount {MOUNT}
systemctl start docker.socket
if [ "$was" = active ]; then systemctl start docker.service; fi
"""


def record(name: str, seconds: float) -> None:
    TIMINGS[name] = seconds
    print(f"vm: {name} took {seconds:.0f} s", flush=True)


@pytest.fixture(scope="session")
def core_images() -> dict[str, str]:
    """The core tier's stand-in images, built FROM a base holding only what they run (cached in this host's Docker)."""
    started = time.monotonic()
    refs = build_standins({"test": DEFAULT_VARIANTS["test"]}, containers=core_containers(), slim=True)["test"]
    record("stand-in images of the core tier (on this host)", time.monotonic() - started)
    return refs


def core_containers() -> list[str]:
    """The containers of the catalog's core services (service.yaml `core: true`)."""
    catalog = load_catalog(SERVICES_DIR)
    return [name for spec in catalog.services.values() if spec.core for name in spec.containers]


@pytest.fixture(scope="session")
def machine(core_images: dict[str, str]) -> Iterator[Machine]:
    image = ensure_image()
    started = time.monotonic()
    accel = "kvm" if kvm_works(image) else "tcg"
    NOTES.append(
        "accelerator: KVM (a KVM guest booted)"
        if accel == "kvm"
        else "accelerator: TCG (KVM missing or its guest did not boot here), tcg,thread=multi"
    )
    record("accelerator probe", time.monotonic() - started)
    workdir = Path(tempfile.mkdtemp(prefix="vm-run-", dir=VM_CACHE))
    disk = workdir / "docker.raw"  # the guest's /dev/vdb, mounted on /var/lib/docker
    started = time.monotonic()
    docker_disk(sorted(set(core_images.values())), disk)
    record("a Docker data root disk with the core tier's images (on this host)", time.monotonic() - started)
    vm = Machine(image, workdir, accel, extra_disk=disk)
    try:
        vm.start()
        record("boot (qemu start to ssh)", vm.wait_ssh(900 if accel == "tcg" else 180))
        _provision(vm)
        yield vm
    finally:
        vm.stop()
        if vm.console.is_file():
            shutil.copyfile(vm.console, VM_CACHE / "last-console.log")
        shutil.rmtree(workdir, ignore_errors=True)


def _provision(vm: Machine) -> None:
    vm.ssh(MOUNT_DOCKER_DISK, timeout=300)
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    listing = vm.workdir / "files"
    listing.write_bytes(files)
    started = time.monotonic()
    vm.put(
        ["tar", "-C", str(REPO), "--null", "-T", str(listing), "-cf", "-"],
        f"mkdir -p {PROJECT} && tar -C {PROJECT} -xf -",
    )
    for path in (REPO / "tests/standins/ollama_api.py", Path(__file__).with_name("ollama_serve.py")):
        vm.put(["cat", str(path)], f"cat >/tmp/{path.name}")
    vm.ssh(INSTALL_OLLAMA, timeout=120)
    _trust_the_hosts_cas(vm)
    record("copy the project and install the Ollama stand-in", time.monotonic() - started)
    started = time.monotonic()
    vm.ssh(f"cd {PROJECT} && ./bootstrap", timeout=1200)
    record("./bootstrap in the guest", time.monotonic() - started)


def _trust_the_hosts_cas(vm: Machine) -> None:
    """The certificate authorities the host's admin added (/usr/local/share/ca-certificates: on a machine whose
    egress re-signs TLS, PyPI's certificate is signed by one) trusted in the guest too, by the system and by pip;
    on a host without any nothing changes."""
    local = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if not local:
        return
    # appended to the bundle as update-ca-certificates would (which takes minutes on an emulated CPU)
    vm.put(["cat", *map(str, local)], "cat >>/etc/ssl/certs/ca-certificates.crt")
    vm.ssh("printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' >/etc/pip.conf", timeout=60)
    NOTES.append(f"the host's added certificate authorities trusted in the guest: {', '.join(p.name for p in local)}")


@pytest.fixture(scope="session")
def guest(machine: Machine) -> testinfra.host.Host:
    """testinfra's view of the guest, over ssh."""
    return testinfra.get_host("ssh://vm", ssh_config=str(machine.ssh_config), ssh_extra_args="-o ControlMaster=no")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS and not NOTES:
        return
    terminalreporter.section("vm timings")
    for note in NOTES:
        terminalreporter.write_line(note)
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{name}: {seconds:.0f} s")
