"""The one module that writes files outside generated/: the platform root, /etc drop-ins, backups.

Every write is atomic (a temp file in the same folder, then rename), so a crash never leaves half a file, and keeps
the mode it is given (credentials.env stays 0600 from the first byte).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from aiplatform.errors import UserError


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` atomically with `mode`, creating parent folders."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except PermissionError:
        raise UserError(f"No permission to write {path}.", "Run the command with sudo.") from None
    except OSError as exc:
        raise UserError(f"Cannot write {path}: {exc.strerror}.") from None


def backup_and_write(root: Path, files: dict[str, tuple[bytes, int]], remove: list[str], backup_dir: Path) -> list[str]:
    """Write `files` (relative path -> bytes, mode) under root and delete `remove`; every existing file that is
    replaced or deleted is first copied to `backup_dir` with its mode. Returns the paths backed up."""
    backed_up = []
    for path in sorted({*files, *remove}):
        target = root / path
        if target.is_file():
            old = target.read_bytes()
            new = files.get(path)
            if new is not None and new[0] == old and (target.stat().st_mode & 0o7777) == new[1]:
                continue
            write_file(backup_dir / path, old, target.stat().st_mode & 0o7777)
            backed_up.append(path)
    for path, (data, mode) in sorted(files.items()):
        write_file(root / path, data, mode)
    for path in remove:
        (root / path).unlink(missing_ok=True)
    return backed_up


def make_dirs(root: Path, names: list[str]) -> None:
    try:
        for name in names:
            (root / name).mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise UserError(f"No permission to create folders in {root}.", "Run the command with sudo.") from None


def remove_file(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except PermissionError:
        raise UserError(f"No permission to delete {path}.", "Run the command with sudo.") from None


def remove_tree(path: Path) -> None:
    """Delete a folder and everything in it."""
    import shutil

    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        raise UserError(f"No permission to delete {path}.", "Run the command with sudo.") from None


def make_dir(path: Path, mode: int) -> None:
    """Create `path` (and its parents) and give it `mode` (a backup folder is 0700 from the start)."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=mode)
        os.chmod(path, mode)
    except PermissionError:
        raise UserError(f"No permission to create {path}.", "Run the command with sudo.") from None


def rename(source: Path, target: Path) -> None:
    """Rename within one filesystem: atomic, so `target` is never half there."""
    try:
        os.rename(source, target)
    except OSError as exc:
        raise UserError(f"Cannot rename {source} to {target}: {exc.strerror}.") from None


def open_output(path: Path, mode: int) -> int:
    """A new file for a command's output, `mode` from the first byte (a dump is 0600 before it holds anything)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except OSError as exc:
        raise UserError(f"Cannot write {path}: {exc.strerror}.") from None
