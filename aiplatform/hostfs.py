"""The one module that writes files outside generated/: the platform root, /etc drop-ins, backups.

Every write is atomic (a temp file in the same folder, then rename), so a crash never leaves half a file, and keeps
the mode it is given (credentials.env stays 0600 from the first byte).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UserError


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
