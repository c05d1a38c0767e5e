"""`inv backup`: one consistent copy of everything the owner made, in a folder restore can verify.

Per item, in this order: the root's config (config/ with credentials.env, docker/, scripts/, the stamp); Postgres'
roles (`pg_dumpall --globals-only`) and each database (`pg_dump -Fc`), from the running container; each Qdrant
collection through its snapshot API; then each service's files (named volumes and folders under data/) the way its
service.yaml says is consistent: with its containers stopped for the copy, copied live, or left out with why. The
folder is 0700 and every file 0600 from its first byte; with `backup_encrypt` each file is gpg-encrypted (AES256)
as soon as it is written. The manifest comes last, then the folder is renamed from `.partial`: an interrupted backup
is never mistaken for a finished one (the next backup deletes it). Then the oldest backups beyond `backup_keep` go.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiplatform import __version__
from aiplatform.backup.archive import CONFIG_PARTS
from aiplatform.backup.manifest import (
    LAST,
    MANIFEST,
    PARTIAL,
    PREFIX,
    Item,
    Manifest,
    complete_backups,
    new_name,
    read_manifest,
    sha256_of,
)
from aiplatform.backup.qdrant import Qdrant
from aiplatform.commands import SUDO_INV
from aiplatform.engine.docker import Docker
from aiplatform.engine.project import Project, load_project
from aiplatform.envfile import count_of, read_env
from aiplatform.errors import UserError
from aiplatform.generated.stamp import read_stamp
from aiplatform.host.runner import Runner
from aiplatform.inputs.catalog import Catalog, ServiceSpec
from aiplatform.inputs.settings import default
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV, STAMP_FILE

POSTGRES = "ai-platform-postgres"
Progress = Callable[[str], None]


@dataclass
class BackupOptions:
    root: Path
    dest: Path  # the folder that holds the backups (default: <root>/backups)
    only: list[str] | None = None
    keep: int = default("backup_keep")
    encrypt: bool = False

    @classmethod
    def for_root(cls, root: Path, dest: Path | None = None, only: list[str] | None = None) -> BackupOptions:
        """As the root's master.env sets them (BACKUP_KEEP, BACKUP_ENCRYPT)."""
        master = read_env(root / MASTER_ENV)
        keep = count_of(master, "BACKUP_KEEP", default("backup_keep"), root / MASTER_ENV)
        encrypt = master.get("BACKUP_ENCRYPT") == "true"
        return cls(root, dest or root / "backups", only, keep, encrypt)


@dataclass
class BackupReport:
    path: Path
    manifest: Manifest
    seconds: float
    stopped: dict[str, float] = field(default_factory=dict)  # service -> seconds its containers were stopped
    deleted: list[Path] = field(default_factory=list)  # old backups removed by retention


def psql(runner: Runner, query: str) -> str:
    done = runner.run(["docker", "exec", POSTGRES, "psql", "-U", "postgres", "-tAc", query], changes=False)
    return done.stdout.strip()


def server_version(runner: Runner) -> int | None:
    """The running Postgres' server_version_num (e.g. 160004); None when it does not answer."""
    asked = runner.run(["docker", "exec", POSTGRES, "psql", "-U", "postgres", "-tAc", "show server_version_num"],
                       changes=False, check=False)  # fmt: skip
    value = asked.stdout.strip() if asked.ok else ""
    return int(value) if value.isdigit() else None


