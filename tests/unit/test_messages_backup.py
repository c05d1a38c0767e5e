"""What the owner reads, and what a command decides, where backup, restore, `add --from-compose`, `settings set` and
`upgrade` meet a case the other tests do not reach: an archive member or manifest item restore refuses, a remote
folder rclone has not made yet, a service whose files a backup leaves out, a compose file the importer refuses or
whose own `{{ }}` must survive rendering, a secret given to `settings`, a rollback that did not end healthy. Each
case goes through the command (or the library call its area's tests use) and asserts the exact text printed, or the
outcome the text decides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.console import Console

from aiplatform.backup import restore, take
from aiplatform.cli import tables
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command
from aiplatform.inputs.catalog import BackupSpec
from aiplatform.manage import upgrade as upgrading
from aiplatform.manage.importer import from_project
from aiplatform.paths import CREDENTIALS_ENV

from .conftest import Ran, run_inv
from .engine_standin import EngineDocker, RecordedRunner, deployed
from .test_hostile_input import CONFIG, _archive, _catalog, _item, _manifest, _project, _render_service, _snapshot
from .test_manage_outcome import DIGEST_C, RecordingRunner, StandinDocker, _deploys, _pending_plan, _upgrade_ctx
from .test_messages_ops import _refused
from .test_render import _ctx

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
ANOTHER = "Restore another backup (`sudo inv backup --list`)."


@pytest.fixture
def site(tmp_path) -> tuple[Path, Path]:
    """A root with the owner's config and data, and an empty backup folder of it to fill by hand."""
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    (root / CREDENTIALS_ENV).write_text("ADMIN_PASSWORD='the-owners'\n")
    (root / "data" / "open-webui").mkdir(parents=True)
    (root / "data" / "open-webui" / "notes.txt").write_text("owner's notes\n")
    backup = root / "backups" / "backup-20261126-100000"
    backup.mkdir(parents=True)
    return root, backup


def _restore(root: Path, backup: Path) -> Ran:
    return run_inv("restore", str(backup), "--yes", "--root", str(root), env=NO_ENGINE)


# --- inv restore: what a hand-made backup holds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("data/open-webui.tar.gz", "./a\nb.txt"),  # a newline: one member read as two lines in a listing
        ("data/open-webui.tar.gz", "./\x1b[2Jnotes.txt"),  # a terminal escape: it would clear the owner's screen
        ("config.tar.gz", "config/\x7fcredentials.env"),
    ],
    ids=["newline", "escape", "config-delete"],
)
def test_an_archive_member_with_control_characters_is_refused_naming_it(site, file, name):
    """A member name with a control character is refused before anything is extracted, shown escaped."""
    root, backup = site
    bad = [("file", name, b"x")]
    _archive(backup / "config.tar.gz", [*CONFIG, *(bad if file == "config.tar.gz" else [])])
    _archive(backup / "data" / "open-webui.tar.gz", [("dir", "."), ("file", "./ok.txt", b"x"),
                                                     *(bad if file != "config.tar.gz" else [])])  # fmt: skip
    _manifest(backup, str(root), [_item(backup, "config", "config", "config.tar.gz"),
                                  _item(backup, "folder", "open-webui", "data/open-webui.tar.gz")])  # fmt: skip
    before = _snapshot(root / "config") | _snapshot(root / "data")
    assert _refused(_restore(root, backup)) == (
        f"{backup} does not match its manifest, so nothing was restored: {file}: {name!r}: a name with control "
        "characters.",
        "Restore another backup (`sudo inv backup --list`); a backup this tool took holds none of these.",
    )
    assert _snapshot(root / "config") | _snapshot(root / "data") == before


def test_a_config_item_named_other_than_config_is_refused_naming_it(site):
    """The config item is always named config: another name is refused, naming it and the rule."""
    root, backup = site
    _archive(backup / "config.tar.gz", CONFIG)
    _manifest(backup, str(root), [_item(backup, "config", "settings", "config.tar.gz")])
    assert _refused(_restore(root, backup)) == (
        f"{backup} does not match its manifest, so nothing was restored: item name 'settings' (config): expected "
        "'config', the name of the config item.",
        ANOTHER,
    )
    assert (root / CREDENTIALS_ENV).read_text() == "ADMIN_PASSWORD='the-owners'\n"


