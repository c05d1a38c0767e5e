"""A backup is a folder `backup-<time>/` under `<root>/backups/` (or --to): one file per item and `manifest.json`,
written last, listing each file with its size and sha256, the images (with digests) the platform ran, the Postgres
version the dumps come from and the tool's version. A folder without a manifest is a backup that did not finish:
taken ones are written as `backup-<time>.partial/` and renamed only once complete, so restore never takes half of
one for whole.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiplatform.commands import SUDO_INV
from aiplatform.errors import UserError
from aiplatform.text import CONTROL

MANIFEST = "manifest.json"
PREFIX = "backup-"
PARTIAL = ".partial"
FORMAT = 1
LAST = Path("logs/backup-last.json")  # the last backup's outcome, for status and doctor


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str
    kind: Literal["config", "postgres-globals", "postgres", "qdrant", "volume", "folder"]
    name: str  # the database, collection, volume, or folder (relative to data/)
    file: str  # relative to the backup folder
    size: int
    sha256: str
    method: Literal["dump", "snapshot", "stopped", "live"]  # how it was taken consistently


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = FORMAT
    tool_version: str
    created: str  # ISO time, this host's zone
    root: str
    services: list[str]
    items: list[Item] = Field(default_factory=list)
    images: dict[str, dict[str, str]] = Field(default_factory=dict)  # container -> {image, digest}
    postgres_version: int | None = None  # server_version_num of the dumps' cluster, e.g. 160004
    encrypted: bool = False  # every item file is gpg-encrypted (AES256, passphrase BACKUP_PASSPHRASE)
    left_out: dict[str, str] = Field(default_factory=dict)  # service -> what was not copied and why

    @property
    def size(self) -> int:
        return sum(item.size for item in self.items)

    def to_json(self) -> bytes:
        return (json.dumps(self.model_dump(), indent=2, sort_keys=True) + "\n").encode()


def new_name(now: datetime | None = None) -> str:
    return PREFIX + (now or datetime.now()).strftime("%Y%m%d-%H%M%S")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def complete_backups(folder: Path) -> list[Path]:
    """The finished backups in `folder`, oldest first (the name sorts by time)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / MANIFEST).is_file()
                  and not p.name.endswith(PARTIAL))  # fmt: skip


def read_manifest(backup: Path) -> Manifest:
    """The manifest of a finished backup; an unfinished or foreign folder is a UserError saying which."""
    if not backup.is_dir():
        raise UserError(f"{backup} is not a folder.", f"`{SUDO_INV} backup --list` shows the backups.")
    if backup.name.endswith(PARTIAL) or not (backup / MANIFEST).is_file():
        raise UserError(
            f"{backup} is not a complete backup: it has no {MANIFEST} (a backup interrupted before it finished).",
            f"Restore another one; `{SUDO_INV} backup` deletes unfinished ones.",
        )
    try:
        return Manifest.model_validate_json((backup / MANIFEST).read_bytes())
    except (ValidationError, ValueError) as exc:
        raise UserError(f"{backup / MANIFEST} is not a manifest this tool wrote: {str(exc).splitlines()[0]}.") from None


def _name_problem(item: Item) -> str | None:
    """Why an item's name cannot be restored (it becomes a path under the root, a volume, a database or a
    collection name on a command line), or None."""
    name = item.name
    if item.kind == "config":
        return None if name == "config" else "expected 'config', the name of the config item"
    parts = name.split("/") if item.kind == "folder" else [name]
    for part in parts:
        if part in ("", ".", "..") or part.startswith("-") or "\\" in part or CONTROL.search(part):
            return "expected a plain name (no '..', '/', leading '-' or control characters)"
    if item.kind != "folder" and "/" in name:
        return "expected a plain name (no '/')"
    return None


def _file_problem(backup: Path, file: str) -> str | None:
    """Why an item's file is not a file of this backup (an absolute path, '..', a symbolic link out), or None."""
    parts = file.split("/")
    if not file or file.startswith("/") or any(p in ("", ".", "..") for p in parts) or CONTROL.search(file):
        return "not a path inside the backup folder"
    here = backup
    for part in parts:  # every step a real folder or file of the backup, never a link that leads elsewhere
        here = here / part
        if here.is_symlink():
            return f"{here} is a symbolic link: a backup's files are its own"
    return None


def path_problems(backup: Path, manifest: Manifest) -> list[str]:
    """Every item whose name or file could lead out of the backup (reading) or out of the root (writing): '..',
    absolute paths, links, a folder inside another item's folder. Each problem names the value."""
    problems = []
    for item in manifest.items:
        if why := _name_problem(item):
            problems.append(f"item name {item.name!r} ({item.kind}): {why}")
        if why := _file_problem(backup, item.file):
            problems.append(f"item file {item.file!r}: {why}")
    folders = sorted(i.name for i in manifest.items if i.kind == "folder")
    for one in folders:
        if any(one != other and one.startswith(other + "/") for other in folders):
            problems.append(f"item name {one!r} (folder): inside another folder of the backup")
    return problems


def verify(backup: Path, manifest: Manifest) -> list[str]:
    """Every problem with the backup's files: a path leading out of it, missing, wrong size, wrong sha256 (each
    names the file)."""
    problems = path_problems(backup, manifest)
    if problems:  # nothing outside the backup is read, not even to check its size
        return problems
    for item in manifest.items:
        path = backup / item.file
        if not path.is_file():
            problems.append(f"{item.file}: missing")
        elif path.stat().st_size != item.size:
            problems.append(f"{item.file}: {path.stat().st_size} bytes, the manifest says {item.size}")
        elif sha256_of(path) != item.sha256:
            problems.append(f"{item.file}: sha256 differs from the manifest's (the file is corrupted)")
    return problems


def read_last(root: Path) -> dict[str, object] | None:
    """What the last backup of this root recorded (when, ok or the error, where, how big), or None."""
    try:
        data = json.loads((root / LAST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_last(root: Path, now: datetime | None = None) -> tuple[str, str]:
    """(ok | warn | fail, one line) on the last backup: none, failed, older than 8 days, or fine."""
    last = read_last(root)
    if last is None:
        return "warn", "no backup yet"
    try:
        when = datetime.fromisoformat(str(last.get("finished")))
    except ValueError:
        return "warn", f"{root / LAST} is not one this tool wrote"
    age = ((now or datetime.now().astimezone()) - when).total_seconds()
    ago = f"{age / 86400:.1f} days ago" if age >= 86400 else f"{age / 3600:.1f} h ago"
    if not last.get("ok"):
        return "fail", f"the last backup failed {ago}: {last.get('error')}"
    size = int(str(last.get("size") or 0))
    line = f"{ago}, {size / 1e6:.1f} MB, {last.get('path')}"
    return ("warn" if age > 8 * 86400 else "ok"), line
