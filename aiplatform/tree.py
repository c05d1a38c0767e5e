"""generated/ on disk: write a rendered tree atomically, read one back, stamp it and tell when it is stale.

Writing builds the new tree in a sibling temp folder, then swaps it in, so an error leaves the previous generated/
intact. Files whose bytes and mode did not change are hard-linked from the old tree: they keep their inode and
mtime, and a render with nothing new writes nothing at all. A `.git` folder in generated/ (an owner versioning their
tree) is carried over.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .paths import STAMP_FILE
from .render import RenderedFile, Tree

KEEP_DIRS = (".git",)


@dataclass
class WriteResult:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        return len(self.created) + len(self.changed)


def read_tree(directory: Path, skip: Iterable[str] = KEEP_DIRS) -> Tree:
    """Every regular file under `directory` (relative posix path -> bytes + mode); missing folder = empty."""
    tree: Tree = {}
    if not directory.is_dir():
        return tree
    skipped = set(skip)
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in skipped)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                tree[path.relative_to(directory).as_posix()] = RenderedFile(
                    path.read_bytes(), stat.S_IMODE(info.st_mode)
                )
    return tree


def write_tree(out: Path, tree: Tree) -> WriteResult:
    """Make `out` hold exactly `tree`, atomically; unchanged files are not rewritten."""
    _recover(out)
    old = read_tree(out)
    result = WriteResult()
    for path, file in tree.items():
        before = old.get(path)
        if before is None:
            result.created.append(path)
        elif before.data != file.data or before.mode != file.mode:
            result.changed.append(path)
        else:
            result.unchanged.append(path)
    result.removed = sorted(set(old) - set(tree))
    if not (result.created or result.changed or result.removed) and out.is_dir():
        return result

    backup = out.parent / f".{out.name}.old"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))  # one per render: no two collide
    try:
        tmp.chmod(0o755)
        for path, file in tree.items():
            target = tmp / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if path in result.unchanged:
                os.link(out / path, target)
            else:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file.mode)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(file.data)
                os.chmod(target, file.mode)  # umask may have narrowed it
        for name in KEEP_DIRS:
            if (out / name).is_dir():
                os.rename(out / name, tmp / name)
        if out.exists():
            os.rename(out, backup)
        os.rename(tmp, out)
        shutil.rmtree(backup, ignore_errors=True)
    except PermissionError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"No permission to write {exc.filename or out}.", f"Check the owner of {out}.") from None
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"Cannot write {out}: {exc}.") from None
    return result


def _recover(out: Path) -> None:
    # A crash between the two renames leaves generated/ missing and the old tree beside it: put it back.
    backup = out.parent / f".{out.name}.old"
    if backup.is_dir() and not out.exists():
        os.rename(backup, out)


# --- the stamp ---------------------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inputs_hash(parts: Mapping[str, Any], directories: Iterable[Path], files: Iterable[Path]) -> str:
    """A hash of everything render reads: settings and hardware (`parts`), template and profile folders, files."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for directory in directories:
        for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(directory.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    for path in files:  # contents only: the same answers read from another folder are the same inputs
        digest.update((path.read_bytes() if path.is_file() else b"<absent>") + b"\0")
    return digest.hexdigest()


def with_stamp(
    tree: Tree,
    *,
    version: str,
    profile: str,
    tier: str,
    services: list[str],
    inputs: str,
    urls: Mapping[str, Mapping[str, str]] | None = None,
    sources: Mapping[str, Any] | None = None,
) -> Tree:
    """The tree plus `.aiplatform.json`: tool version, profile, inputs hash, files and sha256. No timestamps."""
    stamp = {
        "tool": "ai-platform",
        "version": version,
        "profile": profile,
        "tier": tier,
        "services": services,
        "urls": dict(urls or {}),
        "sources": dict(sources or {}),
        "inputs_hash": inputs,
        "files": {path: sha256(file.data) for path, file in sorted(tree.items())},
    }
    text = json.dumps(stamp, indent=2, sort_keys=True) + "\n"
    return dict(sorted({**tree, STAMP_FILE.as_posix(): RenderedFile(text.encode())}.items()))


def read_stamp(directory: Path) -> dict[str, Any] | None:
    path = directory / STAMP_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable stamp ({exc}).", "Run `inv render` to regenerate it.") from None
    return data if isinstance(data, dict) else None


def staleness(out: Path, current_inputs: str) -> str | None:
    """Why generated/ does not match the current inputs (a sentence naming `inv render`), or None when it does."""
    stamp = read_stamp(out)
    if stamp is None:
        return f"{out} has not been rendered yet: run `inv render`."
    if stamp.get("inputs_hash") != current_inputs:
        return (
            f"{out} is stale: templates, profiles, answers or settings changed since it was rendered. "
            "Run `inv render` to bring it up to date."
        )
    edited = [
        path
        for path, digest in stamp.get("files", {}).items()
        if (out / path).is_file() and sha256((out / path).read_bytes()) != digest
    ]
    if edited:
        return f"{out} was edited by hand ({', '.join(edited)}): run `inv render` to restore it."
    return None
