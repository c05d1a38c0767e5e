"""Prepare the host: Docker (+ daemon.json), the NVIDIA container toolkit, Ollama as a systemd service.

Plan, then apply (the invocations idea): `probe` reads the host into HostFacts, `plan_setup` turns facts + options +
the rendered Ollama files into Steps of Actions (commands and file writes) — a pure function, so each scenario is
tested as the exact plan it produces — and `apply` sends every action through the Runner, which prints instead of
acting under --dry-run. A step whose facts say it is done plans nothing and reports "already done", so a second run
changes nothing. Waiting for Ollama and pulling models come after, in ollama.py.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import psutil

from aiplatform import __version__
from aiplatform.commands import INV, SUDO_INV
from aiplatform.envfile import parse_env
from aiplatform.errors import UserError
from aiplatform.generated import build
from aiplatform.host import ollama
from aiplatform.host.checks import Check
from aiplatform.host.runner import Runner
from aiplatform.inputs.context import Context
from aiplatform.inputs.hardware import format_profile_env, report_for
from aiplatform.inputs.settings import Settings
from aiplatform.paths import GENERATED_DIR, HARDWARE_PROFILE
from aiplatform.render.tree import node_firewall_script

DAEMON_JSON = Path("/etc/docker/daemon.json")
OLLAMA_DROPIN = Path(ollama.OVERRIDE)
APPARMOR_PROFILE = Path("/etc/apparmor.d/ollama")
DOCKER_KEYRING = Path("/etc/apt/keyrings/docker.asc")
DOCKER_SOURCES = Path("/etc/apt/sources.list.d/docker.list")
NVIDIA_KEYRING = Path("/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg")
NVIDIA_SOURCES = Path("/etc/apt/sources.list.d/nvidia-container-toolkit.list")
TAILSCALE_KEYRING = Path("/usr/share/keyrings/tailscale-archive-keyring.gpg")
TAILSCALE_SOURCES = Path("/etc/apt/sources.list.d/tailscale.list")
# Docker's documented list of packages that conflict with docker-ce.
CONFLICTING = ("docker.io", "docker-doc", "docker-compose", "docker-compose-v2", "podman-docker", "containerd", "runc")
DOCKER_CE = ("docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin")
DISTRO_DOCKER = {"ubuntu": ("docker.io", "docker-compose-v2", "docker-buildx"), "debian": ("docker.io",)}
APT = ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get")


@dataclass(frozen=True)
class HostFacts:
    """What setup needs to know about the host, read by `probe` (or written by hand in tests)."""

    os_id: str  # ubuntu | debian | ...
    codename: str  # noble | bookworm | ...
    arch: str = "amd64"
    gpu: bool = False
    docker_ok: bool = False  # `docker info` answers
    compose_ok: bool = False  # `docker compose version` answers
    installed: frozenset[str] = frozenset()  # dpkg packages installed, among those setup cares about
    daemon_json: str | None = None  # current /etc/docker/daemon.json
    nvidia_smi_ok: bool = False
    nvidia_runtime: bool = False  # `docker info` lists the nvidia runtime
    ollama_binary: bool = False
    tailscale_binary: bool = False
    ollama_dropin: str | None = None  # current override.conf
    ollama_firewall_script: str | None = None  # current <root>/scripts/ollama-firewall.sh
    ollama_enabled: bool = False
    ollama_active: bool = False
    ollama_needs_reload: bool = False  # the unit's files changed since systemd read them (no daemon-reload yet)
    apparmor_enabled: bool = False
    apparmor_denies_ollama: bool = False  # the journal shows an AppArmor denial for ollama
    apparmor_profile: str | None = None
    node_exporter_active: bool = False  # prometheus-node-exporter's service runs (a node)
    gpu_exporter_running: bool = False  # the node's GPU exporter container runs


@dataclass(frozen=True)
class Action:
    argv: tuple[str, ...] = ()
    path: Path | None = None  # a file write when set
    data: bytes = b""
    mode: int = 0o644

    def describe(self) -> str:
        return f"write {self.path}" if self.path else shlex.join(self.argv)


def run(*argv: str) -> Action:
    return Action(argv=tuple(argv))


def write(path: Path, text: str, mode: int = 0o644) -> Action:
    return Action(path=path, data=text.encode(), mode=mode)


@dataclass
class Step:
    name: str
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # problems setup cannot fix itself (with the fix to run)
    skipped: str = ""

    @property
    def state(self) -> str:
        if self.errors:
            return "error"
        if self.skipped:
            return "skipped"
        return "to do" if self.actions else "already done"


@dataclass(frozen=True)
class SetupOptions:
    skip_docker: bool = False
    skip_nvidia: bool = False
    skip_ollama: bool = False
    docker_source: str = "docker"  # docker | distro
    apparmor: str = "auto"  # auto | always | never
    tailscale: bool = False  # an auth key is known: install tailscale
    node: str = ""  # set up an Ollama node for the platform host at this address (setup --node --platform-host)
    gpu_exporter_image: str = ""  # a node's GPU exporter: the catalog's dcgm-exporter image


@dataclass(frozen=True)
class OllamaFiles:
    """Rendered by render.py: the systemd drop-in, the firewall script (when needed) and the AppArmor profile."""

    dropin: str
    firewall_script: str | None
    firewall_path: Path | None
    apparmor_profile: str
    firewall_note: str = (
        "firewall: Ollama's port admitted only from loopback and Docker's bridges ({path}); "
        "`ollama_expose_lan: true` in settings skips it"
    )


# --- daemon.json -------------------------------------------------------------------------------------------------


def platform_daemon_keys(settings: Settings) -> dict[str, Any]:
    return {
        "log-driver": "json-file",
        "log-opts": {"max-size": settings.docker_log_max_size, "max-file": str(settings.docker_log_max_file)},
        "storage-driver": "overlay2",
        "live-restore": True,
        "default-address-pools": [{"base": settings.docker_address_pool, "size": settings.docker_address_pool_size}],
    }


def merge_daemon_json(current: str | None, settings: Settings) -> tuple[str, list[str]]:
    """The platform's keys merged into the existing daemon.json: the owner's keys (and values) are kept, missing
    platform keys are added. Returns the new text and notes about values kept that differ from the platform's.
    Invalid JSON is a UserError and nothing is written."""
    owner: dict[str, Any] = {}
    if current is not None and current.strip():
        try:
            owner = json.loads(current)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{DAEMON_JSON} is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}).",
                f"Fix or move {DAEMON_JSON} aside, then run `{SUDO_INV} setup` again; it was left untouched.",
            ) from None
        if not isinstance(owner, dict):
            raise UserError(f"{DAEMON_JSON} must hold a JSON object.", f"Fix {DAEMON_JSON}; it was left untouched.")
    merged = dict(owner)
    notes = []
    for key, value in platform_daemon_keys(settings).items():
        if key not in owner:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(owner[key], dict):
            merged[key] = {**value, **owner[key]}
            notes += [
                f"kept your {key}.{k}: {owner[key][k]!r}"
                for k in value
                if k in owner[key] and owner[key][k] != value[k]
            ]
        elif owner[key] != value:
            notes.append(f"kept your {key}: {owner[key]!r} (the platform would set {value!r})")
    return json.dumps(merged, indent=2, sort_keys=True) + "\n", notes


# --- the plan ----------------------------------------------------------------------------------------------------


def plan_setup(
    facts: HostFacts, options: SetupOptions, settings: Settings, files: OllamaFiles, hardware_step: Step
) -> list[Step]:
    """Every step with the actions that would bring this host to the platform's state (none when it is there)."""
    if facts.os_id not in ("ubuntu", "debian"):
        raise UserError(
            f"Unsupported system {facts.os_id!r}: setup knows Ubuntu and Debian.",
            f"Install Docker, the NVIDIA toolkit and Ollama by hand, then use `{INV} doctor` to check.",
        )
    steps = [hardware_step]
    if options.node and not facts.gpu:
        steps.append(Step("docker", skipped="a node without a GPU runs no container"))
    else:
        steps.append(_docker_step(facts, options, settings))
    steps.append(_nvidia_step(facts, options))
    steps.append(_ollama_step(facts, options, files))
    if options.node:
        steps.append(_exporters_step(facts, options.gpu_exporter_image))
    else:
        steps.append(_tailscale_step(facts, options))
    return steps


