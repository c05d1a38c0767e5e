"""The stamp of generated/ (`.aiplatform.json`): tool version, profile, inputs hash and every file's sha256, and
whether generated/ is stale against the current inputs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiplatform.errors import UserError
from aiplatform.generated.files import RenderedFile, Tree, sha256
from aiplatform.paths import STAMP_FILE


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
