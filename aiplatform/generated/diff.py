"""What applying generated/ would change in the root: new, changed and removed files, secrets masked.

The root mirrors generated/ (minus its .gitignore). A file counts as removed when the root's stamp lists it (it was
applied before) and generated/ no longer has it: files the platform never wrote are not its business.
Secret values never reach the output: credentials.env is compared key by key and shown as KEY=****, and any secret
value that turns up in another file is masked too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.commands import INV
from aiplatform.envfile import format_env, parse_env
from aiplatform.errors import UserError
from aiplatform.generated.files import RenderedFile, Tree, read_tree
from aiplatform.generated.stamp import read_stamp
from aiplatform.inputs.secrets import CREDENTIALS_HEADER
from aiplatform.paths import CREDENTIALS_ENV, STAMP_FILE

MASK = "****"
NOT_APPLIED = (".gitignore",)
NOT_APPLIED_DIRS = ("k8s/",)  # the Kubernetes target: kubectl applies it (deploy --target k8s), never copied to root

CREDENTIALS = CREDENTIALS_ENV.as_posix()


def applied(path: str) -> bool:
    """A file of generated/ that a compose deploy copies into the root."""
    return path not in NOT_APPLIED and not path.startswith(NOT_APPLIED_DIRS)


@dataclass
class FileDiff:
    path: str
    status: str  # new | changed | removed
    text: str = ""  # unified diff, masked
    note: str = ""


@dataclass
class TreeDiff:
    files: list[FileDiff] = field(default_factory=list)
    secrets_added: list[str] = field(default_factory=list)
    secrets_changed: list[str] = field(default_factory=list)
    secrets_removed: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.files)


def applied_tree(generated: Path, root: Path | None = None) -> Tree:
    """The files of generated/ that deploy copies into the root. Secrets only the root's credentials.env holds (a
    service made them: configure keeps n8n's API key there) stay in it: deploy adds and changes secrets, never
    drops one."""
    tree = {path: file for path, file in read_tree(generated).items() if applied(path)}
    new = tree.get(CREDENTIALS)
    if root is None or new is None or not (root / CREDENTIALS).is_file():
        return tree
    old = _credentials(_read(root / CREDENTIALS), root / CREDENTIALS)
    values = _credentials(new, generated / CREDENTIALS)
    kept = {key: value for key, value in old.items() if key not in values}
    if kept:
        merged = format_env(dict(sorted({**values, **kept}.items())), CREDENTIALS_HEADER)
        tree[CREDENTIALS] = RenderedFile(merged.encode(), new.mode)
    return tree


def diff_trees(generated: Path, root: Path) -> TreeDiff:
    new_tree = applied_tree(generated, root)
    stamp = read_stamp(root)
    paths = set(new_tree) | {path for path in (stamp.files if stamp else {}) if applied(path)}
    old_tree = {path: _read(root / path) for path in paths}
    old_credentials, new_credentials = (
        _credentials(old_tree.get(CREDENTIALS), root / CREDENTIALS),
        _credentials(new_tree.get(CREDENTIALS), generated / CREDENTIALS),
    )
    secrets = maskable([*old_credentials.values(), *new_credentials.values()])
    result = TreeDiff()
    for path in sorted(paths):
        if path == STAMP_FILE.as_posix():
            continue  # the stamp always differs when anything does; it is not worth reading
        new, old = new_tree.get(path), old_tree.get(path)
        if new is None and old is None:
            continue
        if new is not None and old is not None and new.data == old.data and new.mode == old.mode:
            continue
        status = "new" if old is None else "removed" if new is None else "changed"
        if path == CREDENTIALS:
            text = _credentials_diff(
                result, old_credentials if old is not None else None, new_credentials if new is not None else None
            )
        else:
            text = _unified(path, old, new, secrets)
        note = ""
        if old is not None and new is not None and old.mode != new.mode:
            note = f"mode {old.mode:04o} → {new.mode:04o}"
        result.files.append(FileDiff(path, status, text, note))
    return result


def _read(path: Path) -> RenderedFile | None:
    try:
        return RenderedFile(path.read_bytes(), path.stat().st_mode & 0o7777)
    except FileNotFoundError:
        return None
    except PermissionError:
        raise UserError(f"No permission to read {path}.", "Run the command with sudo (the root is root's).") from None


def _credentials(file: RenderedFile | None, path: Path) -> dict[str, str]:
    """The keys and values of a credentials.env; one that is not UTF-8 text is a UserError naming it."""
    if file is None:
        return {}
    try:
        text = file.data.decode()
    except UnicodeDecodeError:
        raise UserError(
            f"{path} is not UTF-8 text: it cannot be read as KEY=value lines.",
            f"Fix or restore it (deploy keeps replaced files under backups/), then run `{INV} diff` again.",
        ) from None
    return parse_env(text, str(path))


def maskable(values: Iterable[str]) -> list[str]:
    """Secret values worth masking (not trivially short), longest first so no part of one is left showing."""
    return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def _unified(path: str, old: RenderedFile | None, new: RenderedFile | None, secrets: list[str]) -> str:
    def lines(file: RenderedFile | None) -> list[str]:
        if file is None:
            return []
        try:
            return mask(file.data.decode(), secrets).splitlines(keepends=True)
        except UnicodeDecodeError:
            return [f"<binary, {len(file.data)} bytes>\n"]

    diff = difflib.unified_diff(
        lines(old),
        lines(new),
        fromfile=f"root/{path}" if old else "/dev/null",
        tofile=f"generated/{path}" if new else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in diff)


def _credentials_diff(result: TreeDiff, old: dict[str, str] | None, new: dict[str, str] | None) -> str:
    before, after = old or {}, new or {}
    result.secrets_added = sorted(set(after) - set(before))
    result.secrets_removed = sorted(set(before) - set(after))
    result.secrets_changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    masked_old = [f"{key}={MASK}\n" for key in before]
    # Same masked text for a changed value: mark it so the line shows up in the diff.
    masked_new = [f"{key}={MASK} (changed)\n" if key in result.secrets_changed else f"{key}={MASK}\n" for key in after]
    diff = difflib.unified_diff(
        masked_old,
        masked_new,
        fromfile=f"root/{CREDENTIALS}" if old is not None else "/dev/null",
        tofile=f"generated/{CREDENTIALS}" if new is not None else "/dev/null",
    )
    return "".join(diff)