GPU_EXPORTER = "ai-platform-node-gpu-exporter"


def _exporters_step(facts: HostFacts, image: str) -> Step:
    """A node's metrics for the platform's Prometheus: node-exporter (Debian's package) and, with a GPU, NVIDIA's
    GPU exporter (the catalog's pinned image, one container); both admitted only from the platform host."""
    step = Step("exporters")
    if "prometheus-node-exporter" not in facts.installed:
        step.actions += [run(*APT, "update"), run(*APT, "install", "-y", "prometheus-node-exporter")]
    if not facts.node_exporter_active:
        step.actions.append(run("systemctl", "enable", "--now", "prometheus-node-exporter"))
    if facts.gpu and not facts.gpu_exporter_running:
        step.actions += [
            run("docker", "rm", "--force", GPU_EXPORTER),
            run("docker", "run", "--detach", "--name", GPU_EXPORTER, "--restart", "unless-stopped", "--gpus", "all",
                "--cap-add", "SYS_ADMIN", "--publish", "9400:9400", "--label", "ai-platform.node=true", image),
        ]  # fmt: skip
    return step


def _tailscale_step(facts: HostFacts, options: SetupOptions) -> Step:
    """Tailscale from its own apt repository, only when an auth key was given (configure joins the tailnet)."""
    step = Step("tailscale")
    if not options.tailscale:
        step.skipped = "no Tailscale auth key (AI_PLATFORM_TAILSCALE_AUTHKEY)"
        return step
    if facts.tailscale_binary:
        return step
    repo = f"https://pkgs.tailscale.com/stable/{facts.os_id}"
    step.actions += [
        run("curl", "-fsSL", f"{repo}/{facts.codename}.noarmor.gpg", "-o", str(TAILSCALE_KEYRING)),
        write(TAILSCALE_SOURCES, f"deb [signed-by={TAILSCALE_KEYRING}] {repo} {facts.codename} main\n"),
        run(*APT, "update"),
        run(*APT, "install", "-y", "tailscale"),
        run("systemctl", "enable", "--now", "tailscaled"),
    ]
    step.notes.append(f"`{SUDO_INV} configure` joins the tailnet and serves Open WebUI there")
    return step


