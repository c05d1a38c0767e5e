"""What one command works from: the catalog, the merged settings and the host's hardware, each read once.

Tasks build a Context from their flags; library functions take the parts they need. Nothing here writes anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from aiplatform.inputs.catalog import Catalog, load_catalog
from aiplatform.inputs.hardware import Hardware, hardware_from_env, read_hardware
from aiplatform.inputs.settings import Resolved, resolve_settings
from aiplatform.paths import ANSWERS_FILE, HARDWARE_PROFILE, PROFILES_DIR, SERVICES_DIR


class Context:
    def __init__(
        self,
        *,
        answers: Path | None = ANSWERS_FILE,
        flags: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        services_dir: Path = SERVICES_DIR,
        profiles_dir: Path = PROFILES_DIR,
        nvml: ModuleType | bool | None = True,
        live_hardware: bool = False,
        answers_must_exist: bool = False,
    ) -> None:
        self.answers = answers
        self.flags = {key: value for key, value in (flags or {}).items() if value is not None}
        self.environ = os.environ if environ is None else environ
        self.services_dir = services_dir
        self.profiles_dir = profiles_dir
        self.nvml = nvml
        self.live_hardware = live_hardware
        self.answers_must_exist = answers_must_exist
        self._hardware: dict[Path, tuple[Hardware, str]] = {}

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(self.services_dir)

    @cached_property
    def resolved(self) -> Resolved:
        return resolve_settings(
            answers=self.answers,
            environ=self.environ,
            flags=self.flags,
            catalog=self.catalog,
            detect_tier=lambda root: self.hardware_at(root)[0].tier,
            profiles_dir=self.profiles_dir,
            answers_must_exist=self.answers_must_exist,
        )

    def hardware_at(self, root: Path) -> tuple[Hardware, str]:
        """The hardware and where it came from: `<root>/config/hardware-profile.env` when setup wrote it, else live."""
        if root not in self._hardware:
            recorded = root / HARDWARE_PROFILE
            if not self.live_hardware and recorded.is_file():
                hardware = hardware_from_env(recorded.read_text(encoding="utf-8"), str(recorded))
                self._hardware[root] = (hardware, str(recorded))
            else:
                self._hardware[root] = (read_hardware(root, self.nvml), "measured now")
        return self._hardware[root]

    @property
    def hardware(self) -> Hardware:
        return self.hardware_at(self.resolved.settings.root)[0]
