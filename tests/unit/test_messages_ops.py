"""The words an owner reads when backup, restore, render, add/remove, settings or a service template refuses: each
error below is triggered through the command (or the library call its area's tests use) and both its message and
its fix are asserted as printed, so a hint emptied or reworded by mistake fails here. Where `inv` runs, the refusal
exits 1 with the message on stderr and no traceback."""

from __future__ import annotations

import errno
import os
import re
import threading
from pathlib import Path

import pytest

from aiplatform.backup import restore, take
from aiplatform.engine import deploy as deploying
from aiplatform.errors import UserError
from aiplatform.generated import stamp
from aiplatform.generated.write import render_lock
from aiplatform.host import runner as running
from aiplatform.host.runner import Runner
from aiplatform.inputs.context import Context
from aiplatform.manage import changes
from aiplatform.manage.importer import from_project
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV, STAMP_FILE, TEMPLATES_DIR

from .conftest import Ran, fake_nvml, run_inv
from .engine_standin import POSTGRES, Deployed, EngineDocker, RecordedRunner, deployed
from .test_add import _flags, make_owner
from .test_backup_outcome import reaching_out
from .test_hostile_input import _catalog, _render_service
from .test_manage_outcome import AnsweringUI
from .test_render import _ctx


def _refused(ran: Ran) -> tuple[str, str]:
    """(message, fix) of the error `inv` printed, after checking it exited 1 without a traceback."""
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    assert "Traceback" not in ran.stderr, ran.stderr
    lines = ran.stderr.splitlines()
    at = max(i for i, line in enumerate(lines) if line.startswith("error: "))
    fix = lines[at + 1].strip() if at + 1 < len(lines) and lines[at + 1].startswith("  ") else ""
    return lines[at].removeprefix("error: "), fix


# --- inv backup: the settings' off-box remote -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("master", "message", "fix"),
    [
        (
            "BACKUP_REMOTE_TYPE=mega\n",  # a backend this tool knows no secret option of
            "backup_remote_type 'mega': which rclone option holds the secret?",
            "Set backup_remote_secret_option (e.g. pass, token, key).",
        ),
        (
            "BACKUP_REMOTE_TYPE=s3\nBACKUP_REMOTE_OPTIONS='{region: eu'\n",  # edited by hand
            "{master}: BACKUP_REMOTE_OPTIONS is not JSON.",
            "Run `inv render` and `sudo inv deploy` again.",
        ),
    ],
    ids=["secret-option", "options-not-json"],
)
def test_a_remote_the_settings_cannot_define_is_named_before_anything_runs(tmp_path, master, message, fix):
    """`inv backup` reads the root's remote first: one it cannot hand to rclone says which setting to give or redo,
    and never shows the secret."""
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    (root / MASTER_ENV).write_text(master)
    (root / CREDENTIALS_ENV).write_text("BACKUP_REMOTE_SECRET=remote-s3cret\n")
    ran = run_inv("backup", "--root", str(root), "--list")
    assert _refused(ran) == (message.format(master=root / MASTER_ENV), fix)
    assert "remote-s3cret" not in ran.stdout + ran.stderr


# --- inv restore ----------------------------------------------------------------------------------------------------


def test_restoring_an_unfinished_backup_says_to_pick_another(tmp_path):
    """A backup interrupted before its manifest was written is named as such, with where finished ones come from."""
    root = tmp_path / "root"
    partial = root / "backups" / "backup-20261126-100000.partial"
    partial.mkdir(parents=True)
    assert _refused(run_inv("restore", str(partial), "--yes", "--root", str(root))) == (
        f"{partial} is not a complete backup: it has no manifest.json (a backup interrupted before it finished).",
        "Restore another one; `sudo inv backup` deletes unfinished ones.",
    )