def _docker_step(facts: HostFacts, options: SetupOptions, settings: Settings) -> Step:
    step = Step("docker")
    if options.skip_docker:
        step.skipped = "--skip-docker"
        return step
    fresh = not (facts.docker_ok and facts.compose_ok)
    if fresh:
        if options.docker_source == "distro":
            step.actions += _distro_docker(facts, step)
        else:
            step.actions += _docker_ce(facts)
    merged, notes = merge_daemon_json(facts.daemon_json, settings)
    step.notes += notes
    if facts.daemon_json is None or json.loads(merged) != json.loads(facts.daemon_json or "{}"):
        if facts.daemon_json is not None:
            step.actions.append(run("cp", "-a", str(DAEMON_JSON), f"{DAEMON_JSON}.bak"))
            step.notes.append(f"the previous daemon.json is kept as {DAEMON_JSON}.bak")
        step.actions.append(write(DAEMON_JSON, merged))
        step.actions.append(run("systemctl", "restart", "docker"))
    if fresh:
        step.actions.append(run("systemctl", "enable", "--now", "docker"))
    return step


def _docker_ce(facts: HostFacts) -> list[Action]:
    conflicting = sorted(set(CONFLICTING) & facts.installed)
    repo = f"https://download.docker.com/linux/{facts.os_id}"
    actions = [run(*APT, "remove", "-y", *conflicting)] if conflicting else []
    actions += [
        run(*APT, "update"),
        run(*APT, "install", "-y", "ca-certificates", "curl"),
        run("install", "-m", "0755", "-d", str(DOCKER_KEYRING.parent)),
        run("curl", "-fsSL", f"{repo}/gpg", "-o", str(DOCKER_KEYRING)),
        run("chmod", "a+r", str(DOCKER_KEYRING)),
        write(DOCKER_SOURCES, f"deb [arch={facts.arch} signed-by={DOCKER_KEYRING}] {repo} {facts.codename} stable\n"),
        run(*APT, "update"),
        run(*APT, "install", "-y", *DOCKER_CE),
    ]
    return actions


