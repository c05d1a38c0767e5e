"""Outcomes the mutation benchmark (benchmarks/mutants.py, seed 26) found no test asserting: each test here failed
with one of its surviving one-line bugs applied and passes without it. Each is judged by what an owner sees or keeps: a
dry run that repairs nothing, Open WebUI's admin that is not one, the call named when an update is refused, the backup
timer's units read by systemd before they are enabled, an imported service's port, an owner's template rendering
(its own service.yaml as `service`, indented block tags)."""

from __future__ import annotations

import copy
import os
import secrets
import threading
from pathlib import Path

import pytest
import yaml

from aiplatform.backup import schedule
from aiplatform.configure import flowise
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.paths import TEMPLATES_DIR
from aiplatform.render.templates import environment, render_template
from tests.configure_platform import stand_ins

from . import test_configure_outcome
from .test_configure_outcome import EMBED, Answering, configure, declared_step, write_credentials

DRY = Runner(dry_run=True, echo=lambda _: None)
platform = test_configure_outcome.platform  # the rendered root and a LiteLLM stand-in (a fixture)


# --- configure --dry-run: drift is reported, never repaired ---------------------------------------------------------


def test_a_dry_run_says_it_would_replace_a_key_another_holds_the_alias_of_and_deletes_nothing(platform):
    """n8n's key regenerated after configure: its alias still names the old key in LiteLLM."""
    root, litellm = platform
    with stand_ins(root, litellm.url) as services:
        assert configure(root, services)[0].ok
        write_credentials(root, LITELLM_KEY_N8N="sk-" + secrets.token_urlsafe(24))
        keys = services.apps["litellm"].state["keys"]
        before, asked = copy.deepcopy(keys), len(services.apps["litellm"].requests)
        report, table = configure(root, services, runner=DRY, only=["litellm"])
        step = table[("litellm", "key for n8n")]
        assert (step.result, step.detail) == ("would do", "replace the key named ai-platform-n8n by LITELLM_KEY_N8N")
        assert keys == before and not report.changed
        assert ("POST", "/key/delete") not in services.apps["litellm"].requests[asked:]


def test_a_dry_run_of_a_set_up_platform_sees_past_the_first_run_steps_to_a_deleted_credential(platform):
    """The declared first-run steps (n8n's owner, Flowise's account) ask a read-only call first, so a dry run of a
    set-up platform says "already done" and goes on: it finds the Flowise credential the owner deleted and says it
    would add it, and nothing is sent that changes anything."""
    root, litellm = platform
    with stand_ins(root, litellm.url) as services:
        assert configure(root, services)[0].ok
        flowise_app = services.apps["flowise"]
        flowise_app.state["credentials"] = []
        for app in services.apps.values():
            app.requests.clear()
        report, table = configure(root, services, runner=DRY)
        assert table[("n8n", "owner account")].result == "already done"
        assert table[("flowise", "admin account")].result == "already done"
        step = table[("flowise", "LiteLLM credential")]
        assert (step.result, step.detail) == ("would do", f"add the credential {flowise.CREDENTIAL!r}")
        assert flowise_app.state["credentials"] == [] and not report.changed
        sent = {(m, p) for app in services.apps.values() for m, p in app.requests}
        assert not sent & {("POST", "/api/v1/credentials"), ("POST", "/api/v1/account/register"),
                           ("POST", "/rest/owner/setup")}  # fmt: skip


# --- configure: Open WebUI ------------------------------------------------------------------------------------------


def test_an_admin_email_that_signs_in_as_a_plain_user_is_named_with_its_role(platform):
    """Someone else signed up first (Open WebUI makes the first account its admin): the platform's admin email is a
    user there, and configure says so instead of failing later on admin-only calls."""
    root, litellm = platform
    with stand_ins(root, litellm.url) as services:
        assert configure(root, services)[0].ok
        for user in services.apps["openwebui"].state["users"].values():
            user["role"] = "user"
        report, table = configure(root, services, only=["open-webui"])
    step = table[("open-webui", "admin signs in")]
    admin = read_env(root / "config/master.env")["ADMIN_EMAIL"]
    assert step.result == "FAILED" and not report.ok
    assert step.detail == f"{admin} signs in to Open WebUI but is not its admin (role user)."
    assert table[("open-webui", "LiteLLM connection")].result == "skipped"


def test_a_refused_embedding_update_names_the_call(platform):
    """Embeddings still asked of the host's Ollama (an older template's seed): the refused update is named."""
    root, litellm = platform
    with stand_ins(root, litellm.url, openwebui={"fail": {"POST /api/v1/retrieval/embedding/update": 500}}) as services:
        services.apps["openwebui"].state["config"] |= {"rag.embedding_engine": "ollama", "rag.embedding_model": EMBED}
        _, table = configure(root, services)
    step = table[("open-webui", "embeddings through LiteLLM")]
    assert step.result == "FAILED"
    assert step.detail.startswith("Open WebUI: POST /api/v1/retrieval/embedding/update answered HTTP 500"), step


# --- the backup timer: systemd reads the units before they are enabled ----------------------------------------------


