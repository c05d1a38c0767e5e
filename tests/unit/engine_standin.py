"""A stand-in for the Docker engine and the host commands `inv backup`, `inv restore` and `remove --purge` run, so
their unit tests assert what those leave behind without an engine, Postgres, Qdrant, gpg or rclone.

`RecordedRunner` is a `Runner` that records every command with its environment and stdin (`calls`) and answers it
from `Engine`, plain data: Postgres' databases (their dump bytes) and roles, Qdrant's collections, the containers with
their states, the named volumes (folders under tmp_path). `tar` runs for real (on tmp folders, so a backup's archives
hold the files they name); files are written and removed for real through the runner. Each recorded call also keeps
which containers were stopped when it ran, so a test can tell a "stopped" copy from a live one.
A command line the real program would refuse fails as it would (`_refused`): a program the host lacks, a docker
command docker lacks, a Postgres client run as root, a program Qdrant's image lacks, rclone given more or fewer paths
than its command takes, `docker cp` into a folder of Qdrant's container that is not there. A dry run's commands that
change something are recorded and not answered, as `Runner` does (a read, `changes=False`, is answered).
`EngineDocker` stands in for `Docker`: what it reads of the engine comes from the same `Engine` (networks: none).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.engine.docker import NETWORKS, ContainerInfo, Docker
from aiplatform.engine.project import load_project
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command
from aiplatform.host import hostfs
from aiplatform.host.runner import Result, Runner
from aiplatform.inputs.catalog import Catalog
from aiplatform.paths import CREDENTIALS_ENV

POSTGRES = "ai-platform-postgres"
QDRANT = "ai-platform-qdrant"
SNAPSHOTS = "/qdrant/snapshots"  # in Qdrant's image: its snapshots path


@dataclass
class Engine:
    """What the stand-in engine holds; tests read it back after the command ran."""

    databases: dict[str, bytes] = field(default_factory=dict)  # name -> what pg_dump gives
    roles: set[str] = field(default_factory=set)  # Postgres' roles (pg_dumpall --globals-only lists them)
    collections: dict[str, bytes] = field(default_factory=dict)  # Qdrant collection -> its snapshot's bytes
    containers: dict[str, tuple[str, str]] = field(default_factory=dict)  # container -> (service, state)
    volumes: dict[str, Path] = field(default_factory=dict)  # ai-platform_NAME -> mountpoint
    postgres_version: int = 160004
    qdrant_key: str = ""  # the api-key header Qdrant wants (others get 403)
    declared: dict[str, Path] = field(default_factory=dict)  # the volumes `compose create` makes when missing
    error: str | None = None  # why the engine does not answer (None: it does)
    fail: Callable[[list[str]], bool] = lambda argv: False  # which commands fail (exit 1)
    remote: list[str] = field(default_factory=list)  # the folders rclone lists on the remote
    restored: list[tuple[str, bytes]] = field(default_factory=list)  # (what read it, the bytes) fed to psql/pg_restore
    staged: dict[str, bytes] = field(default_factory=dict)  # snapshot files copied into Qdrant, not recovered yet
    qdrant_dirs: set[str] = field(default_factory=lambda: {SNAPSHOTS})  # the folders in Qdrant's container

    def stopped(self) -> frozenset[str]:
        return frozenset(name for name, (_, state) in self.containers.items() if state != "running")


@dataclass
class Call:
    argv: list[str]
    env: dict[str, str]
    stdin: str | None
    into: Path | None = None
    source: Path | None = None
    stopped: frozenset[str] = frozenset()  # the containers not running when it ran


@dataclass
class RecordedRunner(Runner):
    """A Runner whose commands the stand-in `Engine` answers (tar runs for real); every one recorded in `calls`."""

    engine: Engine = field(default_factory=Engine)
    calls: list[Call] = field(default_factory=list)

    def commands(self, *prefix: str) -> list[list[str]]:
        """The argv of every recorded command that starts with `prefix`."""
        return [c.argv for c in self.calls if c.argv[: len(prefix)] == list(prefix)]

    def run(
        self,
        argv: Sequence[str | Path],
        *,
        check: bool = True,
        changes: bool = True,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        args = [str(part) for part in argv]
        self.calls.append(Call(args, _own(env), stdin, stopped=self.engine.stopped()))
        if changes:
            self.history.append(args)
            if self.dry_run:  # as Runner: shown, not run
                return Result(args, 0)
        if self.engine.fail(args) or _refused(args):
            if check:
                raise UserError(f"`{' '.join(args)}` failed with exit code 1 (stand-in). {_refused(args)}")
            return Result(args, 1, "", _refused(args) or "failed (stand-in)")
        return Result(args, 0, self._answer(args, stdin or ""))

    def stream(
        self,
        argv: Sequence[str | Path],
        *,
        into: Path | None = None,
        source: Path | None = None,
        stdin_text: str | None = None,
        env: Mapping[str, str] | None = None,
        mode: int = 0o600,
        timeout: float | None = None,
    ) -> Result:
        args = [str(part) for part in argv]
        self.calls.append(Call(args, _own(env), stdin_text, into, source, self.engine.stopped()))
        if self.dry_run:  # Runner's own: shown and recorded, not run
            return super().stream(argv, into=into, source=source, stdin_text=stdin_text, env=env, mode=mode)
        refused = _refused(args) or self._no_such_folder(args)
        if self.engine.fail(args) or refused:
            raise UserError(f"`{' '.join(args)}` failed with exit code 1 (stand-in). {refused}")
        if args[0] == "tar":
            return super().stream(argv, into=into, source=source, stdin_text=stdin_text, env=env, mode=mode)
        self.history.append([*args, *(["<", str(source)] if source else []), *([">", str(into)] if into else [])])
        if into is not None:
            _write(into, self._output(args), mode)
        if source is not None:
            self.engine.restored.append((" ".join(args[:5]), source.read_bytes()))
            if args[:5] == ["docker", "exec", "-i", POSTGRES, "psql"]:  # the roles' SQL, as pg_dumpall wrote it
                roles = re.findall(r"^CREATE ROLE (\S+);$", source.read_text(errors="replace"), re.M)
                self.engine.roles.update(roles)
            if args[:5] == ["docker", "exec", "-i", POSTGRES, "pg_restore"]:  # only what the engine would run
                name = source.name.removesuffix(".dump")
                if name in self.engine.databases:  # as --create --exit-on-error does
                    raise UserError(f'pg_restore: error: database "{name}" already exists (stand-in).')
                self.engine.databases[name] = source.read_bytes()
            if args[:3] == ["docker", "cp", "-"] and args[3].startswith(QDRANT + ":"):
                with tarfile.open(source) as tar:
                    for member in tar:
                        self.engine.staged[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
        if args[0] == "gpg" and "--decrypt" in args:
            sealed = Path(args[-1]).read_bytes()
            _write(Path(args[args.index("-o") + 1]), sealed.removeprefix(b"GPG:"), mode)
        return Result(args, 0)

    def _no_such_folder(self, args: list[str]) -> str:
        """`docker cp - CONTAINER:FOLDER/` of a folder the container lacks: docker refuses it (Qdrant's)."""
        if args[:3] != ["docker", "cp", "-"] or not args[3].startswith(QDRANT + ":"):
            return ""
        folder = args[3].split(":", 1)[1].rstrip("/")
        if folder in self.engine.qdrant_dirs:
            return ""
        return f"Error response from daemon: Could not find the file {folder} in container {QDRANT}"

    # --- answers ---------------------------------------------------------------------------------------------------

    def _answer(self, args: list[str], stdin: str) -> str:
        engine = self.engine
        if args[:3] == ["docker", "exec", POSTGRES] and "-tAc" in args:
            query = args[-1]
            if "server_version_num" in query:
                return f"{engine.postgres_version}\n"
            if "pg_database" in query:
                return "".join(f"{name}\n" for name in sorted(engine.databases))
        if args[:3] == ["docker", "exec", POSTGRES] and args[3] == "psql" and "-c" in args:
            statement = args[args.index("-c") + 1]
            if found := re.fullmatch(r'DROP DATABASE IF EXISTS "([^"]+)" WITH \(FORCE\)', statement):
                engine.databases.pop(found[1], None)
            elif found := re.fullmatch(r'DROP ROLE IF EXISTS "([^"]+)"', statement):
                engine.roles.discard(found[1])
        if args[:3] == ["docker", "exec", POSTGRES] and args[3] == "dropdb":
            engine.databases.pop(args[-1], None)
        if args[:2] in (["docker", "stop"], ["docker", "start"]):
            for name in args[2:]:
                service, _ = engine.containers[name]
                engine.containers[name] = (service, "exited" if args[1] == "stop" else "running")
        if args[:4] == ["docker", "volume", "rm", "--force"]:
            for name in args[4:]:
                engine.volumes.pop(name, None)
        if args[:2] == ["docker", "rm"]:
            for name in args[4:]:
                engine.containers.pop(name, None)
        if args[:2] == ["docker", "compose"] and args[-1] == "create":
            for name, mount in engine.declared.items():
                mount.mkdir(parents=True, exist_ok=True)
                engine.volumes.setdefault(name, mount)
        if args[:4] == ["docker", "exec", "-i", QDRANT]:
            return self._qdrant(stdin)
        if args[:5] == ["docker", "exec", QDRANT, "mkdir", "-p"]:
            engine.qdrant_dirs.update(args[5:])
        if args[:2] == ["rclone", "obscure"]:
            return "obscured-by-the-stand-in\n"
        if args[:2] == ["rclone", "lsf"]:
            return "".join(f"{name}/\n" for name in engine.remote)
        if args[:2] == ["rclone", "purge"]:
            engine.remote.remove(args[-1].rsplit("/", 1)[1])
        if args[:2] == ["rclone", "copy"]:
            engine.remote.append(args[-1].rsplit("/", 1)[1])
        return ""

    def _qdrant(self, request: str) -> str:
        head, _, body = request.partition("\r\n\r\n")
        method, path = head.split(" ")[:2]
        path = path.split("?")[0]
        if f"\r\napi-key: {self.engine.qdrant_key}\r\n" not in head:
            return 'HTTP/1.0 403 Forbidden\r\n\r\n{"status": {"error": "Invalid api-key"}}'
        result: object = True
        if (method, path) == ("GET", "/collections"):
            result = {"collections": [{"name": name} for name in sorted(self.engine.collections)]}
        elif method == "POST" and path.endswith("/snapshots"):
            result = {"name": path.split("/")[2] + ".snapshot"}
        elif method == "PUT" and path.endswith("/snapshots/recover"):
            snapshot = json.loads(body)["location"].rsplit("/", 1)[1]
            self.engine.collections[path.split("/")[2]] = self.engine.staged.pop(snapshot)
        return "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + json.dumps({"result": result})

    def _output(self, args: list[str]) -> bytes:
        engine = self.engine
        if args[:4] == ["docker", "exec", POSTGRES, "pg_dump"]:
            return engine.databases[args[-1]]
        if args[:4] == ["docker", "exec", POSTGRES, "pg_dumpall"]:
            return "".join(f"CREATE ROLE {role};\n" for role in sorted(engine.roles)).encode()
        if args[:2] == ["docker", "cp"] and args[2].startswith(QDRANT + ":"):
            collection = args[2].split("/")[-2]
            data = engine.collections[collection]
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                member = tarfile.TarInfo(f"{collection}.snapshot")
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            return buffer.getvalue()
        if args[0] == "gpg" and "--symmetric" in args:  # "encrypted": marked, so a test can tell it was
            return b"GPG:" + Path(args[-1]).read_bytes()
        return b""


PG_CLIENTS = ("psql", "pg_dump", "pg_dumpall", "pg_restore", "dropdb", "createdb")


def _refused(args: list[str]) -> str:
    """What the real program says to a command line it refuses (empty: it runs)."""
    return (_not_installed(args) or _docker_usage(args) or _as_root(args) or _not_in_qdrants_image(args)
            or _rclone_usage(args) or _pg_restore_usage(args))  # fmt: skip


# The programs these tasks run on the host; any other (a misspelt or empty name) is not found, as on the host.
HOST_PROGRAMS = frozenset(("docker", "tar", "gpg", "rclone", "systemctl"))


def _not_installed(args: list[str]) -> str:
    """What the shell says of a program the host does not have (Runner answers it so, exit 127)."""
    return "" if args[:1] and args[0] in HOST_PROGRAMS else f"{args[0] if args else ''}: command not found"


# The docker CLI's commands (docker 20.10 to 27, with the compose and buildx plugins): any other word is refused.
DOCKER_COMMANDS = frozenset((
    "attach", "build", "builder", "buildx", "commit", "compose", "config", "container", "context", "cp", "create",
    "diff", "events", "exec", "export", "history", "image", "images", "import", "info", "init", "inspect", "kill",
    "load", "login", "logout", "logs", "manifest", "network", "node", "pause", "plugin", "port", "ps", "pull",
    "push", "rename", "restart", "rm", "rmi", "run", "save", "search", "secret", "service", "stack", "start",
    "stats", "stop", "swarm", "system", "tag", "top", "trust", "unpause", "update", "version", "volume", "wait",
))  # fmt: skip


def _docker_usage(args: list[str]) -> str:
    """docker's own refusal of a command it does not have, or of `exec` without a container and a program."""
    if args[:1] != ["docker"] or len(args) < 2:
        return ""
    if args[1] not in DOCKER_COMMANDS:
        return f"docker: unknown command: docker {args[1]}"
    if args[1] == "exec" and len([word for word in args[2:] if not word.startswith("-")]) < 2:
        return '"docker exec" requires at least 2 arguments.'
    return ""


def _not_in_qdrants_image(args: list[str]) -> str:
    """Qdrant's image has bash but no curl: a request is bash's /dev/tcp (sh there has no /dev/tcp), and `docker exec`
    of a program the image lacks fails as the OCI runtime says."""
    if args[:4] != ["docker", "exec", "-i", QDRANT] or args[4:6] == ["bash", "-c"]:
        return ""
    return f'OCI runtime exec failed: exec: "{args[4] if len(args) > 4 else ""}": executable file not found in $PATH'


RCLONE_ARGUMENTS = {"copy": 2, "check": 2, "lsf": 1, "purge": 1, "obscure": 1}


def _rclone_usage(args: list[str]) -> str:
    """rclone's own check of a command's arguments: flags before `--`, then exactly the paths the command takes (an
    empty word is a path too)."""
    if args[:1] != ["rclone"] or len(args) < 2:
        return ""
    rest = args[2:]
    before, after = (rest[: rest.index("--")], rest[rest.index("--") + 1 :]) if "--" in rest else (rest, [])
    paths = [word for word in before if word == "-" or not word.startswith("-")] + after
    wanted = RCLONE_ARGUMENTS.get(args[1])
    if wanted is None:
        return f'unknown command "{args[1]}" for "rclone"'
    if len(paths) != wanted:
        bound = "maximum" if len(paths) > wanted else "minimum"
        return f"Command {args[1]} needs {wanted} arguments {bound}: you provided {len(paths)} non flag arguments"
    return ""


# pg_restore's options that take a value (PostgreSQL 12 to 17): the words after them are theirs, not file names.
PG_RESTORE_VALUED = frozenset(("-d", "--dbname", "-f", "--file", "-F", "--format", "-I", "--index", "-j", "--jobs",
                               "-L", "--use-list", "-n", "--schema", "-N", "--exclude-schema", "-P", "--function",
                               "-S", "--superuser", "-t", "--table", "-T", "--trigger", "-h", "--host", "-p", "--port",
                               "-U", "--username", "--role"))  # fmt: skip


def _pg_restore_usage(args: list[str]) -> str:
    """pg_restore reading its archive from stdin takes no file argument: one is opened instead of stdin, two are
    refused (an empty word is an argument too)."""
    if args[:5] != ["docker", "exec", "-i", POSTGRES, "pg_restore"]:
        return ""
    words, files = iter(args[5:]), []
    for word in words:
        if word in PG_RESTORE_VALUED:
            next(words, None)
        elif not word.startswith("-"):
            files.append(word)
    if len(files) > 1:
        return f'pg_restore: error: too many command-line arguments (first is "{files[1]}")'
    return f'pg_restore: error: could not open input file "{files[0]}": No such file or directory' if files else ""


def _as_root(args: list[str]) -> str:
    """What Postgres answers a client tool `docker exec`'d in its container without `-U postgres`: exec runs as root
    there, libpq's user is then root, and no such role exists (the official image's superuser is postgres)."""
    start = 4 if args[:3] == ["docker", "exec", "-i"] else 3
    if args[:2] != ["docker", "exec"] or POSTGRES not in args[2 : start + 1] or len(args) <= start:
        return ""
    if args[start] not in PG_CLIENTS:
        return ""
    user = args[args.index("-U") + 1] if "-U" in args[start:] else ""
    return "" if user == "postgres" else f'FATAL:  role "{user or "root"}" does not exist'


def _own(env: Mapping[str, str] | None) -> dict[str, str]:
    """The variables a command was given beyond this process' own environment."""
    return {k: v for k, v in (env or {}).items() if os.environ.get(k) != v}


def _write(path: Path, data: bytes, mode: int) -> None:
    with os.fdopen(hostfs.open_output(path, mode), "wb") as out:  # as the runner writes a command's output
        out.write(data)


class EngineDocker(Docker):
    """A stand-in for `Docker`: containers, volumes and the engine's health read from the runner's `Engine`; what it
    changes goes through the runner as the real one's does."""

    def __init__(self, runner: Runner, compose_files: list[Path] | None = None, env_files: list[Path] | None = None):
        super().__init__(runner, compose_files, env_files)
        assert isinstance(runner, RecordedRunner), "EngineDocker reads the stand-in engine of a RecordedRunner"
        self.engine = runner.engine

    def engine_error(self) -> str | None:
        return self.engine.error

    def compose_version(self) -> str | None:
        return "2.29.7"

    def containers(self) -> list[ContainerInfo]:
        return [
            ContainerInfo(name, name, name, service, "", "", state, "", 0, f"example/{name}:1")
            for name, (service, state) in sorted(self.engine.containers.items())
        ]

    def volumes(self) -> list[tuple[str, str]]:
        return sorted((name, str(mount)) for name, mount in self.engine.volumes.items())

    def image_digest(self, image: str) -> str:
        return "sha256:" + "0" * 64

    def compose_command(self) -> list[str]:
        return ["docker", "compose", "--project-name", "ai-platform"]

    def all_network_names(self) -> set[str]:
        return set(NETWORKS)

    def networks(self) -> list[str]:
        return []


# --- a deployed platform, as the last deploy left it -------------------------------------------------------------


@dataclass
class Deployed:
    root: Path
    out: Path
    catalog: Catalog
    engine: Engine
    files: dict[str, dict[str, bytes]]  # data/ folder or volume -> {relative path: bytes} written in it


def deployed(tmp_path: Path, context: Callable[[Path], object], services: list[str]) -> Deployed:
    """answers.yaml naming `services`, generated/ rendered from it and copied to the root (as deploy does), every
    data/ folder the compose files mount and every named volume holding two files of its own, and an engine running
    every container, with the catalog's databases and roles of the enabled services plus a database the owner made,
    and a Qdrant collection. `context(tmp_path)` makes the Context the tasks would (answers: tmp_path/answers.yaml)."""
    out, root = tmp_path / "generated", tmp_path / "root"
    privileged = [name for name in services if name == "jupyterhub"]  # asks for the docker socket
    (tmp_path / "answers.yaml").write_text(json.dumps({"services": services, "privileged_services": privileged}))
    ctx = context(tmp_path)
    render_command(ctx, out, interactive=False)
    shutil.copytree(out, root, dirs_exist_ok=True)
    catalog: Catalog = ctx.catalog
    project = load_project(root)
    enabled = catalog.enabled(json.loads((root / ".aiplatform.json").read_text())["services"])
    engine = Engine()
    files: dict[str, dict[str, bytes]] = {}

    def fill(folder: Path, key: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        made = {"note.txt": f"{key}\n".encode(), "deep/blob.bin": os.urandom(2048)}
        for name, data in made.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        files[key] = made

    for name, container in project.containers.items():
        engine.containers[name] = (container.service, "exited" if container.oneshot else "running")
        for mount in container.mounts:
            if Path(mount).is_relative_to(root / "data"):
                fill(Path(mount), Path(mount).relative_to(root / "data").as_posix())
    for spec in enabled:
        for extra in spec.backup.extra:
            fill(root / "data" / extra, extra)
        for volume in spec.volumes:
            engine.volumes[f"ai-platform_{volume}"] = engine.declared[f"ai-platform_{volume}"] = (
                tmp_path / "volumes" / volume
            )
            fill(tmp_path / "volumes" / volume, volume)
        for db in spec.databases:
            engine.databases[db.name] = f"PGDMP {db.name}".encode()
            engine.roles.add(db.user)
    engine.databases["owner_notes"] = b"PGDMP owner_notes"  # made by the owner: in no service.yaml
    engine.collections["notes"] = b"qdrant snapshot of notes"
    engine.qdrant_key = read_env(root / CREDENTIALS_ENV)["QDRANT_API_KEY"]
    return Deployed(root, out, catalog, engine, files)