def take_backup(options: BackupOptions, catalog: Catalog, runner: Runner, progress: Progress) -> BackupReport:
    root = options.root
    stamp = read_stamp(root)
    if stamp is None:
        raise UserError(f"{root} holds no deployed platform (no {STAMP_FILE}).", f"Deploy first: `{SUDO_INV} deploy`.")
    project = load_project(root)
    docker = Docker(runner, project.compose_files, project.env_files)
    specs = [s for s in catalog.enabled(stamp.services) if not options.only or s.name in options.only]
    if options.only and (unknown := sorted(set(options.only) - {s.name for s in catalog.enabled(stamp.services)})):
        raise UserError(f"--only names {', '.join(unknown)}, not enabled in {root} ({', '.join(stamp.services)}).")
    credentials = read_env(root / CREDENTIALS_ENV)
    passphrase = credentials.get("BACKUP_PASSPHRASE", "")
    if options.encrypt and not passphrase:
        raise UserError("backup_encrypt is on but credentials.env has no BACKUP_PASSPHRASE.", f"Run `{SUDO_INV} "
                        "render` and `deploy` once: render generates it.")  # fmt: skip
    started = time.monotonic()
    _drop_unfinished(options.dest, runner)
    name = new_name()
    partial = options.dest / (name + PARTIAL)
    runner.make_dir(options.dest, 0o700)
    runner.make_dir(partial, 0o700)
    manifest = Manifest(tool_version=__version__, created=datetime.now().astimezone().isoformat(timespec="seconds"),
                        root=str(root), services=[s.name for s in specs], encrypted=options.encrypt)  # fmt: skip
    report = BackupReport(options.dest / name, manifest, 0.0)
    add = _Adder(partial, manifest, runner, passphrase if options.encrypt else "", progress)
    try:
        parts = [p for p in CONFIG_PARTS if (root / p).exists()]
        add("platform", "config", "config", "config.tar.gz", "live",
            ["tar", "--numeric-owner", "-C", str(root), "-czf", "-", *parts])  # fmt: skip
        by_name = {s.name: s for s in specs}
        if "postgres" in by_name or (any(s.databases for s in specs) and "postgres" in stamp.services):
            _postgres(add, runner, catalog, manifest, specs)  # `--only n8n`: the roles and n8n's databases
        if "qdrant" in by_name:
            _qdrant(add, runner, credentials.get("QDRANT_API_KEY", ""))
        volumes = dict(docker.volumes()) if docker.engine_error() is None else {}
        for spec in specs:
            _files(add, spec, project, root, volumes, docker, report)
        manifest.images = _images(runner, docker)
        runner.write(partial / MANIFEST, manifest.to_json(), 0o600)
        runner.rename(partial, report.path)
    except BaseException as exc:
        runner.remove_tree(partial)  # nothing half-made stays behind (a killed backup's is removed by the next)
        record_last(runner, root, ok=False, error=getattr(exc, "message", None) or repr(exc))
        raise
    report.deleted = _retention(options.dest, options.keep, runner, manifest.services)
    report.seconds = time.monotonic() - started
    record_last(runner, root, ok=True, path=report.path, size=manifest.size, seconds=report.seconds)
    return report


class _Adder:
    """Takes one item into the backup: runs the command into its file (0600), encrypts it when asked, records it."""

    def __init__(self, folder: Path, manifest: Manifest, runner: Runner, passphrase: str, progress: Progress):
        self.folder, self.manifest, self.runner, self.passphrase, self.progress = (
            folder, manifest, runner, passphrase, progress)  # fmt: skip

    def __call__(self, service: str, kind: str, name: str, file: str, method: str, argv: list[str]) -> None:
        self.progress(f"{service}: {kind} {name} ({method})")
        path = self.folder / file
        self.runner.stream(argv, into=path)
        self.take(service, kind, name, file, method)

    def take(self, service: str, kind: str, name: str, file: str, method: str) -> None:
        path = self.folder / file
        if self.passphrase:  # written by the runner like every file (0600), gpg only encrypts
            sealed = path.with_name(path.name + ".gpg")
            self.runner.stream(["gpg", "--batch", "--yes", "--quiet", "--symmetric", "--cipher-algo", "AES256",
                                "--passphrase-fd", "0", "--pinentry-mode", "loopback", "--output", "-", str(path)],
                               into=sealed, stdin_text=self.passphrase)  # fmt: skip
            self.runner.remove_file(path)
            path, file = sealed, file + ".gpg"
        if self.runner.dry_run:
            return
        size = path.stat().st_size
        self.manifest.items.append(Item(service=service, kind=kind, name=name, file=file, size=size,
                                        sha256=sha256_of(path), method=method))  # fmt: skip


def _postgres(add: _Adder, runner: Runner, catalog: Catalog, manifest: Manifest, specs: list[ServiceSpec]) -> None:
    manifest.postgres_version = server_version(runner)
    add("postgres", "postgres-globals", "roles", "postgres/globals.sql", "dump",
        ["docker", "exec", POSTGRES, "pg_dumpall", "-U", "postgres", "--globals-only"])  # fmt: skip
    owners = {db.name: s.name for s in catalog.services.values() for db in s.databases}
    wanted = {s.name for s in specs}
    names = psql(runner, "select datname from pg_database where not datistemplate and datname <> 'postgres' "
                 "order by datname").split()  # fmt: skip
    for db in names:  # every database, a switched-off service's too: its data is kept, so is its dump
        owner = owners.get(db, "postgres")
        if owner in wanted or ("postgres" in wanted and owner not in catalog.services):
            add(owner, "postgres", db, f"postgres/{db}.dump", "dump",
                ["docker", "exec", POSTGRES, "pg_dump", "-U", "postgres", "-Fc", db])  # fmt: skip


