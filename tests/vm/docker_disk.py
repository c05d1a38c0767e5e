"""A disk for the guest's /var/lib/docker with the core tier's images already in it, made on this host.

`docker load` inside the guest took about 8 minutes of the emulated CPU (the vm session's longest step). Instead, a
second dockerd of this host's Docker (the same Debian docker.io as the guest's, so the same overlay2 layout) is
started on a folder of its own, with no network, the images are loaded into it at native speed, it is stopped, and
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
    with tempfile.TemporaryDirectory(prefix="vm-docker-") as folder:
        work = Path(folder)
        archive = work / "images.tar"
        subprocess.run(["docker", "save", "-o", str(archive), *refs], check=True)
        root = work / "root"
        with _dockerd(root, work / "run") as socket:
            subprocess.run(["docker", "-H", socket, "load", "-q", "-i", str(archive)], check=True, capture_output=True)
        archive.unlink()
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "docker", "-d", str(root), str(disk), SIZE], check=True)


@contextlib.contextmanager
def _dockerd(root: Path, run: Path) -> Iterator[str]:
    """A dockerd on `root` (its data root) answering on a socket under `run`, stopped on leaving: no bridge, no
    iptables rules, its own containerd namespace, no daemon.json (the host's may name other sockets)."""
    run.mkdir()
    config = run / "daemon.json"
    config.write_text(json.dumps({}))
    socket = f"unix://{run}/docker.sock"
    argv = [
        "dockerd", "--config-file", str(config), "--data-root", str(root), "--exec-root", str(run / "exec"),
        "--pidfile", str(run / "docker.pid"), "-H", socket, "--bridge", "none", "--iptables=false",
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
