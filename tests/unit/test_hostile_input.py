"""Hostile input that would reach the host (issue 21): a hand-edited backup, an --out or --root chosen to hurt, and
questionnaire answers written as code. Each case is an attack that worked before its guard; each asserts that it is
refused with a message naming the value, that nothing is written outside the root (or the out folder), and that the
root is byte-identical after the refusal.

No engine: restore's checks all come before its first write, so a refusal is seen without Docker. Where a case needs
the engine to be missing, DOCKER_HOST points at a socket that does not exist (what a box with a stopped engine gives,
as in test_preflight.py); where it needs one that answers, `StandinDocker` below stands in for the two questions
restore asks of aiplatform.engine.docker.Docker (`docker info`, `docker compose version`). The tests run as root on
this machine, so every case that could write outside the test's folder had its guard been missing runs --dry-run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from aiplatform.backup import restore as restoring
from aiplatform.backup import schedule
from aiplatform.backup.archive import member_problems
from aiplatform.backup.manifest import MANIFEST, Item, Manifest
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.inputs.root import check_root
from aiplatform.paths import COOKIECUTTER_DIR

from .conftest import PROJECT, run_inv, run_inv_process

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
INJECTED = "/tmp/x\nExecStartPre=/bin/touch /tmp/p"

# --- a hand-made backup -------------------------------------------------------------------------------------------


def _archive(path: Path, entries: list[tuple]) -> None:
    """A tar.gz of entries: ("file", name, bytes), ("dir", name), ("symlink", name, target), ("hardlink", name,
    target), ("fifo", name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for kind, name, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            data = None
            if kind == "file":
                data = rest[0]
                info.size = len(data)
            else:
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                             "fifo": tarfile.FIFOTYPE}[kind]  # fmt: skip
                info.linkname = rest[0] if rest else ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


CONFIG = [
    ("dir", "config"),
    ("file", "config/credentials.env", b"ADMIN_PASSWORD='from-the-backup'\n"),
    ("file", "config/master.env", b"BASE_DIR='/r'\n"),
    ("dir", "docker"),
    ("file", "docker/compose.yml", b"services: {}\n"),
    ("dir", "scripts"),
    ("file", "scripts/firewall.sh", b"#!/bin/sh\n"),
]


def _item(backup: Path, kind: str, name: str, file: str) -> Item:
    """An item whose size and sha256 are those of `file` as it reads from the backup (links followed): the
    checksum check alone passes whatever the path is."""
    data = (backup / file).read_bytes() if not file.startswith("/") else Path(file).read_bytes()
    return Item(service="platform" if kind == "config" else "open-webui", kind=kind, name=name, file=file,
                size=len(data), sha256=hashlib.sha256(data).hexdigest(), method="live")  # fmt: skip


def _manifest(backup: Path, root: str, items: list[Item]) -> None:
    manifest = Manifest(tool_version="0", created="2026-11-26T10:00:00+00:00", root=root, services=["open-webui"],
                        items=items)  # fmt: skip
    (backup / MANIFEST).write_bytes(manifest.to_json())


@pytest.fixture
def site(tmp_path):
    """A root with a config the owner has, a victim folder beside it, and a backup folder to fill."""
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    (root / "config" / "credentials.env").write_text("ADMIN_PASSWORD='the-owners'\n")
    (root / "data" / "open-webui").mkdir(parents=True)
    (root / "data" / "open-webui" / "notes.txt").write_text("owner's notes\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("not the platform's\n")
    backup = tmp_path / "backups" / "backup-20261126-100000"
    backup.mkdir(parents=True)
    return tmp_path, root, victim, backup


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Every path under folder with its type, mode and bytes (or link target): byte-identical means equal."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        content = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else None
        found[str(path.relative_to(folder))] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), content)
    return found


def _restore(backup: Path, root: Path, *flags: str):
    return run_inv("restore", str(backup), "--yes", "--root", str(root), *flags, env=NO_ENGINE)


