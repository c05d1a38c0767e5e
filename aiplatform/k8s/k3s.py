"""`inv setup --k3s-server` / `--k3s-agent --server ADDR`: the k3s install as a plan of setup's Steps (printed, run
with consent), from facts read off the host.

- The pinned K3S_VERSION, by k3s's own install script. Online, the script downloads k3s; where the host cannot reach
  the release downloads (or with --airgap DIR), the k3s binary, the install script and the airgap image tarball are
  taken from DIR, the tarball put where k3s imports images at start (AIRGAP_IMAGES), the script run with
  INSTALL_K3S_SKIP_DOWNLOAD=true.
- The server runs without Traefik: Caddy is the platform's entry (its LoadBalancer Service takes 80/443).
- The NVIDIA container toolkit present: k3s finds its runtime at start and serves the `nvidia` RuntimeClass the GPU
  workloads name; the plan says so, and that the NVIDIA device plugin advertises `nvidia.com/gpu`.
- An agent joins with the server's token from a file (--token-file, kept as K3S_TOKEN_FILE: the path, read by k3s) or
  K3S_TOKEN in the environment, which the install inherits: the token is never in an argv or in the output.
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.host.setup import Action, Step, apply, run

K3S_VERSION = "v1.36.4+k3s1"  # the Kubernetes release generated/k8s/ is validated against (docs/kubernetes.md)
INSTALL_URL = "https://get.k3s.io"
RELEASES = "https://github.com/k3s-io/k3s/releases/download"
AIRGAP_IMAGES = Path("/var/lib/rancher/k3s/agent/images")
K3S_BINARY = Path("/usr/local/bin/k3s")
SCRIPT = Path("/usr/local/share/ai-platform/k3s-install.sh")
DEFAULT_AIRGAP = Path("k3s-airgap")  # in the current folder, unless --airgap names one
SERVER_TOKEN = Path("/var/lib/rancher/k3s/server/node-token")
NVIDIA_RUNTIMES = ("nvidia-container-runtime", "nvidia-container-runtime-experimental")
PORTS_NOTE = (
    "firewall between the nodes: 6443/tcp (the API server, on the server), 10250/tcp (each kubelet), 8472/udp "
    "(flannel's VXLAN); each node's own firewall scripts stay as they are"
)


@dataclass(frozen=True)
class K3sOptions:
    role: str  # server | agent
    server: str = ""  # the server's address (agent)
    token_file: Path | None = None  # the join token's file (agent)
    airgap: Path | None = None  # the folder of the offline files; None: download when the host can


@dataclass(frozen=True)
class K3sFacts:
    arch: str  # amd64 | arm64
    k3s_active: bool  # the role's unit (k3s / k3s-agent) is active
    nvidia_runtime: bool  # the NVIDIA container toolkit's runtime is installed
    gpu: bool
    online: bool  # k3s's release downloads answer
    token_in_env: bool  # K3S_TOKEN is set (an agent may join with it)
    airgap_files: frozenset[str] = frozenset()  # the names present in the airgap folder


def airgap_names(arch: str) -> tuple[str, str, str]:
    """The files an airgap install needs, as k3s's release names them: binary, image tarball, install script."""
    return ("k3s" if arch == "amd64" else f"k3s-{arch}"), f"k3s-airgap-images-{arch}.tar.zst", "install.sh"


def airgap_folder(options: K3sOptions) -> Path:
    return (options.airgap or DEFAULT_AIRGAP).absolute()


def probe(runner: Runner, options: K3sOptions, gpu: bool) -> K3sFacts:
    """Read the host (read-only, tolerant of what is missing)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    unit = "k3s" if options.role == "server" else "k3s-agent"
    active = runner.run(["systemctl", "is-active", unit], check=False, changes=False, timeout=30).stdout.strip()
    online = (
        options.airgap is None
        and runner.run(
            ["curl", "-sfI", "--max-time", "10", f"{RELEASES}/{K3S_VERSION}/sha256sum-{arch}.txt"],
            check=False,
            changes=False,
            timeout=30,
        ).ok
    )
    folder = airgap_folder(options)
    present = frozenset(p.name for p in folder.iterdir()) if folder and folder.is_dir() else frozenset()
    return K3sFacts(
        arch=arch,
        k3s_active=active == "active",
        nvidia_runtime=any(shutil.which(name) for name in NVIDIA_RUNTIMES),
        gpu=gpu,
        online=online,
        token_in_env=bool(os.environ.get("K3S_TOKEN")),
        airgap_files=present,
    )


def check_options(options: K3sOptions) -> None:
    """The flags' rules, before anything reads the host."""
    if options.role == "agent" and not options.server:
        raise UserError(
            "--k3s-agent needs --server ADDR: the k3s server it joins.",
            f"`{SUDO_INV} setup --k3s-agent --server 192.168.1.10 --token-file /root/k3s-token`",
        )
    if options.role == "server" and (options.server or options.token_file):
        raise UserError("--server and --token-file are for --k3s-agent: a server makes its own token.")
    if options.token_file is not None:
        _check_token_file(options.token_file)


def _check_token_file(path: Path) -> None:
    try:
        info = path.stat()
    except OSError:
        raise UserError(f"--token-file {path}: no such file.", _token_fix()) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(
            f"--token-file {path} can be read by others (mode {stat.S_IMODE(info.st_mode):04o}).",
            f"`sudo chmod 600 {path}`: it holds the cluster's join token.",
        )


def _token_fix() -> str:
    return (
        f"On the server, `sudo cat {SERVER_TOKEN}`; on this agent put it in a file only root reads (`sudo install "
        f"-m 600 /dev/stdin /root/k3s-token`, paste, Ctrl-D) and pass --token-file /root/k3s-token."
    )


