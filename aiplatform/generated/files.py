"""The shared types of a rendered tree ({relative path: bytes + mode}) and reading one back from disk."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RenderedFile:
    data: bytes
    mode: int = 0o644


Tree = dict[str, RenderedFile]

KEEP_DIRS = (".git",)


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


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