def _distro_docker(facts: HostFacts, step: Step) -> list[Action]:
    packages = DISTRO_DOCKER[facts.os_id]
    if facts.os_id == "debian":
        step.notes.append("Debian 12 packages only Compose v1; the platform needs v2: use --docker-source docker")
    return [run(*APT, "update"), run(*APT, "install", "-y", *packages)]


def _nvidia_step(facts: HostFacts, options: SetupOptions) -> Step:
    step = Step("nvidia")
    if options.skip_nvidia:
        step.skipped = "--skip-nvidia"
        return step
    if not facts.gpu:
        step.skipped = "no NVIDIA GPU"
        return step
    if not facts.nvidia_smi_ok:
        fix = (
            "sudo apt-get install -y ubuntu-drivers-common && sudo ubuntu-drivers install"
            if facts.os_id == "ubuntu"
            else "sudo apt-get install -y nvidia-driver firmware-misc-nonfree (with contrib non-free non-free-firmware)"
        )
        step.errors.append(f"nvidia-smi does not work: the NVIDIA driver is missing. Install it: {fix}; then reboot")
        return step
    if "nvidia-container-toolkit" not in facts.installed:
        base = "https://nvidia.github.io/libnvidia-container"
        step.actions += [
            run("sh", "-c", f"curl -fsSL {base}/gpgkey | gpg --batch --yes --dearmor -o {NVIDIA_KEYRING}"),
            run(
                "sh",
                "-c",
                f"curl -fsSL {base}/stable/deb/nvidia-container-toolkit.list | sed "
                f"'s#deb https://#deb [signed-by={NVIDIA_KEYRING}] https://#g' > {NVIDIA_SOURCES}",
            ),
            run(*APT, "update"),
            run(*APT, "install", "-y", "nvidia-container-toolkit"),
        ]
    elif not facts.nvidia_runtime:
        step.notes.append(
            "nvidia-container-toolkit is installed but Docker's nvidia runtime was never configured "
            "(the classic failure): configuring it now"
        )
    if not facts.nvidia_runtime:
        step.actions += [
            run("nvidia-ctk", "runtime", "configure", "--runtime=docker"),
            run("systemctl", "restart", "docker"),
        ]
    return step