def plan_k3s(facts: K3sFacts, options: K3sOptions) -> list[Step]:
    """The install as Steps: a pure function of the facts and the flags."""
    step = Step(f"k3s {options.role}")
    nvidia = _nvidia_step(facts)
    if facts.k3s_active:
        step.notes.append(
            f"the {'k3s' if options.role == 'server' else 'k3s-agent'} unit is active: nothing to "
            f"install (`/usr/local/bin/k3s-uninstall.sh` or -agent-uninstall.sh removes it)"
        )
        return [step, nvidia]
    env = [f"INSTALL_K3S_VERSION={K3S_VERSION}"]
    if options.role == "agent":
        env.append(f"K3S_URL=https://{options.server}:6443")
        if options.token_file is not None:
            env.append(f"K3S_TOKEN_FILE={options.token_file.absolute()}")
            step.notes.append(f"k3s reads the join token from {options.token_file} at every start: keep that file")
        elif facts.token_in_env:
            step.notes.append(
                "the join token comes from K3S_TOKEN in the environment (k3s keeps it in its unit's "
                "environment file, mode 0600)"
            )
        else:
            step.errors.append(
                f"no join token: give --token-file PATH (or K3S_TOKEN in the environment). {_token_fix()}"
            )
    flags = ["server", "--disable=traefik"] if options.role == "server" else ["agent"]
    if facts.online:
        step.actions += [
            run("install", "-d", "-m", "0755", str(SCRIPT.parent)),
            run("curl", "-sfL", "--retry", "3", "-o", str(SCRIPT), INSTALL_URL),
            run("env", *env, "sh", str(SCRIPT), *flags),
        ]
    else:
        step.actions += _airgap(facts, options, step, env, flags)
    if options.role == "server":
        step.notes.append("Traefik is left out: Caddy is the platform's entry (its LoadBalancer Service takes 80/443)")
        step.notes.append(
            f"agents join with the token in {SERVER_TOKEN} (copy it over a private channel, never paste "
            f"it into a command line); kubectl here reads /etc/rancher/k3s/k3s.yaml"
        )
    step.notes.append(PORTS_NOTE)
    return [step, nvidia]


def _airgap(facts: K3sFacts, options: K3sOptions, step: Step, env: list[str], flags: list[str]) -> list[Action]:
    binary, images, script = airgap_names(facts.arch)
    folder = airgap_folder(options)
    why = "--airgap was given" if options.airgap else f"k3s's downloads ({RELEASES}) do not answer from this host"
    step.notes.append(
        f"airgap install ({why}): the image tarball goes to {AIRGAP_IMAGES}, which k3s imports at "
        f"start; the platform's images can be put there too, as tarballs (`docker save` on a connected box)"
    )
    missing = [name for name in (binary, images, script) if name not in facts.airgap_files]
    if missing:
        step.errors.append(
            f"airgap files missing in {folder}: {', '.join(missing)}. Download them on a connected box from "
            f"{RELEASES}/{K3S_VERSION}/ (install.sh from {INSTALL_URL}), copy them to {folder}, then run "
            f"`{SUDO_INV} setup --k3s-{options.role} --airgap {folder}` again."
        )
        return []
    return [
        run("install", "-d", "-m", "0755", str(AIRGAP_IMAGES)),
        run("install", "-m", "0644", str(folder / images), str(AIRGAP_IMAGES / images)),
        run("install", "-m", "0755", str(folder / binary), str(K3S_BINARY)),
        run("env", "INSTALL_K3S_SKIP_DOWNLOAD=true", *env, "sh", str(folder / script), *flags),
    ]


def _nvidia_step(facts: K3sFacts) -> Step:
    step = Step("nvidia")
    if facts.nvidia_runtime:
        step.notes.append(
            "the NVIDIA container toolkit is installed: k3s adds its `nvidia` runtime at start and the "
            "`nvidia` RuntimeClass the GPU workloads name"
        )
        step.notes.append(
            "`nvidia.com/gpu` is advertised once NVIDIA's device plugin runs (its DaemonSet with "
            "runtimeClassName: nvidia): see docs/kubernetes.md"
        )
    elif facts.gpu:
        step.errors.append(
            f"a GPU but no NVIDIA container toolkit: k3s would have no `nvidia` runtime. Run "
            f"`{SUDO_INV} setup --skip-ollama --skip-models` first (it installs the toolkit)."
        )
    else:
        step.skipped = "no NVIDIA GPU"
    return step


def install(
    options: K3sOptions,
    runner: Runner,
    gpu: bool,
    show: Callable[[list[Step]], None],
    confirm: Callable[[], bool],
    yes: bool,
) -> list[Step]:
    """Check the flags, read the host, show the plan; with consent (or --yes) run it. The steps, as planned."""
    check_options(options)
    if not runner.dry_run and os.geteuid() != 0:
        raise UserError(
            "installing k3s changes the host and must run as root.",
            f"Run `{SUDO_INV} setup --k3s-{options.role} ...` (or `{INV} setup --k3s-{options.role} "
            f"--dry-run` to see the plan).",
        )
    steps = plan_k3s(probe(runner, options, gpu), options)
    show(steps)
    if any(step.errors for step in steps):
        return steps
    if any(step.actions for step in steps) and not runner.dry_run and not yes and not confirm():
        raise UserError(
            "Cancelled: nothing was changed.",
            f"`{SUDO_INV} setup --k3s-{options.role} --yes` installs without a question.",
        )
    apply(steps, runner)
    return steps
