"""Where things are: the project's own folders (templates, profiles) and the platform root on the host.

The tool runs from its checkout, so templates/ and profiles/ are found next to the package. The platform root is one
folder on the host (`/mnt/data/ai-platform` unless `--root` or `AI_PLATFORM_ROOT` says otherwise).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_DIR / "templates"
SERVICES_DIR = TEMPLATES_DIR / "services"
# The owner's catalog: `inv add --from-compose` and `--new` write here (a checkout's services/, or where the
# environment variable says: it is not a setting, the settings are read against the catalog).
USER_SERVICES_ENV = "AI_PLATFORM_USER_SERVICES"
USER_SERVICES_DIR = Path(os.environ.get(USER_SERVICES_ENV) or PROJECT_DIR / "services").absolute()
COOKIECUTTER_DIR = PROJECT_DIR / "cookiecutter-service"
PROFILES_DIR = PROJECT_DIR / "profiles"
GENERATED_DIR = PROJECT_DIR / "generated"
ANSWERS_FILE = PROJECT_DIR / "answers.yaml"

DEFAULT_ROOT = Path("/mnt/data/ai-platform")
# Roots the platform's original shell scripts used: recognised and reported, never silently used.
LEGACY_ROOTS = (Path("/opt/ai-platform"), Path("~/ai-platform"))

HARDWARE_PROFILE = Path("config/hardware-profile.env")
MASTER_ENV = Path("config/master.env")
CREDENTIALS_ENV = Path("config/credentials.env")
STAMP_FILE = Path(".aiplatform.json")


def nearest_existing(path: Path) -> Path:
    """The path itself or its nearest existing parent (the filesystem that will hold it)."""
    path = path.expanduser().absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def dir_size(path: Path) -> int:
    """Bytes used under `path` (files only; unreadable entries are skipped)."""
    total = 0
    for dirpath, _dirs, filenames in os.walk(path, onerror=lambda _: None):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
