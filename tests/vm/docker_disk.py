"""A disk for the guest's /var/lib/docker with the core tier's images already in it, made on this host.

`docker load` inside the guest took about 8 minutes of the emulated CPU (the vm session's longest step). Instead, a
second dockerd of this host's Docker (the same Debian docker.io as the guest's, so the same overlay2 layout) is
started on a folder of its own, on a bridge of its own (never docker0: a dockerd told `--bridge none` deletes
docker0, which this host's Docker then misses), the images are loaded into it at native speed, it is stopped, and
`mkfs.ext4 -d` writes the folder into a sparse disk image (ownership, modes, links and overlay whiteouts kept). The
guest mounts that disk on /var/lib/docker before anything uses Docker (tests/vm/conftest.py). Test plumbing: an owner
gets images from a registry, which this machine cannot reach.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SIZE = "16G"  # sparse: the images, then what the guest's containers and volumes write
MOUNT = "/var/lib/docker"


def docker_disk(refs: list[str], disk: Path) -> None:
    """Write `disk`: an ext4 image of a Docker data root holding `refs` (images of this host's Docker)."""
    had_docker0 = _link_exists("docker0")
    with tempfile.TemporaryDirectory(prefix="vm-docker-") as folder:
        work = Path(folder)
        archive = work / "images.tar"
        subprocess.run(["docker", "save", "-o", str(archive), *refs], check=True)
        root = work / "root"
        with _dockerd(root, work / "run") as socket:
            subprocess.run(["docker", "-H", socket, "load", "-q", "-i", str(archive)], check=True, capture_output=True)
        archive.unlink()
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "docker", "-d", str(root), str(disk), SIZE], check=True)
    # the host's Docker (the integration session's, beside this one in CI) must keep its default bridge
    assert _link_exists("docker0") or not had_docker0, "making the Docker disk deleted this host's docker0"


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode == 0


BRIDGE = "aipvm0"  # the second dockerd's own bridge, made and deleted here


@contextlib.contextmanager
def _bridge() -> Iterator[str]:
    """A bridge for the second dockerd only, deleted on leaving. (`--bridge none` would make that dockerd delete the
    host's docker0: it removes the default bridge interface when told to run without one.)"""
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)  # left by a killed run
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "10.254.254.1/30", "dev", BRIDGE], check=True)
    try:
        yield BRIDGE
    finally:
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)


@contextlib.contextmanager
def _dockerd(root: Path, run: Path) -> Iterator[str]:
    """A dockerd on `root` (its data root) answering on a socket under `run`, stopped on leaving: a bridge of its own,
    no iptables rules, its own containerd namespace, no daemon.json (the host's may name other sockets)."""
    with _bridge() as bridge, _daemon(root, run, bridge) as socket:
        yield socket


@contextlib.contextmanager
def _daemon(root: Path, run: Path, bridge: str) -> Iterator[str]:
    run.mkdir()
    config = run / "daemon.json"
    config.write_text(json.dumps({}))
    socket = f"unix://{run}/docker.sock"
    argv = [
        "dockerd", "--config-file", str(config), "--data-root", str(root), "--exec-root", str(run / "exec"),
        "--pidfile", str(run / "docker.pid"), "-H", socket, "--bridge", bridge, "--iptables=false",
        "--ip-masq=false", "--storage-driver", "overlay2", "--containerd-namespace", "aiplatform-vm",
        "--containerd-plugins-namespace", "aiplatform-vm-plugins",
    ]  # fmt: skip
    log = run / "dockerd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", socket, "version"], capture_output=True, check=False).returncode:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the second dockerd did not answer on {socket}:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield socket
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(run / "exec", ignore_errors=True)