def _ollama_step(facts: HostFacts, options: SetupOptions, files: OllamaFiles) -> Step:
    step = Step("ollama")
    if options.skip_ollama:
        step.skipped = "--skip-ollama"
        return step
    restart = False
    if not facts.ollama_binary:
        # Ollama's official installer: the binary, the ollama user and /etc/systemd/system/ollama.service.
        step.actions.append(run("sh", "-c", "curl -fsSL https://ollama.com/install.sh | sh"))
        restart = True
    if files.firewall_path and files.firewall_script and facts.ollama_firewall_script != files.firewall_script:
        step.actions.append(write(files.firewall_path, files.firewall_script, 0o755))
        step.actions.append(run("/bin/sh", str(files.firewall_path)))
        step.notes.append(files.firewall_note.format(path=files.firewall_path))
    if facts.ollama_dropin != files.dropin:
        step.actions.append(write(OLLAMA_DROPIN, files.dropin))
        restart = True
    denied = facts.apparmor_enabled and facts.apparmor_denies_ollama
    wants_profile = options.apparmor == "always" or (options.apparmor == "auto" and denied)
    if wants_profile and facts.apparmor_profile != files.apparmor_profile:
        step.actions += [
            write(APPARMOR_PROFILE, files.apparmor_profile),
            run("apparmor_parser", "-r", str(APPARMOR_PROFILE)),
        ]
        step.notes.append("AppArmor profile for ollama installed" + (" (the journal showed denials)" if denied else ""))
        restart = True
    if facts.ollama_needs_reload and not restart:  # the drop-in is on disk, but the running unit predates it
        step.notes.append("the ollama unit's files changed since systemd read them: reloaded and restarted")
        restart = True
    if restart:
        step.actions.append(run("systemctl", "daemon-reload"))
    if not facts.ollama_enabled or restart:
        step.actions.append(run("systemctl", "enable", "ollama"))
    if restart or not facts.ollama_active:
        step.actions.append(run("systemctl", "restart", "ollama"))
    return step


def apply(steps: list[Step], runner: Runner) -> None:
    for step in steps:
        for action in step.actions:
            if action.path is not None:
                runner.write(action.path, action.data, action.mode)
            else:
                runner.run(list(action.argv), timeout=1800)


# --- reading the host --------------------------------------------------------------------------------------------


