"""Outcomes the mutation benchmark (benchmarks/mutants.py, seed 25) found no test asserting: each test here failed
with one of its surviving one-line bugs applied and passes without it. Each is judged by what an owner sees: the fix
configure gives when Dify refuses its admin, `inv status`'s last-backup line, backup's error when Qdrant's container
does not answer, which nodes LiteLLM found down, where a template error is, the error `inv settings set` gives, the
login line after a deploy, render's refusal of a folder it did not make. (The stricter engine stand-in, rclone's and
Qdrant's image's own refusals, is tests/unit/engine_standin.py.)"""

from __future__ import annotations

import io
import json
import re

import httpx
import pytest
from rich.console import Console

from aiplatform.backup import qdrant
from aiplatform.backup.manifest import LAST, describe_last
from aiplatform.cli.tables import deploy_report
from aiplatform.configure.run import run_configure
from aiplatform.engine.deploy import DeployResult, Plan
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command
from aiplatform.generated.stamp import read_stamp
from aiplatform.generated.write import write_tree
from aiplatform.host.runner import Result, Runner
from aiplatform.render.templates import environment, render_template
from tests.configure_platform import deploy_files, facts_for, litellm_like, stand_ins

from .conftest import run_inv
from .test_nodes import NODE_A, StandinHttp, _declare, _pages
from .test_render import _ctx

QUIET = Runner(echo=lambda _: None)


# --- configure: the fix when Dify refuses to set its admin up -------------------------------------------------------


def _dify_setup(tmp_path, password=None, **knobs):
    _, root = deploy_files(tmp_path)
    if password:  # typed into credentials.env by hand: settings refuse a weak one, Dify's rules are its own
        credentials = root / "config/credentials.env"
        text = re.sub(r"(?m)^ADMIN_PASSWORD=.*$", f"ADMIN_PASSWORD={password}", credentials.read_text())
        credentials.write_text(text)
    with litellm_like() as litellm, stand_ins(root, litellm.url, dify=knobs) as services:
        report = run_configure(facts_for(root, services), QUIET, lambda step: None, ["dify"])
    return {(s.service, s.step): s for s in report.steps}


def test_a_password_dify_refuses_gets_the_fix_for_the_password(tmp_path):
    steps = _dify_setup(tmp_path, password="lettersonlyhere")
    (setup,) = [s for (service, _), s in steps.items() if service == "dify" and s.result == "FAILED"]
    assert "a letter and a digit" in setup.fix and "ADMIN_PASSWORD" in setup.fix, setup
    assert "docker logs" not in setup.fix


def test_any_other_refusal_of_difys_setup_points_at_its_api_containers_log(tmp_path):
    steps = _dify_setup(tmp_path, fail={"POST /console/api/setup": 500})
    (setup,) = [s for (service, _), s in steps.items() if service == "dify" and s.result == "FAILED"]
    assert "`docker logs ai-platform-dify-api`" in setup.fix, setup
    assert "a letter and a digit" not in setup.fix


# --- inv status: a last-backup record this tool did not write -------------------------------------------------------


@pytest.mark.parametrize("record", [{"finished": "yesterday", "ok": True}, {"ok": True}])
def test_a_last_backup_record_without_a_time_is_a_warning_naming_the_file(tmp_path, record):
    (tmp_path / LAST).parent.mkdir(parents=True)
    (tmp_path / LAST).write_text(json.dumps(record))
    assert describe_last(tmp_path) == ("warn", f"{tmp_path / LAST} is not one this tool wrote")


# --- backup: Qdrant's container does not answer ---------------------------------------------------------------------


class _NotRunning(Runner):
    """What `docker exec` answers when the container is stopped: nothing on stdout, the daemon's words on stderr."""

    def run(self, argv, **kwargs) -> Result:  # type: ignore[override]
        return Result([str(a) for a in argv], 1, "", f"Error response from daemon: container {qdrant.CONTAINER} is "
                      "not running")  # fmt: skip


def test_a_qdrant_that_does_not_answer_is_an_error_with_the_daemons_words_not_a_traceback():
    with pytest.raises(UserError) as refused:
        qdrant.Qdrant(_NotRunning(echo=lambda _: None), "key").collections()
    assert str(refused.value) == (
        f"Qdrant answered GET /collections with nothing: Error response from daemon: container {qdrant.CONTAINER} "
        "is not running"
    )


# --- inv status / doctor: LiteLLM's health check takes its time ----------------------------------------------------


class _SlowHttp(StandinHttp):
    """The stand-in for httpx.get, with httpx's own default timeout (5 s) and pages that take `slow` seconds to answer:
    one asked with a shorter timeout raises ReadTimeout, as httpx does."""

    def __init__(self, pages, slow) -> None:
        super().__init__(pages)
        self.slow = slow

    def __call__(self, url, headers=None, timeout=5.0, trust_env=True):
        if self.slow.get(url, 0) > timeout:
            raise httpx.ReadTimeout("timed out")
        return super().__call__(url, headers=headers, timeout=timeout, trust_env=trust_env)


