"""Outcomes the mutation benchmark (benchmarks/mutants.py, seed 23) found no test asserting: each test here failed
with one of its surviving one-line bugs applied and passes without it. Each is judged by what an owner sees: the
step configure reports failed and the call it names, the request configure sends an app, the error `inv restore`
and `inv backup --remote` give, the question `inv remove` asks, a preview that survives a link in generated/, a
service.yaml the catalog refuses."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from aiplatform.backup import remote as remotes
from aiplatform.backup.archive import member_problems
from aiplatform.configure.run import run_configure
from aiplatform.errors import UserError
from aiplatform.generated.files import read_tree
from aiplatform.host.runner import Runner
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.context import Context
from aiplatform.manage import changes
from aiplatform.paths import SERVICES_DIR
from tests.configure_platform import apps, deploy_files, facts_for, litellm_like, stand_ins

from .conftest import fake_nvml, run_inv
from .test_add import _flags, make_owner
from .test_hostile_input import CONFIG, _archive, _item, _manifest, _refused, _restore, _snapshot
from .test_manage_outcome import AnsweringUI
from .test_route_auth import OWNER_SERVICE

QUIET = Runner(echo=lambda _: None)


@pytest.fixture
def deployed_files(tmp_path):
    """A platform's root as deploy leaves it, and the LiteLLM stand-in configure's key steps talk to."""
    _, root = deploy_files(tmp_path)
    with litellm_like() as litellm:
        yield root, litellm


def _configure(root, services, only):
    report = run_configure(facts_for(root, services), QUIET, lambda step: None, only)
    return report, {(s.service, s.step): s for s in report.steps}


# --- configure: Dify's model listing names the call that failed -------------------------------------------------------

DIFY_MODELS = (
    "/console/api/workspaces/current/model-providers/langgenius/openai_api_compatible/openai_api_compatible/models"
)


def test_a_failed_listing_of_difys_provider_models_names_that_call(deployed_files):
    """The owner looks for the failed call in `docker logs ai-platform-dify-api`: the step names it."""
    root, litellm = deployed_files
    with stand_ins(root, litellm.url, dify={"fail": {f"GET {DIFY_MODELS}": 500}}) as services:
        report, table = _configure(root, services, ["dify"])
    step = table[("dify", "LiteLLM models")]
    assert step.result == "FAILED" and not report.ok, step
    assert step.detail.startswith(f"Dify: GET {DIFY_MODELS} answered HTTP 500"), step


# --- configure: n8n's key check asks for one credential -------------------------------------------------------------


def test_n8ns_api_key_check_asks_for_a_page_of_one_credential(deployed_files, monkeypatch):
    """On a second run configure proves the kept N8N_API_KEY still works with one GET /api/v1/credentials: its status
    is all it reads, so it asks for a page of one (`limit`, as n8n's public API names it), not the default 100.

    Upstream n8n 2.41 parses the query with qs ('query parser' 'extended', abstract-server.js), which drops a
    parameter with an empty name, so a misspelt `limit` goes unnoticed there: the request itself is what is checked."""
    root, litellm = deployed_files
    asked: list[dict] = []
    listing = apps.N8n.list_credentials

    def recorded(handler):
        asked.append(dict(handler.query))
        return listing(handler)

    monkeypatch.setattr(apps.N8n, "list_credentials", recorded)
    with stand_ins(root, litellm.url) as services:
        assert _configure(root, services, ["n8n"])[0].ok
        asked.clear()
        report, table = _configure(root, services, ["n8n"])
    assert report.ok and table[("n8n", "API key for the platform")].result == "already done"
    assert asked == [{"limit": ["1"]}, {"limit": ["250"]}]  # the key's check, then the credential step's listing


# --- inv restore: an archive tar cannot read ----------------------------------------------------------------------


def _truncated_archive(path: Path) -> None:
    """A gzipped tar cut off half-way (a backup taken while the disk filled up)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for number in range(3):
            data = os.urandom(20_000)  # incompressible: half the file is half the members
            info = tarfile.TarInfo(f"./part{number}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw[: len(raw) // 2])


def test_an_archive_tar_cannot_read_is_a_problem_of_its_own(tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"this is no archive\n" * 20)
    truncated = tmp_path / "truncated.tar.gz"
    _truncated_archive(truncated)
    plain = tmp_path / "plain.tar"  # uncompressed, cut inside a member
    with tarfile.open(plain, "w") as tar:
        info = tarfile.TarInfo("./big.bin")
        info.size = 10_000
        tar.addfile(info, io.BytesIO(bytes(10_000)))
    plain.write_bytes(plain.read_bytes()[:6_000])
    for archive in (garbage, truncated, plain):
        problems = member_problems(archive, config=False)  # the members read before the cut are fine
        assert len(problems) == 1 and problems[0].startswith("not a tar archive restore can read ("), problems


@pytest.mark.parametrize("how", ["truncated", "not a tar"])
def test_restore_of_a_backup_whose_archive_tar_cannot_read_restores_nothing(tmp_path, how):
    """The manifest's checksum matches (the archive was written so), but tar cannot read it: restore refuses before
    anything is extracted, naming the archive."""
    root = tmp_path / "root"
    (root / "data" / "open-webui").mkdir(parents=True)
    (root / "data" / "open-webui" / "notes.txt").write_text("owner's notes\n")
    backup = tmp_path / "backups" / "backup-20261126-100000"
    _archive(backup / "config.tar.gz", CONFIG)
    data = backup / "data" / "open-webui.tar.gz"
    if how == "truncated":
        _truncated_archive(data)
    else:
        data.parent.mkdir(parents=True)
        data.write_bytes(b"<html>a download page, not the archive</html>\n")
    _manifest(backup, str(root), [_item(backup, "config", "config", "config.tar.gz"),
                                  _item(backup, "folder", "open-webui", "data/open-webui.tar.gz")])  # fmt: skip
    before = _snapshot(root)
    _refused(_restore(backup, root, "--dry-run"), "data/open-webui.tar.gz: not a tar archive restore can read",
             "nothing was restored")  # fmt: skip
    assert _snapshot(root) == before


# --- inv backup --remote: what to give instead ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["gdrive", "-vv:backups", "gdrive:-x"])
def test_a_malformed_remote_says_how_to_give_one(text):
    with pytest.raises(UserError) as refused:
        remotes.given(text)
    assert refused.value.message.startswith(f"--remote {text!r}: ")
    assert refused.value.fix == (
        "Give the remote as `rclone listremotes` names it, e.g. --remote gdrive:ai-platform-backups."
    )


# --- inv add / remove: the preview and the question ---------------------------------------------------------------


@pytest.fixture
def owner(tmp_path, monkeypatch):
    """The owner's project (monitoring and n8n on), rendered; deploy never runs (the owner answers no)."""
    home = make_owner(tmp_path, monkeypatch)
    (home / "answers.yaml").write_text("# mine\nservices:\n  - monitoring\n  - n8n  # flows\n")
    rendered = run_inv("render", "--no-input", *_flags(home))
    assert rendered.returncode == 0, rendered.stderr
    monkeypatch.setattr(changes, "preflight", lambda *args: [])  # stands for a host where every check passes
    return home


def _context_of(home: Path):
    def make_context(answers):
        return Context(answers=answers or home / "answers.yaml", flags={"root": str(home / "root")},
                       environ={}, nvml=fake_nvml([]))  # fmt: skip

    return make_context


@pytest.mark.parametrize(("purge", "question"), [
    (False, "Apply this change (remove n8n)?"),
    (True, "Apply this change (remove n8n and DELETE its data)?"),
])  # fmt: skip
def test_remove_asks_about_deleting_the_data_only_with_purge(owner, purge, question):
    ui = AnsweringUI(False)
    with pytest.raises(UserError, match="Cancelled: nothing was changed"):
        changes.change_services(_context_of(owner), owner / "generated", QUIET, ui, remove="n8n", purge=purge)
    assert ui.asked == [question]


def test_a_link_in_generated_is_copied_as_a_link_into_the_preview(owner):
    """An owner who versions generated/ (its .git is kept by render) may have links in it, here one whose target is
    gone: the preview of a change copies generated/ with its links as links, never following one."""
    hooks = owner / "generated" / ".git" / "hooks"
    hooks.parent.mkdir()
    hooks.symlink_to(owner / "shared-hooks-removed-since")
    before = read_tree(owner / "generated", skip=())
    ui = AnsweringUI(False)
    with pytest.raises(UserError, match="Cancelled: nothing was changed"):
        changes.change_services(_context_of(owner), owner / "generated", QUIET, ui, add=["mlflow"])
    assert ui.asked == ["Apply this change (add mlflow)?"]  # the preview was made and shown
    assert os.readlink(hooks) == str(owner / "shared-hooks-removed-since")
    assert read_tree(owner / "generated", skip=()) == before


# --- the catalog: a path route's upstream --------------------------------------------------------------------------


def _owner_catalog(tmp_path: Path, upstream: str, short: bool = False):
    """The owner's `notes` service (tests/unit/test_route_auth.py) with one path routed in the long form (or the short
    one, `/hooks/*: container:port`)."""
    folder = tmp_path / "services" / "notes"
    folder.mkdir(parents=True)
    quoted = repr(upstream).replace("'", '"')  # a YAML double-quoted string, escapes and all
    paths = f"  paths:\n    /hooks/*:\n      upstream: {quoted}\n      headers:\n        X-Hook: '{{uri}}'\n"
    if short:
        paths = f"  paths:\n    /hooks/*: {quoted}\n"
    (folder / "service.yaml").write_text(OWNER_SERVICE + paths)
    (folder / "compose.yml.j2").write_text("services:\n  notes: {}\n")
    return folder, load_catalog(SERVICES_DIR, folder.parent)


@pytest.mark.parametrize("short", [False, True])
@pytest.mark.parametrize("upstream", [
    "evil.example:80",  # a host name, not a container
    "notes:8000\n}\n:80 {\n\trespond 200",  # a Caddyfile of its own (the Caddyfile takes the value as it is)
    "notes",  # no port
    "http://notes:8000",
])  # fmt: skip
def test_a_path_routes_upstream_must_be_container_colon_port(tmp_path, upstream, short):
    """`route.paths` takes `container:port` or {upstream, headers}: both forms are checked alike and named alike, so
    nothing but a container's port reaches the Caddyfile."""
    folder, catalog = _owner_catalog(tmp_path, upstream, short)
    assert "notes" not in catalog.services
    message, _ = catalog.broken["notes"]
    expected = (
        f"{folder / 'service.yaml'} line {14 if short else 15}: key 'route.paths./hooks/*.upstream': Value error, "
        f"upstream {upstream!r} must be container:port, like open-webui:8080."
    )
    assert message == expected


@pytest.mark.parametrize("short", [False, True])
def test_a_path_routes_long_or_short_form_with_a_container_port_is_taken(tmp_path, short):
    _, catalog = _owner_catalog(tmp_path, "notes:8001", short)
    assert catalog.broken == {}
    route = catalog.services["notes"].route
    assert route is not None and route.paths["/hooks/*"].upstream == "notes:8001"
    assert route.paths["/hooks/*"].headers == ({} if short else {"X-Hook": "{uri}"})


def test_the_stamp_file_ends_with_one_newline(tmp_path):
    # POSIX text files end with a newline: `cat`, `diff` ("\ No newline at end of file") and editors show it
    from aiplatform.generated.stamp import STAMP_FILE, with_stamp

    tree = with_stamp({}, version="1", profile="minimal", tier="cpu", root="/r", services=[], inputs="x")
    text = tree[STAMP_FILE.as_posix()].data
    assert text.endswith(b"}\n") and not text.endswith(b"\n\n")


def test_settings_refuse_a_key_they_do_not_know_even_past_the_key_checks():
    # the last guard behind answers.yaml's key check: a misspelt key is never silently dropped
    from pydantic import ValidationError

    from aiplatform.inputs.settings import Settings

    with pytest.raises(ValidationError, match="servics"):
        Settings.model_validate({"servics": []})
