"""`inv backup` and `inv restore` judged by what they leave behind, on the stand-in engine (engine_standin.py):
which folders, databases and volumes are in the backup and hold the same bytes, which containers are stopped around
which copy (and started again when it fails), a missing or corrupted file refused before anything is dropped, the
roles with every `--only`, and the off-box remote's secret never on rclone's command line. The real round trip is
tests/integration/test_backup.py."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from datetime import datetime
from pathlib import Path

import pytest

from aiplatform.backup import remote, restore, take
from aiplatform.backup.manifest import LAST, complete_backups, read_manifest, verify
from aiplatform.engine import deploy as deploying
from aiplatform.errors import UserError
from aiplatform.host import runner as running
from aiplatform.inputs.settings import Settings
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV

from .conftest import run_inv
from .engine_standin import Deployed, Engine, EngineDocker, RecordedRunner, deployed
from .test_render import _ctx

SERVICES = ["flowise", "jupyterhub", "mlflow", "n8n", "monitoring"]
STOPPED_FOLDERS = {
    ("open-webui", "open-webui"),
    ("flowise", "flowise"),
    ("jupyterhub", "jupyterhub/hub"),
    ("jupyterhub", "jupyterhub/users"),  # spawned users' notebooks: no compose file mounts them
    ("mlflow", "mlflow/artifacts"),
}
LIVE_FOLDERS = {("caddy", "caddy/data"), ("caddy", "caddy/config")}  # certificates, copied while Caddy serves
VOLUMES = {("n8n", "n8n-data"), ("monitoring", "grafana-data")}  # not prometheus-data: left out with why
DATABASES = {
    ("open-webui", "openwebui"),
    ("litellm", "litellm"),
    ("flowise", "flowise"),
    ("jupyterhub", "jupyterhub"),
    ("mlflow", "mlflow"),
    ("mlflow", "mlflow_auth"),
    ("n8n", "n8n"),
    ("postgres", "owner_notes"),  # the owner's own: in no service.yaml, dumped all the same
}


@pytest.fixture
def platform(tmp_path, monkeypatch) -> Deployed:
    for module in (take, restore):
        monkeypatch.setattr(module, "Docker", EngineDocker)
    return deployed(tmp_path, _ctx, SERVICES)


def _runner(engine: Engine) -> RecordedRunner:
    return RecordedRunner(echo=lambda _: None, engine=engine)


def _backup(platform: Deployed, only: list[str] | None = None, encrypt: bool = False) -> tuple[Path, RecordedRunner]:
    runner = _runner(platform.engine)
    options = take.BackupOptions(platform.root, platform.root / "backups", only, encrypt=encrypt)
    report = take.take_backup(options, platform.catalog, runner, lambda _: None)
    return report.path, runner


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar if m.isfile()}


def _by_kind(backup: Path) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for item in read_manifest(backup).items:
        found.setdefault(item.kind, set()).add((item.service, item.name))
    return found


# --- what a backup holds -------------------------------------------------------------------------------------------


def test_a_backup_holds_every_data_folder_volume_and_database_with_the_same_bytes(platform):
    started = datetime.now().replace(microsecond=0)
    backup, _ = _backup(platform)
    # named by when it was taken, so sorting by name (list, retention: the oldest go first) is sorting by time
    assert started <= datetime.strptime(backup.name, "backup-%Y%m%d-%H%M%S") <= datetime.now()
    manifest = read_manifest(backup)
    kinds = _by_kind(backup)
    assert kinds["folder"] == STOPPED_FOLDERS | LIVE_FOLDERS
    assert kinds["volume"] == VOLUMES
    assert kinds["postgres"] == DATABASES
    assert kinds["postgres-globals"] == {("postgres", "roles")} and kinds["config"] == {("platform", "config")}
    assert kinds["qdrant"] == {("qdrant", "notes")}
    assert set(manifest.left_out) == {"postgres", "qdrant", "redis", "monitoring"}
    assert "prometheus-data" in manifest.left_out["monitoring"]
    assert verify(backup, manifest) == []
    text = (backup / "manifest.json").read_text()
    assert text.endswith("}\n")  # a text file: `cat` and `diff` show it whole
    assert text.splitlines()[1].startswith('  "') and len(text.splitlines()) > 20  # a key a line: `diff` shows which
    for item in manifest.items:  # each file holds what its source held, byte for byte
        path = backup / item.file
        assert path.stat().st_mode & 0o777 == 0o600, item.file
        if item.kind in ("folder", "volume"):
            assert _members(path) == platform.files[item.name], item.name
        elif item.kind == "postgres":
            assert path.read_bytes() == platform.engine.databases[item.name]
        elif item.kind == "qdrant":
            assert _members(path) == {"notes.snapshot": platform.engine.collections["notes"]}
    roles = (backup / "postgres/globals.sql").read_text()
    assert all(f"CREATE ROLE {role};" in roles for role in platform.engine.roles)
    config = _members(backup / "config.tar.gz")
    assert config["config/credentials.env"] == (platform.root / CREDENTIALS_ENV).read_bytes()
    assert ".aiplatform.json" in config and not any(name.startswith("data/") for name in config)
    assert backup.stat().st_mode & 0o777 == 0o700
    last = (platform.root / LAST).read_text()
    assert json.loads(last)["ok"] is True
    assert last.splitlines()[1].startswith('  "') and last.endswith("}\n")  # a key a line, for an owner reading it


def test_a_stopped_copy_runs_with_the_services_containers_stopped_and_starts_them_after(platform):
    running_before = {name for name, (_, state) in platform.engine.containers.items() if state == "running"}
    backup, runner = _backup(platform)
    copies = {call.argv[3]: call for call in runner.calls if call.argv[:2] == ["tar", "--numeric-owner"]}
    services = {name: service for name, (service, _) in platform.engine.containers.items()}
    for item in read_manifest(backup).items:
        if item.kind not in ("folder", "volume"):
            continue
        source = platform.root / "data" / item.name if item.kind == "folder" else platform.engine.volumes[
            f"ai-platform_{item.name}"]  # fmt: skip
        call = copies[str(source)]
        own = {name for name in running_before if services[name] == item.service}
        if item.method == "stopped":
            assert own and own <= call.stopped, f"{item.name} copied while {own - call.stopped} ran"
        else:
            assert item.method == "live" and item.service == "caddy"
            assert not own & call.stopped
        assert not (call.stopped - own) & running_before, f"{item.name}: other services stopped for its copy"
    live = {(i.service, i.name) for i in read_manifest(backup).items if i.method == "live" and i.kind == "folder"}
    assert live == LIVE_FOLDERS and not any("caddy" in argv for argv in runner.commands("docker", "stop"))
    assert {name for name, (_, state) in platform.engine.containers.items() if state == "running"} == running_before
    stops, starts = runner.commands("docker", "stop"), runner.commands("docker", "start")
    assert [argv[2:] for argv in stops] == [argv[2:] for argv in starts]  # each started again, no more
    assert ["docker", "stop", "cadvisor", "grafana", "node-exporter", "prometheus"] in stops


def test_a_failed_copy_still_starts_the_stopped_containers_and_leaves_no_half_backup(platform):
    flowise = str(platform.root / "data" / "flowise")
    platform.engine.fail = lambda argv: argv[0] == "tar" and flowise in argv
    with pytest.raises(UserError, match="failed"):
        _backup(platform)
    assert platform.engine.containers["flowise"] == ("flowise", "running")
    assert not platform.engine.stopped() - {"flowise-permissions", "postgres-init"}  # only the one-shots, done
    backups = platform.root / "backups"
    assert complete_backups(backups) == [] and list(backups.iterdir()) == []
    last = json.loads((platform.root / LAST).read_text())
    assert last["ok"] is False and last["error"].startswith("`tar ") and "failed" in last["error"]  # its message


def test_the_next_backup_deletes_an_unfinished_one_and_keeps_the_finished(platform, monkeypatch):
    names = iter(["backup-20261126-100000", "backup-20261126-110000"])
    monkeypatch.setattr(take, "new_name", lambda: next(names))
    first, _ = _backup(platform)
    kept = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    unfinished = platform.root / "backups" / "backup-20261126-103000.partial"
    (unfinished / "postgres").mkdir(parents=True)
    (unfinished / "postgres" / "n8n.dump").write_bytes(b"half")
    second, _ = _backup(platform)
    assert complete_backups(platform.root / "backups") == [first, second] and not unfinished.exists()
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == kept


def test_only_takes_the_services_databases_and_files_with_the_config_and_the_roles(platform):
    backup, runner = _backup(platform, only=["n8n"])
    kinds = _by_kind(backup)
    assert kinds == {
        "config": {("platform", "config")},
        "postgres-globals": {("postgres", "roles")},
        "postgres": {("n8n", "n8n")},
        "volume": {("n8n", "n8n-data")},
    }
    assert runner.commands("docker", "stop") == [["docker", "stop", "n8n"]]
    assert read_manifest(backup).services == ["n8n"]
    with pytest.raises(UserError, match="--only names dify"):
        _backup(platform, only=["dify"])


def test_an_encrypted_backup_takes_its_passphrase_on_stdin_and_keeps_no_plain_file(platform):
    credentials = platform.root / CREDENTIALS_ENV
    credentials.write_text(credentials.read_text() + "BACKUP_PASSPHRASE=correct-horse-battery\n")
    backup, runner = _backup(platform, encrypt=True)
    manifest = read_manifest(backup)
    assert manifest.encrypted and all(item.file.endswith(".gpg") for item in manifest.items)
    on_disk = {p.relative_to(backup).as_posix() for p in backup.rglob("*") if p.is_file()}
    assert on_disk == {item.file for item in manifest.items} | {"manifest.json"}
    sealing = [call for call in runner.calls if call.argv[0] == "gpg"]
    assert len(sealing) == len(manifest.items)
    assert all(call.stdin == "correct-horse-battery" for call in sealing)
    assert not any("correct-horse-battery" in " ".join(call.argv) for call in runner.calls)


# --- restore -------------------------------------------------------------------------------------------------------


def _change(platform: Deployed) -> None:
    """What the owner did since the backup: a file changed and one added in every folder and volume, a database
    changed, one dropped, a collection gone."""
    for item in platform.files:
        mount = platform.engine.volumes.get(f"ai-platform_{item}", platform.root / "data" / item)
        (mount / "note.txt").write_text("changed since\n")
        (mount / "stray.txt").write_text("made after the backup\n")
    platform.engine.databases["n8n"] = b"changed since"
    del platform.engine.databases["flowise"]
    platform.engine.collections.clear()


def _restore_inv(platform: Deployed, backup: Path, monkeypatch, *flags: str):
    """`inv restore BACKUP --yes` as the owner runs it, every Runner it makes a recorded one on the same engine."""
    made: list[RecordedRunner] = []

    def runner(dry_run: bool = False, **_: object) -> RecordedRunner:
        made.append(RecordedRunner(dry_run=dry_run, echo=lambda _: None, engine=platform.engine))
        return made[-1]

    def bring_up(docker, project, containers, watched, timeout, progress):
        return deploying.DeployResult(plan=None)  # everything healthy

    monkeypatch.setattr(running, "Runner", runner)
    monkeypatch.setattr(deploying, "bring_up", bring_up)
    ran = run_inv("restore", str(backup), "--yes", "--root", str(platform.root), *flags)
    return ran, [call for one in made for call in one.calls]


def _set(env_file: Path, key: str, value: str) -> None:
    """`key=value` in an env file, in place of the line that had the key."""
    lines = [line for line in env_file.read_text().splitlines() if not line.startswith(f"{key}=")]
    env_file.write_text("\n".join([*lines, f"{key}={value}"]) + "\n")


def test_a_remote_the_settings_cannot_define_still_leaves_the_local_backup_and_fails_the_run(platform, monkeypatch):
    """The timer's `inv backup` with a remote whose secret option is unknown: the local backup is taken and recorded
    (status sees it), then the run fails naming the setting to give, the secret never shown."""
    _set(platform.root / MASTER_ENV, "BACKUP_REMOTE_TYPE", "mega")
    _set(platform.root / CREDENTIALS_ENV, "BACKUP_REMOTE_SECRET", "remote-s3cret")
    monkeypatch.setattr(running, "Runner", lambda dry_run=False, **_: _runner(platform.engine))
    ran = run_inv("backup", "--root", str(platform.root))
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    [backup] = complete_backups(platform.root / "backups")
    said = f"error: {backup.name} is complete here but was not copied off the box: backup_remote_type 'mega'"
    assert said in ran.stderr
    assert "Set backup_remote_secret_option" in ran.stderr and "remote-s3cret" not in ran.stdout + ran.stderr
    record = (platform.root / LAST).read_text()
    assert json.loads(record)["ok"] is True and record.endswith("}\n")  # a text file, as status and cat read it


def test_restore_puts_back_every_folder_volume_and_database_byte_for_byte(platform, monkeypatch):
    backup, _ = _backup(platform)
    dumps, credentials = dict(platform.engine.databases), (platform.root / CREDENTIALS_ENV).read_bytes()
    collections = dict(platform.engine.collections)
    _change(platform)
    (platform.root / CREDENTIALS_ENV).write_text("ADMIN_PASSWORD=a-new-one\n")
    ran, calls = _restore_inv(platform, backup, monkeypatch)
    assert ran.returncode == 0, ran.stderr
    assert (platform.root / CREDENTIALS_ENV).read_bytes() == credentials  # secrets first, as the data needs them
    _assert_files_restored(platform, backup)
    assert platform.engine.databases == dumps and platform.engine.collections == collections
    argv = [" ".join(call.argv) for call in calls]
    first_restore = next(i for i, line in enumerate(argv) if "pg_restore" in line)
    roles = next(i for i, line in enumerate(argv) if line.startswith("docker exec -i ai-platform-postgres psql"))
    assert roles < first_restore  # the roles exist before a database that names them comes back
    config = next(i for i, c in enumerate(calls) if c.argv[0] == "tar" and c.argv[3] == str(platform.root))
    assert config < next(i for i, line in enumerate(argv) if line.endswith(" create"))  # config before containers


def test_an_encrypted_backup_restores_every_database_collection_and_file(platform, monkeypatch):
    """Each file of an encrypted backup is decrypted (its passphrase on stdin) into a scratch folder under the name it
    had before encryption, restored from there, and the scratch folder goes."""
    _set(platform.root / CREDENTIALS_ENV, "BACKUP_PASSPHRASE", "correct-horse-battery")
    backup, _ = _backup(platform, encrypt=True)
    dumps, collections = dict(platform.engine.databases), dict(platform.engine.collections)
    _change(platform)
    ran, calls = _restore_inv(platform, backup, monkeypatch)
    assert ran.returncode == 0, ran.stderr
    assert platform.engine.databases == dumps and platform.engine.collections == collections
    decrypted = [c for c in calls if c.argv[0] == "gpg"]
    opened = [Path(c.argv[c.argv.index("-o") + 1]) for c in decrypted]
    assert sorted(p.name for p in opened) == sorted(i.file.rsplit("/", 1)[-1][:-4] for i in read_manifest(backup).items)
    assert not any(p.exists() for p in opened) and {c.stdin for c in decrypted} == {"correct-horse-battery"}


def _assert_files_restored(platform, backup):
    """Every folder and volume the manifest lists holds again exactly the files it held when backed up."""
    for item in read_manifest(backup).items:
        if item.kind in ("folder", "volume"):
            mount = platform.root / "data" / item.name
            if item.kind == "volume":
                mount = platform.engine.volumes[f"ai-platform_{item.name}"]
            back = {p.relative_to(mount).as_posix(): p.read_bytes() for p in mount.rglob("*") if p.is_file()}
            assert back == platform.files[item.name], item.name


def test_backup_then_cleanup_purge_then_restore_gives_back_the_same_bytes(platform, monkeypatch):
    """The integration session's round trip on the stand-in: `cleanup --purge` keeps backups/ alone (byte for byte)
    and removes the rest; restore into the emptied root brings every file, database and collection back."""
    from aiplatform.engine import cleanup

    backup, _ = _backup(platform)
    taken = {p: p.read_bytes() for p in backup.rglob("*") if p.is_file()}
    dumps, collections = dict(platform.engine.databases), dict(platform.engine.collections)
    roles = set(platform.engine.roles)
    runner = _runner(platform.engine)
    cleanup.remove(EngineDocker(runner), cleanup.make_plan(EngineDocker(runner), platform.root, True, False))
    assert [p.name for p in platform.root.iterdir()] == ["backups"]
    assert {p: p.read_bytes() for p in backup.rglob("*") if p.is_file()} == taken
    assert platform.engine.containers == {} and platform.engine.volumes == {}
    platform.engine.databases.clear()  # their files were in data/postgres, deleted
    platform.engine.roles.clear()
    platform.engine.collections.clear()
    for mount in platform.engine.declared.values():
        shutil.rmtree(mount)
    ran, _ = _restore_inv(platform, backup, monkeypatch)
    assert ran.returncode == 0, ran.stderr
    assert platform.engine.databases == dumps and platform.engine.collections == collections
    assert platform.engine.roles == roles and roles  # from the globals' SQL fed to psql
    _assert_files_restored(platform, backup)


@pytest.mark.parametrize("damage", ["corrupted", "missing", "resized", "manifest edited"])
def test_a_damaged_backup_is_refused_before_anything_is_stopped_or_dropped(platform, monkeypatch, damage):
    backup, _ = _backup(platform)
    dump = backup / "postgres" / "n8n.dump"
    if damage == "corrupted":
        dump.write_bytes(dump.read_bytes()[:-1] + b"X")  # same size, other bytes
    elif damage == "missing":
        dump.unlink()
    elif damage == "resized":
        dump.write_bytes(dump.read_bytes() + b"more")
    else:
        manifest = json.loads((backup / "manifest.json").read_text())
        manifest["items"][0]["sha256"] = "0" * 64
        (backup / "manifest.json").write_text(json.dumps(manifest))
    dumps = dict(platform.engine.databases)
    ran, calls = _restore_inv(platform, backup, monkeypatch)
    assert ran.returncode == 1 and "nothing was restored" in ran.stderr and "Traceback" not in ran.stderr
    named = "config.tar.gz" if damage == "manifest edited" else "postgres/n8n.dump"
    assert named in ran.stderr
    assert calls == []  # not a psql, dropdb, stop or tar: nothing ran
    assert platform.engine.databases == dumps


def reaching_out(backup: Path, kind: str) -> str:
    """The first `kind` item's archive replaced by a hand-made one whose member would land in ../../etc, the manifest
    sealed again over it (so only the member check can refuse it); the item's file."""
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as tar:
        member = tarfile.TarInfo("../../etc/cron.d/x")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    manifest = json.loads((backup / "manifest.json").read_text())
    item = next(i for i in manifest["items"] if i["kind"] == kind)
    (backup / item["file"]).write_bytes(evil.getvalue())
    item.update(size=len(evil.getvalue()), sha256=hashlib.sha256(evil.getvalue()).hexdigest())
    (backup / "manifest.json").write_text(json.dumps(manifest))
    return item["file"]


