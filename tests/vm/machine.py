"""One qemu guest booted from the cached image: KVM when it works, TCG (`-accel tcg,thread=multi`) otherwise, chosen at
run time and said; user-mode networking with the guest's ssh port forwarded to a free port on the host's loopback.

The disk is opened with snapshot=on: the guest's writes go to a temporary file qemu deletes when it exits (a reboot
inside the guest keeps them: qemu resets the machine, the process stays), so the cached image stays as built. The
qemu process is always stopped by its pid (`stop()`, called from the fixture's teardown, also after a failure).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.vm.image import VM_CACHE, Image

QEMU = "qemu-system-x86_64"
MEMORY_MB = int(os.environ.get("AI_PLATFORM_VM_MEMORY", "3584"))
CPUS = 2
BOOT_ID = "cat /proc/sys/kernel/random/boot_id"  # a new one at every boot


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kvm_works(image: Image, timeout: float = 20.0) -> bool:
    """Whether a KVM guest gets anywhere here: the kernel, without its initrd, must reach its panic (no root file
    system) and the guest exit within `timeout` (about a second where KVM works; where it hangs, it never does)."""
    if os.environ.get("AI_PLATFORM_VM_ACCEL") in ("tcg", "kvm"):
        return os.environ["AI_PLATFORM_VM_ACCEL"] == "kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.NamedTemporaryFile(prefix="kvm-probe-", suffix=".log", dir=VM_CACHE) as log:
        process = subprocess.Popen(
            [QEMU, "-accel", "kvm", "-m", "256", "-display", "none", "-no-reboot", "-kernel", str(image.kernel),
             "-append", "console=ttyS0 panic=-1", "-serial", f"file:{log.name}", "-monitor", "none"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        return "Kernel panic" in Path(log.name).read_text(errors="replace")


class Machine:
    def __init__(self, image: Image, workdir: Path, accel: str, extra_disk: Path | None = None) -> None:
        """`extra_disk`: a raw disk image the guest sees as /dev/vdb (the Docker data root of docker_disk.py)."""
        self.image, self.workdir, self.accel, self.extra_disk = image, workdir, accel, extra_disk
        self.port = free_port()
        self.ollama_port = free_port()  # the guest's Ollama port as the LAN sees it: from outside the guest
        self.console = workdir / "console.log"
        self.ssh_config = workdir / "ssh_config"
        self.process: subprocess.Popen[bytes] | None = None
        self.ssh_config.write_text(
            f"Host vm\n  HostName 127.0.0.1\n  Port {self.port}\n  User root\n  IdentityFile {image.key}\n"
            "  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
            "  BatchMode yes\n  ConnectTimeout 10\n  ServerAliveInterval 15\n  ServerAliveCountMax 8\n"
            # one connection for every command: a handshake costs seconds of the guest's emulated CPU
            # (opened by wait_ssh; "no" here: a client never turns into a master that holds its caller's pipes)
            f"  ControlMaster no\n  ControlPath {workdir}/ssh-%C\n"
        )

    def command(self) -> list[str]:
        kvm = self.accel == "kvm"
        accel = ["-accel", "kvm", "-cpu", "host"] if kvm else ["-accel", "tcg,thread=multi", "-cpu", "max"]
        forwards = f"hostfwd=tcp:127.0.0.1:{self.port}-:22,hostfwd=tcp:127.0.0.1:{self.ollama_port}-:11434"
        return [
            QEMU, *accel, "-machine", "q35", "-smp", str(CPUS), "-m", str(MEMORY_MB), "-display", "none",
            "-vga", "none", "-monitor", "none", "-serial", f"file:{self.console}",
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
            "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.show_status=0",
            "-drive", f"file={self.image.disk},format=raw,if=virtio,snapshot=on,cache=unsafe",
            *(["-drive", f"file={self.extra_disk},format=raw,if=virtio,cache=unsafe"] if self.extra_disk else []),
            "-netdev", f"user,id=net0,{forwards}",
            "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-rng-pci",
        ]  # fmt: skip

    def start(self) -> None:
        env = {**os.environ, "TMPDIR": str(self.workdir)}  # snapshot=on's temporary file: removed with the folder
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "qemu.log").open("wb"), env=env, start_new_session=True,
        )  # fmt: skip
        print(f"vm: qemu pid {self.process.pid}, accel {self.accel}, ssh port {self.port}", flush=True)

    def stop(self) -> None:
        """Stop qemu by its pid: SIGTERM, then SIGKILL after 10 s."""
        subprocess.run(["ssh", "-F", str(self.ssh_config), "-O", "exit", "vm"], capture_output=True, timeout=30,
                       check=False)  # fmt: skip
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        print(f"vm: qemu pid {process.pid} stopped", flush=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def console_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no console output)"

    def wait_ssh(self, timeout: float) -> float:
        """Seconds until `ssh vm true` works; a RuntimeError with the console's tail when it does not in time."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.running:
                raise RuntimeError(f"qemu exited while booting:\n{self.console_tail()}")
            done = self.ssh("true", timeout=20, check=False)
            if done.returncode == 0:
                self._open_master()
                return time.monotonic() - started
            time.sleep(2)
        raise RuntimeError(f"no ssh to the guest within {timeout:.0f} s; its console:\n{self.console_tail()}")

    def _open_master(self) -> None:
        """The shared connection (ssh -f: it goes to the background once logged in; ended by stop's -O exit)."""
        subprocess.run(
            ["ssh", "-F", str(self.ssh_config), "-o", "ControlMaster=yes", "-o", "ControlPersist=900", "-fN", "vm"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False,
        )  # fmt: skip

    def ssh_argv(self, command: str) -> list[str]:
        return ["ssh", "-F", str(self.ssh_config), "vm", command]

    def ssh(self, command: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell command in the guest as root, with a time limit."""
        try:
            done = subprocess.run(
                self.ssh_argv(command), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"guest command timed out after {timeout:.0f} s: {command}") from exc
        if check and done.returncode:
            raise RuntimeError(
                f"guest command failed ({done.returncode}): {command}\n--- stdout\n{done.stdout}\n--- stderr\n"
                f"{done.stderr}"
            )
        return done

    def reboot(self, timeout: float) -> float:
        """`systemctl reboot` in the guest (qemu resets the machine, its process and the disk's writes stay); seconds
        until ssh answers from the new boot (another boot_id)."""
        before = self.ssh(BOOT_ID, timeout=60).stdout.strip()
        self.ssh("systemctl reboot", timeout=60, check=False)  # the connection may drop before it answers
        subprocess.run(["ssh", "-F", str(self.ssh_config), "-O", "exit", "vm"], capture_output=True, timeout=30,
                       check=False)  # fmt: skip
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.running:
                raise RuntimeError(f"qemu exited while rebooting:\n{self.console_tail()}")
            done = self.ssh(BOOT_ID, timeout=20, check=False)
            if done.returncode == 0 and done.stdout.strip() != before:
                self._open_master()
                return time.monotonic() - started
            time.sleep(3)
        raise RuntimeError(f"the guest did not come back within {timeout:.0f} s; its console:\n{self.console_tail()}")

    def get(self, command: str, into: Path, timeout: float = 600) -> None:
        """A guest command's output (a tar stream) into a file on the host."""
        with into.open("wb") as out:
            done = subprocess.run(self.ssh_argv(command), stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.PIPE, timeout=timeout, check=False)  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"ssh vm {command} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")

    def put(self, data_command: list[str], target_command: str, timeout: float = 600) -> None:
        """Pipe the output of a host command into a guest command (a tar stream, an image archive)."""
        producer = subprocess.Popen(data_command, stdout=subprocess.PIPE)
        try:
            done = subprocess.run(
                self.ssh_argv(target_command), stdin=producer.stdout, capture_output=True, text=True, timeout=timeout,
                check=False,
            )  # fmt: skip
        finally:
            if producer.stdout:
                producer.stdout.close()
            producer.wait(timeout)
        if done.returncode or producer.returncode:
            raise RuntimeError(
                f"{shlex.join(data_command)} | ssh vm {target_command} failed ({producer.returncode}, "
                f"{done.returncode}): {done.stderr}"
            )
