"""`inv restore BACKUP`: the platform as the backup holds it, into the same root or a fresh one at the same path.

A backup is read as hostile input: the root is the command line's or the remembered one (never the manifest's), and
every item's name, file and archive member must stay inside the backup (reading) and the root (writing), links
refused. First every file is checked against the manifest (a missing or corrupted one refuses the restore, naming
it), then every precondition before the first write (`preflight`): Docker's engine and compose answer, the Postgres
the dumps come from is not newer than the one that will read them (pg_restore of a newer dump fails half-way), a
passphrase for an encrypted backup, room on the root's disk. Then, once confirmed: the config with credentials.env
first (so keys such as N8N_ENCRYPTION_KEY and LITELLM_SALT_KEY match the data restored next), the containers created
(not started), each volume and data folder emptied and refilled, Postgres started alone for the roles and the
databases (each dropped and recreated from its dump), Qdrant for its collections, then everything up, waiting for
health.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.backup.archive import member_problems
from aiplatform.backup.manifest import Item, Manifest, read_manifest, verify
from aiplatform.backup.qdrant import Qdrant
from aiplatform.backup.take import POSTGRES, server_version
from aiplatform.commands import INV, SUDO_INV
from aiplatform.engine import deploy as deploying
from aiplatform.engine.docker import Docker, require_compose, require_engine
from aiplatform.engine.project import load_project
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.inputs.root import root_problem
from aiplatform.paths import CREDENTIALS_ENV

Progress = Callable[[str], None]
EXTRACTED = ("config", "volume", "folder")  # the items tar extracts (the rest go to Postgres and Qdrant)


@dataclass
class RestoreReport:
    manifest: Manifest
    replaced: list[str]  # what was (or, in a dry run, would be) replaced
    result: deploying.DeployResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.ok


def newer_major(dump: int | None, server: int | None) -> str | None:
    """Why a dump of Postgres `dump` (server_version_num) cannot go into `server`, or None."""
    if dump is None or server is None:
        return None
    if dump // 10000 > server // 10000:
        return (
            f"the dumps come from Postgres {dump // 10000} and this platform runs Postgres {server // 10000}: "
            "pg_restore cannot read a newer major version's dump"
        )
    return None


def refuse_newer_dumps(manifest: Manifest, items: list[Item], runner: Runner) -> None:
    """Before anything changes: dumps from a newer Postgres major than the running one are refused (a stopped or
    missing Postgres is checked again once restore has started it)."""
    if not any(i.kind == "postgres" for i in items):
        return
    refused = newer_major(manifest.postgres_version, server_version(runner))
    if refused:
        raise UserError(
            f"Nothing was restored: {refused}.",
            f"Restore it on a platform whose Postgres is as new: update the tool, then `{SUDO_INV} upgrade "
            "--postgres-major`.",
        )


def passphrase_for(backup: Path, manifest: Manifest, root: Path, given: str = "") -> str:
    """What opens an encrypted backup: the one given (setting backup_passphrase), else the root's BACKUP_PASSPHRASE;
    "" for a backup that is not encrypted. None at hand is a UserError, before anything changes."""
    if not manifest.encrypted:
        return ""
    passphrase = given or read_env(root / CREDENTIALS_ENV).get("BACKUP_PASSPHRASE", "")
    if not passphrase:
        raise UserError(
            f"{backup} is encrypted and no passphrase is at hand ({root / CREDENTIALS_ENV} has no BACKUP_PASSPHRASE).",
            f"Give it once: `sudo AI_PLATFORM_BACKUP_PASSPHRASE=... {INV} restore ...`.",
        )
    return passphrase


def plan(backup: Path, root: Path, only: list[str] | None) -> tuple[Manifest, list[Item], list[str]]:
    """The manifest, the items to restore and what they replace; a bad backup is a UserError, nothing done.

    `root` is the command line's or the remembered one, never the manifest's: a backup only has to agree with it.
    Every item's name and file, and every member of its archives (when they are not encrypted), is checked here."""
    manifest = read_manifest(backup)
    if problem := root_problem(manifest.root):
        raise UserError(
            f"{backup} does not match its manifest, so nothing was restored: its root {manifest.root!r} is no "
            f"platform root ({problem}).",
            f"Restore another backup (`{SUDO_INV} backup --list`).",
        )
    if Path(manifest.root) != root:
        raise UserError(
            f"{backup} is a backup of {manifest.root}, not of {root}: its compose files name that root's paths.",
            f"Restore it to {manifest.root} (`{SUDO_INV} restore {backup} --root {manifest.root}`).",
        )
    problems = verify(backup, manifest)
    if problems:
        raise UserError(
            f"{backup} does not match its manifest, so nothing was restored: " + "; ".join(problems[:5]) + ".",
            f"Restore another backup (`{SUDO_INV} backup --list`).",
        )
    if only and (unknown := sorted(set(only) - {i.service for i in manifest.items} - {"platform"})):
        raise UserError(f"--only names {', '.join(unknown)}, not in {backup} ({', '.join(manifest.services)}).")
    items = [i for i in manifest.items if not only or i.service in only or i.kind in ("config", "postgres-globals")]
    if not manifest.encrypted:  # an encrypted one's are checked as each is decrypted, before it is extracted
        refuse_unsafe_members(backup, items, lambda item: backup / item.file)
    replaced = [_describe(i, root) for i in items]
    return manifest, items, replaced


