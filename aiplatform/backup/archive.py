"""What a backup's tar archive may hold before restore lets GNU tar extract it (as root, owners and modes kept):
members under the folder they are extracted to and, for the config, only the parts a backup takes
(config/, docker/, scripts/, the stamp). Read with Python's tarfile, never extracted by it: restore extracts with
`tar --numeric-owner` through the runner, which keeps the owners a volume's files need (tarfile's `data` filter
would drop them), so the members are checked here first, with the same rules as that filter and stricter ones:

- no absolute name, no '..', no device, FIFO or other special file;
- a link (symbolic or hard) only in a data archive and only to a target inside it (never an absolute one);
- nothing extracted through a link (`a -> /etc` then `a/passwd`);
- in the config archive: regular files and folders only, under config/, docker/, scripts/ or the stamp.
"""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path

from aiplatform.paths import STAMP_FILE
from aiplatform.text import CONTROL

CONFIG_PARTS = ("config", "docker", "scripts", STAMP_FILE.as_posix())  # what backup takes of the root


def _inside(path: str) -> bool:
    return not path.startswith("/") and ".." not in path.split("/")


def member_problems(archive: Path, config: bool) -> list[str]:
    """Every member of `archive` that restore must not extract (see the module's docstring), each named; an archive
    tarfile cannot read is one problem."""
    problems: list[str] = []
    links: set[str] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if why := _problem(member, config, links):
                    problems.append(f"{member.name!r}: {why}")
                if member.issym() or member.islnk():  # refused or not, nothing goes through it
                    links.add(posixpath.normpath(member.name))
    except (tarfile.TarError, OSError, EOFError) as exc:
        problems.append(f"not a tar archive restore can read ({exc})")
    return problems


def _problem(member: tarfile.TarInfo, config: bool, links: set[str]) -> str | None:
    name = member.name
    if CONTROL.search(name):
        return "a name with control characters"
    if not _inside(name):
        return "a path outside the folder it is restored to"
    normal = posixpath.normpath(name)
    if normal == ".":
        return None if member.isdir() else "not a folder"
    parts = normal.split("/")
    if any("/".join(parts[:n]) in links for n in range(1, len(parts))):
        return "inside a link: it would be written wherever the link points"
    if config:
        if parts[0] not in CONFIG_PARTS:
            return f"outside {', '.join(CONFIG_PARTS)} (a config archive holds nothing else)"
        if not (member.isreg() or member.isdir()):
            return "a link or special file in the config archive"
        return None
    if member.isreg() or member.isdir():
        return None
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            return f"a symbolic link to the absolute path {target!r}"
        if not _inside(posixpath.normpath(posixpath.join(posixpath.dirname(normal), target))):
            return f"a symbolic link to {target!r}, outside the folder"
        return None
    if member.islnk():
        return None if _inside(posixpath.normpath(member.linkname)) else f"a hard link to {member.linkname!r}"
    return "a device, FIFO or other special file"
