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

from aiplatform import paths
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.generated.stamp import read_stamp
from aiplatform.inputs.catalog import Catalog, load_catalog
from aiplatform.inputs.hardware import Hardware, free_disk_gb, hardware_from_env, read_hardware
from aiplatform.inputs.images import LOCKFILE, read_lock
from aiplatform.inputs.settings import PendingAnswers, Resolved, resolve_settings
from aiplatform.paths import (
    ANSWERS_FILE,
    CREDENTIALS_ENV,
    HARDWARE_PROFILE,
    PROFILES_DIR,
    SERVICES_DIR,
    STAMP_FILE,
)


class Context:
    def __init__(
        self,
        *,
        answers: Path | None = ANSWERS_FILE,
        flags: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        services_dir: Path = SERVICES_DIR,
        user_services_dir: Path | None = None,
        profiles_dir: Path = PROFILES_DIR,
        nvml: ModuleType | bool | None = True,
        live_hardware: bool = False,
        answers_must_exist: bool = False,
        generated: Path | None = None,
    ) -> None:
        self.answers = answers
        self.flags = {key: value for key, value in (flags or {}).items() if value is not None}
        self.environ = os.environ if environ is None else environ
        self.services_dir = services_dir
        # None: the owner's catalog where paths says (looked up now, so a test can point it elsewhere)
        self.user_services_dir = user_services_dir or paths.USER_SERVICES_DIR
        self.profiles_dir = profiles_dir
        self.nvml = nvml
        self.live_hardware = live_hardware
        self.answers_must_exist = answers_must_exist
        self.generated = generated  # its stamp holds the root of the previous render, kept until another is given
        self._hardware: dict[Path, tuple[Hardware, str]] = {}

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(self.services_dir, *([self.user_services_dir] if self.user_services_dir else []))

    @cached_property
    def resolved(self) -> Resolved:
        return self.resolve()

    def forget_settings(self) -> None:
        """Merge the settings again when next asked (answers.yaml was just rewritten)."""
        self.__dict__.pop("resolved", None)

    def resolve(self, pending: PendingAnswers | None = None) -> Resolved:
        """The merged settings, with `pending` (answers.yaml as `inv settings set` would leave it) in place of the
        answers file when given."""
        return resolve_settings(
            answers=self.answers,
            environ=self.environ,
            flags=self.flags,
            catalog=self.catalog,
            detect_tier=lambda root: self.hardware_at(root)[0].tier,
            profiles_dir=self.profiles_dir,
            answers_must_exist=self.answers_must_exist,
            remembered=self.remembered,
            remembered_from=str(self.generated / STAMP_FILE) if self.generated else "",
            pending=pending,
        )

    @cached_property
    def remembered(self) -> dict[str, Any]:
        """What the previous render into `generated` recorded and later commands keep: its root."""
        if self.generated is None:
            return {}
        stamp = read_stamp(self.generated)
        return {"root": stamp.root} if stamp is not None and stamp.root else {}

    def stored_secrets(self) -> dict[str, str]:
        """Secret names held by credentials.env (generated/'s, then the root's) -> which file holds them."""
        found: dict[str, str] = {}
        places = [self.resolved.settings.root / CREDENTIALS_ENV]
        if self.generated is not None:
            places.insert(0, self.generated / CREDENTIALS_ENV)
        for path in places:
            try:
                names = read_env(path)
            except UserError:  # the root's is root's own (0600): without sudo it cannot be read
                continue
            for name in names:
                found.setdefault(name, str(path))
        return found

    def hardware_at(self, root: Path) -> tuple[Hardware, str]:
        """The hardware and where it came from: `<root>/config/hardware-profile.env` when setup wrote it, else live."""
        if root not in self._hardware:
            recorded = root / HARDWARE_PROFILE
            if not self.live_hardware and recorded.is_file():
                text = recorded.read_text(encoding="utf-8")
                hardware = hardware_from_env(text, str(recorded), free_gb=free_disk_gb(root))
                self._hardware[root] = (hardware, str(recorded))
            else:
                self._hardware[root] = (read_hardware(root, self.nvml), "measured now")
        return self._hardware[root]

    @property
    def lockfile(self) -> Path:
        """images.lock beside the answers file: the digests `inv upgrade` pulled, which render pins images to."""
        return (self.answers.parent if self.answers else paths.PROJECT_DIR) / LOCKFILE

    @cached_property
    def locked(self) -> dict[str, str]:
        return read_lock(self.lockfile)

    @property
    def hardware(self) -> Hardware:
        return self.hardware_at(self.resolved.settings.root)[0]
