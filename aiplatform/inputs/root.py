"""What a platform root may be, checked in one place for every task and every source of it (--root, answers.yaml,
AI_PLATFORM_ROOT, the root generated/ was rendered for, a backup's manifest): an absolute path without control
characters that is not a system folder. The root ends up in systemd units, compose files and `rm -r` targets, so a
newline would add a line to a unit and `/etc` would make the platform's folders part of the system's.

Light on purpose (no pydantic): tasks.py checks --root with it before it imports anything else.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from pathlib import Path

from aiplatform.text import CONTROL

EXAMPLE = "/mnt/data/ai-platform"

# Folders that are the system's: never a root themselves.
SYSTEM = frozenset(
    Path(p)
    for p in (
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
        "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/var", "/var/lib",
        "/var/log", "/var/tmp", "/snap",
    )
)  # fmt: skip
# ... nor anything inside these (the kernel's, the package manager's, the boot loader's).
SYSTEM_TREES = tuple(Path(p) for p in ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
                                       "/proc", "/run", "/sbin", "/sys", "/usr"))  # fmt: skip


def _homes() -> set[Path]:
    """The homes a root must not be: this user's, and under sudo the invoking user's."""
    homes = {Path.home()}
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user:
        with contextlib.suppress(KeyError):  # a user without a passwd entry has no home to protect
            homes.add(Path(pwd.getpwnam(sudo_user).pw_dir))
    return homes


def root_problem(value: str | os.PathLike[str]) -> str | None:
    """Why `value` cannot be a platform root (a phrase), or None when it can. `~` is expanded first."""
    text = os.fspath(value)
    if not text.strip():
        return f"expected a folder like {EXAMPLE}, got an empty path"
    if CONTROL.search(text):
        return "control characters (newline, tab, ...) are not allowed"
    path = Path(text).expanduser()
    if not path.is_absolute():
        return f"expected an absolute path like {EXAMPLE}"
    if ".." in path.parts:
        return "'..' is not allowed: give the folder itself"
    for candidate in dict.fromkeys((Path(os.path.normpath(path)), Path(os.path.realpath(path)))):  # as given first
        if candidate in SYSTEM or candidate in _homes():
            return f"{candidate} is a system folder or a home: give a folder of its own, like {EXAMPLE}"
        tree = next((t for t in SYSTEM_TREES if candidate.is_relative_to(t)), None)
        if tree is not None:
            return f"{candidate} is inside {tree}, which belongs to the system: give a folder like {EXAMPLE}"
    return None


def check_root(value: str | os.PathLike[str]) -> Path:
    """`value` as a root (absolute, `~` expanded, without a trailing slash), or ValueError saying why not."""
    problem = root_problem(value)
    if problem:
        raise ValueError(problem)
    return Path(os.path.normpath(Path(os.fspath(value)).expanduser()))


def root_flag(value: str, where: str = "--root") -> Path:
    """A root given on the command line: the checked Path, or a UserError naming the value and the flag."""
    from aiplatform.errors import UserError

    try:
        return check_root(value)
    except ValueError as exc:
        raise UserError(
            f"{where} {value!r} is not a platform root: {exc}.",
            f"Give the platform's own folder, e.g. `{where} {EXAMPLE}`.",
        ) from None