def probe(runner: Runner, gpu: bool, firewall_path: Path | None) -> HostFacts:
    """Read the host's state: every query is read-only (changes=False) and tolerant of missing tools."""

    def ok(*argv: str) -> bool:
        return runner.run(list(argv), check=False, changes=False, timeout=60).ok

    def out(*argv: str) -> str:
        result = runner.run(list(argv), check=False, changes=False, timeout=60)
        return result.stdout if result.ok else ""

    release = _os_release(Path("/etc/os-release"))
    wanted = (*CONFLICTING, *DOCKER_CE, "nvidia-container-toolkit", "prometheus-node-exporter")
    listing = out("dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *wanted)
    installed = frozenset(line.split()[0] for line in listing.splitlines() if line.endswith(" installed"))
    docker_ok = ok("docker", "info")
    return HostFacts(
        os_id=release.get("ID", "unknown"),
        codename=release.get("VERSION_CODENAME", ""),
        arch=out("dpkg", "--print-architecture").strip() or "amd64",
        gpu=gpu,
        docker_ok=docker_ok,
        compose_ok=ok("docker", "compose", "version"),
        installed=installed,
        daemon_json=_read(DAEMON_JSON),
        nvidia_smi_ok=ok("nvidia-smi") if gpu else False,
        nvidia_runtime=docker_ok and "nvidia" in out("docker", "info", "--format", "{{json .Runtimes}}"),
        ollama_binary=shutil.which("ollama") is not None,
        tailscale_binary=shutil.which("tailscale") is not None,
        ollama_dropin=_read(OLLAMA_DROPIN),
        ollama_firewall_script=_read(firewall_path) if firewall_path else None,
        ollama_enabled=out("systemctl", "is-enabled", "ollama").strip() == "enabled",
        ollama_active=out("systemctl", "is-active", "ollama").strip() == "active",
        ollama_needs_reload=out("systemctl", "show", "ollama", "--property=NeedDaemonReload", "--value").strip()
        == "yes",
        apparmor_enabled=_read(Path("/sys/module/apparmor/parameters/enabled")) in ("Y\n", "Y"),
        apparmor_denies_ollama='apparmor="DENIED"'
        in out("journalctl", "-k", "-g", "ollama", "--no-pager", "-n", "200"),
        apparmor_profile=_read(APPARMOR_PROFILE),
        node_exporter_active=out("systemctl", "is-active", "prometheus-node-exporter").strip() == "active",
        gpu_exporter_running=docker_ok
        and out("docker", "ps", "--filter", f"name=^{GPU_EXPORTER}$", "--format", "{{.Names}}").strip() == GPU_EXPORTER,
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return None


def _os_release(path: Path) -> dict[str, str]:
    text = _read(path)
    return parse_env(text, str(path)) if text else {}


def hardware_step(path: Path, text: str) -> Step:
    """Write hardware-profile.env unless it already says the same (comments aside: the header names the version)."""
    step = Step("hardware")
    current = _read(path)
    if current is not None and parse_env(current, str(path)) == parse_env(text, str(path)):
        return step
    step.actions.append(write(path, text))
    return step


# --- the whole command -------------------------------------------------------------------------------------------


@dataclass
class SetupReport:
    steps: list[Step]
    wait: ollama.WaitResult | None = None
    pull: ollama.PullSummary | None = None
    checks: list[Check] = field(default_factory=list)
    diagnostics_file: Path | None = None

    @property
    def ok(self) -> bool:
        return not any(s.errors for s in self.steps) and all(c.status != "fail" for c in self.checks)


class SetupUI(Protocol):
    def plan(self, steps: list[Step]) -> None: ...
    def confirm(self) -> bool: ...
    def wait_progress(self, number: int, name: str, elapsed: float, seen: str) -> None: ...
    def pull_progress(self) -> Any: ...  # an ollama.PullProgress, used as a context manager


OLLAMA_MODELS_DIR = Path("/usr/share/ollama/.ollama/models")


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def run_setup(
    ctx: Context,
    options: SetupOptions,
    runner: Runner,
    ui: SetupUI,
    *,
    yes: bool,
    models: list[str] | None,
    skip_models: bool,
) -> SetupReport:
    """Detect, plan, confirm, apply; then wait for Ollama in three steps, pull the models and check the result."""
    if not runner.dry_run and os.geteuid() != 0:
        raise UserError(
            "setup changes the host (packages, /etc, services) and must run as root.",
            f"Run `{SUDO_INV} setup`, or `{INV} setup --dry-run` to see the plan without root.",
        )
    settings = ctx.resolved.settings
    root: Path = settings.root
    hardware = ctx.hardware
    report = report_for(hardware, ctx.profiles_dir)
    rendered = build.render_platform(ctx, GENERATED_DIR)
    tree = rendered.tree
    firewall = tree.get("scripts/ollama-firewall.sh")
    files = OllamaFiles(
        dropin=tree["config/ollama/override.conf"].data.decode(),
        firewall_script=firewall.data.decode() if firewall else None,
        firewall_path=root / "scripts/ollama-firewall.sh" if firewall else None,
        apparmor_profile=tree["config/ollama/apparmor-ollama"].data.decode(),
    )
    if options.node:  # the same drop-in; its firewall admits the platform host instead of Docker's bridges
        files = replace(
            files,
            firewall_script=node_firewall_script(
                rendered.platform, options.node, hardware.gpu_available, socket.gethostname()
            ),
            firewall_path=root / "scripts/ollama-firewall.sh",
            firewall_note=f"firewall: Ollama's port and the exporters' admitted only from loopback and the platform "
            f"host {options.node} ({{path}})",
        )
        monitoring = ctx.catalog.services["monitoring"].containers["dcgm-exporter"]
        options = replace(options, gpu_exporter_image=settings.images.get("dcgm-exporter", monitoring.image))
    facts = probe(runner, hardware.gpu_available, files.firewall_path)
    keys = parse_env(tree["config/credentials.env"].data.decode(), "credentials.env")
    options = replace(options, tailscale=not options.node and (options.tailscale or "TAILSCALE_AUTHKEY" in keys))
    first = hardware_step(root / HARDWARE_PROFILE, format_profile_env(report, __version__))
    steps = plan_setup(facts, options, settings, files, first)
    ui.plan(steps)
    result = SetupReport(steps)
    if any(step.actions for step in steps) and not runner.dry_run and not yes and not ui.confirm():
        raise UserError("Cancelled: nothing was changed.", f"Run `{SUDO_INV} setup --yes` to apply without a question.")
    apply(steps, runner)
    if runner.dry_run:
        return result
    url = f"http://127.0.0.1:{settings.ollama_port}"
    if not options.skip_ollama:
        result.wait = ollama.wait_for_ollama(
            url, runner=runner, check_unit=systemd_running(), progress=ui.wait_progress
        )
        if not result.wait.ok:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            result.diagnostics_file = root / "logs" / f"ollama-diagnostics-{stamp}.txt"
            runner.write(result.diagnostics_file, result.wait.report().encode(), 0o644)
    wanted = models if models is not None else settings.models
    if not skip_models and result.wait is not None and result.wait.ok:
        sizes = {m.name: m.size_gb for m in ctx.resolved.profile.models}
        models_dir = OLLAMA_MODELS_DIR if OLLAMA_MODELS_DIR.exists() else root

        def free_bytes() -> int:
            return int(psutil.disk_usage(str(models_dir)).free)

        with ui.pull_progress() as progress:
            result.pull = ollama.pull_models(url, wanted, sizes_gb=sizes, free_bytes=free_bytes, progress=progress)
    result.checks = final_checks(runner, hardware.gpu_available, result, root / HARDWARE_PROFILE, wanted, skip_models)
    if options.node and not hardware.gpu_available:  # no Docker on such a node
        result.checks = [c for c in result.checks if c.name not in ("docker", "compose v2")]
    return result


def final_checks(
    runner: Runner, gpu: bool, result: SetupReport, profile: Path, models: list[str], skip_models: bool
) -> list[Check]:
    """What setup promised, checked again on the host as it is now."""
    facts = probe(runner, gpu, None)
    found = [
        Check(
            "docker",
            "ok" if facts.docker_ok else "fail",
            "engine answers" if facts.docker_ok else "not answering",
            "" if facts.docker_ok else f"See the docker step above; `{INV} doctor` checks again.",
        ),
        Check(
            "compose v2",
            "ok" if facts.compose_ok else "fail",
            "present" if facts.compose_ok else "missing",
            "" if facts.compose_ok else "Install docker-compose-plugin (--docker-source docker).",
        ),
    ]
    if gpu:
        found.append(
            Check(
                "nvidia runtime",
                "ok" if facts.nvidia_runtime else "fail",
                "listed by docker info" if facts.nvidia_runtime else "not in docker info",
                ""
                if facts.nvidia_runtime
                else "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker",
            )
        )
    if result.wait is not None:
        found.append(
            Check(
                "ollama",
                "ok" if result.wait.ok else "fail",
                f"version {result.wait.version}"
                if result.wait.ok
                else next(
                    (f"step {s.number} ({s.name}): {s.detail}" for s in result.wait.steps if s.status == "fail"),
                    "not ready",
                ),
                "" if result.wait.ok else f"Details: {result.diagnostics_file}",
            )
        )
    if result.pull is not None:
        present = [*result.pull.pulled, *result.pull.skipped]
        missing = [m for m in models if m not in present]
        found.append(
            Check(
                "models",
                "fail" if missing else "ok",
                f"missing: {', '.join(missing)}" if missing else f"present: {', '.join(present)}",
                "; ".join(f"{m}: {r}" for m, r in result.pull.failed.items()),
            )
        )
    elif not skip_models and result.wait is not None:
        found.append(Check("models", "fail", "not pulled: Ollama is not ready", "Fix Ollama first (see above)."))
    found.append(
        Check(
            "hardware profile",
            "ok" if profile.is_file() else "fail",
            str(profile) if profile.is_file() else f"{profile} missing",
        )
    )
    return found