def test_the_config_item_named_config_passes_the_name_check(site):
    """The same backup with the item named config is accepted by restore's checks (the refusal above is the
    name's)."""
    root, backup = site
    _archive(backup / "config.tar.gz", CONFIG)
    _manifest(backup, str(root), [_item(backup, "config", "config", "config.tar.gz")])
    _, items, _ = restore.plan(backup, root, None)
    assert [(i.kind, i.name) for i in items] == [("config", "config")]


# --- inv backup --list: a remote folder rclone has not made yet ----------------------------------------------------


def _rclone(tmp_path: Path, stderr: str, code: int) -> dict[str, str]:
    """A stand-in for rclone first on PATH that prints `stderr` and exits with `code` (as rclone 1.60 does for
    `lsf`); the env to run with."""
    folder = tmp_path / "standin-bin"
    folder.mkdir()
    script = folder / "rclone"
    script.write_text(f"#!/usr/bin/env python3\nimport sys\nsys.stderr.write({stderr!r})\nsys.exit({code})\n")
    script.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}", **NO_ENGINE}


NOT_MADE = (
    "2026/11/26 10:00:00 ERROR : : error listing: directory not found\n"
    "2026/11/26 10:00:00 Failed to lsf with 2 errors: last error was: directory not found\n"
)
NO_SECTION = (
    "2026/11/26 10:00:00 ERROR : : error listing: didn't find section in config file\n"
    "2026/11/26 10:00:00 Failed to lsf: didn't find section in config file\n"
)


def test_a_remote_folder_not_made_yet_lists_as_empty(tmp_path):
    """rclone's "directory not found" (no backup copied there yet) is an empty remote, not an error."""
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    ran = run_inv("backup", "--remote", "gdrive:not-made-yet", "--list", "--root", str(root),
                  env=_rclone(tmp_path, NOT_MADE, 3))  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == f"Backups in {root / 'backups'} and on gdrive:not-made-yet\n  none yet\n"


def test_a_remote_rclone_cannot_list_for_another_reason_is_an_error(tmp_path):
    """Any other failure of `rclone lsf` is said, with rclone's own last line: not taken for an empty remote."""
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    ran = run_inv("backup", "--remote", "nope:box", "--list", "--root", str(root), env=_rclone(tmp_path, NO_SECTION, 1))
    assert _refused(ran) == (
        "rclone cannot list nope:box: 2026/11/26 10:00:00 Failed to lsf: didn't find section in config file",
        "A remote of the settings: check backup_remote_type and backup_remote_options (`inv settings`); one given "
        "with --remote: `rclone listremotes` names those rclone.conf has.",
    )


# --- inv backup: a service whose files are left out -----------------------------------------------------------------


def test_a_service_whose_files_are_skipped_without_a_why_is_listed_as_files_left_out(tmp_path, monkeypatch):
    """`backup: {files: skip}` without `why:`: the manifest and the summary still say what was not copied."""
    monkeypatch.setattr(take, "Docker", EngineDocker)
    made = deployed(tmp_path, _ctx, ["n8n"])
    spec = made.catalog.services["n8n"]
    monkeypatch.setitem(made.catalog.services, "n8n", spec.model_copy(update={"backup": BackupSpec(files="skip")}))
    options = take.BackupOptions(made.root, made.root / "backups", None)
    report = take.take_backup(options, made.catalog, RecordedRunner(echo=lambda _: None, engine=made.engine),
                              lambda _: None)  # fmt: skip
    assert report.manifest.left_out["n8n"] == "files left out"
    assert not [i for i in report.manifest.items if i.service == "n8n" and i.kind in ("folder", "volume")]
    assert [i.name for i in report.manifest.items if i.service == "n8n"] == ["n8n"]  # its database all the same
    console = Console(record=True, width=200)
    console.print(tables.backup_summary(report))
    assert "  n8n: left out — files left out\n" in console.export_text()


# --- inv add --from-compose: refusals and the file's own braces -----------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "said", "fix"),
    [
        ({"cgroup_parent": "/"}, "cgroup_parent '/' is not supported", "Remove it: the engine places it."),
        (
            {"volumes_from": ["postgres"]},
            "volumes_from 'postgres' takes the volumes of a container that is not this file's",
            "Mount what it needs by name instead (a volume of this file, or a folder beside it).",
        ),
        (
            {"volumes_from": ["container:ai-platform-postgres:ro"]},
            "volumes_from 'container:ai-platform-postgres:ro' takes the volumes of a container that is not this file's",
            "Mount what it needs by name instead (a volume of this file, or a folder beside it).",
        ),
    ],
    ids=["cgroup-parent", "volumes-from-platform", "volumes-from-container"],
)
def test_import_refusals_of_what_the_platform_decides_say_what_to_do_instead(tmp_path, keys, said, fix):
    """Refused whatever --allow-privileged says, with the service named and what to write instead."""
    project, path = _project(tmp_path, **keys)
    with pytest.raises(UserError) as refused:
        from_project(project, path, "notes", _catalog(), allow_privileged=True)
    assert (refused.value.message, refused.value.fix) == (f"{path}: service notes: {said}.", fix)