@pytest.fixture
def platform(tmp_path, monkeypatch) -> tuple[Deployed, Path]:
    """A deployed platform with n8n on the stand-in engine, one backup of it taken, and every Runner `inv restore`
    makes a recorded one on the same engine (its health wait answers healthy)."""
    for module in (take, restore):
        monkeypatch.setattr(module, "Docker", EngineDocker)
    made = deployed(tmp_path, _ctx, ["n8n"])
    options = take.BackupOptions(made.root, made.root / "backups", None)
    backup = take.take_backup(options, made.catalog, RecordedRunner(echo=lambda _: None, engine=made.engine),
                              lambda _: None).path  # fmt: skip
    monkeypatch.setattr(running, "Runner", lambda dry_run=False, **_: RecordedRunner(
        dry_run=dry_run, echo=lambda _: None, engine=made.engine))  # fmt: skip
    monkeypatch.setattr(deploying, "bring_up", lambda *args: deploying.DeployResult(plan=None))
    return made, backup


def _restore(platform: Deployed, backup: Path) -> Ran:
    return run_inv("restore", str(backup), "--yes", "--root", str(platform.root))


def test_a_root_without_room_for_the_backup_is_refused_before_anything_changes(platform, monkeypatch):
    """Restore measures what its archives unpack to against the root's free space, and says how to make room."""
    made, backup = platform
    databases = dict(made.engine.databases)
    monkeypatch.setattr(restore.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 10})())
    message, fix = _refused(_restore(made, backup))
    assert re.fullmatch(rf"Nothing was restored: the config and data folders need \d+\.\d GB and "
                        rf"{re.escape(str(made.root))} has 0\.0 GB free\.", message), message  # fmt: skip
    assert fix == "Free some space (or restore into a root on a larger disk with --root), then run restore again."
    assert made.engine.databases == databases


def test_a_postgres_older_than_the_dumps_once_started_leaves_the_databases_alone(platform):
    """Postgres down at the version check and older once restore starts it: no database is dropped, and the fix
    says where such a backup can go."""
    made, backup = platform
    engine = made.engine
    engine.postgres_version = 150010  # the dumps are Postgres 16's
    databases, started = dict(engine.databases), []

    def down_until_started(argv: list[str]) -> bool:
        if argv[:2] == ["docker", "compose"] and "up" in argv and argv[-1] == "postgres":
            started.append(argv)
        return argv[:3] == ["docker", "exec", POSTGRES] and not started

    engine.fail = down_until_started
    assert _refused(_restore(made, backup)) == (
        "Databases not restored: the dumps come from Postgres 16 and this platform runs Postgres 15: pg_restore "
        "cannot read a newer major version's dump.",
        "Restore into a platform whose Postgres is as new.",
    )
    assert started and engine.databases == databases


def test_an_archive_member_outside_its_folder_says_no_backup_of_this_tool_holds_one(platform):
    """A hand-made archive that would write outside its folder is refused, with why another backup is the fix."""
    made, backup = platform
    file = reaching_out(backup, "volume")
    message, fix = _refused(_restore(made, backup))
    assert message.startswith(f"{backup} does not match its manifest, so nothing was restored: {file}: ")
    assert "../../etc/cron.d/x" in message
    assert fix == "Restore another backup (`sudo inv backup --list`); a backup this tool took holds none of these."


# --- inv render: --ask and --out ------------------------------------------------------------------------------------


def test_render_ask_without_a_terminal_says_what_to_do_instead(tmp_path):
    """--ask needs a person at a terminal; without one it says so and offers `settings set`."""
    ran = run_inv("render", "--ask", "--answers", str(tmp_path / "answers.yaml"), "--out", str(tmp_path / "g"))
    assert _refused(ran) == (
        "--ask asks the questions at a terminal, and there is none here (or --no-input was given).",
        "Run `inv render --ask` in a terminal, or keep single settings with `inv settings set KEY=VALUE`.",
    )


