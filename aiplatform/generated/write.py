"""Write a rendered tree into generated/ atomically.

The new tree is built in a sibling temp folder, then swapped in, so an error leaves the previous generated/ intact.
Files whose bytes and mode did not change are hard-linked from the old tree: they keep their inode and mtime, and a
render with nothing new writes nothing at all. A `.git` folder in generated/ (an owner versioning their tree) is
carried over.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.errors import UserError
from aiplatform.generated.files import KEEP_DIRS, Tree, read_tree


@dataclass
class WriteResult:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        return len(self.created) + len(self.changed)


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
