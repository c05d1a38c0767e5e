"""Outcomes the mutation benchmark (benchmarks/mutants.py, seed 35) found no test asserting: each test here failed
with one of its surviving one-line bugs applied and passes without it. Which of service.yaml's privileges amount to
root on the host (the owner must accept those), the CPU name a host without one in /proc/cpuinfo shows, and the
images lock's layout. (Others of seed 35: test_configure_outcome.py, a Dify plugin task that failed; test_backup.py,
the last backup's 8-day line; test_settings_keep.py, where a profile's setting comes from; test_messages_configure.py,
no Caddy sign-in named for a service with its own.)"""

from __future__ import annotations

import platform

import pytest

from aiplatform.inputs.catalog import is_root_equivalent
from aiplatform.inputs.hardware import read_cpu_model
from aiplatform.inputs.images import format_lock, read_lock

# Written out here, not read from the code: each privilege and whether it is root on the host.
PRIVILEGES = {
    "privileged": True,
    "host-network": True,
    "docker-socket": True,
    "host-userns": True,
    "host-ipc": False,
    "cap:NET_ADMIN": False,
    "security-opt:seccomp=unconfined": True,  # a confinement lifted
    "security-opt:apparmor=unconfined": True,
    "security-opt:label=disable": True,
    "security-opt:label:disable": True,
    "security-opt:no-new-privileges:true": False,  # one added
    "security-opt:apparmor=docker-default": False,
    "host-path:/srv/media": True,
    "device:/dev/sda": True,
    "device:/dev/kmsg": False,  # the kernel's log, read by cAdvisor
    "device-rule:c 189:* rmw": True,
}


@pytest.mark.parametrize(("privilege", "root"), PRIVILEGES.items(), ids=list(PRIVILEGES))
def test_which_privileges_amount_to_root_on_the_host(privilege, root):
    assert is_root_equivalent(privilege) is root


@pytest.mark.parametrize("cpuinfo", ["processor\t: 0\nflags\t\t: fpu vme\n\n", None], ids=["no name", "unreadable"])
def test_a_cpu_without_a_name_in_cpuinfo_is_named_by_its_architecture(tmp_path, monkeypatch, cpuinfo):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    assert read_cpu_model(path) == "riscv64"
    monkeypatch.setattr(platform, "machine", lambda: "")
    assert read_cpu_model(path) == "unknown"
    path.write_text("Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    assert read_cpu_model(path) == "BCM2835"  # the first of the lines that name it


def test_the_images_lock_is_one_image_a_line_sorted_for_a_readable_diff(tmp_path):
    digest_a, digest_b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    text = format_lock({"redis:7.4.1": digest_b, "caddy:2.8.4": digest_a})
    assert text.decode() == (
        f'{{\n  "images": {{\n    "caddy:2.8.4": "{digest_a}",\n    "redis:7.4.1": "{digest_b}"\n  }}\n}}\n'
    )
    (tmp_path / "images.lock").write_bytes(text)
    assert read_lock(tmp_path / "images.lock") == {"caddy:2.8.4": digest_a, "redis:7.4.1": digest_b}
