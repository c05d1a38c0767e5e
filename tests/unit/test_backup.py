"""Backups without an engine: the manifest's checks, an unfinished folder, retention, the Postgres version rule, the
record status and doctor read, the remote's definition, the timer's units, and images.lock read by render. The same
commands on a real engine, with real Postgres, rclone and gpg, are tests/integration/test_backup.py and
tests/validate/test_backup_tools.py."""

from __future__ import annotations

import json
import shlex
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from aiplatform.backup import remote, schedule, take
from aiplatform.backup.manifest import (
    LAST,
    MANIFEST,
    Item,
    Manifest,
    complete_backups,
    describe_last,
    read_manifest,
    sha256_of,
    verify,
)
from aiplatform.backup.restore import newer_major
from aiplatform.backup.take import _retention
from aiplatform.errors import UserError
from aiplatform.generated.build import current_inputs
from aiplatform.host.runner import Runner
from aiplatform.inputs.images import format_lock, read_lock
from aiplatform.render.platform import Platform
from aiplatform.render.tree import render_tree

from .test_render import CATALOG, _ctx, scenario_platform


def _backup(folder: Path, files: dict[str, bytes]) -> Manifest:
    folder.mkdir(parents=True)
    manifest = Manifest(tool_version="0", created="2026-11-26T10:00:00+00:00", root="/r", services=["n8n"])
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        manifest.items.append(Item(service="n8n", kind="postgres", name=name, file=name, size=len(data),
                                   sha256=sha256_of(folder / name), method="dump"))  # fmt: skip
    (folder / MANIFEST).write_bytes(manifest.to_json())
    return manifest


def test_verify_names_each_missing_resized_or_corrupted_file(tmp_path):
    backup = tmp_path / "backup-20261126-100000"
    manifest = _backup(backup, {"a.dump": b"aaaa", "b.dump": b"bbbb", "c.dump": b"cccc"})
    assert verify(backup, read_manifest(backup)) == []
    (backup / "a.dump").unlink()
    (backup / "b.dump").write_bytes(b"bbbbb")
    (backup / "c.dump").write_bytes(b"cccX")  # same size, other bytes
    assert verify(backup, manifest) == [
        "a.dump: missing",
        "b.dump: 5 bytes, the manifest says 4",
        "c.dump: sha256 differs from the manifest's (the file is corrupted)",
    ]


def test_an_unfinished_backup_is_never_taken_for_a_finished_one(tmp_path):
    partial = tmp_path / "backup-20261126-100000.partial"
    _backup(partial, {"a.dump": b"a"})
    without = tmp_path / "backup-20261126-110000"
    without.mkdir()
    for folder in (partial, without):
        with pytest.raises(UserError, match="not a complete backup"):
            read_manifest(folder)
    assert complete_backups(tmp_path) == []


def test_retention_keeps_the_newest(tmp_path):
    for hour in range(10, 15):
        _backup(tmp_path / f"backup-20261126-{hour}0000", {"a": b"a"})
    (tmp_path / "backup-20261126-160000.partial").mkdir()  # not counted, not deleted here
    for minute in range(10, 13):  # three `--only litellm` backups since: they count among their own kind only
        only = _backup(tmp_path / f"backup-20261126-14{minute}00", {"a": b"a"})
        only.services = ["litellm"]
        (tmp_path / f"backup-20261126-14{minute}00" / MANIFEST).write_bytes(only.to_json())
    deleted = _retention(tmp_path, 2, Runner(echo=lambda _: None), ["n8n"])
    assert [p.name for p in deleted] == [f"backup-20261126-{h}0000" for h in (10, 11, 12)]
    assert [p.name for p in complete_backups(tmp_path)] == ["backup-20261126-130000", "backup-20261126-140000"] + [
        f"backup-20261126-14{minute}00" for minute in range(10, 13)
    ]


@pytest.mark.parametrize(
    ("dump", "server", "refused"),
    [(160004, 150010, True), (150010, 160004, False), (150012, 150010, False), (None, 150010, False)],
)
def test_a_dump_from_a_newer_postgres_major_is_refused(dump, server, refused):
    reason = newer_major(dump, server)
    assert bool(reason) is refused
    if refused:
        assert "Postgres 16" in reason and "Postgres 15" in reason


