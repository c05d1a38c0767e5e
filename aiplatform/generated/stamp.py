"""The stamp of generated/ (`.aiplatform.json`): tool version, profile, inputs hash and every file's sha256, and
whether generated/ is stale against the current inputs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError
from aiplatform.generated.files import RenderedFile, Tree, sha256
from aiplatform.paths import STAMP_FILE


def inputs_hash(parts: Mapping[str, Any], directories: Iterable[Path], files: Iterable[Path]) -> str:
    """A hash of everything render reads: settings and hardware (`parts`), template and profile folders, files."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())  # parts are JSON values
    for directory in directories:
        for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(directory.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    for path in files:  # contents only: the same answers read from another folder are the same inputs
        digest.update((path.read_bytes() if path.is_file() else b"<absent>") + b"\0")
    return digest.hexdigest()


class Stamp(BaseModel):
    """`.aiplatform.json`: what a render was made from and the sha256 of every file it wrote. No timestamps."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tool: str = "ai-platform"
    version: str
    profile: str
    tier: str
    root: str = ""  # the platform root it was rendered for (later commands keep it)
    admin_email: str = ""  # who logs in to the web UIs (the password is in credentials.env)
    services: list[str] = Field(default_factory=list)
    urls: dict[str, dict[str, str]] = Field(default_factory=dict)
    sources: dict[str, Any] = Field(default_factory=dict)
    inputs_hash: str
    files: dict[str, str] = Field(default_factory=dict)


def with_stamp(
    tree: Tree,
    *,
    version: str,
    profile: str,
    tier: str,
    root: str,
    admin_email: str = "",
    services: list[str],
    inputs: str,
    urls: Mapping[str, Mapping[str, str]] | None = None,
    sources: Mapping[str, Any] | None = None,
) -> Tree:
    """The tree plus `.aiplatform.json`: tool version, profile, root, inputs hash, files and sha256."""
    stamp = Stamp(
        version=version,
        profile=profile,
        tier=tier,
        root=root,
        admin_email=admin_email,
        services=services,
        urls={name: dict(url) for name, url in (urls or {}).items()},
        sources=dict(sources or {}),
        inputs_hash=inputs,
        files={path: sha256(file.data) for path, file in sorted(tree.items())},
    )
    text = json.dumps(stamp.model_dump(), indent=2, sort_keys=True) + "\n"
    return dict(sorted({**tree, STAMP_FILE.as_posix(): RenderedFile(text.encode())}.items()))


def read_stamp(directory: Path) -> Stamp | None:
    """The stamp of a rendered tree or of a root deploy applied it to; None when there is none. A stamp that is not
    JSON or not of this shape is a UserError: it is not what render wrote."""
    path = directory / STAMP_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except PermissionError:
        raise UserError(f"No permission to read {path}.", "Run the command with sudo.") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable stamp ({exc}).", f"Run `{INV} render` to regenerate it.") from None
    try:
        return Stamp.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "(top)"
        raise UserError(
            f"{path}: not a stamp render wrote (key {where}: {problem['msg']}).",
            f"Run `{INV} render` to regenerate it (a root's stamp is rewritten by the next `{SUDO_INV} deploy`).",
        ) from None


def staleness(out: Path, current_inputs: str) -> str | None:
    """Why generated/ does not match the current inputs (a sentence naming `inv render`), or None when it does."""
    stamp = read_stamp(out)
    if stamp is None:
        return f"{out} has not been rendered yet: run `{INV} render`."
    if stamp.inputs_hash != current_inputs:
        return (
            f"{out} is stale: templates, profiles, answers or settings changed since it was rendered. "
            f"Run `{INV} render` to bring it up to date."
        )
    edited = [
        path
        for path, digest in stamp.files.items()
        if (out / path).is_file() and sha256((out / path).read_bytes()) != digest
    ]
    if edited:
        return f"{out} was edited by hand ({', '.join(edited)}): run `{INV} render` to restore it."
    return None
