"""Measure the host (CPU, RAM, disk, NVIDIA GPUs) and pick the platform tier. Read-only.

Every reading comes through a small function that tests replace (`read_hardware(..., nvml=fake)`), so the tier
rules are tested with injected numbers. A missing GPU, driver or NVML library is a normal answer
(`GPU_AVAILABLE=false`), never an error.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from aiplatform.commands import SUDO_INV
from aiplatform.envfile import format_env, parse_env
from aiplatform.errors import UserError
from aiplatform.paths import nearest_existing

# The original scripts' thresholds. VRAM is summed over GPUs (Ollama splits a model across them).
PERFORMANCE_VRAM_MB, PERFORMANCE_RAM_GB = 16000, 32
STANDARD_VRAM_MB, STANDARD_RAM_GB = 6000, 16

PROFILE_KEYS = (
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
)


@dataclass(frozen=True)
class Gpu:
    name: str
    vram_mb: int
    driver_version: str


@dataclass(frozen=True)
class Hardware:
    """What the host has. `gpu_status` says why no GPU is listed (e.g. "NVML library not found")."""

    cpu_cores: int
    cpu_model: str
    ram_gb: int
    disk_path: str
    disk_free_gb: int
    disk_total_gb: int
    disk_type: str  # SSD | HDD | unknown
    gpus: tuple[Gpu, ...] = ()
    gpu_status: str = "ok"

    @property
    def gpu_available(self) -> bool:
        return bool(self.gpus)

    @property
    def vram_mb(self) -> int:
        return sum(gpu.vram_mb for gpu in self.gpus)

    @property
    def tier(self) -> str:
        return tier_for(self.vram_mb, self.ram_gb)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(gpu_available=self.gpu_available, vram_mb=self.vram_mb, tier=self.tier)
        return data


def tier_for(vram_mb: int, ram_gb: int) -> str:
    """performance: VRAM >= 16000 MB and RAM >= 32 GB; standard: VRAM >= 6000 MB and RAM >= 16 GB; else minimal."""
    if vram_mb >= PERFORMANCE_VRAM_MB and ram_gb >= PERFORMANCE_RAM_GB:
        return "performance"
    if vram_mb >= STANDARD_VRAM_MB and ram_gb >= STANDARD_RAM_GB:
        return "standard"
    return "minimal"


def free_disk_gb(root: Path) -> int:
    """Free space, in whole GB, on the filesystem that holds (or will hold) `root`."""
    return int(shutil.disk_usage(nearest_existing(root)).free / 1024**3)


def read_hardware(root: Path, nvml: ModuleType | bool | None = True) -> Hardware:
    """Measure this host. `nvml`: True imports pynvml, None means "not installed", a module is used as is (tests)."""
    import psutil  # here, not at the top: render reads a recorded profile and should not pay for importing it

    disk = nearest_existing(root)
    usage = shutil.disk_usage(disk)
    gpus, status = read_gpus(_import_nvml() if nvml is True else nvml or None)
    return Hardware(
        cpu_cores=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        cpu_model=read_cpu_model(),
        # Rounded, not floored: a "16 GB" machine reports about 15.6 GiB to the kernel.
        ram_gb=round(psutil.virtual_memory().total / 1024**3),
        disk_path=str(disk),
        disk_free_gb=int(usage.free / 1024**3),
        disk_total_gb=int(usage.total / 1024**3),
        disk_type=read_disk_type(disk),
        gpus=gpus,
        gpu_status=status,
    )


def _import_nvml() -> ModuleType | None:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    module: ModuleType = pynvml
    return module


def read_gpus(nvml: ModuleType | None) -> tuple[tuple[Gpu, ...], str]:
    """Every NVIDIA GPU through NVML, and a status; no NVML, no driver or no GPU gives () and the reason."""
    if nvml is None:
        return (), "nvidia-ml-py is not installed"
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return (), _nvml_reason(nvml, exc)
    except OSError as exc:  # some builds raise this when libnvidia-ml.so is absent
        return (), f"NVML library not found ({exc})"
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(Gpu(_text(nvml.nvmlDeviceGetName(handle)), int(memory.total // 1024**2), driver))
    except nvml.NVMLError as exc:
        return (), _nvml_reason(nvml, exc)
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()
    return tuple(gpus), "ok" if gpus else "no NVIDIA GPU found"


def _nvml_reason(nvml: ModuleType, exc: Exception) -> str:
    names = {
        getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", -1): "NVML library not found (no NVIDIA driver installed)",
        getattr(nvml, "NVML_ERROR_DRIVER_NOT_LOADED", -1): "NVIDIA driver not loaded",
        getattr(nvml, "NVML_ERROR_NO_PERMISSION", -1): "no permission to query the NVIDIA driver",
    }
    return names.get(getattr(exc, "value", None), f"NVML error: {exc}")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read_cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def read_disk_type(path: Path, sys_block: Path = Path("/sys/dev/block")) -> str:
    """SSD or HDD from the block device's `queue/rotational` flag; unknown for overlay, tmpfs, network filesystems."""
    try:
        dev = os.stat(path).st_dev
        device = (sys_block / f"{os.major(dev)}:{os.minor(dev)}").resolve()
    except OSError:
        return "unknown"
    # A partition has no queue/ of its own: its parent directory is the whole disk.
    for candidate in (device, device.parent):
        try:
            flag = (candidate / "queue" / "rotational").read_text().strip()
        except OSError:
            continue
        return {"0": "SSD", "1": "HDD"}.get(flag, "unknown")
    return "unknown"