def test_the_last_backup_line_says_age_size_and_failures(tmp_path):
    assert describe_last(tmp_path) == ("warn", "no backup yet")
    now = datetime.fromisoformat("2026-11-26T12:00:00+00:00")
    (tmp_path / LAST).parent.mkdir(parents=True)
    record = {"finished": "2026-11-26T09:00:00+00:00", "ok": True, "path": "/r/backups/b", "size": 2_500_000}
    (tmp_path / LAST).write_text(json.dumps(record))
    assert describe_last(tmp_path, now) == ("ok", "3.0 h ago, 2.5 MB, /r/backups/b")
    assert describe_last(tmp_path, now + timedelta(days=9))[0] == "warn"
    finished = now - timedelta(hours=3)  # older than 8 days is a warning, 8 days or less is not
    assert describe_last(tmp_path, finished + timedelta(days=8))[0] == "ok"
    assert describe_last(tmp_path, finished + timedelta(days=8, seconds=1)) == (
        "warn", "8.0 days ago, 2.5 MB, /r/backups/b")  # fmt: skip
    (tmp_path / LAST).write_text(json.dumps({**record, "ok": False, "error": "Docker did not answer"}))
    status, line = describe_last(tmp_path, now)
    assert status == "fail" and "failed" in line and "Docker did not answer" in line


def test_the_settings_remote_is_defined_in_the_environment_only(tmp_path):
    secret = '{"type": "service_account", "private_key": "-----BEGIN"}'
    made = remote.from_settings("drive", "/backups/box/", {"scope": "drive", "team_drive": "0AB"}, secret, "", 5,
                                Runner())  # fmt: skip
    assert made.target == "aiplatform:backups/box" and made.keep == 5
    assert made.env == {
        "RCLONE_CONFIG_AIPLATFORM_TYPE": "drive",
        "RCLONE_CONFIG_AIPLATFORM_SCOPE": "drive",
        "RCLONE_CONFIG_AIPLATFORM_TEAM_DRIVE": "0AB",
        "RCLONE_CONFIG_AIPLATFORM_SERVICE_ACCOUNT_CREDENTIALS": secret,
    }
    with pytest.raises(UserError, match="backup_remote_secret_option"):
        remote.from_settings("mystery", "x", {}, "s3cret", "", 5, Runner())


def test_the_timer_units_run_the_backup_for_this_root_and_off_removes_them(tmp_path):
    runner = Runner(dry_run=True, echo=lambda _: None)
    schedule.install("weekly", Path("/srv/ai root"), runner, unit_dir=tmp_path)
    assert ["write", str(tmp_path / schedule.SERVICE), "0644"] in runner.history
    assert ["systemctl", "enable", "--now", schedule.TIMER] in runner.history
    units = schedule.units("weekly", Path("/srv/ai root"))
    assert "OnCalendar=weekly" in units.timer and "Persistent=true" in units.timer
    assert '"backup" "--root" "/srv/ai root"' in units.service
    assert "StandardOutput=append:/srv/ai root/logs/backup.log" in units.service
    off = Runner(dry_run=True, echo=lambda _: None)
    schedule.install("off", Path("/srv/ai root"), off, unit_dir=tmp_path)
    assert ["systemctl", "disable", "--now", schedule.TIMER] in off.history
    assert ["rm", "-f", str(tmp_path / schedule.TIMER)] in off.history


def test_the_timer_is_installed_where_systemd_reads_the_admins_units():
    runner = Runner(dry_run=True, echo=lambda _: None)
    said = schedule.install("daily", Path("/srv/ai"), runner)
    written = [entry[1] for entry in runner.history if entry[0] == "write"]
    assert written == ["/etc/systemd/system/ai-platform-backup.service", "/etc/systemd/system/ai-platform-backup.timer"]
    assert said == ["/etc/systemd/system/ai-platform-backup.timer: daily, logs in /srv/ai/logs/backup.log"]


def test_the_timers_command_is_one_inv_accepts(tmp_path):
    """The service's ExecStart run as systemd would run it (on a root with no platform yet): the task starts and
    answers with its own message, so every flag it passes exists."""
    root = tmp_path / "empty root"
    service = schedule.units("daily", root).service
    command = shlex.split(next(line for line in service.splitlines() if line.startswith("ExecStart=")).split("=", 1)[1])
    ran = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ran.returncode == 1 and f"{root} holds no deployed platform" in ran.stderr, ran.stderr


DIGEST = "sha256:" + "ab" * 32