def test_the_timer_is_written_then_read_by_systemd_then_enabled_and_off_undoes_it_in_reverse(tmp_path):
    runner = Runner(dry_run=True, echo=lambda _: None)
    schedule.install("daily", Path("/srv/ai"), runner, unit_dir=tmp_path)
    assert runner.history == [
        ["write", str(tmp_path / schedule.SERVICE), "0644"],
        ["write", str(tmp_path / schedule.TIMER), "0644"],
        ["systemctl", "daemon-reload"],  # a unit systemd has not read cannot be enabled as written
        ["systemctl", "enable", "--now", schedule.TIMER],
    ]
    off = Runner(dry_run=True, echo=lambda _: None)
    schedule.install("off", Path("/srv/ai"), off, unit_dir=tmp_path)
    assert off.history == [
        ["systemctl", "disable", "--now", schedule.TIMER],
        ["rm", "-f", str(tmp_path / schedule.TIMER)],
        ["rm", "-f", str(tmp_path / schedule.SERVICE)],
        ["systemctl", "daemon-reload"],  # else systemctl still lists the timer, "not-found"
    ]


# --- inv add FILE: the port by IP ----------------------------------------------------------------------------------


def test_an_imported_service_gets_the_first_free_port_from_9443_by_ip(tmp_path):
    """docs/catalog.md: the first free port from 9443; a second import, with the first in the owner's catalog, the
    next one."""
    from aiplatform.inputs.catalog import load_catalog
    from aiplatform.manage.importer import from_project

    from .test_hostile_input import _catalog, _project

    project, path = _project(tmp_path)
    first, template = from_project(project, path, "notes", _catalog())
    assert first["route"]["ip_port"] == 9443
    folder = tmp_path / "services" / "notes"
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text(yaml.safe_dump(first))
    (folder / "compose.yml.j2").write_text(template)
    catalog = load_catalog(TEMPLATES_DIR / "services", folder.parent)
    assert "notes" in catalog.services, catalog.broken
    memos = {"services": {"memos": project["services"]["notes"]}}  # the same app under another name
    second, _ = from_project(memos, path, "memos", catalog)
    assert second["route"]["ip_port"] == 9444


# --- render: an owner's compose template sees its own service.yaml --------------------------------------------------


def test_a_compose_template_reads_its_own_service_yaml_as_service(tmp_path):
    from .test_route_auth import owner_catalog, whole_catalog

    folder = owner_catalog(tmp_path) / "notes"
    (folder / "compose.yml.j2").write_text(
        "services:\n  notes:\n    labels:\n      about: {{ service.description | q }}\n"
    )
    compose = yaml.safe_load(whole_catalog(tmp_path).tree["docker/docker-compose.notes.yml"].data)
    assert compose["services"]["notes"]["labels"]["about"] == "An owner's service without a login of its own."


def test_a_block_tag_indented_in_an_owners_template_leaves_no_blank_or_indent(tmp_path):
    """The built-in templates put their tags at the line's start; an owner's may indent them inside a YAML block."""
    (tmp_path / "compose.yml.j2").write_text(
        "services:\n  notes:\n    {% if true %}\n    image: a:1\n    {% endif %}\n"
    )
    assert render_template(environment((tmp_path,)), "compose.yml.j2", {}) == "services:\n  notes:\n    image: a:1\n"


# --- configure: a declared step's read-only "already" call ----------------------------------------------------------


@pytest.fixture(scope="module")
def settings_page():
    """A stand-in app answering every request alike: the answer of the read-only call under test."""
    server = Answering()
    yield server
    server.server.shutdown()
    server.server.server_close()


OWNER = {"step": "owner", "request": "POST /setup", "done": [200],
         "already_if": {"request": "GET /settings", "field": "data.setup.first", "equals": False}}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '{"data": {"setup": {"first": false}}}', "already done"),
        (200, '{"data": {"setup": {"first": true}}}', "would do"),
        (200, '{"data": {"setup": {"first": 0}}}', "would do"),  # 0 is not false
        (200, '{"data": {"setup": {}}}', "would do"),
        (200, '{"data": "setup"}', "would do"),
        (200, "<html>sign in</html>", "would do"),
        (401, '{"data": {"setup": {"first": false}}}', "would do"),  # only a 2xx answer says so
    ],
)
def test_a_declared_steps_already_if_call_skips_the_change_only_on_the_exact_value(
    settings_page, status, body, expected
):
    settings_page.status, settings_page.body = status, body
    result, _ = declared_step(settings_page, OWNER, dry_run=True)
    assert result == expected
    assert [(m, p) for m, p, *_ in settings_page.seen] == [("GET", "/settings")]  # asked first; the change never sent


# --- inv render while another render writes; inv diff on a root it may not read -------------------------------------


def test_inv_render_says_it_waits_for_another_render_then_writes(tmp_path):
    from aiplatform.generated.write import render_lock

    from .test_cli import render

    out = tmp_path / "generated"
    held, release = threading.Event(), threading.Event()

    def other_render():
        with render_lock(out):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=other_render)
    thread.start()
    held.wait(5)
    threading.Timer(1.0, release.set).start()
    result = render(tmp_path, "--root", str(tmp_path / "root"))
    thread.join()
    said = " ".join(result.stderr.split())
    assert f"waiting for another render (pid {os.getpid()}) to finish writing {out}" in said, said
    assert (out / ".aiplatform.json").is_file()


def test_a_root_file_diff_may_not_read_says_to_use_sudo(tmp_path, monkeypatch):
    """Root's files are root's (0600 credentials.env): an owner running `inv diff` without sudo. The tests run as root,
    whom the kernel never refuses, so the refusal is the one read the kernel would refuse."""
    from aiplatform.generated import diff

    refused = tmp_path / "root/config/credentials.env"
    real_read = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    refused.parent.mkdir(parents=True)
    refused.write_text("ADMIN_PASSWORD=x\n")
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(UserError) as error:
        diff._read(refused)
    assert (error.value.message, error.value.fix) == (
        f"No permission to read {refused}.",
        "Run the command with sudo (the root is root's).",
    )