def test_litellms_health_check_that_takes_seconds_still_says_which_nodes_are_down(tmp_path, monkeypatch):
    """LiteLLM's /health asks every deployment before it answers: 12 s with a few nodes is usual."""
    from aiplatform.host import nodes

    _declare(tmp_path, [NODE_A])
    pages = _pages()
    pages["http://127.0.0.1:4000/health"] = (200, {"unhealthy_endpoints": [{"model_id": "llama3.2:3b@gpu2"}]})
    monkeypatch.setattr(nodes.httpx, "get", _SlowHttp(pages, {"http://127.0.0.1:4000/health": 12}))
    [state] = nodes.node_states(tmp_path)
    assert state.down_in_litellm is True


# --- render: where an undefined value is ----------------------------------------------------------------------------


def test_an_undefined_value_is_named_at_its_own_file_and_line_whatever_the_files_suffix(tmp_path):
    """A service's file may be any kind (nginx.conf, a Dockerfile): the error names it, and an included file is named
    itself, not the line that includes it."""
    (tmp_path / "nginx.conf").write_text("server {\n  listen {{ port }};\n}\n")
    (tmp_path / "outer.j2").write_text("# outer\n{% include 'nginx.conf' %}\n")
    env = environment((tmp_path,))
    for name in ("nginx.conf", "outer.j2"):
        with pytest.raises(UserError) as refused:
            render_template(env, name, {})
        assert refused.value.message == f"{tmp_path / 'nginx.conf'} line 2: undefined value: 'port' is undefined."


# --- inv settings set: a bad value is named as given ----------------------------------------------------------------


def test_a_bad_value_given_to_settings_set_names_the_command_and_leaves_the_file(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text("domain: example.org\nollama_keep_alive: 5m\n")
    result = run_inv("settings", "set", "ollama_keep_alive=soon", "--answers", str(answers), cwd=tmp_path)
    said = " ".join(result.stderr.split())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert said.startswith(
        "error: `inv settings set ollama_keep_alive=...`: key 'ollama_keep_alive': expected a number with an optional "
        "unit, like 5m, 1h or -1; got 'soon'."
    ), said
    assert "line 2" not in said and f"{answers} was not changed. Give ollama_keep_alive another value." in said
    assert answers.read_text() == "domain: example.org\nollama_keep_alive: 5m\n"


# --- inv deploy: where to log in ------------------------------------------------------------------------------------


def test_deploys_summary_logs_the_owner_in_as_the_admin_render_was_given(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path, admin_email="owner@example.org", domain="192.0.2.44"), out, interactive=False)
    stamp = read_stamp(out)
    assert stamp is not None and stamp.admin_email == "owner@example.org"
    result = DeployResult(plan=Plan(files=None, containers={}), root=tmp_path / "root", applied=True)  # type: ignore[arg-type]
    console = Console(file=io.StringIO(), width=200)
    console.print(deploy_report(result, stamp))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Open https://192.0.2.44 and log in as owner@example.org" in shown, shown
    assert f"ADMIN_PASSWORD in {tmp_path / 'root/config/credentials.env'}" in shown
    assert read_env(out / "config/credentials.env")["ADMIN_PASSWORD"] not in shown


# --- render --out: a folder render did not make ---------------------------------------------------------------------


def test_render_refuses_a_folder_it_did_not_make_and_says_which_folder_to_give(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(UserError) as refused:
        write_tree(out, {})
    assert refused.value.fix == "Give --out a new or empty folder (or the generated/ folder a previous render made)."
    assert [p.name for p in out.iterdir()] == ["cat.jpg"]


# --- inv add FILE: containerd's socket, even read-only, is a privilege ---------------------------------------------


@pytest.mark.parametrize("socket", ["/run/containerd/containerd.sock", "/run/docker/containerd/containerd.sock"])
def test_containerds_socket_mounted_read_only_is_root_on_the_host_and_declared_as_a_privilege(tmp_path, socket):
    """A read-only folder of the host is a plain host path; a socket read-only still runs anything as root. (Docker's
    own containerd listens at /run/docker/containerd; /var/run/... is the same socket through /var/run -> /run.)"""
    from aiplatform.manage.importer import from_project

    from .test_hostile_input import _bind, _catalog, _project

    project, path = _project(tmp_path, volumes=[_bind(socket, "/c.sock", read_only=True)])
    with pytest.raises(UserError) as refused:
        from_project(project, path, "notes", _catalog())
    assert f"the host's {socket} read-only, which holds {socket}" in str(refused.value)
    spec, _ = from_project(project, path, "notes", _catalog(), allow_privileged=True)
    container = spec["containers"]["notes"]
    assert f"host-path:{socket}" in container.get("privileges", []) and socket not in container.get("host_paths", [])
