"""Copies of the backups off the box, with rclone (Debian's package).

The remote is either one the owner configured in rclone themselves (`--remote NAME:PATH`), or the one the settings
describe (render writes them to master.env, deploy applies them, the timer reads them there): `backup_remote_type`
(drive, s3, webdav, sftp, any rclone backend), `backup_remote_options` (its non-secret options) and the secret
`backup_remote_secret` (a service-account JSON or OAuth token for Google Drive, a password, a secret key), given once
and kept in credentials.env. That one is passed to rclone as environment variables (RCLONE_CONFIG_AIPLATFORM_*): no
rclone.conf holds it and no command line shows it. Each copy is verified with `rclone check` (sizes and hashes, one
way), then the remote keeps the newest `backup_remote_keep` backups.

A remote given on the command line is checked before rclone sees it (NAME:PATH, NAME in rclone's remote-name
characters, no leading dash), and every rclone command takes its paths after `--`: rclone runs as root, and a
"remote" like `--log-file=/x:y` would otherwise be an option that writes any file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.backup.manifest import PARTIAL, PREFIX
from aiplatform.commands import INV, SUDO_INV
from aiplatform.envfile import count_of, read_env
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.inputs.settings import default
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV
from aiplatform.text import CONTROL

NAME = "aiplatform"  # the remote the settings define
# Which rclone option the secret fills, per backend, unless backup_remote_secret_option says otherwise.
SECRET_OPTION = {
    "drive": "service_account_credentials",
    "s3": "secret_access_key",
    "webdav": "pass",
    "sftp": "pass",
    "ftp": "pass",
    "b2": "key",
    "azureblob": "key",
    "dropbox": "token",
    "onedrive": "token",
}
OBSCURED = ("pass", "password")  # rclone wants these obscured (`rclone obscure`), not plain
# rclone's remote names (docs: rclone.org/docs/#config-file): letters, digits, _ - . + @ and space, not starting with
# - or space, not ending with space.
_REMOTE_NAME = re.compile(r"[\w.+@][\w.+@ -]*(?<! )")


def given(text: str) -> Remote:
    """A remote from `--remote NAME:PATH` (configured in rclone by the owner), checked: a UserError names the value."""
    name, colon, path = text.partition(":")
    problem = None
    if not colon:
        problem = "expected an rclone remote and path, NAME:PATH"
    elif not _REMOTE_NAME.fullmatch(name):
        problem = ("NAME must be an rclone remote's name (letters, digits, _ - . + @ and spaces, not starting with a "
                   "dash or a space)")  # fmt: skip
    elif CONTROL.search(path) or path.startswith("-"):
        problem = "PATH must be one line of text, not starting with a dash"
    if problem:
        raise UserError(f"--remote {text!r}: {problem}.", "Give the remote as `rclone listremotes` names it, e.g. "
                        "--remote gdrive:ai-platform-backups.")  # fmt: skip
    return Remote(text)


@dataclass
class Remote:
    target: str  # NAME:PATH as rclone takes it
    env: dict[str, str] = field(default_factory=dict)  # the remote's definition, secret included
    keep: int = 14

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def from_root(root: Path, runner: Runner) -> Remote | None:
    """The remote the root's master.env describes (as render wrote it from the settings), or None when it has none."""
    master = read_env(root / MASTER_ENV)
    if not master.get("BACKUP_REMOTE_TYPE"):
        return None
    try:
        options = json.loads(master.get("BACKUP_REMOTE_OPTIONS") or "{}")
    except ValueError:
        raise UserError(f"{root / MASTER_ENV}: BACKUP_REMOTE_OPTIONS is not JSON.", f"Run `{INV} render` and "
                        f"`{SUDO_INV} deploy` again.") from None  # fmt: skip
    secret = read_env(root / CREDENTIALS_ENV).get("BACKUP_REMOTE_SECRET", "")
    path = master.get("BACKUP_REMOTE_PATH", default("backup_remote_path"))
    keep = count_of(master, "BACKUP_REMOTE_KEEP", default("backup_remote_keep"), root / MASTER_ENV)
    return from_settings(master["BACKUP_REMOTE_TYPE"], path, options, secret,
                         master.get("BACKUP_REMOTE_SECRET_OPTION", ""), keep, runner)  # fmt: skip


def from_settings(
    kind: str, path: str, options: dict[str, str], secret: str, secret_option: str, keep: int, runner: Runner
) -> Remote:
    """The settings' remote (RCLONE_CONFIG_AIPLATFORM_* variables)."""
    prefix = f"RCLONE_CONFIG_{NAME.upper()}_"
    env = {prefix + "TYPE": kind, **{prefix + key.upper(): value for key, value in options.items()}}
    if secret:
        option = secret_option or SECRET_OPTION.get(kind, "")
        if not option:
            raise UserError(f"backup_remote_type {kind!r}: which rclone option holds the secret?",
                            "Set backup_remote_secret_option (e.g. pass, token, key).")  # fmt: skip
        if option in OBSCURED:
            secret = runner.run(["rclone", "obscure", "-"], stdin=secret, changes=False).stdout.strip()
        env[prefix + option.upper()] = secret
    return Remote(f"{NAME}:{path.strip('/')}", env, keep)


@dataclass
class CopyReport:
    target: str
    checked: bool
    deleted: list[str]


def copy_off(backup: Path, remote: Remote, runner: Runner) -> CopyReport:
    """Copy one backup folder to the remote, check it there, then apply the remote's retention."""
    destination = f"{remote.target.rstrip('/')}/{backup.name}"
    env = remote.environ()
    runner.run(["rclone", "copy", "--no-traverse", "--", str(backup), destination], env=env, timeout=24 * 3600)
    check = runner.run(["rclone", "check", "--one-way", "--", str(backup), destination], env=env, check=False,
                       timeout=24 * 3600)  # fmt: skip
    if not check.ok:
        said = (check.stderr or check.stdout).strip().splitlines()[-5:]
        raise UserError(f"rclone check found differences between {backup} and {destination}: " + " ".join(said),
                        f"Run `{SUDO_INV} backup` again; the local backup is complete.")  # fmt: skip
    return CopyReport(destination, not runner.dry_run, prune(remote, runner))


def listed(remote: Remote, runner: Runner) -> list[str]:
    """The backups on the remote, oldest first."""
    done = runner.run(["rclone", "lsf", "--dirs-only", "--", remote.target], env=remote.environ(), changes=False,
                      check=False)  # fmt: skip
    if not done.ok:
        if "directory not found" in done.stderr:
            return []
        said = (done.stderr.strip().splitlines() or ["(it said nothing)"])[-1]
        raise UserError(
            f"rclone cannot list {remote.target}: {said}",
            f"A remote of the settings: check backup_remote_type and backup_remote_options (`{INV} settings`); one "
            "given with --remote: `rclone listremotes` names those rclone.conf has.",
        )
    names = [line.rstrip("/") for line in done.stdout.splitlines()]
    return sorted(n for n in names if n.startswith(PREFIX) and not n.endswith(PARTIAL))


def prune(remote: Remote, runner: Runner) -> list[str]:
    found = listed(remote, runner)
    old = found[: max(0, len(found) - remote.keep)]
    for name in old:
        runner.run(["rclone", "purge", "--", f"{remote.target.rstrip('/')}/{name}"], env=remote.environ())
    return old
