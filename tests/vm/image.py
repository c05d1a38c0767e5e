"""The guest's disk image: Debian 12 from debootstrap with systemd, sshd, Python, Debian's cloud kernel and the
packages the platform's host needs (docker.io, ufw, curl, git, iproute2, iptables), pre-seeded so the guest needs no
apt. Written to a raw ext4 image with `mkfs.ext4 -d` (nothing mounted), booted with its own kernel and initrd.

Cached in ~/.cache/ai-platform/vm/<hash>/ (disk.raw, vmlinuz, initrd.img), the hash taken over this file's text
(the recipe) and the Compose plugin copied in, so a changed recipe builds a new image and the old one is removed.
The ssh key the tests log in with is generated once into ~/.cache/ai-platform/vm/ and authorized for root.

Docker's Compose v2 plugin: Debian 12 packages only Compose v1, so the image gets the plugin the host's
tests/tools/install-tools installed (Debian 13's docker-compose package), as an owner would add it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tomllib

from tests.integration.standins.images import CACHE_DIR, DEBIAN_MIRROR, SUITE, _timed, _unmount_below

REPO = Path(__file__).resolve().parents[2]
VM_CACHE = CACHE_DIR / "vm"
GUEST_PROJECT = "/srv/ai-platform"  # not /opt/ai-platform: doctor names that a legacy root of the original scripts
KEY = VM_CACHE / "id_ed25519"
COMPOSE_PLUGIN = Path("/usr/libexec/docker/cli-plugins/docker-compose")
DISK_SIZE = "24G"  # sparse: what the guest writes, not this, is what the host's disk holds

PACKAGES = (
    "systemd", "systemd-sysv", "udev", "dbus", "openssh-server", "python3", "python3-venv", "linux-image-cloud-amd64",
    "initramfs-tools", "docker.io", "ufw", "curl", "git", "iproute2", "iptables", "sudo", "ca-certificates", "procps",
    "kmod", "less", "netcat-openbsd", "apparmor",
)  # fmt: skip
# apparmor: what apt's Recommends of docker.io bring (setup installs with them); without apparmor_parser, on the cloud
# kernel (AppArmor on), `docker run` fails: "the docker-default profile could not be loaded"
TRIMMED = ("var/cache/apt/archives", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")

# The guest on qemu's user-mode network: it is 10.0.2.15, the host's NAT 10.0.2.2, its DNS forwarder 10.0.2.3.
NETWORK = """\
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
"""
FSTAB = "/dev/vda / ext4 defaults,errors=remount-ro 0 1\n"


@dataclass(frozen=True)
class Image:
    disk: Path
    kernel: Path
    initrd: Path
    key: Path


def recipe_hash() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(DEBIAN_MIRROR.encode())
    digest.update("\n".join(dependencies()).encode())
    digest.update(COMPOSE_PLUGIN.read_bytes() if COMPOSE_PLUGIN.is_file() else b"no compose plugin")
    return digest.hexdigest()[:16]


def dependencies() -> list[str]:
    """The project's dependencies, as pyproject.toml lists them."""
    with (REPO / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["project"]["dependencies"])


def ssh_key() -> Path:
    """The tests' ssh key (ed25519, no passphrase), made once."""
    VM_CACHE.mkdir(parents=True, exist_ok=True)
    if not KEY.is_file():
        partial = KEY.with_name("id_ed25519.part")
        for path in (partial, partial.with_suffix(".part.pub")):
            path.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ai-platform-vm-tests", "-f", str(partial)],
            check=True,
        )
        partial.with_suffix(".part.pub").rename(KEY.with_suffix(".pub"))
        partial.rename(KEY)
    return KEY