@dataclass(frozen=True)
class HardwareReport:
    """A measurement plus what follows from it: the tier, its default models and disk warnings."""

    hardware: Hardware
    tier: str
    models: tuple[str, ...]
    models_size_gb: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def env(self) -> dict[str, object]:
        hw = self.hardware
        return {
            "CPU_CORES": hw.cpu_cores,
            "CPU_MODEL": hw.cpu_model,
            "TOTAL_RAM_GB": hw.ram_gb,
            "DISK_TOTAL_GB": hw.disk_total_gb,
            "DISK_TYPE": hw.disk_type,
            "GPU_AVAILABLE": hw.gpu_available,
            "GPU_MODEL": ", ".join(gpu.name for gpu in hw.gpus),
            "GPU_VRAM_MB": hw.vram_mb,
            "GPU_DRIVER_VERSION": hw.gpus[0].driver_version if hw.gpus else "",
            "SYSTEM_TIER": self.tier,
            "DEFAULT_MODELS": ",".join(self.models),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.hardware.as_dict(),
            "tier": self.tier,
            "models": list(self.models),
            "models_size_gb": self.models_size_gb,
            "warnings": list(self.warnings),
        }


def format_profile_env(report: HardwareReport, version: str) -> str:
    return format_env(report.env(), header=f"Hardware measured by ai-platform {version} (`inv detect --write`).")


def hardware_from_env(text: str, source: str, free_gb: int = 0) -> Hardware:
    """Read a hardware-profile.env back into a Hardware (what setup measured). Free disk space is a reading of the
    moment, not part of the profile: the caller passes it (`free_gb`), measured now."""
    values = parse_env(text, source)
    missing = [key for key in PROFILE_KEYS if key not in values]
    if missing:
        raise UserError(
            f"{source}: missing {', '.join(missing)}.",
            f"Run `{SUDO_INV} detect --write` (or `{SUDO_INV} setup`) again.",
        )
    try:
        gpu_available = values["GPU_AVAILABLE"] == "true"
        names = [name.strip() for name in values["GPU_MODEL"].split(",") if name.strip()] if gpu_available else []
        vram = int(values["GPU_VRAM_MB"] or 0)
        # The file keeps the sum; spread it evenly so the tier (which uses the sum) reads back the same.
        per_gpu = [vram // len(names)] * len(names) if names else []
        if per_gpu:
            per_gpu[0] += vram - sum(per_gpu)
        gpus = tuple(Gpu(name, mb, values["GPU_DRIVER_VERSION"]) for name, mb in zip(names, per_gpu, strict=True))
        return Hardware(
            cpu_cores=int(values["CPU_CORES"]),
            cpu_model=values["CPU_MODEL"],
            ram_gb=int(values["TOTAL_RAM_GB"]),
            disk_path="",
            disk_free_gb=free_gb,
            disk_total_gb=int(values["DISK_TOTAL_GB"]),
            disk_type=values["DISK_TYPE"],
            gpus=gpus,
            gpu_status="ok" if gpus else "none recorded",
        )
    except ValueError as exc:
        raise UserError(
            f"{source}: a value is not a number ({exc}).", f"Run `{SUDO_INV} detect --write` again."
        ) from None


# Room on top of the models for container images, databases and logs.
DISK_MARGIN_GB = 10


def make_report(hardware: Hardware, tier: str, models: list[str], models_size_gb: float) -> HardwareReport:
    """Combine a measurement with the tier's models and warn when the disk cannot hold them plus a margin."""
    warnings = []
    needed = models_size_gb + DISK_MARGIN_GB
    if hardware.disk_free_gb < needed:
        warnings.append(
            f"Only {hardware.disk_free_gb} GB free on {hardware.disk_path or 'the platform disk'}: the {tier} models "
            f"need about {models_size_gb:g} GB plus {DISK_MARGIN_GB} GB for images and data ({needed:g} GB)."
        )
    if not hardware.gpu_available:
        warnings.append(f"No GPU used: {hardware.gpu_status}. Models will run on the CPU.")
    return HardwareReport(hardware, tier, tuple(models), models_size_gb, tuple(warnings))


def report_for(hardware: Hardware, profiles_dir: Path | None = None) -> HardwareReport:
    """The report for this hardware: its tier and that tier's default models from profiles/<tier>.yaml."""
    from .profiles import load_profile  # profiles does not import hardware; keep it that way

    profile, _ = load_profile(hardware.tier, profiles_dir) if profiles_dir else load_profile(hardware.tier)
    names = profile.model_names()
    return make_report(hardware, hardware.tier, names, profile.size_of(names))