@pytest.mark.parametrize("case", ["under-a-file", "name-too-long"])
def test_an_out_render_cannot_write_says_which_path_and_what_to_check(tmp_path, case):
    """--out below a file, or a path the filesystem refuses (a name longer than 255 bytes): named, not a
    traceback."""
    if case == "under-a-file":
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        out = blocker / "generated"
        expected = (f"Cannot write {out}: {blocker} is a file, not a folder.", "Give --out a folder.")
    else:
        long = tmp_path / ("x" * 300)
        out = long / "generated"
        expected = (f"Cannot write {long}: {os.strerror(errno.ENAMETOOLONG)}.", "Check --out and its parent folder.")
    ran = run_inv("render", "--no-input", "--root", str(tmp_path / "root"), "--out", str(out))
    assert _refused(ran) == expected


def test_a_render_that_waits_too_long_for_the_lock_names_the_holder_and_what_to_do(tmp_path):
    """A second render gives up after its wait, naming the process that holds the lock."""
    out, held, release = tmp_path / "generated", threading.Event(), threading.Event()

    def holder():
        with render_lock(out):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(5)
        with pytest.raises(UserError) as error, render_lock(out, wait=0.3, poll=0.05):
            pass
    finally:
        release.set()
        thread.join()
    assert (error.value.message, error.value.fix) == (
        f"Another render (pid {os.getpid()}) is writing {out}, and it has not finished in 0.3 s.",
        "Wait for it, or stop it; the lock goes with its process.",
    )


def test_a_stamp_the_user_may_not_read_says_to_use_sudo(tmp_path, monkeypatch):
    """A root's stamp read without root's rights (the tests run as root, so the kernel's refusal is simulated)."""
    refused = tmp_path / STAMP_FILE
    refused.write_text("{}")
    real = Path.read_text

    def read_text(path: Path, *args, **kwargs) -> str:
        if path == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(UserError) as error:
        stamp.read_stamp(tmp_path)
    assert (error.value.message, error.value.fix) == (f"No permission to read {refused}.", "Run the command with sudo.")


# --- inv settings ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "message", "fix"),
    [
        ("get", "`inv settings get` needs a key, like `inv settings get domain`.", "`inv settings` lists them all."),
        ("unset", "`inv settings unset` needs a key, like `inv settings unset ssl_mode`.", "`inv settings` lists all."),
        (
            "set",
            "`inv settings set` needs KEY=VALUE, like `inv settings set domain=ai.example.com`.",
            "`inv settings` lists the keys; `inv --help settings` explains values.",
        ),
    ],
)
def test_settings_get_or_set_without_a_key_shows_the_form(tmp_path, action, message, fix):
    """`settings get` / `settings set` with nothing after them show the form they take."""
    assert _refused(run_inv("settings", action, "--answers", str(tmp_path / "answers.yaml"))) == (message, fix)


# --- inv add and inv remove -----------------------------------------------------------------------------------------


@pytest.fixture
def owner(tmp_path, monkeypatch) -> Path:
    """The owner's project (monitoring on), nothing rendered; the host's checks stand for a host where all pass."""
    monkeypatch.setattr(changes, "preflight", lambda *args: [])
    return make_owner(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("args", "message", "fix"),
    [
        (["remove", "postgres"], "'postgres' is a core service: the platform needs it.",
         "Core services cannot be removed."),
        (["add", "postgres"], "'postgres' is a core service: it always runs.", "`inv status` shows it."),
        (["remove", "dify"], "'dify' is not enabled: nothing to remove.", "`inv info` lists what runs."),
        (["add", "monitoring"], "monitoring already enabled: nothing to add.", "`inv info` lists what runs."),
        (["add", "--from-compose", "compose.yml", "--name", "monitoring"],
         "A service named 'monitoring' exists already ({folder}).", "Choose another name."),
    ],
    ids=["remove-core", "add-core", "remove-not-enabled", "add-enabled", "import-taken-name"],
)  # fmt: skip
def test_add_and_remove_refuse_with_the_reason_and_the_next_step(owner, args, message, fix):
    """What add and remove cannot do is said before anything is rendered, with what to run or choose instead."""
    ran = run_inv(*args, "--dry-run", *_flags(owner))
    assert _refused(ran) == (message.format(folder=TEMPLATES_DIR / "services" / "monitoring"), fix)