def ensure_image() -> Image:
    """The cached image for this recipe, built first when missing (root and debootstrap needed then)."""
    key = ssh_key()
    folder = VM_CACHE / recipe_hash()
    image = Image(folder / "disk.raw", folder / "vmlinuz", folder / "initrd.img", key)
    if all(path.is_file() for path in (image.disk, image.kernel, image.initrd)):
        print(f"vm image: cached ({folder})", flush=True)
        return image
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        raise RuntimeError("building the VM image needs root and debootstrap (tests/tools/install-tools debootstrap)")
    if not COMPOSE_PLUGIN.is_file():
        raise RuntimeError(f"{COMPOSE_PLUGIN} is missing: run tests/tools/install-tools compose first")
    work = Path(tempfile.mkdtemp(prefix="vm-rootfs-", dir=VM_CACHE))
    try:
        with _timed(f"vm image built ({folder})"):
            rootfs = work / "rootfs"
            _debootstrap(rootfs, VM_CACHE / "debootstrap.log")
            _customize(rootfs, key.with_suffix(".pub").read_text())
            _preinstall_dependencies(rootfs, work / "wheels")
            staging = work / "image"
            staging.mkdir()
            kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
            initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
            if not kernels or not initrds:
                raise RuntimeError(f"no kernel or initrd in {rootfs / 'boot'}")
            shutil.copyfile(kernels[-1], staging / "vmlinuz")
            shutil.copyfile(initrds[-1], staging / "initrd.img")
            _unmount_below(work)
            with _timed("mkfs.ext4 -d (the root file system, nothing mounted)"):
                subprocess.run(["truncate", "-s", DISK_SIZE, str(staging / "disk.raw")], check=True)
                done = subprocess.run(
                    ["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(rootfs), str(staging / "disk.raw")],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if done.returncode:
                    raise RuntimeError(f"mkfs.ext4 -d failed: {done.stdout}{done.stderr}")
            for old in VM_CACHE.iterdir():  # earlier recipes' images
                if old.is_dir() and old.name != folder.name and not old.name.startswith("vm-"):
                    shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
    finally:
        _unmount_below(work)
        shutil.rmtree(work, ignore_errors=True)
    return image


def _debootstrap(rootfs: Path, log: Path) -> None:
    with _timed(f"debootstrap {SUITE} for the VM ({len(PACKAGES)} packages and their dependencies, log {log})"):
        with log.open("w") as out:
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, str(rootfs),
                 DEBIAN_MIRROR],
                stdout=out, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if done.returncode:
            tail = "".join(log.read_text().splitlines(keepends=True)[-20:])
            raise RuntimeError(f"debootstrap failed ({done.returncode}):\n{tail}")


def _write(rootfs: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = rootfs / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def _customize(rootfs: Path, public_key: str) -> None:
    _write(rootfs, "/etc/hostname", "aiplatform-vm\n")
    _write(rootfs, "/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 aiplatform-vm\n::1 localhost ip6-localhost\n")
    _write(rootfs, "/etc/fstab", FSTAB)
    _write(rootfs, "/etc/systemd/network/10-qemu.network", NETWORK)
    (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
    _write(rootfs, "/etc/resolv.conf", "nameserver 10.0.2.3\n")
    _write(rootfs, "/etc/apt/sources.list", f"deb {DEBIAN_MIRROR} {SUITE} main\n")
    _write(rootfs, "/root/.ssh/authorized_keys", public_key, 0o600)
    (rootfs / "root/.ssh").chmod(0o700)
    # a fresh machine id on first boot, as a cloud image has
    _write(rootfs, "/etc/machine-id", "")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for unit in ("systemd-networkd", "ssh", "docker"):
        subprocess.run(["chroot", str(rootfs), "systemctl", "enable", unit], check=True, capture_output=True)
    plugin = rootfs / COMPOSE_PLUGIN.relative_to("/")
    plugin.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(COMPOSE_PLUGIN, plugin)
    plugin.chmod(0o755)
    for junk in TRIMMED:
        shutil.rmtree(rootfs / junk, ignore_errors=True)


def _preinstall_dependencies(rootfs: Path, wheels: Path) -> None:
    """The project's dependencies in GUEST_PROJECT/.venv, where ./bootstrap makes its virtualenv: pip installing
    them on the guest's emulated CPU took 8 minutes, here it takes seconds. ./bootstrap in the guest still runs
    its pip install of the project (its build backend fetched through qemu's NAT), which finds them there."""
    with _timed(f"the project's dependencies pre-installed in {GUEST_PROJECT}/.venv"):
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), *dependencies()],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"pip wheel of the dependencies failed: {done.stdout}{done.stderr}")
        shutil.copytree(wheels, rootfs / "tmp/wheels")
        venv = f"{GUEST_PROJECT}/.venv"
        for command in (
            ["python3", "-m", "venv", venv],
            [f"{venv}/bin/pip", "install", "--quiet", "--no-index", "--find-links", "/tmp/wheels", *dependencies()],
        ):
            done = subprocess.run(["chroot", str(rootfs), *command], capture_output=True, text=True, check=False)
            if done.returncode:
                raise RuntimeError(f"{' '.join(command[:3])} in the image failed: {done.stdout}{done.stderr}")
        shutil.rmtree(rootfs / "tmp/wheels")
