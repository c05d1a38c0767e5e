"""Hardware detection and tiers: injected readings at every boundary, real NVML absence, the profile file."""

from __future__ import annotations

import json
import os
import subprocess

import psutil
import pytest

from aiplatform.envfile import parse_env
from aiplatform.inputs.hardware import (
    Gpu,
    Hardware,
    format_profile_env,
    hardware_from_env,
    make_report,
    read_disk_type,
    read_gpus,
    read_hardware,
    report_for,
    tier_for,
)

from .conftest import fake_nvml, run_inv

GIB = 1024**3


@pytest.mark.parametrize(
    ("vram", "ram", "tier"),
    [
        (5999, 15, "minimal"),
        (5999, 16, "minimal"),
        (5999, 31, "minimal"),
        (5999, 32, "minimal"),
        (6000, 15, "minimal"),
        (6000, 16, "standard"),
        (6000, 31, "standard"),
        (6000, 32, "standard"),
        (15999, 15, "minimal"),
        (15999, 16, "standard"),
        (15999, 31, "standard"),
        (15999, 32, "standard"),
        (16000, 15, "minimal"),
        (16000, 16, "standard"),
        (16000, 31, "standard"),
        (16000, 32, "performance"),
    ],
)
def test_tier_boundaries_from_injected_readings(monkeypatch, tmp_path, vram, ram, tier):
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("vm", (), {"total": ram * GIB})())
    hardware = read_hardware(tmp_path, nvml=fake_nvml([("NVIDIA Test GPU", vram)]))
    assert hardware.vram_mb == vram
    assert hardware.ram_gb == ram
    assert hardware.tier == tier == tier_for(vram, ram)


def test_no_gpu_is_minimal_and_not_an_error(tmp_path):
    hardware = read_hardware(tmp_path, nvml=fake_nvml([]))
    assert not hardware.gpu_available
    assert hardware.gpu_status == "no NVIDIA GPU found"
    assert hardware.tier == "minimal"


def test_nvml_library_missing_is_reported_not_raised():
    gpus, status = read_gpus(fake_nvml(init_error=12))
    assert gpus == ()
    assert "NVML library not found" in status


def test_driver_not_loaded_is_reported():
    assert read_gpus(fake_nvml(init_error=9))[1] == "NVIDIA driver not loaded"


def test_real_nvml_on_this_gpu_less_machine(tmp_path):
    # The real nvidia-ml-py binding: on a machine without libnvidia-ml it must say so, not raise.
    hardware = read_hardware(tmp_path)
    if hardware.gpu_available:
        pytest.skip("this machine has an NVIDIA GPU")
    assert "NVML library not found" in hardware.gpu_status or "driver" in hardware.gpu_status


def test_nvml_package_not_installed(tmp_path):
    hardware = read_hardware(tmp_path, nvml=None)
    assert hardware.gpus == ()
    assert "not installed" in hardware.gpu_status


def test_two_gpus_sum_their_vram_and_are_listed(monkeypatch, tmp_path):
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("vm", (), {"total": 64 * GIB})())
    hardware = read_hardware(tmp_path, nvml=fake_nvml([("RTX 4060", 8188), ("RTX 3070", 8192)]))
    assert [gpu.name for gpu in hardware.gpus] == ["RTX 4060", "RTX 3070"]
    assert hardware.vram_mb == 16380
    assert hardware.tier == "performance"
    env = make_report(hardware, hardware.tier, ["m"], 1.0).env()
    assert env["GPU_MODEL"] == "RTX 4060, RTX 3070"
    assert env["GPU_VRAM_MB"] == 16380


def test_disk_type_from_rotational_flag(tmp_path):
    dev = os.stat(tmp_path).st_dev
    disk = tmp_path / "sys" / "devices" / "vda"
    (disk / "queue").mkdir(parents=True)
    (disk / "queue" / "rotational").write_text("0\n")
    part = disk / "vda1"
    part.mkdir()
    block = tmp_path / "dev-block"
    block.mkdir()
    (block / f"{os.major(dev)}:{os.minor(dev)}").symlink_to(part)
    assert read_disk_type(tmp_path, sys_block=block) == "SSD"  # a partition reads its disk's flag
    (disk / "queue" / "rotational").write_text("1\n")
    assert read_disk_type(tmp_path, sys_block=block) == "HDD"
    assert read_disk_type(tmp_path, sys_block=tmp_path / "nothing") == "unknown"