def refuse_unsafe_members(backup: Path, items: list[Item], opened: Callable[[Item], Path]) -> None:
    """A UserError naming each archive member that would land outside the folder it is restored to."""
    problems = [
        f"{item.file}: {problem}"
        for item in items
        if item.kind in EXTRACTED
        for problem in member_problems(opened(item), config=item.kind == "config")
    ]
    if problems:
        raise UserError(
            f"{backup} does not match its manifest, so nothing was restored: " + "; ".join(problems[:5]) + ".",
            f"Restore another backup (`{SUDO_INV} backup --list`); a backup this tool took holds none of these.",
        )


def preflight(root: Path, items: list[Item], manifest: Manifest, backup: Path, runner: Runner,
              docker: Docker | None = None) -> None:  # fmt: skip
    """Every precondition of a restore, before its first write: Docker's engine and compose v2 answer, the dumps'
    Postgres is not newer than the running one, and the root's disk holds the config and data folders."""
    docker = docker or Docker(runner)
    require_engine(docker)
    require_compose(docker, "restore")
    refuse_newer_dumps(manifest, items, runner)
    needed = sum(_unpacked_size(backup / i.file, i) for i in items if i.kind in ("config", "folder"))
    existing = next(p for p in (root, *root.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise UserError(
            f"Nothing was restored: the config and data folders need {needed / 1e9:.1f} GB and {existing} has "
            f"{free / 1e9:.1f} GB free.",
            "Free some space (or restore into a root on a larger disk with --root), then run restore again.",
        )


def _unpacked_size(path: Path, item: Item) -> int:
    """What an archive takes once extracted (its members' sizes); an encrypted file's own size as the estimate."""
    if path.name.endswith(".gpg"):
        return item.size
    with tarfile.open(path, "r:*") as tar:
        return sum(member.size for member in tar)


def _target(root: Path, item: Item, volumes: dict[str, str]) -> Path:
    """Where a volume or folder item is extracted: the volume's mountpoint, or <root>/data/NAME reached through
    real folders only (a link on the way would take the writes out of the root)."""
    if item.kind == "volume":
        if f"ai-platform_{item.name}" not in volumes:
            raise UserError(
                f"The backup holds volume {item.name!r}, which the restored compose files do not declare.",
                f"Restore another backup (`{SUDO_INV} backup --list`).",
            )
        return Path(volumes[f"ai-platform_{item.name}"])
    target = root / "data" / item.name
    here = root
    for part in target.relative_to(root).parts:
        here = here / part
        if here.is_symlink():
            raise UserError(
                f"{here} is a symbolic link: restore writes only into the root's own folders.",
                f"Remove the link (or move what it points to into {root}), then restore again.",
            )
    return target


def _describe(item: Item, root: Path) -> str:
    return {
        "config": f"{root}/config, docker/, scripts/ (credentials.env included)",
        "postgres-globals": "Postgres roles and their passwords",
        "postgres": f"database {item.name}",
        "qdrant": f"Qdrant collection {item.name}",
        "volume": f"volume ai-platform_{item.name}",
        "folder": f"{root}/data/{item.name}",
    }[item.kind]


def restore(
    backup: Path, root: Path, items: list[Item], manifest: Manifest, runner: Runner, progress: Progress,
    ui: deploying.DeployUI, passphrase: str = "",
) -> RestoreReport:  # fmt: skip
    """Put the items back (see the module's docstring); returns the health of what came up."""
    report = RestoreReport(manifest, [_describe(i, root) for i in items])
    with tempfile.TemporaryDirectory(prefix="ai-platform-restore-") as scratch:
        opened = _Opener(backup, Path(scratch), runner, passphrase if manifest.encrypted else "")

        def checked(item: Item) -> Path:  # an encrypted archive's members, checked once it is decrypted
            path = opened(item)
            if manifest.encrypted:
                refuse_unsafe_members(backup, [item], lambda _: path)
            return path

        for item in [i for i in items if i.kind == "config"]:  # secrets first
            progress(f"config and credentials into {root}")
            source = checked(item)
            runner.make_dir(root, 0o755)
            runner.stream(["tar", "--numeric-owner", "-C", str(root), "-xzf", "-"], source=source)
        project = load_project(root)
        docker = Docker(runner, project.compose_files, project.env_files)
        docker.ensure_networks()
        compose = docker.compose_command()
        progress("stopping the platform's containers and creating the missing ones (not started)")
        runner.run([*compose, "stop"])
        runner.run([*compose, "create"])
        volumes = dict(docker.volumes())
        for item in [i for i in items if i.kind in ("volume", "folder")]:
            target = _target(root, item, volumes)
            progress(f"{item.service}: {item.kind} {item.name}")
            source = checked(item)
            runner.remove_tree(target)
            runner.make_dir(target, 0o755)
            runner.stream(["tar", "--numeric-owner", "-C", str(target), "-xzf", "-"], source=source)
        databases = [i for i in items if i.kind in ("postgres-globals", "postgres")]
        if databases:
            _postgres(databases, manifest, compose, runner, progress, opened)
        collections = [i for i in items if i.kind == "qdrant"]
        if collections:
            runner.run([*compose, "up", "--detach", "--wait", "qdrant"])
            client = Qdrant(runner, read_env(root / CREDENTIALS_ENV).get("QDRANT_API_KEY", ""))
            for item in collections:
                progress(f"qdrant: collection {item.name}")
                archive = opened(item)
                with tarfile.open(archive) as tar:
                    name = tar.getnames()[0]
                client.recover(item.name, archive, name)
    progress("starting everything and waiting for health")
    report.result = deploying.bring_up(docker, project, list(project.containers), list(project.containers),
                                       project.default_timeout(), ui.progress)  # fmt: skip
    report.result.root = root
    report.result.failures = deploying.masked_failures(report.result, root)
    return report


def _postgres(
    items: list[Item], manifest: Manifest, compose: list[str], runner: Runner, progress: Progress,
    opened: Callable[[Item], Path],
) -> None:  # fmt: skip
    runner.run([*compose, "up", "--detach", "--wait", "postgres"])
    refused = newer_major(manifest.postgres_version, server_version(runner))
    if refused:
        raise UserError(f"Databases not restored: {refused}.", "Restore into a platform whose Postgres is as new.")
    for item in items:
        progress(f"{item.service}: {'roles' if item.kind == 'postgres-globals' else 'database ' + item.name}")
        if item.kind == "postgres-globals":  # roles that exist already: their passwords are set again
            runner.stream(["docker", "exec", "-i", POSTGRES, "psql", "-q", "-U", "postgres", "-d", "postgres"],
                          source=opened(item))  # fmt: skip
            continue
        runner.run(["docker", "exec", POSTGRES, "dropdb", "-U", "postgres", "--if-exists", "--force", item.name])
        runner.stream(["docker", "exec", "-i", POSTGRES, "pg_restore", "-U", "postgres", "--create",
                       "--exit-on-error", "-d", "postgres"], source=opened(item))  # fmt: skip


class _Opener:
    """An item's file, decrypted into the scratch folder first when the backup is encrypted."""

    def __init__(self, backup: Path, scratch: Path, runner: Runner, passphrase: str) -> None:
        self.backup, self.scratch, self.runner, self.passphrase = backup, scratch, runner, passphrase

    def __call__(self, item: Item) -> Path:
        path = self.backup / item.file
        if not self.passphrase:
            return path
        plain = self.scratch / Path(item.file).name.removesuffix(".gpg")
        self.runner.stream(["gpg", "--batch", "--yes", "--quiet", "--decrypt", "--passphrase-fd", "0",
                            "--pinentry-mode", "loopback", "-o", str(plain), str(path)],
                           stdin_text=self.passphrase)  # fmt: skip
        return plain