def _refused(result, *named: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for value in named:
        assert value in result.stderr, (value, result.stderr)
    return result.stderr


# --- 1. restore trusts the manifest's paths -----------------------------------------------------------------------


def test_an_item_name_with_dot_dots_is_refused_and_nothing_outside_the_root_is_touched(site):
    _, root, victim, backup = site
    _archive(backup / "config.tar.gz", CONFIG)
    _archive(backup / "data" / "x.tar.gz", [("dir", "."), ("file", "./planted.txt", b"planted\n")])
    _manifest(backup, str(root), [_item(backup, "config", "config", "config.tar.gz"),
                                  _item(backup, "folder", "../../victim", "data/x.tar.gz")])  # fmt: skip
    before, victim_before = _snapshot(root), _snapshot(victim)
    _refused(_restore(backup, root), "'../../victim'", "nothing was restored")
    assert _snapshot(root) == before and _snapshot(victim) == victim_before


@pytest.mark.parametrize("kind", ["volume", "postgres", "qdrant"])
@pytest.mark.parametrize("name", ["../x", "a/b", "-h", "x\ny"])
def test_a_database_volume_or_collection_name_is_one_plain_word(site, kind, name):
    _, root, _, backup = site
    _archive(backup / "config.tar.gz", CONFIG)
    _archive(backup / "v.tar.gz", [("dir", ".")])
    _manifest(backup, str(root), [_item(backup, "config", "config", "config.tar.gz"),
                                  _item(backup, kind, name, "v.tar.gz")])  # fmt: skip
    before = _snapshot(root)
    _refused(_restore(backup, root, "--dry-run"), repr(name), "nothing was restored")
    assert _snapshot(root) == before


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside.tar.gz"
    _archive(outside, CONFIG)
    return outside


@pytest.mark.parametrize("how", ["dot-dots", "absolute", "symlink", "symlinked folder"])
def test_an_item_file_outside_the_backup_is_refused(site, how):
    tmp_path, root, _, backup = site
    outside = _outside(tmp_path)
    if how == "dot-dots":
        file = "../../outside.tar.gz"
    elif how == "absolute":
        file = str(outside)
    elif how == "symlink":
        (backup / "config.tar.gz").symlink_to(outside)
        file = "config.tar.gz"
    else:
        (backup / "sub").symlink_to(tmp_path)
        file = "sub/outside.tar.gz"
    _manifest(backup, str(root), [_item(backup, "config", "config", file)])
    before = _snapshot(root)
    message = _refused(_restore(backup, root), "nothing was restored")
    assert repr(file) in message or "symbolic link" in message, message
    assert _snapshot(root) == before


def test_the_root_comes_from_the_command_line_or_the_remembered_one_never_the_backup(site):
    backup = site[3]
    _archive(backup / "config.tar.gz", CONFIG)
    _manifest(backup, "/", [_item(backup, "config", "config", "config.tar.gz")])
    # no --root: the remembered root is whatever this checkout's generated/ says, never "/" (dry run: were the guard
    # missing, nothing is extracted into / on this machine)
    result = run_inv("restore", str(backup), "--dry-run", env=NO_ENGINE)
    _refused(result, "'/'", "no platform root", "Restore another backup (`sudo inv backup --list`).")
    assert "Dry run" not in result.stdout


CONFIG_ATTACKS = {
    "outside the three folders": [*CONFIG, ("file", "evil.txt", b"x")],
    "a dot-dot member": [*CONFIG, ("file", "config/../../escaped.txt", b"x")],
    "an absolute member": [*CONFIG, ("file", "/tmp/ai-platform-hostile-absolute.txt", b"x")],
    "through a link": [*CONFIG, ("symlink", "config/link", "/tmp"), ("file", "config/link/owned.txt", b"x")],
    "a hard link": [*CONFIG, ("hardlink", "config/hard", "config/master.env")],
    "a fifo": [*CONFIG, ("fifo", "scripts/pipe")],
}


@pytest.mark.parametrize("attack", CONFIG_ATTACKS)
def test_a_config_archive_holds_only_files_and_folders_under_config_docker_scripts(site, attack):
    _, root, _, backup = site
    _archive(backup / "config.tar.gz", CONFIG_ATTACKS[attack])
    _manifest(backup, str(root), [_item(backup, "config", "config", "config.tar.gz")])
    before = _snapshot(root)
    bad = CONFIG_ATTACKS[attack][-1][1]
    _refused(_restore(backup, root), "config.tar.gz", repr(bad), "nothing was restored")
    assert _snapshot(root) == before
    assert not Path("/tmp/ai-platform-hostile-absolute.txt").exists()


DATA_ATTACKS = {
    "a dot-dot member": [("dir", "."), ("file", "./../escaped.txt", b"x")],
    "a link up and out": [("dir", "."), ("symlink", "./up", "../../.."), ("file", "./ok.txt", b"x")],
    "an absolute link": [("dir", "."), ("symlink", "./etc", "/etc")],
    "a file through a link": [("dir", "."), ("symlink", "./sub", "inner"), ("file", "./sub/x.txt", b"x")],
    "a hard link out": [("dir", "."), ("hardlink", "./h", "../outside.txt")],
    "a device": [("dir", "."), ("fifo", "./pipe")],
}


@pytest.mark.parametrize("attack", DATA_ATTACKS)
def test_a_data_archive_keeps_every_member_and_link_inside_its_folder(site, attack):
    _, root, _, backup = site
    _archive(backup / "config.tar.gz", CONFIG)
    _archive(backup / "data" / "open-webui.tar.gz", DATA_ATTACKS[attack])
    _manifest(backup, str(root), [_item(backup, "config", "config", "config.tar.gz"),
                                  _item(backup, "folder", "open-webui", "data/open-webui.tar.gz")])  # fmt: skip
    before = _snapshot(root)
    bad = next(entry[1] for entry in DATA_ATTACKS[attack] if entry[1] not in (".", "./ok.txt", "./sub"))
    _refused(_restore(backup, root), "data/open-webui.tar.gz", repr(bad), "nothing was restored")
    assert _snapshot(root) == before


def test_a_data_archive_with_links_inside_its_folder_is_accepted(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    _archive(archive, [("dir", "."), ("dir", "./inner"), ("file", "./inner/a", b"a"), ("symlink", "./lnk", "inner/a"),
                       ("hardlink", "./hard", "./inner/a")])  # fmt: skip
    assert member_problems(archive, config=False) == []
    assert member_problems(archive, config=True) != []  # a config archive never has links


def test_restore_never_writes_through_a_link_in_the_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "data").symlink_to(tmp_path)
    item = Item(service="s", kind="folder", name="open-webui", file="f", size=0, sha256="", method="live")
    with pytest.raises(UserError, match="symbolic link"):
        restoring._target(root, item, {})
    with pytest.raises(UserError, match="'ghost'"):  # a volume the restored compose files do not declare
        restoring._target(root, item.model_copy(update={"kind": "volume", "name": "ghost"}), {})


# --- 2. restore checks everything before its first write -----------------------------------------------------------


def test_a_valid_backup_without_an_engine_is_refused_before_the_root_changes(site):
    _, root, _, backup = site
    _archive(backup / "config.tar.gz", CONFIG)
    _archive(backup / "data" / "open-webui.tar.gz", [("dir", "."), ("file", "./from-backup.txt", b"x")])
    _manifest(backup, str(root), [_item(backup, "config", "config", "config.tar.gz"),
                                  _item(backup, "folder", "open-webui", "data/open-webui.tar.gz")])  # fmt: skip
    before = _snapshot(root)
    _refused(_restore(backup, root), "does not answer")
    assert _snapshot(root) == before  # credentials.env, config/ and data/ as they were


class StandinDocker:
    """A stand-in for aiplatform.engine.docker.Docker as preflight asks it (`docker info` through engine_error,
    `docker compose version` through compose_version), answering as an engine with compose v2.29 would."""

    def __init__(self, engine: str | None = None, compose: str | None = "2.29.7") -> None:
        self.engine, self.compose = engine, compose

    def engine_error(self) -> str | None:
        return self.engine

    def compose_version(self) -> str | None:
        return self.compose


def _valid(backup: Path, root: Path) -> tuple[Manifest, list[Item]]:
    _archive(backup / "config.tar.gz", CONFIG)
    _manifest(backup, str(root), [_item(backup, "config", "config", "config.tar.gz")])
    manifest, items, _ = restoring.plan(backup, root, None)
    return manifest, items


def test_preflight_refuses_a_missing_compose_and_a_full_disk(site, monkeypatch):
    _, root, _, backup = site
    manifest, items = _valid(backup, root)
    runner = Runner(dry_run=True, echo=lambda _: None)
    restoring.preflight(root, items, manifest, backup, runner, StandinDocker())  # all there: nothing said
    with pytest.raises(UserError, match="compose"):
        restoring.preflight(root, items, manifest, backup, runner, StandinDocker(compose=None))
    with pytest.raises(UserError, match="does not answer"):
        restoring.preflight(root, items, manifest, backup, runner, StandinDocker(engine="connection refused"))
    monkeypatch.setattr(restoring.shutil, "disk_usage", lambda path: _Free(10))
    with pytest.raises(UserError, match="GB free"):
        restoring.preflight(root, items, manifest, backup, runner, StandinDocker())
    assert runner.history == []  # nothing run, nothing written


class _Free:
    def __init__(self, free: int) -> None:
        self.free = free


# --- 3. render -o on a folder render did not make ------------------------------------------------------------------


def _render(root: Path, out: Path):
    return run_inv("render", "--no-input", "--root", str(root), "--out", str(out))


def test_render_refuses_an_owners_folder_and_deletes_nothing(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("the owner's\n")
    before = _snapshot(out)
    _refused(_render(tmp_path / "root", out), str(out), "precious.txt")
    assert _snapshot(out) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    for _ in range(2):  # an empty folder is fine, and so is rendering again into what render made
        done = _render(tmp_path / "root", empty)
        assert done.returncode == 0, done.stderr


def test_render_refuses_an_out_that_is_a_link_and_leaves_it_as_it_is(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "gen"
    link.symlink_to(target)
    _refused(_render(tmp_path / "root", link), str(link), "symbolic link", f"--out {target}")
    assert link.is_symlink() and os.readlink(link) == str(target) and not any(target.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gen.lock", "gen", "real"]  # no .gen.old left


# --- 4. --root: absolute, no control characters, not a system folder, for every task --------------------------------

BAD_ROOTS = [INJECTED, "relative/root", "/", "/etc", "/usr/lib/ai-platform", "/proc/1"]
TASKS = {
    "backup --schedule": ["backup", "--schedule", "daily", "--dry-run"],
    "backup": ["backup", "--dry-run"],
    "restore": ["restore", "backup-20261126-100000", "--dry-run"],
    "cleanup": ["cleanup", "--dry-run", "--yes"],
    "render": ["render", "--no-input", "--out", "{tmp}/gen"],
    "info": ["info"],
    "status": ["status"],
}


@pytest.mark.parametrize("root", BAD_ROOTS)
@pytest.mark.parametrize("task", TASKS)
def test_every_task_refuses_a_root_that_is_not_one(tmp_path, task, root):
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in TASKS[task]]
    result = run_inv(*args, "--root", root, env=NO_ENGINE)
    _refused(result, f"--root {root!r} is not a platform root")
    assert "ExecStartPre" not in result.stdout
    assert not (tmp_path / "gen").exists()


def test_the_settings_model_and_the_timer_refuse_the_same_roots(tmp_path):
    for root in BAD_ROOTS:
        result = run_inv("settings", "--answers", str(PROJECT / "tests/unit/empty-answers.yaml"),
                         env={"AI_PLATFORM_ROOT": root})  # fmt: skip
        _refused(result, "AI_PLATFORM_ROOT")
        with pytest.raises(ValueError):
            check_root(root)
    runner = Runner(dry_run=True, echo=lambda _: None)
    with pytest.raises(UserError, match="not a platform root"):
        schedule.install("daily", Path(INJECTED), runner, tmp_path)
    assert runner.history == []
    for fine in ("/mnt/data/ai-platform", "/srv/ai-platform", "/opt/ai-platform", str(tmp_path / "root")):
        assert check_root(fine) == Path(fine)


def test_a_rendered_tree_naming_a_system_root_is_refused(tmp_path):
    out = tmp_path / "gen"
    (out / "config").mkdir(parents=True)
    (out / "config" / "master.env").write_text("BASE_DIR='/etc'\n")
    _refused(run_inv("backup", "--schedule", "daily", "--dry-run", "--out", str(out)), "'/etc'", "no platform root")


# --- 5. questionnaire answers are data (fixed by 0c8489f: here as a regression case) -------------------------------


def test_an_image_answer_written_as_python_never_runs(tmp_path):
    marker = tmp_path / "ran"
    code = f'nginx:1.27.3" + __import__("os").system("touch {marker}") * "" + "'
    with pytest.raises(FailedHookException):
        cookiecutter(str(COOKIECUTTER_DIR), no_input=True, output_dir=str(tmp_path / "out"),
                     config_file=None, extra_context={"name": "notes-app", "image": code})  # fmt: skip
    assert not marker.exists()


def test_a_newline_in_the_description_cannot_add_a_key(tmp_path):
    with pytest.raises(FailedHookException):
        cookiecutter(str(COOKIECUTTER_DIR), no_input=True, output_dir=str(tmp_path / "out"),
                     extra_context={"name": "notes-app", "description": "Notes\ncore: true"})  # fmt: skip
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("service.yaml"))


def test_the_manifest_json_of_a_hand_made_backup_is_what_a_real_one_looks_like(site):
    """The suite's hand-made backups pass restore's checks when nothing in them is hostile (so a refusal above is
    the attack's, not the fixture's)."""
    _, root, _, backup = site
    _, items = _valid(backup, root)
    assert [i.kind for i in items] == ["config"] and json.loads((backup / MANIFEST).read_text())["root"] == str(root)


# --- 7. rclone argument injection through --remote ----------------------------------------------------------------


def _standin_rclone(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A stand-in for rclone (Debian's 1.60) first on PATH: it records each argv as a JSON line and answers like an
    empty remote (no output, exit 0). The env to run with, and the log it writes."""
    bin_dir, log = tmp_path / "standin-bin", tmp_path / "rclone-calls.jsonl"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "rclone"
    script.write_text(
        f"#!/usr/bin/env python3\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, log


@pytest.mark.parametrize("remote", ["--log-file=/x:y", "-vv:backups", "gdrive", "bad/name:x", " lead:x",
                                    "gdrive:-x", "gdrive:a\nb"])  # fmt: skip
def test_a_remote_that_is_not_name_colon_path_is_refused_before_rclone_runs(tmp_path, remote):
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    env, log = _standin_rclone(tmp_path)
    before = _snapshot(root)
    for flags in (["--list"], ["--dry-run"]):
        result = run_inv("backup", "--remote", remote, "--root", str(root), *flags, env={**NO_ENGINE, **env})
        _refused(result, f"--remote {remote!r}")
    assert not log.exists()  # rclone never ran
    assert _snapshot(root) == before and not Path("/x:y").exists()


def test_every_rclone_command_takes_its_paths_after_a_double_dash(tmp_path):
    from aiplatform.backup import remote as remotes

    env, log = _standin_rclone(tmp_path)
    backup = tmp_path / "backup-20261126-100000"
    backup.mkdir()
    remote = remotes.given("my remote.1:ai-platform/backups")
    runner = Runner(echo=lambda _: None)
    saved = os.environ["PATH"]
    os.environ["PATH"] = env["PATH"]
    try:
        remotes.copy_off(backup, remote, runner)
    finally:
        os.environ["PATH"] = saved
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [call[0] for call in calls] == ["copy", "check", "lsf"]
    for call in calls:
        dash = call.index("--")
        assert all(not arg.startswith("-") for arg in call[dash + 1 :]) and "my remote.1:ai-platform/backups" in (
            " ".join(call[dash + 1 :]))  # fmt: skip


# --- 8. a render killed between its two renames keeps its secrets --------------------------------------------------


def test_a_render_after_a_kill_between_the_renames_keeps_every_secret(tmp_path):
    out = tmp_path / "gen"
    first = _render(tmp_path / "root", out)
    assert first.returncode == 0, first.stderr
    secrets = (out / "config" / "credentials.env").read_bytes()
    assert b"ADMIN_PASSWORD=" in secrets
    os.rename(out, tmp_path / ".gen.old")  # what a kill between `out -> .gen.old` and `tmp -> out` leaves
    again = _render(tmp_path / "root", out)
    assert again.returncode == 0, again.stderr
    assert (out / "config" / "credentials.env").read_bytes() == secrets  # before deploy, the only copies
    assert not (tmp_path / ".gen.old").exists()


def test_a_plan_read_beside_a_killed_render_uses_the_old_trees_secrets(tmp_path):
    """setup reads the platform without the lock: it finds the previous secrets in the old tree too."""
    from aiplatform.generated.write import last_tree

    out = tmp_path / "gen"
    assert last_tree(out) == out
    (tmp_path / ".gen.old").mkdir()
    assert last_tree(out) == tmp_path / ".gen.old"
    out.mkdir()
    assert last_tree(out) == out


# --- 6. add --from-compose: what reaches past the container is a declared privilege --------------------------------
# The importer's checks work on compose's normalized JSON (importer.from_project); the projects below are what
# `docker compose config --no-interpolate --format json` (compose 2.26.1) prints for such files: binds absolute
# with `type: bind`, devices as source/target/permissions. tests/validate/test_import.py runs a few through the real
# compose.


def _project(tmp_path: Path, **keys) -> tuple[dict, Path]:
    """One service `notes` with `keys` (its `volumes` as compose writes binds), beside `other`; the file's path."""
    path = tmp_path / "project" / "compose.yml"
    notes = {"image": "example/notes:2.1.0", "ports": [{"target": 8080, "published": "8123", "host_ip": "127.0.0.1"}]}
    return {"services": {"notes": {**notes, **keys}, "other": {"image": "example/other:1.0.0"}}}, path


def _bind(source: str, target: str = "/mnt", read_only: bool = False) -> dict:
    return {"type": "bind", "source": source, "target": target, "bind": {"create_host_path": True},
            **({"read_only": True} if read_only else {})}  # fmt: skip


def _catalog():
    from aiplatform.inputs.catalog import load_catalog
    from aiplatform.paths import TEMPLATES_DIR

    return load_catalog(TEMPLATES_DIR / "services")


def _link_to_socket(tmp_path: Path) -> str:
    link = tmp_path / "sock"  # beside the file's folder, not in it: an absolute bind
    link.symlink_to("/var/run/docker.sock")
    return str(link)


PAST_THE_CONTAINER = {
    "the host's / read-write, which holds": {"volumes": [_bind("/", "/host")]},
    "the host's / read-only, which holds": {"volumes": [_bind("/", "/host", read_only=True)]},
    "the host's /etc read-write": {"volumes": [_bind("/etc", "/e")]},
    "the host's /etc read-only": {"volumes": [_bind("/etc", "/e", read_only=True)]},
    "the host's /var/run": {"volumes": [_bind("/var/run", "/r", read_only=True)]},
    "docker-socket": {"volumes": [_bind("/var/run/docker.sock", "/var/run/docker.sock", read_only=True)]},
    "a link to": {"volumes": ["LINK"]},
    "/run/containerd/containerd.sock": {"volumes": [_bind("/run/containerd/containerd.sock", "/c.sock")]},
    "device /dev/sda:/dev/sda:rwm": {"devices": [{"source": "/dev/sda", "target": "/dev/sda", "permissions": "rwm"}]},
    "device_cgroup_rules 'c 1:3 mr'": {"device_cgroup_rules": ["c 1:3 mr"]},
    "uts: host (host-uts)": {"uts": "host"},
    "cgroup: host (host-cgroup)": {"cgroup": "host"},
    "ipc: host (host-ipc)": {"ipc": "host"},
    "userns_mode: host (host-userns)": {"userns_mode": "host"},
    "pid: host (host-pid)": {"pid": "host"},
    "network_mode: host (host-network)": {"network_mode": "host"},
    "cap_add SYS_ADMIN": {"cap_add": ["SYS_ADMIN"]},
    "security_opt seccomp:unconfined": {"security_opt": ["seccomp:unconfined", "no-new-privileges:true"]},
    "privileged": {"privileged": True},
}


def _keys(tmp_path: Path, keys: dict) -> dict:
    if keys.get("volumes") == ["LINK"]:
        return {"volumes": [_bind(_link_to_socket(tmp_path), "/var/run/docker.sock")]}
    return keys


@pytest.mark.parametrize("named", PAST_THE_CONTAINER)
def test_import_refuses_what_reaches_past_the_container_without_allow_privileged(tmp_path, named):
    from aiplatform.manage.importer import from_project

    project, path = _project(tmp_path, **_keys(tmp_path, PAST_THE_CONTAINER[named]))
    with pytest.raises(UserError) as refused:
        from_project(project, path, "notes", _catalog())
    said = str(refused.value)
    assert f"{path}: service notes: it asks for" in said and named in said and "--allow-privileged" in said, said
    assert "no-new-privileges" not in said  # a hardening option asks for nothing


@pytest.mark.parametrize("named", PAST_THE_CONTAINER)
def test_allow_privileged_declares_it_in_service_yaml_and_render_takes_it_from_there(tmp_path, named):
    from aiplatform.manage.importer import from_project

    project, path = _project(tmp_path, **_keys(tmp_path, PAST_THE_CONTAINER[named]))
    spec, template = from_project(project, path, "notes", _catalog(), allow_privileged=True)
    container = spec["containers"]["notes"]
    assert container.get("privileges") or container.get("host_paths")
    rendered = _render_service(tmp_path, spec, template)["notes"]
    for key in ("privileged", "uts", "cgroup", "ipc", "userns_mode", "pid", "network_mode", "cap_add",
                "device_cgroup_rules", "security_opt"):  # fmt: skip
        assert rendered.get(key) == project["services"]["notes"].get(key), key
    if "devices" in project["services"]["notes"]:
        assert rendered["devices"] == ["/dev/sda:/dev/sda:rwm"]


def _render_service(tmp_path: Path, spec: dict, template: str) -> dict:
    """The containers render writes for a user service made of `spec` and `template` (its compose.yml.j2)."""
    import yaml

    from aiplatform.inputs.catalog import load_catalog
    from aiplatform.inputs.settings import Settings
    from aiplatform.paths import TEMPLATES_DIR
    from aiplatform.render.platform import Platform
    from aiplatform.render.tree import render_tree

    from .test_render import NO_GPU

    folder = tmp_path / "services" / spec["name"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "service.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / "compose.yml.j2").write_text(template)
    catalog = load_catalog(TEMPLATES_DIR / "services", tmp_path / "services")
    assert spec["name"] in catalog.services, catalog.broken
    settings = Settings(models=["m"], embedding_model="m", services=[spec["name"]], root=tmp_path / "root",
                        privileged_services=[spec["name"]])  # fmt: skip
    secrets = {s.name: "x" for one in catalog.enabled([spec["name"]]) for s in one.secrets}
    secrets |= {"ADMIN_PASSWORD": "x", "LITELLM_KEY_OPEN_WEBUI": "x"}
    tree = render_tree(Platform(settings, "minimal", catalog, NO_GPU, "192.0.2.10", secrets))
    return yaml.safe_load(tree[f"docker/docker-compose.{spec['name']}.yml"].data)["services"]


NEVER = {
    "volumes_from 'container:ai-platform-postgres'": {"volumes_from": ["container:ai-platform-postgres"]},
    "volumes_from 'postgres'": {"volumes_from": ["postgres"]},
    "network_mode: 'container:ai-platform-postgres'": {"network_mode": "container:ai-platform-postgres"},
    "pid: 'service:other'": {"pid": "service:other"},
    "cgroup_parent '/'": {"cgroup_parent": "/"},
    "profile(s) 'debug'": {"profiles": ["debug"]},
}


@pytest.mark.parametrize("named", NEVER)
def test_import_refuses_another_containers_volumes_or_namespace_and_profiles_whatever_is_allowed(tmp_path, named):
    from aiplatform.manage.importer import from_project

    project, path = _project(tmp_path, **NEVER[named])
    with pytest.raises(UserError, match=named.replace("(", r"\(").replace(")", r"\)")):
        from_project(project, path, "notes", _catalog(), allow_privileged=True)


# docker's three spellings of the one option that only narrows what a container may do (rendered as one)
@pytest.mark.parametrize("hardening", ["no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"])
def test_import_keeps_the_files_own_folder_volumes_from_its_own_containers_and_hardening(tmp_path, hardening):
    from aiplatform.manage.importer import from_project

    project, path = _project(tmp_path, volumes=[_bind(str(tmp_path / "project" / "uploads"), "/srv/uploads")],
                             volumes_from=["other:ro"], security_opt=[hardening],
                             sysctls={"net.core.somaxconn": 1024})  # fmt: skip
    spec, template = from_project(project, path, "notes", _catalog())
    rendered = _render_service(tmp_path, spec, template)["notes"]
    assert rendered["volumes"] == [f"{tmp_path / 'root' / 'data' / 'notes' / 'uploads'}:/srv/uploads"]
    assert rendered["volumes_from"] == ["other:ro"] and rendered["security_opt"] == ["no-new-privileges:true"]
    assert rendered["sysctls"] == {"net.core.somaxconn": 1024}  # namespaced only: the engine refuses the others


class StandinComposeRunner(Runner):
    """A stand-in for the runner as import_compose uses it: `docker compose -f FILE config ... --format json`
    answers with a recorded normalized project (compose 2.26.1's output for the file), every command is recorded
    and nothing else runs."""

    def __init__(self, project: dict) -> None:
        super().__init__(echo=lambda _: None)
        self.project, self.ran = project, []

    def run(self, args, **_):
        from aiplatform.host.runner import Result

        self.ran.append(list(args))
        assert args[:2] == ["docker", "compose"] and "config" in args, args
        return Result(args, 0, json.dumps(self.project), "")


def test_a_refused_import_writes_nothing_and_runs_only_composes_check(tmp_path, monkeypatch):
    from aiplatform.manage import importer

    monkeypatch.setattr(importer, "require_compose", lambda docker, needed: None)  # compose "is there"
    project, path = _project(tmp_path, volumes=[_bind("/", "/host")])
    path.parent.mkdir(parents=True)
    path.write_text("services: {}\n")  # read by the stand-in's recorded answer only
    runner = StandinComposeRunner(project)
    before = _snapshot(tmp_path)
    with pytest.raises(UserError, match="the host's / read-write"):
        importer.import_compose(path, "notes", _catalog(), tmp_path / "services", runner)
    assert _snapshot(tmp_path) == before and not (tmp_path / "services").exists()
    assert [args[:2] for args in runner.ran] == [["docker", "compose"]]


TEMPLATE_KEYS = {
    "devices": "devices: [/dev/sda]",
    "device_cgroup_rules": "device_cgroup_rules: ['c 1:3 mr']",
    "uts": "uts: host",
    "cgroup": "cgroup: host",
    "cgroup_parent": "cgroup_parent: /",
}


@pytest.mark.parametrize("key", TEMPLATE_KEYS)
def test_render_refuses_a_template_that_sets_a_privilege_key(tmp_path, key):
    spec = {"name": "notes", "description": "x", "tier": "apps", "containers": {"notes": {"image": "a/b:1.0.0"}}}
    with pytest.raises(UserError, match=f"notes sets {key}, which widen"):
        _render_service(tmp_path, spec, f"services:\n  notes:\n    {TEMPLATE_KEYS[key]}\n")


RESERVED = {
    "container_name": "container_name: postgres",
    "image": "image: evil/notes:latest",
    "restart": "restart: always",
    "healthcheck": "healthcheck: {disable: true}",
    "networks": "networks: [ai-backend]",
    "logging": "logging: {driver: none}",
}


@pytest.mark.parametrize("key", RESERVED)
def test_render_refuses_a_template_that_sets_what_service_yaml_decides(tmp_path, key):
    spec = {"name": "notes", "description": "x", "tier": "apps", "containers": {"notes": {"image": "a/b:1.0.0"}}}
    with pytest.raises(UserError, match=f"notes sets {key}; these come from service.yaml"):
        _render_service(tmp_path, spec, f"services:\n  notes:\n    {RESERVED[key]}\n")


@pytest.mark.parametrize(("mount", "host_paths", "message"), [
    ("/etc:/e:ro", [], "mounts the host's /etc (outside the platform root"),
    ("/etc:/e", ["/etc"], "mounts the host's /etc read-write"),
    ("../../../etc:/e:ro", [], "etc (outside the platform root"),
    ("{{ paths.data }}/../../victim:/v", [], "victim"),
    ("/var/run/../run/docker.sock:/s", [], "Docker socket"),
    ("${HOST_ROOT:-/}:/h", [], "mounts '${HOST_ROOT:-/}', which compose fills in from a variable"),
])  # fmt: skip
def test_render_refuses_a_bind_mount_outside_the_root_that_service_yaml_does_not_name(tmp_path, mount, host_paths,
                                                                                         message):  # fmt: skip
    container = {"image": "a/b:1.0.0", **({"host_paths": host_paths} if host_paths else {})}
    spec = {"name": "notes", "description": "x", "tier": "apps", "containers": {"notes": container}}
    with pytest.raises(UserError, match=re.escape(message)):
        _render_service(tmp_path, spec, f"services:\n  notes:\n    volumes: ['{mount}']\n")
    if host_paths:  # read-only, it is what host_paths allows
        ro = _render_service(tmp_path, spec, f"services:\n  notes:\n    volumes: ['{mount}:ro']\n")
        assert ro["notes"]["volumes"] == [f"{mount}:ro"]


def test_import_takes_volumes_from_service_other_as_the_files_own_service(tmp_path):
    from aiplatform.manage.importer import from_project

    project, path = _project(tmp_path, volumes_from=["service:other:ro"])  # the long form compose also accepts
    spec, _ = from_project(project, path, "notes", _catalog())
    assert spec["name"] == "notes"


def test_render_refuses_volumes_from_a_container_of_another_service(tmp_path):
    spec = {"name": "notes", "description": "x", "tier": "apps", "containers": {"notes": {"image": "a/b:1.0.0"}}}
    for entry in ("postgres", "container:ai-platform-postgres", "service:litellm"):
        with pytest.raises(UserError, match=f"takes the volumes of {entry!r}"):
            _render_service(tmp_path, spec, f"services:\n  notes:\n    volumes_from: ['{entry}']\n")


# --- 9. smaller: a multi-line secret, hand-edited numbers, cookiecutter's temp files, a failed import's folder -------

SERVICE_ACCOUNT = '{\n  "type": "service_account",\n  "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n",\n\t"client_email": "b@p.iam.gserviceaccount.com"\n}\n'  # noqa: E501  (as Google's console downloads it)


def test_a_multi_line_service_account_json_is_kept_and_reaches_rclone_as_it_means(tmp_path):
    from aiplatform.backup import remote as remotes

    out = tmp_path / "gen"
    env = {"AI_PLATFORM_BACKUP_REMOTE_SECRET": SERVICE_ACCOUNT, "AI_PLATFORM_BACKUP_REMOTE_TYPE": "drive"}
    result = run_inv("render", "--no-input", "--root", str(tmp_path / "root"), "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert "private_key" not in result.stdout + result.stderr  # never shown
    stored = (out / "config" / "credentials.env").read_text()
    assert "MIIE" in stored and all("MIIE" not in p.read_text() for p in out.rglob("*") if p.is_file()
                                    and p.name != "credentials.env")  # fmt: skip
    remote = remotes.from_root(out, Runner(dry_run=True, echo=lambda _: None))
    handed = remote.env["RCLONE_CONFIG_AIPLATFORM_SERVICE_ACCOUNT_CREDENTIALS"]
    assert json.loads(handed) == json.loads(SERVICE_ACCOUNT)  # the same JSON, on one line
    script = 'set -a; source "$1"; printf %s "$BACKUP_REMOTE_SECRET"'
    credentials = str(out / "config" / "credentials.env")
    sourced = subprocess.run(["bash", "-c", script, "-", credentials], capture_output=True, text=True, check=True)
    assert sourced.stdout == handed  # bash reads what this library reads


def test_a_multi_line_secret_that_is_not_json_is_refused_naming_the_setting(tmp_path):
    env = {"AI_PLATFORM_BACKUP_REMOTE_SECRET": "line one\nline two", "AI_PLATFORM_BACKUP_REMOTE_TYPE": "drive"}
    result = run_inv("render", "--no-input", "--root", str(tmp_path / "root"), "--out", str(tmp_path / "g"), env=env)
    message = _refused(result, "BACKUP_REMOTE_SECRET", "JSON")
    assert "line one" not in message and not (tmp_path / "g").exists()


@pytest.mark.parametrize(("line", "flags"), [("BACKUP_KEEP=seven", ["--dry-run"]), ("BACKUP_KEEP=0", ["--dry-run"]),
                                             ("BACKUP_REMOTE_KEEP=lots", ["--list"])])  # fmt: skip
def test_a_hand_edited_count_in_master_env_is_named_not_a_traceback(tmp_path, line, flags):
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    master = root / "config" / "master.env"
    master.write_text(f"BACKUP_REMOTE_TYPE=drive\n{line}\n")
    env, log = _standin_rclone(tmp_path)
    before = _snapshot(root)
    key, value = line.split("=")
    _refused(run_inv("backup", "--root", str(root), *flags, env={**NO_ENGINE, **env}), str(master), key, repr(value),
             "inv settings set")  # fmt: skip
    assert _snapshot(root) == before and not log.exists()


def test_add_new_leaves_no_temp_file_of_cookiecutters_behind(tmp_path, monkeypatch):
    import tempfile

    from aiplatform.manage.importer import bake_new

    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # what $TMPDIR gives
    made = bake_new("notes-app", _catalog(), tmp_path / "services", Runner(echo=lambda _: None))
    assert (made / "service.yaml").is_file()
    assert sorted(p.name for p in scratch.iterdir()) == []  # its hooks' copies (pre_gen_project*.py) removed too
    with pytest.raises(UserError):  # and when a hook refuses an answer
        bake_new("other-app", _catalog(), tmp_path / "services", Runner(echo=lambda _: None),
                 ask=lambda question, default, problem: "Notes\ncore: true" if question.key == "description"
                 else default)  # fmt: skip
    assert sorted(p.name for p in scratch.iterdir()) == []


def test_a_failed_add_leaves_no_empty_services_folder(tmp_path, monkeypatch):
    """An import that succeeded, then the change failed (add's except clause calls discard): the service's folder
    and the owner's catalog folder the add made both go; a catalog that was there stays."""
    from aiplatform.manage import importer

    monkeypatch.setattr(importer, "require_compose", lambda docker, needed: None)
    project, path = _project(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("services: {}\n")
    runner = Runner(echo=lambda _: None)
    catalog = tmp_path / "services"
    made = importer.import_compose(path, "notes", _catalog(), catalog, StandinComposeRunner(project))
    assert (made / "service.yaml").is_file()
    importer.discard(made, catalog_was_there=False, runner=runner)
    assert not catalog.exists()
    (catalog / "mine").mkdir(parents=True)
    made = importer.import_compose(path, "notes", _catalog(), catalog, StandinComposeRunner(project))
    importer.discard(made, catalog_was_there=True, runner=runner)
    assert sorted(p.name for p in catalog.iterdir()) == ["mine"]


# --- 10. YAML an owner writes: duplicate keys, alias bombs, deep nesting, FIFOs, absurd numbers, IPv6 (issue 19) ---
# Every file an owner writes is read one way (aiplatform/yamlfile.py): a bounded read of a regular file, then PyYAML
# with limits. Each case goes through the real command and must be refused at once: exit 1, a message naming the
# file (or variable) and the line, the command that fixes it, no traceback, the file and the out folder untouched.

_BOMB = "models: [&a [x, x, x, x, x, x, x, x, x]" + "".join(
    f", &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
) + "]\n"  # fmt: skip  # 9**9 strings once expanded: a "billion laughs"
HOSTILE_ANSWERS = {
    "duplicate key": ("domain: a.example.com\ndomain: b.example.com\n", ["line 2", "'domain' is given", "line 1"]),
    "nested duplicate": ("ollama_nodes:\n  - address: gpu2.lan\n    address: gpu3.lan\n", ["line 3", "'address'"]),
    "alias bomb": (_BOMB, ["line 1", "aliases"]),
    "alias to itself": ("models: &a [*a]\n", ["line 1", "alias"]),
    "60 deep": ("models: " + "[" * 60 + "]" * 60 + "\n", ["line 1", "nested deeper than 50 levels"]),
    "900 deep": ("images: " + "{a: " * 900 + "x" + "}" * 900 + "\n", ["line 1", "nested deeper than 50 levels"]),
    "1000 deep": ("models: " + "[" * 1000 + "]" * 1000 + "\n", ["line 1", "nesting depth"]),
    "5000 digits": ("ollama_port: " + "1" * 5000 + "\n", ["line 1", "5000 digits"]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ANSWERS))
@pytest.mark.parametrize("command", ["settings", "render", "settings set"])
def test_hostile_yaml_in_answers_is_refused_naming_file_and_line(tmp_path, case, command):
    text, fragments = HOSTILE_ANSWERS[case]
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    out = tmp_path / "generated"
    render = ["render", "--no-input", "--root", str(tmp_path / "root"), "--out", str(out)]
    change = ["settings", "set", "admin_name=Owner"]
    args = {"settings": ["settings"], "settings set": change, "render": render}[command]
    run = run_inv_process if case == "alias bomb" else run_inv  # with a timeout: without its limit it never ends
    message = _refused(run(*args, "--answers", str(path)), str(path), *fragments, "inv settings")
    assert len(message.splitlines()) <= 3  # one message and its fix, not a dump
    assert path.read_text() == text and not out.exists()


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "huge"])
def test_answers_that_are_not_a_small_regular_file_are_refused_without_waiting(tmp_path, kind):
    """Through a real process with a timeout: a FIFO nobody writes to would block a plain read for ever."""
    path = tmp_path / "answers.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_text("# " + "x" * (2 * 1024 * 1024) + "\n")
    for args in (["settings"], ["render", "--no-input", "--root", str(tmp_path / "root"),
                                "--out", str(tmp_path / "g")]):  # fmt: skip
        result = run_inv_process(*args, "--answers", str(path), timeout=60)
        expected = "larger than 1024 KiB" if kind == "huge" else "not a regular file"
        _refused(result, str(path), expected)
    assert not (tmp_path / "g").exists()


def test_yaml_given_in_a_variable_or_flag_has_the_same_limits():
    empty = str(PROJECT / "tests/unit/empty-answers.yaml")
    deep = "[" * 60 + "]" * 60
    result = run_inv("settings", "--answers", empty, env={"AI_PLATFORM_MODELS": deep})
    _refused(result, "environment variable AI_PLATFORM_MODELS", "deeper")
    result = run_inv("render", "--no-input", "--answers", empty, "--set", "backup_remote_options={a: x, a: y}")
    _refused(result, "--set backup_remote_options", "'a' is given twice")


def test_an_owners_service_yaml_with_a_duplicate_key_is_named_with_its_line(tmp_path):
    from aiplatform.inputs.catalog import load_catalog
    from aiplatform.paths import SERVICES_DIR

    folder = tmp_path / "services" / "notes"
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text("name: notes\ndescription: Notes\ndescription: Other\n")
    catalog = load_catalog(SERVICES_DIR, tmp_path / "services")
    message, _ = catalog.broken["notes"]
    assert f"{folder / 'service.yaml'} line 3" in message and "'description' is given twice" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ollama_num_parallel: 99999999999999", "from 1 to 64"),
        ("ollama_num_parallel: many", "unable to parse string as an integer (a whole number from 1 to 64)"),
        ("docker_address_pool_size: 2.5", "(a whole number from 8 to 30)"),
        ("ollama_max_loaded_models: 100000", "from 1 to 64"),
        ("docker_log_max_file: 1000000", "from 1 to 100"),
        ("litellm_cache_ttl: 99999999999", "from 1 to 31536000"),
        ("backup_keep: 1000000", "from 1 to 1000"),
        ("backup_remote_keep: 0", "from 1 to 1000"),
        ("ollama_keep_alive: 99999999h", "at most a year"),
        ("docker_log_max_size: 999999999g", "from 1 byte to 100g"),
        ("redis_maxmemory: 99999gb", "up to 4096gb"),
    ],
)
def test_an_absurd_number_is_refused_with_its_range(answers, line, expected):
    path = answers(line + "\n")
    key = line.split(":")[0]
    _refused(run_inv("settings", "--answers", str(path)), f"{path} line 1", repr(key), expected, "inv settings")


# An IPv6 address where a host:port or URL is built needs brackets: `https://2001:db8::1:443` reads as a host
# `2001:db8::1:443` (Caddy certified that name); tests/validate/test_caddy_ipv6.py adapts the Caddyfile with Caddy.
@pytest.mark.parametrize("domain", ["2001:db8::1", "[2001:db8::1]"])
@pytest.mark.parametrize("ssl_mode", ["selfsigned", "none"])
def test_an_ipv6_domain_is_written_in_brackets_wherever_a_port_follows(tmp_path, domain, ssl_mode):
    from urllib.parse import urlsplit

    out = tmp_path / "generated"
    flags = ["--set", f"domain={domain}", "--set", f"ssl_mode={ssl_mode}", "--set", "ollama_bind=::",
             "--set", "services=n8n,mlflow,monitoring"]  # fmt: skip
    result = run_inv("render", "--no-input", "--root", str(tmp_path / "root"), "--out", str(out), *flags,
                     "--answers", str(tmp_path / "none.yaml"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    caddyfile = (out / "config/caddy/Caddyfile").read_text()
    scheme = "https" if ssl_mode == "selfsigned" else "http"
    sites = re.findall(r"^(\S+://\S+) \{$", caddyfile, re.MULTILINE)
    assert f"{scheme}://[2001:db8::1]:{80 if ssl_mode == 'none' else 443}" in sites and len(sites) == 5
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"(?<![\[\w:])2001:db8::1:\d", text), path  # a port glued to a bare address
            assert ":::" not in text, path  # `::` bound, then a port
    stamp = json.loads((out / ".aiplatform.json").read_text())
    public = [urls["public"] for urls in stamp["urls"].values() if "public" in urls]
    assert len(public) == 5 and all(urlsplit(url).hostname == "2001:db8::1" for url in public)
    assert sorted(urlsplit(url).port or 0 for url in public) == sorted(
        int(site.rsplit(":", 1)[1]) if not site.endswith(":443") and not site.endswith(":80") else 0 for site in sites
    )
    assert "'[2001:db8::1]'" in (out / "docker/docker-compose.n8n.yml").read_text()  # N8N_HOST
    assert "OLLAMA_HOST=[::]:11434" in (out / "config/ollama/override.conf").read_text()
    assert "OLLAMA_HOST='[::]:11434'" in (out / "config/master.env").read_text()


def test_an_ipv6_domain_with_a_zone_is_refused(answers):
    path = answers("domain: fe80::1%eth0\n")
    _refused(run_inv("settings", "--answers", str(path)), f"{path} line 1", "'domain'", "zone")


@pytest.mark.parametrize(
    ("keys", "said", "fix"),
    [
        ({"image": "example/notes:latest"}, "image 'example/notes:latest' is not pinned", "Pin it: name:1.2.3"),
        ({"image": "example/notes"}, "image 'example/notes' is not pinned", "Pin it: name:1.2.3"),
        ({"image": None}, "image '' is missing", "Pin it: name:1.2.3"),
        ({"build": "."}, "`build:` is not supported", "Build the image yourself"),
        ({"profiles": ["debug"]}, "compose profile(s) 'debug'", "Remove `profiles:`"),
        (
            {"ports": [{"target": 8080, "published": "8123"}]},
            "port 8123 is published on every interface",
            "Publish it on 127.0.0.1 only",
        ),
    ],
)
def test_import_refusals_say_the_service_the_problem_and_how_to_fix_it(tmp_path, keys, said, fix):
    from aiplatform.manage.importer import from_project

    project, path = _project(tmp_path, **keys)
    with pytest.raises(UserError) as refused:
        from_project(project, path, "notes", _catalog())
    assert refused.value.message.startswith(f"{path}: service notes: ") and said in refused.value.message
    assert refused.value.fix.startswith(fix), refused.value.fix


def test_a_service_yaml_without_containers_is_refused_naming_its_file_and_key(tmp_path):
    from aiplatform.inputs.catalog import load_catalog
    from aiplatform.paths import TEMPLATES_DIR

    folder = tmp_path / "services" / "empty"
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text("name: empty\ndescription: x\ntier: apps\ncontainers: {}\n")
    (folder / "compose.yml.j2").write_text("services: {}\n")
    catalog = load_catalog(TEMPLATES_DIR / "services", tmp_path / "services")
    assert "empty" in catalog.broken and "empty" not in {spec.name for spec in catalog.services.values()}
    message, _fix = catalog.broken["empty"]
    assert str(folder / "service.yaml") in message and "containers" in message, message
    with pytest.raises(UserError, match="containers"):
        catalog.require("empty")


def test_a_long_form_host_mount_is_read_only_only_when_it_says_so(tmp_path):
    container = {"image": "a/b:1.0.0", "host_paths": ["/etc/ssl"]}
    spec = {"name": "notes", "description": "x", "tier": "apps", "containers": {"notes": container}}
    long_form = "services:\n  notes:\n    volumes: [{type: bind, source: /etc/ssl, target: /ssl, read_only: %s}]\n"
    rendered = _render_service(tmp_path, spec, long_form % "true")
    assert rendered["notes"]["volumes"][0]["read_only"] is True
    with pytest.raises(UserError, match=re.escape("mounts the host's /etc/ssl read-write")):
        _render_service(tmp_path, spec, long_form % "false")


@pytest.mark.parametrize(("healthcheck", "kept"), [
    ({"test": ["CMD", "curl", "-f", "http://localhost:8080/"]}, ["CMD", "curl", "-f", "http://localhost:8080/"]),
    ({"test": "wget -q -O- localhost:8080", "interval": "10s"}, ["CMD-SHELL", "wget -q -O- localhost:8080"]),
    ({"test": ["CMD", "curl", "-f", "http://localhost:8080/"], "disable": True}, None),  # the owner switched it off
    ({"test": ["NONE"]}, None),
])  # fmt: skip
def test_import_keeps_the_owners_healthcheck_unless_it_is_switched_off(tmp_path, healthcheck, kept):
    from aiplatform.manage.importer import from_project

    project, path = _project(tmp_path, healthcheck=healthcheck)
    spec, _ = from_project(project, path, "notes", _catalog())
    assert spec["containers"]["notes"].get("healthcheck") == kept


def test_import_refusing_privileged_names_privileged(tmp_path):
    from aiplatform.manage.importer import from_project

    project, path = _project(tmp_path, privileged=True, pid="host")
    with pytest.raises(UserError) as refused:
        from_project(project, path, "notes", _catalog())
    assert "it asks for privileged, pid: host (host-pid)" in refused.value.message, refused.value.message
