"""How to write one of this tool's commands in a message so that it works when pasted.

`inv` is on PATH only inside the activated virtualenv, and `sudo` resets PATH (Debian's secure_path), so a hint
like "run `sudo inv deploy`" fails on a fresh box. Messages use `INV` and `SUDO_INV` instead: they print `inv` when
that is what was run and is on PATH, else the path of the `inv` that runs now (relative to the current folder when
it is below it), and with sudo always that path.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def invoked_path() -> Path | None:
    """The `inv` / `invoke` executable this process was started as, or None (python -m invoke, tests)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is None or argv0.name not in ("inv", "invoke"):
        return None
    found = argv0 if argv0.is_absolute() or "/" in sys.argv[0] else Path(shutil.which(sys.argv[0]) or argv0)
    return found.absolute()


def _shown(path: Path) -> str:
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        return str(path)
    return f"./{relative}" if relative.parent == Path(".") else str(relative)


def inv_command(sudo: bool = False) -> str:
    """`inv`, `.venv/bin/inv` or `sudo /abs/.venv/bin/inv`: the command that runs this tool, as typed."""
    path = invoked_path()
    if path is None:
        return "sudo inv" if sudo else "inv"
    if sudo:  # sudo's own PATH never holds the virtualenv
        return f"sudo {_shown(path)}"
    return "inv" if _on_path(path) else _shown(path)


def _on_path(path: Path) -> bool:
    found = shutil.which(path.name)
    return found is not None and Path(found).absolute() == path


class _Command:
    """Formats as the command of this tool when put in an f-string: f"run `{INV} render`"."""

    def __init__(self, sudo: bool) -> None:
        self.sudo = sudo

    def __str__(self) -> str:
        return inv_command(self.sudo)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


INV = _Command(sudo=False)
SUDO_INV = _Command(sudo=True)