def test_an_archive_reaching_out_of_its_folder_is_refused_before_anything_runs(platform, monkeypatch):
    backup, _ = _backup(platform)
    reaching_out(backup, "folder")
    ran, calls = _restore_inv(platform, backup, monkeypatch)
    assert ran.returncode == 1 and "outside the folder" in ran.stderr and calls == []


def test_dumps_from_a_newer_postgres_are_refused_before_anything_changes(platform, monkeypatch):
    backup, _ = _backup(platform)
    platform.engine.postgres_version = 150010
    ran, calls = _restore_inv(platform, backup, monkeypatch)
    assert ran.returncode == 1 and "Nothing was restored" in ran.stderr and "Postgres 16" in ran.stderr
    assert "Restore it on a platform whose Postgres is as new" in ran.stderr and "--postgres-major" in ran.stderr
    assert all(call.argv[:4] == ["docker", "exec", "ai-platform-postgres", "psql"] for call in calls), calls
    assert not any("dropdb" in c.argv or "pg_restore" in c.argv for c in calls)


@pytest.mark.parametrize("service", sorted({s for s, _ in DATABASES | VOLUMES | STOPPED_FOLDERS | LIVE_FOLDERS}))
def test_every_only_restores_the_roles_and_the_config_with_the_service(platform, service):
    backup, _ = _backup(platform)
    _, items, replaced = restore.plan(backup, platform.root, [service])
    assert {(i.kind, i.service) for i in items if i.kind in ("config", "postgres-globals")} == {
        ("config", "platform"),
        ("postgres-globals", "postgres"),
    }
    assert {i.service for i in items} == {"platform", "postgres", service}
    assert "Postgres roles and their passwords" in replaced
    assert {i.name for i in items if i.kind == "postgres"} == {n for s, n in DATABASES if s == service}