def test_render_pins_a_locked_image_to_its_digest():
    base = scenario_platform("defaults-ip-minimal")
    redis = CATALOG.services["redis"].containers["redis"].image
    locked = Platform(base.settings, base.tier, CATALOG, base.hardware, base.host_ip, base.secrets,
                      locked={redis: DIGEST, "other/image:1.0": DIGEST})  # fmt: skip
    compose = yaml.safe_load(render_tree(locked)["docker/docker-compose.redis.yml"].data)
    assert compose["services"]["redis"]["image"] == f"{redis}@{DIGEST}"
    plain = yaml.safe_load(render_tree(base)["docker/docker-compose.redis.yml"].data)
    assert plain["services"]["redis"]["image"] == redis


def test_the_lockfile_is_an_input_and_a_bad_one_is_named(tmp_path):
    ctx = _ctx(tmp_path)
    before = current_inputs(ctx, "192.0.2.10")
    ctx.lockfile.write_bytes(format_lock({"redis:7.4.1": DIGEST}))
    assert read_lock(ctx.lockfile) == {"redis:7.4.1": DIGEST}
    assert current_inputs(_ctx(tmp_path), "192.0.2.10") != before  # generated/ is stale until rendered with it
    ctx.lockfile.write_text('{"images": {"redis:7.4.1": "latest"}}')
    with pytest.raises(UserError, match=r"images\.lock is not a lockfile `inv upgrade` wrote"):
        read_lock(ctx.lockfile)


def test_an_upgrade_stopped_by_an_error_rolls_back_then_says_why(tmp_path, monkeypatch):
    """deploy raising half-way (compose failed, a preflight refusal): the previous generated/ and images.lock come
    back and are deployed again before the error reaches the user; the exact target (a new digest of a tag this host
    has) is what is pulled and locked."""
    from aiplatform.engine import deploy as deploying
    from aiplatform.generated.build import render_command
    from aiplatform.generated.files import read_tree
    from aiplatform.manage import upgrade as upgrading

    ctx, out = _ctx(tmp_path), tmp_path / "generated"
    render_command(ctx, out, interactive=False)
    (out / "config" / "previous.txt").write_text("only in the previous generated/\n")
    previous = read_tree(out)
    ctx.lockfile.write_bytes(format_lock({"redis:7.4.1": DIGEST}))
    target = "redis:7.4.1@sha256:" + "cd" * 32
    plan = upgrading.UpgradePlan(
        tmp_path / "root", [upgrading.Change("redis", "redis:7.4.1", DIGEST, target, "new digest")]
    )
    deployed: list[Path] = []

    def deploy(options, runner, stale, ui):
        deployed.append(options.out)
        if len(deployed) == 1:
            raise UserError("docker compose up failed: the engine went away.")
        return None  # what the rollback deploy returns is not read on this path

    monkeypatch.setattr(deploying, "deploy", deploy)
    echoed: list[str] = []
    runner, said = Runner(dry_run=True, echo=echoed.append), []
    with pytest.raises(UserError, match="docker compose up failed"):
        upgrading.upgrade(lambda: _ctx(tmp_path), out, plan, runner, None, lambda: tmp_path / "backup", said.append)
    assert ["docker", "pull", target] in runner.history  # the digest wanted, not the tag this host already has
    writes = [i for i, line in enumerate(echoed) if line.startswith(f"would write {ctx.lockfile}")]
    assert len(writes) == 2  # the new lock, then the previous one back
    assert "cd" * 32 in "\n".join(echoed[writes[0] : writes[1]])
    assert DIGEST in "\n".join(echoed[writes[1] :]) and "cd" * 32 not in "\n".join(echoed[writes[1] :])
    assert read_tree(out) == previous and len(deployed) == 2  # the previous tree back, and deployed again
    assert any("rolling back" in line for line in said)


def test_a_master_env_without_backup_keep_keeps_what_the_setting_defaults_to(tmp_path):
    from aiplatform.inputs.settings import Settings
    from aiplatform.paths import MASTER_ENV

    (tmp_path / MASTER_ENV).parent.mkdir(parents=True)
    (tmp_path / MASTER_ENV).write_text("AI_PLATFORM_ROOT=/srv/ai\n")  # rendered by a release without BACKUP_KEEP
    assert take.BackupOptions.for_root(tmp_path).keep == Settings.model_fields["backup_keep"].default
    (tmp_path / MASTER_ENV).write_text("BACKUP_KEEP=3\n")
    assert take.BackupOptions.for_root(tmp_path).keep == 3