def test_an_imported_files_own_braces_reach_the_rendered_compose_file_unchanged(tmp_path):
    """`{{`, `{%` and `{#` in the file are its own text, not Jinja: the rendered compose file holds them as written."""
    environment = {"GREETING": "Hello {{ name }}!", "TEMPLATE": "{% if x %}y{% endif %}", "NOTE": "{# kept #}"}
    project, path = _project(tmp_path, environment=environment, command=["echo", "{{.Name}}"])
    spec, template = from_project(project, path, "notes", _catalog())
    assert "{{ '{{' }} name }}" in template and "{{ '{%' }} if x %}" in template and "{{ '{#' }} kept #}" in template
    rendered = _render_service(tmp_path, spec, template)["notes"]
    assert rendered["environment"] == environment and rendered["command"] == ["echo", "{{.Name}}"]


# --- inv settings set/unset of a secret -------------------------------------------------------------------------------

UNASKED = ["backup_passphrase", "backup_remote_secret"]  # not in `render --ask`: its fix names the variable only


@pytest.mark.parametrize("verb", ["set", "unset"])
@pytest.mark.parametrize("key", UNASKED)
def test_a_secret_render_does_not_ask_for_is_given_to_one_render(tmp_path, key, verb):
    """A secret `render --ask` does not ask for: the fix is the one-render environment variable, then deploy."""
    answers = tmp_path / "answers.yaml"
    word = f"{key}=s3cret-value" if verb == "set" else key
    ran = run_inv("settings", verb, word, "--answers", str(answers))
    variable = f"AI_PLATFORM_{key.upper()}"
    assert _refused(ran) == (
        f"`inv settings {verb} {key}`: {key} is a secret and is never written to answers.yaml (it is not protected); a "
        "render keeps it in config/credentials.env (mode 0600) from the moment it is given once.",
        f"Give it to one render: `read -rs {variable} && export {variable} && inv render; unset {variable}`, then "
        "`sudo inv deploy`.",
    )
    assert not answers.exists() and "s3cret-value" not in ran.stdout + ran.stderr


# --- inv upgrade: a rollback that did not end healthy ---------------------------------------------------------------


@pytest.fixture
def upgradable(tmp_path, monkeypatch) -> tuple[Path, dict[str, str]]:
    """A rendered platform (core services) whose engine is the upgrade tests' stand-in."""
    (tmp_path / "answers.yaml").write_text("services: []\n")
    render_command(_upgrade_ctx(tmp_path), tmp_path / "generated", interactive=False)
    monkeypatch.setattr(upgrading, "Docker", StandinDocker)
    monkeypatch.setattr(upgrading, "require_engine", lambda docker: None)
    monkeypatch.setattr(StandinDocker, "digests", {})
    images = {name: c.image for name, c in upgrading.load_project(tmp_path / "generated").containers.items()}
    return tmp_path, images


def test_a_rollback_still_unhealthy_says_so_and_points_at_the_report_above(upgradable, monkeypatch):
    """The new images fail and the previous ones do not come back healthy either: the owner is told not everything
    is healthy (the deploy report above says what), with the backup taken first."""
    home, images = upgradable
    monkeypatch.setattr(StandinDocker, "digests", {images["qdrant"]: DIGEST_C})
    _deploys(monkeypatch, [False, False])
    result = upgrading.upgrade(lambda: _upgrade_ctx(home), home / "generated", _pending_plan(home, images),
                               RecordingRunner(here=set(), order=[]), None, lambda: home / "backups/b1",
                               print)  # fmt: skip
    assert not result.ok and result.rolled_back is not None and not result.rolled_back.ok
    assert upgrading.explain_rollback(result) == (
        "Upgrade failed: qdrant, open-webui did not become healthy. Rolled back to the previous images — but not "
        f"everything is healthy: see above; data untouched, backup taken first: {home / 'backups/b1'}. generated/ is "
        "the previous one: fix the image (answers.yaml `images:`, or wait for a fixed release), then "
        "`inv upgrade --check`."
    )
