"""The backup's files pass the real tools: the timer and its service `systemd-analyze verify` and `calendar`, and
gpg's encryption (AES256, the passphrase on stdin) that restore undoes — a wrong passphrase is refused; rclone's own
description of each backend has the option the remote's secret fills."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from aiplatform.backup import schedule
from aiplatform.backup.manifest import Manifest, sha256_of
from aiplatform.backup.remote import OBSCURED, SECRET_OPTION
from aiplatform.backup.restore import _Opener
from aiplatform.backup.take import _Adder
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner

from .conftest import require


@pytest.mark.parametrize("when", ["daily", "weekly"])
def test_the_backup_timer_and_service_pass_systemd_analyze(tmp_path, when):
    analyze = require("systemd-analyze")
    root = tmp_path / "ai root %h"  # a space and a specifier, taken literally
    (root / "logs").mkdir(parents=True)
    units = tmp_path / "units"
    schedule.install(when, root, _Writer(), unit_dir=units)
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"}
    for name in (schedule.SERVICE, schedule.TIMER):
        done = subprocess.run([analyze, "verify", str(units / name)], capture_output=True, text=True, env=env)
        assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    calendar = subprocess.run([analyze, "calendar", when], capture_output=True, text=True)
    assert calendar.returncode == 0 and "Next elapse:" in calendar.stdout


class _Writer(Runner):
    """Writes the unit files for real; systemctl is not there to run (no systemd in this container)."""

    def __init__(self) -> None:
        super().__init__(echo=lambda _: None)

    def run(self, argv, **kwargs):
        self.history.append([str(a) for a in argv])
        return subprocess.CompletedProcess(argv, 0)


@pytest.fixture
def gnupg_home(tmp_path, monkeypatch):
    """A keyring of the test's own (none of the machine's is read or written); its gpg-agent stopped afterwards."""
    require("gpg")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    yield home
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], check=False, capture_output=True)


def test_gpg_encrypts_each_file_and_restore_opens_it(tmp_path, gnupg_home):
    folder = tmp_path / "backup"
    folder.mkdir()
    manifest = Manifest(tool_version="0", created="now", root="/r", services=["n8n"], encrypted=True)
    runner = Runner(echo=lambda _: None)
    secret_rows = b"COPY rows (note) FROM stdin;\nmy private note\n"
    add = _Adder(folder, manifest, runner, "correct horse battery", lambda _: None)
    add("n8n", "postgres", "n8n", "postgres/n8n.dump", "dump", ["printf", "%s", secret_rows.decode()])
    item = manifest.items[0]
    assert item.file == "postgres/n8n.dump.gpg" and not (folder / "postgres/n8n.dump").exists()
    assert (folder / item.file).stat().st_mode & 0o777 == 0o600  # like every file of a backup
    sealed = (folder / item.file).read_bytes()
    assert b"my private note" not in sealed and item.sha256 == sha256_of(folder / item.file)
    opened = _Opener(folder, tmp_path, runner, "correct horse battery")(item)
    assert opened.read_bytes() == secret_rows
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="decryption failed"):
        _Opener(folder, tmp_path / "other", runner, "wrong passphrase")(item)


def test_each_backends_secret_option_is_one_the_real_rclone_has_and_obscured_as_it_wants():
    """The option the remote's secret fills, per backend, exists in rclone's own description of that backend
    (`rclone config providers`), and it is obscured exactly when rclone marks it a password (IsPassword)."""
    rclone = require("rclone")
    listed = json.loads(subprocess.run([rclone, "config", "providers"], capture_output=True, check=True).stdout)
    backends = {backend["Name"]: {o["Name"]: o for o in backend["Options"]} for backend in listed}
    for backend, option in SECRET_OPTION.items():
        assert option in backends[backend], f"rclone's {backend} backend has no option {option}"
        assert backends[backend][option]["IsPassword"] == (option in OBSCURED), (backend, option)