def _qdrant(add: _Adder, runner: Runner, api_key: str) -> None:
    client = Qdrant(runner, api_key)
    for collection in client.collections():
        add.progress(f"qdrant: collection {collection} (snapshot)")
        file = f"qdrant/{collection}.tar"
        client.snapshot(collection, add.folder / file)
        add.take("qdrant", "qdrant", collection, file, "snapshot")


def _files(
    add: _Adder,
    spec: ServiceSpec,
    project: Project,
    root: Path,
    volumes: dict[str, str],
    docker: Docker,
    report: BackupReport,
) -> None:
    policy = spec.backup
    if policy.files == "skip":
        report.manifest.left_out[spec.name] = policy.why or "files left out"
        return
    if policy.skip:
        report.manifest.left_out[spec.name] = f"{', '.join(policy.skip)}: {policy.why}"
    names = [v for v in spec.volumes if v not in policy.skip and f"ai-platform_{v}" in volumes]
    folders = project.data_folders(list(spec.containers), root)
    folders += [root / "data" / extra for extra in policy.extra if (root / "data" / extra).is_dir()]
    folders = [
        f for f in dict.fromkeys(folders) if f.is_dir() and not any(f.is_relative_to(o) and f != o for o in folders)
    ]
    if not names and not folders:
        return
    running = [c.name for c in docker.containers() if c.service == spec.name and c.state == "running"]
    stop = policy.files == "stop" and running
    started = time.monotonic()
    if stop:
        add.progress(f"{spec.name}: stopping {', '.join(running)} for a consistent copy")
        add.runner.run(["docker", "stop", *running])
    method = "stopped" if stop else "live"
    try:
        for volume in names:
            add(spec.name, "volume", volume, f"volumes/{volume}.tar.gz", method,
                ["tar", "--numeric-owner", "-C", volumes[f"ai-platform_{volume}"], "-czf", "-", "."])  # fmt: skip
        for folder in folders:
            relative = folder.relative_to(root / "data").as_posix()
            add(spec.name, "folder", relative, f"data/{relative.replace('/', '__')}.tar.gz", method,
                ["tar", "--numeric-owner", "-C", str(folder), "-czf", "-", "."])  # fmt: skip
    finally:
        if stop:
            add.runner.run(["docker", "start", *running])
            report.stopped[spec.name] = time.monotonic() - started


def _images(runner: Runner, docker: Docker) -> dict[str, dict[str, str]]:
    """container -> the image reference it runs and that image's registry digest (empty for a local image)."""
    found = {}
    for container in docker.containers():
        found[container.container] = {"image": container.image, "digest": docker.image_digest(container.image)}
    return dict(sorted(found.items()))


def _drop_unfinished(dest: Path, runner: Runner) -> None:
    for folder in sorted(dest.glob(f"{PREFIX}*{PARTIAL}")) if dest.is_dir() else []:
        runner.remove_tree(folder)


def _retention(dest: Path, keep: int, runner: Runner, services: list[str]) -> list[Path]:
    """The oldest backups of the same services beyond `keep` deleted: `--only` backups never push out full ones."""
    backups = [b for b in complete_backups(dest) if read_manifest(b).services == services]
    old = backups[: max(0, len(backups) - keep)]
    for folder in old:
        runner.remove_tree(folder)
    return old


def record_last(runner: Runner, root: Path, ok: bool, **facts: object) -> None:
    """<root>/logs/backup-last.json: the last backup's outcome, for status and doctor."""
    record = {"finished": datetime.now().astimezone().isoformat(timespec="seconds"), "ok": ok,
              **{key: str(value) if isinstance(value, Path) else value for key, value in facts.items()}}  # fmt: skip
    if root.is_dir():
        runner.write(root / LAST, (json.dumps(record, indent=2) + "\n").encode(), 0o644)