def test_an_owner_who_answers_no_is_told_nothing_changed_and_how_to_skip_the_question(owner):
    """No at "Apply this change?": nothing was changed, and --yes is the way to apply without the question."""
    assert run_inv("render", "--no-input", *_flags(owner)).returncode == 0
    before = (owner / "answers.yaml").read_bytes()

    def make_context(answers):
        return Context(answers=answers or owner / "answers.yaml", flags={"root": str(owner / "root")}, environ={},
                       nvml=fake_nvml([]))  # fmt: skip

    ui = AnsweringUI(False)
    with pytest.raises(UserError) as error:
        changes.change_services(make_context, owner / "generated", Runner(echo=lambda _: None), ui, add=["mlflow"])
    assert (error.value.message, error.value.fix) == (
        "Cancelled: nothing was changed.",
        "`sudo inv add ... --yes` applies it without asking.",
    )
    assert ui.asked == ["Apply this change (add mlflow)?"] and (owner / "answers.yaml").read_bytes() == before


def test_an_imported_file_whose_service_is_a_catalog_container_says_to_rename_it(tmp_path):
    """`add --from-compose`: a service of the file named like a container of the catalog is refused, naming it."""
    path = tmp_path / "compose.yml"
    project = {"services": {"postgres": {"image": "postgres:16"}, "notes": {"image": "example/notes:2.1.0"}}}
    with pytest.raises(UserError) as error:
        from_project(project, path, "notes", _catalog())
    assert (error.value.message, error.value.fix) == (
        f"{path}: postgres is already a container of the catalog.",
        "Rename it in the file.",
    )


# --- a service's compose template -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message", "fix"),
    [
        ("image: evil/notes:latest", "notes sets image; these come from service.yaml.",
         "Move them to the service's service.yaml (images can be overridden with the `images:` setting)."),
        ("labels: {ai-platform.service: other, mine: kept}",
         "notes sets the label(s) ai-platform.service, which the platform owns.",
         "Remove them: render sets every ai-platform.* label itself."),
        ("volumes: ['${DATA}/notes:/data']", "notes mounts '${DATA}/notes', which compose fills in from a variable.",
         "Write the path in the template (paths.data, paths.config) or mount a named volume."),
        ("volumes: ['/var/run/docker.sock:/var/run/docker.sock']",
         "notes mounts the Docker socket (/var/run/docker.sock): that is root on the host.",
         "Declare `privileges: [docker-socket]` for the container in service.yaml if it truly needs it."),
        ("ports: ['8080:80']", "notes publishes '8080:80' on all interfaces.",
         "Only the proxy (Caddy) may; publish other ports as 127.0.0.1:HOST:CONTAINER."),
    ],
    ids=["reserved-key", "platform-label", "variable-mount", "docker-socket", "public-port"],
)  # fmt: skip
def test_a_template_reaching_past_its_service_yaml_is_refused_with_the_way_to_do_it(tmp_path, template, message, fix):
    """render refuses a template that sets what service.yaml or render decides, or that reaches the host: the
    message names the container and the key, the fix what to write instead."""
    spec = {"name": "notes", "description": "x", "tier": "apps", "containers": {"notes": {"image": "a/b:1.0.0"}}}
    with pytest.raises(UserError) as error:
        _render_service(tmp_path, spec, f"services:\n  notes:\n    {template}\n")
    assert error.value.message.endswith(f": {message}"), error.value.message
    assert error.value.message.startswith(f"{tmp_path / 'services/notes/compose.yml.j2'}: ")  # the owner's own file
    assert error.value.fix == fix