def test_restore_only_one_service_drops_and_restores_its_databases_alone(platform, monkeypatch):
    backup, _ = _backup(platform)
    platform.engine.databases["n8n"] = b"changed since"
    platform.engine.databases["flowise"] = b"flowise, changed since"
    ran, calls = _restore_inv(platform, backup, monkeypatch, "--only", "n8n")
    assert ran.returncode == 0, ran.stderr
    dropped = [c.argv[-1] for c in calls if "dropdb" in c.argv]
    assert dropped == ["n8n"] and platform.engine.databases["n8n"] == b"PGDMP n8n"
    assert platform.engine.databases["flowise"] == b"flowise, changed since"
    assert any(c.argv[:5] == ["docker", "exec", "-i", "ai-platform-postgres", "psql"] for c in calls)  # the roles
    extracted = {c.argv[3] for c in calls if c.argv[:2] == ["tar", "--numeric-owner"]}
    assert extracted == {str(platform.root), str(platform.engine.volumes["ai-platform_n8n-data"])}


# --- the off-box copy ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "chosen", "option"),
    [
        ("webdav", "", "PASS"),
        ("drive", "", "SERVICE_ACCOUNT_CREDENTIALS"),
        ("dropbox", "", "TOKEN"),  # rclone's dropbox backend takes its secret as `token`
        ("sftp", "key_pem", "KEY_PEM"),  # backup_remote_secret_option names another option than the backend's own
    ],
)
def test_the_remotes_secret_never_reaches_rclones_command_line(tmp_path, monkeypatch, kind, chosen, option):
    monkeypatch.setenv("RCLONE_CONFIG_AIPLATFORM_TYPE", "local")  # the settings' definition wins over the caller's
    root, secret = tmp_path / "root", "remote-s3cret-value"
    (root / "config").mkdir(parents=True)
    options = json.dumps({"url": "https://dav.example"})
    (root / MASTER_ENV).write_text(
        f"BACKUP_REMOTE_TYPE={kind}\nBACKUP_REMOTE_OPTIONS='{options}'\nBACKUP_REMOTE_PATH=box\nBACKUP_REMOTE_KEEP=2\n"
        f"BACKUP_REMOTE_SECRET_OPTION={chosen}\n"
    )
    (root / CREDENTIALS_ENV).write_text(f"BACKUP_REMOTE_SECRET={secret}\n")
    engine = Engine(remote=["backup-20261120-100000", "backup-20261121-100000"])
    runner = _runner(engine)
    made = remote.from_root(root, runner)
    assert made is not None
    backup = tmp_path / "backup-20261126-100000"
    backup.mkdir()
    copied = remote.copy_off(backup, made, runner)
    assert copied.deleted == ["backup-20261120-100000"] and engine.remote == ["backup-20261121-100000", backup.name]
    rclone = [call for call in runner.calls if call.argv[0] == "rclone"]
    assert {c.argv[1] for c in rclone} >= {"copy", "check", "lsf", "purge"}
    assert not any(secret in " ".join(call.argv) for call in runner.calls)
    given = {c.env.get(f"RCLONE_CONFIG_AIPLATFORM_{option}") for c in rclone if c.argv[1] != "obscure"}
    assert {c.env.get("RCLONE_CONFIG_AIPLATFORM_TYPE") for c in rclone if c.argv[1] != "obscure"} == {kind}
    assert given == {"obscured-by-the-stand-in" if option == "PASS" else secret}  # by the environment, every time
    obscured = [c for c in rclone if c.argv[1] == "obscure"]
    assert [c.stdin for c in obscured] == ([secret] if option == "PASS" else [])
    assert all(c.argv[c.argv.index("--") + 1 :] for c in rclone if c.argv[1] != "obscure")  # paths after --


