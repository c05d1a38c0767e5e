"""Write a rendered tree into generated/ atomically, one render at a time.

The new tree is built in a sibling temp folder (`.generated.new-*`, mode 0700 while it holds credentials.env), then
swapped in with two renames (the old tree passes through `.generated.old`), so an error leaves the previous
generated/ intact. Files whose bytes and mode did not change are hard-linked from the old tree: they keep their
inode and mtime, and a render with nothing new writes nothing at all. A `.git` folder in generated/ (an owner
versioning their tree) is carried over.

A render killed half-way (Ctrl-C, SIGTERM, SIGKILL) leaves its temp folder, or the old tree beside a missing
generated/; the next render, holding the lock, removes the first and puts the second back before it reads anything
from the tree (the previous secrets above all: before deploy they are the only copies). The lock is an flock on
`.generated.lock`: the kernel releases it when its holder dies, so it never goes stale.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.errors import UserError
from aiplatform.generated.files import KEEP_DIRS, Tree, read_tree
from aiplatform.paths import STAMP_FILE

LOCK_WAIT = 120.0  # seconds a render waits for another one before giving up


@dataclass
class WriteResult:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modes_fixed: dict[str, int] = field(default_factory=dict)  # path -> its old mode, where the mode changed


def _sibling(out: Path, suffix: str) -> Path:
    return out.parent / f".{out.name}.{suffix}"


@contextlib.contextmanager
def _os_errors(out: Path) -> Iterator[None]:
    """Filesystem errors while writing `out` as messages naming the path, not tracebacks."""
    try:
        yield
    except PermissionError as exc:
        where = exc.filename or out
        raise UserError(f"No permission to write {where}.", f"Check the owner of {Path(where).parent}.") from None
    except (FileExistsError, NotADirectoryError) as exc:
        where = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
        if where:
            raise UserError(f"Cannot write {out}: {where} is a file, not a folder.", "Give --out a folder.") from None
        named = [Path(name) for name in (exc.filename, exc.filename2) if name]  # e.g. the sibling the old tree goes to
        where = next((p for p in named if p.exists() and not p.is_dir()), out)
        raise UserError(
            f"Cannot write {out}: {where} is in the way (a file where render puts a folder).",
            f"Move {where} away, then render again.",
        ) from None
    except OSError as exc:
        where = exc.filename or out
        raise UserError(f"Cannot write {where}: {exc.strerror or exc}.", "Check --out and its parent folder.") from None


@contextlib.contextmanager
def render_lock(
    out: Path, wait: float = LOCK_WAIT, on_wait: Callable[[str], None] | None = None, poll: float = 0.2
) -> Iterator[None]:
    """Hold the lock of `out` for one render; a second render waits up to `wait` seconds, saying who holds it."""
    path = _sibling(out, "lock")
    with _os_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            holder = _holder(path)
            if time.monotonic() >= deadline:
                raise UserError(
                    f"Another render ({holder}) is writing {out}, and it has not finished in {wait:g} s.",
                    "Wait for it, or stop it; the lock goes with its process.",
                )
            if not told and on_wait is not None:
                on_wait(f"waiting for another render ({holder}) to finish writing {out}")
                told = True
            time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _holder(lock: Path) -> str:
    try:
        pid = lock.read_text().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def recover(out: Path) -> list[str]:
    """Undo what an interrupted render left (call with the lock held): its temp folders are deleted, and an old
    tree whose generated/ is gone is put back. Returns what was done, for tests and messages."""
    done = []
    backup = _sibling(out, "old")
    for leftover in sorted(out.parent.glob(f".{out.name}.new-*")):
        shutil.rmtree(leftover, ignore_errors=True)
        done.append(f"removed {leftover}")
    if backup.is_dir():
        if out.exists():
            shutil.rmtree(backup, ignore_errors=True)
            done.append(f"removed {backup}")
        else:
            os.rename(backup, out)
            done.append(f"restored {out} from {backup}")
    return done


def last_tree(out: Path) -> Path:
    """Where the last render's tree is: `out`, or the old tree an interrupted render left beside a missing `out`
    (recover puts it back; a reader without the lock reads it there, so its secrets are never taken for missing)."""
    backup = _sibling(out, "old")
    return backup if not out.exists() and backup.is_dir() else out


def refuse_foreign(out: Path) -> None:
    """A UserError when `out` is not a folder render may replace: a symbolic link (it would be replaced, not
    followed), or a folder with files but no stamp (an owner's folder: everything in it would be deleted)."""
    if out.is_symlink():
        raise UserError(
            f"{out} is a symbolic link (to {os.readlink(out)}): render replaces the folder it writes, so it does not "
            "write through a link.",
            f"Give the folder itself: `--out {out.resolve()}`.",
        )
    if not out.is_dir() or (out / STAMP_FILE).is_file():
        return
    theirs = sorted(p.name for p in out.iterdir() if p.name not in KEEP_DIRS)
    if theirs:
        shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
        raise UserError(
            f"{out} is not a folder render made (no {STAMP_FILE}), and it holds {shown}: render replaces everything "
            "in its --out folder, so it does not write there.",
            "Give --out a new or empty folder (or the generated/ folder a previous render made).",
        )


def write_tree(out: Path, tree: Tree) -> WriteResult:
    """Make `out` hold exactly `tree`, atomically; unchanged files are not rewritten. Hold render_lock(out). A
    folder render did not make, or a link, is refused (refuse_foreign) and left as it is."""
    with _os_errors(out):
        recover(out)
        refuse_foreign(out)
        return _write(out, tree)


def _write(out: Path, tree: Tree) -> WriteResult:
    old = read_tree(out)
    result = WriteResult()
    for path, file in tree.items():
        before = old.get(path)
        if before is None:
            result.created.append(path)
        elif before.data != file.data or before.mode != file.mode:
            result.changed.append(path)
            if before.mode != file.mode:
                result.modes_fixed[path] = before.mode
        else:
            result.unchanged.append(path)
    result.removed = sorted(set(old) - set(tree))
    if not (result.created or result.changed or result.removed) and out.is_dir():
        return result

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))  # 0700: it holds credentials.env
    backup = _sibling(out, "old")
    try:
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
        tmp.chmod(0o755)  # what generated/ is; credentials.env inside stays 0600
        if out.exists():
            os.rename(out, backup)
        os.rename(tmp, out)
        shutil.rmtree(backup, ignore_errors=True)
    except BaseException:  # put back what was moved (the old tree, an owner's .git), drop the half-built tree
        if not out.exists() and backup.is_dir():
            os.rename(backup, out)
        for name in KEEP_DIRS:
            if (tmp / name).is_dir() and out.is_dir() and not (out / name).exists():
                os.rename(tmp / name, out / name)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