def test_disk_warning_when_models_do_not_fit():
    hardware = Hardware(2, "cpu", 8, "/data", 11, 100, "SSD")
    report = make_report(hardware, "minimal", ["llama3.2:3b"], 2.3)
    assert any("Only 11 GB free on /data" in w for w in report.warnings)
    roomy = make_report(Hardware(2, "cpu", 8, "/data", 500, 900, "SSD"), "minimal", ["x"], 2.3)
    assert not any("free" in w for w in roomy.warnings)


def test_profile_models_per_tier():
    def models(vram, ram):
        return list(
            report_for(Hardware(8, "cpu", ram, "/", 500, 900, "SSD", (Gpu("g", vram, "1"),) if vram else ())).models
        )

    assert models(24000, 64) == ["llama3.1:8b", "nomic-embed-text", "codellama:13b"]
    assert models(8000, 16) == ["llama3.1:8b", "nomic-embed-text"]
    assert models(0, 8) == ["llama3.2:3b", "nomic-embed-text"]


ODD = {
    "CPU_MODEL": 'Intel(R) Xeon(R) "Gold" it\'s $HOME `id` \\ 6130',
    "GPU_MODEL": "NVIDIA GeForce RTX 4090 'Founders $Edition'",
}


def test_profile_env_survives_bash_source_and_library(tmp_path):
    hardware = Hardware(16, ODD["CPU_MODEL"], 64, "/", 100, 200, "SSD", (Gpu(ODD["GPU_MODEL"], 24564, "550.54.14"),))
    models = ["llama3.1:8b", 'my model "quoted" $x']
    report = make_report(hardware, "performance", models, 5.0)
    path = tmp_path / "hardware-profile.env"
    path.write_text(format_profile_env(report, "test"))
    keys = list(report.env())
    script = f'source "{path}"; ' + "; ".join(f'printf "%s\\0" "${key}"' for key in keys)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout.decode()
    from_bash = dict(zip(keys, out.split("\0")[:-1], strict=True))
    from_library = parse_env(path.read_text())
    assert from_bash == from_library
    assert from_bash["CPU_MODEL"] == ODD["CPU_MODEL"]
    assert from_bash["GPU_MODEL"] == ODD["GPU_MODEL"]
    assert from_bash["DEFAULT_MODELS"].split(",") == models
    assert from_bash["GPU_AVAILABLE"] == "true"
    assert list(from_library) == [
        "CPU_CORES",
        "CPU_MODEL",
        "TOTAL_RAM_GB",
        "DISK_TOTAL_GB",
        "DISK_TYPE",
        "GPU_AVAILABLE",
        "GPU_MODEL",
        "GPU_VRAM_MB",
        "GPU_DRIVER_VERSION",
        "SYSTEM_TIER",
        "DEFAULT_MODELS",
    ]
    back = hardware_from_env(path.read_text(), str(path))
    assert back.tier == "performance"
    assert back.cpu_model == ODD["CPU_MODEL"]


def test_inv_detect_on_this_machine(tmp_path):
    result = run_inv("detect", "--json", "--root", str(tmp_path / "root"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["cpu_cores"] == psutil.cpu_count()
    assert data["ram_gb"] == round(psutil.virtual_memory().total / GIB)
    if not data["gpu_available"]:
        assert data["tier"] == "minimal"
        assert data["models"] == ["llama3.2:3b", "nomic-embed-text"]
        assert data["models_size_gb"] == 2.3  # profiles/minimal.yaml: 2.0 + 0.3, what the disk check counts
    assert data["disk_path"] == str(tmp_path)  # nearest existing parent of the root


def test_inv_detect_write_then_read(tmp_path):
    root = tmp_path / "root"
    result = run_inv("detect", "--write", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert "Tier" in result.stdout
    values = parse_env((root / "config/hardware-profile.env").read_text())
    assert values["CPU_CORES"] == str(psutil.cpu_count())
    assert values["SYSTEM_TIER"] in ("minimal", "standard", "performance")
