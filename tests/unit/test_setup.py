"""inv setup as the exact plan it produces for a host (Docker's apt repository, a GPU and systemd cannot be real
here), the daemon.json merge, and the dry run through the real Runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.host.setup import (
    DAEMON_JSON,
    OLLAMA_DROPIN,
    HostFacts,
    OllamaFiles,
    SetupOptions,
    Step,
    apply,
    hardware_step,
    merge_daemon_json,
    plan_setup,
    run,
    write,
)
from aiplatform.inputs.settings import Settings

SETTINGS = Settings(models=["m"], embedding_model="m")
FIREWALL = Path("/mnt/data/ai-platform/scripts/ollama-firewall.sh")
FILES = OllamaFiles(
    dropin="[Service]\nEnvironment=OLLAMA_HOST=0.0.0.0:11434\n",
    firewall_script="#!/bin/sh\n",
    firewall_path=FIREWALL,
    apparmor_profile="profile ollama {}\n",
)
MERGED_FRESH, _ = merge_daemon_json(None, SETTINGS)
DONE = HostFacts(
    os_id="debian",
    codename="bookworm",
    gpu=True,
    docker_ok=True,
    compose_ok=True,
    installed=frozenset({"docker-ce", "nvidia-container-toolkit"}),
    daemon_json=MERGED_FRESH,
    nvidia_smi_ok=True,
    nvidia_runtime=True,
    ollama_binary=True,
    ollama_dropin=FILES.dropin,
    ollama_firewall_script=FILES.firewall_script,
    ollama_enabled=True,
    ollama_active=True,
)


def commands(steps: list[Step]) -> list[str]:
    return [action.describe() for step in steps for action in step.actions]


def plan(facts: HostFacts, **options) -> list[Step]:
    return plan_setup(facts, SetupOptions(**options), SETTINGS, FILES, Step("hardware"))


def test_ubuntu_2404_with_gpu_and_no_docker():
    facts = HostFacts(
        os_id="ubuntu", codename="noble", gpu=True, installed=frozenset({"docker.io", "containerd"}), nvidia_smi_ok=True
    )
    steps = plan(facts)
    assert commands(steps) == [
        "env DEBIAN_FRONTEND=noninteractive apt-get remove -y containerd docker.io",
        "env DEBIAN_FRONTEND=noninteractive apt-get update",
        "env DEBIAN_FRONTEND=noninteractive apt-get install -y ca-certificates curl",
        "install -m 0755 -d /etc/apt/keyrings",
        "curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc",
        "chmod a+r /etc/apt/keyrings/docker.asc",
        "write /etc/apt/sources.list.d/docker.list",
        "env DEBIAN_FRONTEND=noninteractive apt-get update",
        "env DEBIAN_FRONTEND=noninteractive apt-get install -y docker-ce docker-ce-cli containerd.io "
        "docker-buildx-plugin docker-compose-plugin",
        "write /etc/docker/daemon.json",
        "systemctl restart docker",
        "systemctl enable --now docker",
        "sh -c 'curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --batch --yes --dearmor -o "
        "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg'",
        "sh -c 'curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list | "
        "sed '\"'\"'s#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] "
        "https://#g'\"'\"' > /etc/apt/sources.list.d/nvidia-container-toolkit.list'",
        "env DEBIAN_FRONTEND=noninteractive apt-get update",
        "env DEBIAN_FRONTEND=noninteractive apt-get install -y nvidia-container-toolkit",
        "nvidia-ctk runtime configure --runtime=docker",
        "systemctl restart docker",
        "sh -c 'curl -fsSL https://ollama.com/install.sh | sh'",
        f"write {FIREWALL}",
        f"/bin/sh {FIREWALL}",
        f"write {OLLAMA_DROPIN}",
        "systemctl daemon-reload",
        "systemctl enable ollama",
        "systemctl restart ollama",
    ]
    sources = next(a for s in steps for a in s.actions if a.path == Path("/etc/apt/sources.list.d/docker.list"))
    assert sources.data.decode() == (
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] "
        "https://download.docker.com/linux/ubuntu noble stable\n"
    )


def test_debian_12_without_gpu_with_docker_present():
    facts = HostFacts(
        os_id="debian",
        codename="bookworm",
        gpu=False,
        docker_ok=True,
        compose_ok=True,
        installed=frozenset({"docker-ce"}),
        daemon_json=MERGED_FRESH,
    )
    steps = {step.name: step for step in plan(facts)}
    assert steps["docker"].state == "already done"
    assert steps["nvidia"].state == "skipped" and steps["nvidia"].skipped == "no NVIDIA GPU"
    assert commands([steps["ollama"]]) == [
        "sh -c 'curl -fsSL https://ollama.com/install.sh | sh'",
        f"write {FIREWALL}",
        f"/bin/sh {FIREWALL}",
        f"write {OLLAMA_DROPIN}",
        "systemctl daemon-reload",
        "systemctl enable ollama",
        "systemctl restart ollama",
    ]


def test_everything_already_done_is_an_empty_plan():
    steps = plan(DONE)
    assert commands(steps) == []
    assert [step.state for step in steps] == ["already done"] * 4 + ["skipped"]  # no Tailscale key given


def test_tailscale_only_with_a_key_from_its_own_repository():
    assert [s.skipped for s in plan(DONE) if s.name == "tailscale"] == [
        "no Tailscale auth key (AI_PLATFORM_TAILSCALE_AUTHKEY)"
    ]
    steps = {step.name: step for step in plan(DONE, tailscale=True)}
    assert commands([steps["tailscale"]]) == [
        f"curl -fsSL https://pkgs.tailscale.com/stable/{DONE.os_id}/{DONE.codename}.noarmor.gpg "
        "-o /usr/share/keyrings/tailscale-archive-keyring.gpg",
        "write /etc/apt/sources.list.d/tailscale.list",
        "env DEBIAN_FRONTEND=noninteractive apt-get update",
        "env DEBIAN_FRONTEND=noninteractive apt-get install -y tailscale",
        "systemctl enable --now tailscaled",
    ]
    installed = HostFacts(**{**DONE.__dict__, "tailscale_binary": True})
    assert [s.state for s in plan(installed, tailscale=True) if s.name == "tailscale"] == ["already done"]


def test_toolkit_installed_but_runtime_never_configured_is_named_and_fixed():
    steps = {step.name: step for step in plan(HostFacts(**{**DONE.__dict__, "nvidia_runtime": False}))}
    assert any("never configured" in note for note in steps["nvidia"].notes)
    assert commands([steps["nvidia"]]) == ["nvidia-ctk runtime configure --runtime=docker", "systemctl restart docker"]


def test_missing_driver_gives_the_exact_apt_command():
    steps = {s.name: s for s in plan(HostFacts(**{**DONE.__dict__, "os_id": "ubuntu", "nvidia_smi_ok": False}))}
    assert steps["nvidia"].state == "error"
    assert "sudo apt-get install -y ubuntu-drivers-common && sudo ubuntu-drivers install" in steps["nvidia"].errors[0]


def test_changed_override_restarts_ollama_only():
    steps = plan(HostFacts(**{**DONE.__dict__, "ollama_dropin": "[Service]\n"}))
    assert commands(steps) == [
        f"write {OLLAMA_DROPIN}",
        "systemctl daemon-reload",
        "systemctl enable ollama",
        "systemctl restart ollama",
    ]


def test_a_drop_in_on_disk_that_systemd_has_not_read_is_reloaded_and_restarted():
    # the seed's "override not applied": the file is right, but no daemon-reload ran, so Ollama still binds 127.0.0.1
    steps = plan(HostFacts(**{**DONE.__dict__, "ollama_needs_reload": True}))
    assert commands(steps) == ["systemctl daemon-reload", "systemctl enable ollama", "systemctl restart ollama"]
    assert any("changed since systemd read them" in note for s in steps for note in s.notes)
    assert commands(plan(DONE)) == []  # read and running: nothing to do


@pytest.mark.parametrize(
    ("mode", "enabled", "denied", "installs"),
    [
        ("auto", True, True, True),
        ("auto", True, False, False),
        ("auto", False, True, False),
        ("always", False, False, True),
        ("never", True, True, False),
    ],
)
def test_apparmor_profile_only_when_it_is_needed(mode, enabled, denied, installs):
    facts = HostFacts(**{**DONE.__dict__, "apparmor_enabled": enabled, "apparmor_denies_ollama": denied})
    assert ("write /etc/apparmor.d/ollama" in commands(plan(facts, apparmor=mode))) is installs


def test_distro_docker_on_debian_warns_about_compose_v1():
    steps = {s.name: s for s in plan(HostFacts(os_id="debian", codename="bookworm"), docker_source="distro")}
    assert "env DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io" in commands([steps["docker"]])
    assert any("Compose v1" in note for note in steps["docker"].notes)


def test_skips_are_reported():
    steps = {s.name: s for s in plan(HostFacts(os_id="ubuntu", codename="noble"), skip_docker=True, skip_ollama=True)}
    assert steps["docker"].skipped == "--skip-docker" and steps["ollama"].skipped == "--skip-ollama"
    assert commands([steps["docker"], steps["ollama"]]) == []


def test_unsupported_system_is_a_clear_error():
    with pytest.raises(UserError, match="Unsupported system 'fedora'"):
        plan(HostFacts(os_id="fedora", codename=""))


# --- daemon.json ------------------------------------------------------------------------------------------------


def test_daemon_json_absent_gets_the_platform_keys():
    text, notes = merge_daemon_json(None, SETTINGS)
    assert json.loads(text) == {
        "default-address-pools": [{"base": "172.20.0.0/14", "size": 24}],
        "live-restore": True,
        "log-driver": "json-file",
        "log-opts": {"max-file": "3", "max-size": "10m"},
        "storage-driver": "overlay2",
    }
    assert notes == []


def test_daemon_json_keeps_the_owners_keys():
    owner = {
        "registry-mirrors": ["https://mirror.local"],
        "log-opts": {"max-size": "50m", "labels": "x"},
        "storage-driver": "zfs",
    }
    text, notes = merge_daemon_json(json.dumps(owner), SETTINGS)
    merged = json.loads(text)
    assert merged["registry-mirrors"] == ["https://mirror.local"]
    assert merged["log-opts"] == {"max-size": "50m", "max-file": "3", "labels": "x"}
    assert merged["storage-driver"] == "zfs"
    assert merged["live-restore"] is True
    assert any("storage-driver" in note for note in notes) and any("max-size" in note for note in notes)


def test_daemon_json_settings_override_the_pool():
    settings = Settings(
        models=["m"], embedding_model="m", docker_address_pool="10.200.0.0/16", docker_address_pool_size=26
    )
    assert json.loads(merge_daemon_json(None, settings)[0])["default-address-pools"] == [
        {"base": "10.200.0.0/16", "size": 26}
    ]


def test_daemon_json_invalid_stops_and_leaves_the_file(tmp_path):
    with pytest.raises(UserError) as caught:
        merge_daemon_json('{"log-driver": "json-file",}', SETTINGS)
    assert str(DAEMON_JSON) in str(caught.value) and "line 1" in str(caught.value)
    with pytest.raises(UserError):
        plan(HostFacts(**{**DONE.__dict__, "daemon_json": "{not json"}))


def test_unchanged_daemon_json_is_not_rewritten_and_docker_not_restarted():
    pretty = json.dumps(json.loads(MERGED_FRESH), indent=4)  # same content, other formatting
    steps = plan(HostFacts(**{**DONE.__dict__, "daemon_json": pretty}))
    assert commands(steps) == []


def test_changed_daemon_json_is_backed_up_then_written_then_docker_restarted():
    steps = {s.name: s for s in plan(HostFacts(**{**DONE.__dict__, "daemon_json": '{"debug": true}'}))}
    assert commands([steps["docker"]]) == [
        "cp -a /etc/docker/daemon.json /etc/docker/daemon.json.bak",
        "write /etc/docker/daemon.json",
        "systemctl restart docker",
    ]


# --- the real runner in a dry run; the hardware step ------------------------------------------------------------


def test_dry_run_prints_commands_and_file_contents_and_changes_nothing(tmp_path):
    printed: list[str] = []
    runner = Runner(dry_run=True, echo=printed.append)
    target = tmp_path / "etc" / "thing.conf"
    apply([Step("x", actions=[run("systemctl", "restart", "docker"), write(target, "a = 1\nb = 2\n")])], runner)
    assert printed == [
        "would run: systemctl restart docker",
        f"would write {target} (mode 0644):",
        "    a = 1",
        "    b = 2",
    ]
    assert not target.exists()
    assert runner.history == [["systemctl", "restart", "docker"], ["write", str(target), "0644"]]


def test_hardware_step_compares_values_not_comments(tmp_path):
    path = tmp_path / "hardware-profile.env"
    path.write_text("# Hardware measured by ai-platform 0.1.0\nCPU_CORES=4\n")
    assert hardware_step(path, "# Hardware measured by ai-platform 0.2.0\nCPU_CORES=4\n").state == "already done"
    assert hardware_step(path, "CPU_CORES=8\n").state == "to do"
    assert hardware_step(tmp_path / "absent.env", "CPU_CORES=4\n").state == "to do"


def test_inv_setup_dry_run_on_this_host_changes_nothing(tmp_path):
    # The real probe reads this machine (read-only); the plan is printed with file contents; nothing is written.
    from .conftest import run_inv

    root = tmp_path / "root"
    result = run_inv("setup", "--dry-run", "--root", str(root), "--skip-models")
    assert result.returncode == 0, result.stderr
    assert "Dry run: nothing was changed" in result.stdout
    assert f"would write {root}/config/hardware-profile.env (mode 0644):" in result.stderr
    assert not root.exists()
    if OLLAMA_DROPIN.exists():
        pytest.skip("setup already ran on this host: its plan for Ollama is empty")
    assert "ollama    to do" in result.stdout
    assert f"would write {OLLAMA_DROPIN} (mode 0644):" in result.stderr
    assert '    Environment="OLLAMA_HOST=0.0.0.0:11434"' in result.stderr


# --- a node (setup --node --platform-host) -----------------------------------------------------------------------

NODE_FILES = OllamaFiles(
    dropin=FILES.dropin,
    firewall_script="#!/bin/sh\n# admits 192.0.2.10\n",
    firewall_path=FIREWALL,
    apparmor_profile=FILES.apparmor_profile,
    firewall_note="firewall: admitted only from the platform host ({path})",
)


def node_plan(facts: HostFacts) -> list[Step]:
    options = SetupOptions(node="192.0.2.10", gpu_exporter_image="nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3")
    return plan_setup(facts, options, SETTINGS, NODE_FILES, Step("hardware"))


def test_a_node_without_a_gpu_gets_ollama_its_firewall_and_node_exporter_no_docker():
    facts = HostFacts(os_id="debian", codename="bookworm")
    steps = {step.name: step for step in node_plan(facts)}
    assert steps["docker"].skipped == "a node without a GPU runs no container" and not steps["docker"].actions
    assert "tailscale" not in steps
    ollama = [a.describe() for a in steps["ollama"].actions]
    assert ollama[:3] == [
        "sh -c 'curl -fsSL https://ollama.com/install.sh | sh'",
        f"write {FIREWALL}",
        f"/bin/sh {FIREWALL}",
    ]
    assert steps["ollama"].actions[1].data == NODE_FILES.firewall_script.encode()
    assert steps["ollama"].notes == [f"firewall: admitted only from the platform host ({FIREWALL})"]
    assert [a.describe() for a in steps["exporters"].actions] == [
        "env DEBIAN_FRONTEND=noninteractive apt-get update",
        "env DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus-node-exporter",
        "systemctl enable --now prometheus-node-exporter",
    ]


def test_a_node_with_a_gpu_also_runs_the_gpu_exporter_and_a_second_run_plans_nothing():
    facts = HostFacts(os_id="ubuntu", codename="noble", gpu=True, nvidia_smi_ok=True)
    exporters = next(s for s in node_plan(facts) if s.name == "exporters")
    run_gpu = exporters.actions[-1].describe()
    assert run_gpu.startswith("docker run --detach --name ai-platform-node-gpu-exporter --restart unless-stopped")
    assert "--gpus all" in run_gpu and run_gpu.endswith("nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3")
    done = HostFacts(**{**DONE.__dict__, "installed": DONE.installed | {"prometheus-node-exporter"},
                        "node_exporter_active": True, "gpu_exporter_running": True,
                        "ollama_firewall_script": NODE_FILES.firewall_script})  # fmt: skip
    assert commands(node_plan(done)) == []


def test_inv_setup_node_dry_run_shows_the_firewall_for_the_platform_host(tmp_path):
    from .conftest import run_inv

    root = tmp_path / "root"
    result = run_inv("setup", "--node", "--platform-host", "192.0.2.10", "--dry-run", "--root", str(root),
                     "--skip-models")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "exporters" in result.stdout and "tailscale" not in result.stdout
    assert f"would write {root}/scripts/ollama-firewall.sh (mode 0755):" in result.stderr  # a fresh root
    assert "platform=192.0.2.10" in result.stderr and "AI_PLATFORM_NODE" in result.stderr
    assert not root.exists()
    refused = run_inv("setup", "--node", "--dry-run")
    assert refused.returncode == 1 and "--node and --platform-host go together" in refused.stderr
    bad = run_inv("setup", "--node", "--platform-host", "not a host", "--dry-run")
    assert bad.returncode == 1 and "--platform-host 'not a host'" in bad.stderr