def test_a_dry_run_reaches_the_remote_as_a_run_does_and_obscuring_its_password_is_no_change(tmp_path):
    """`inv backup --list --dry-run` lists the remote: rclone needs the password obscured then too, and obscuring it
    changes nothing, so the dry run does it and does not show it as a change."""
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    (root / MASTER_ENV).write_text("BACKUP_REMOTE_TYPE=webdav\nBACKUP_REMOTE_PATH=box\n")
    (root / CREDENTIALS_ENV).write_text("BACKUP_REMOTE_SECRET=remote-s3cret-value\n")
    runner = RecordedRunner(echo=lambda _: None, engine=Engine(remote=["backup-20261120-100000"]), dry_run=True)
    made = remote.from_root(root, runner)
    assert made is not None and made.env["RCLONE_CONFIG_AIPLATFORM_PASS"] == "obscured-by-the-stand-in"
    assert remote.listed(made, runner) == ["backup-20261120-100000"]
    assert runner.history == []


def test_a_master_env_from_before_the_remote_settings_takes_their_defaults_not_the_remotes_root(tmp_path):
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    (root / MASTER_ENV).write_text("BACKUP_REMOTE_TYPE=local\n")  # written before backup_remote_path existed
    (root / CREDENTIALS_ENV).write_text("")
    runner = _runner(Engine())
    made = remote.from_root(root, runner)
    assert made is not None and made.target == "aiplatform:ai-platform-backups"
    defaults = Settings.model_fields  # and the counts kept are the settings' defaults too
    assert made.keep == defaults["backup_remote_keep"].default
    assert take.BackupOptions.for_root(root).keep == defaults["backup_keep"].default
    backup = tmp_path / "backup-20261126-100000"
    backup.mkdir()
    assert remote.copy_off(backup, made, runner).target == "aiplatform:ai-platform-backups/backup-20261126-100000"


def test_a_copy_rclone_check_finds_different_is_an_error_and_nothing_is_pruned(tmp_path):
    engine = Engine(remote=["backup-20261120-100000", "backup-20261121-100000"])
    engine.fail = lambda argv: argv[:2] == ["rclone", "check"]
    runner = _runner(engine)
    backup = tmp_path / "backup-20261126-100000"
    backup.mkdir()
    with pytest.raises(UserError, match="rclone check found differences"):
        remote.copy_off(backup, remote.given("gdrive:box"), runner)
    assert not runner.commands("rclone", "purge") and "backup-20261120-100000" in engine.remote
