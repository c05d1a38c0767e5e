"""Outcomes the mutation benchmark (benchmarks/mutants.py, seed 21) found no test asserting: each test here failed
with one of its surviving one-line bugs applied and passes without it. Each is judged by what an owner sees: the
error `inv restore` gives and what it leaves, `inv status --json`, `inv diff`'s output, the files render writes, the
settings and mounts render refuses."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from aiplatform.backup import restore, take
from aiplatform.engine import deploy as deploying
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command
from aiplatform.host import runner as running
from aiplatform.inputs.images import image_problem
from aiplatform.inputs.settings import Settings, internal_domain
from aiplatform.paths import STAMP_FILE
from aiplatform.render.platform import Platform
from aiplatform.render.tree import render_tree

from .conftest import PROJECT, fake_nvml, run_inv
from .engine_standin import POSTGRES, Deployed, EngineDocker, RecordedRunner, deployed
from .test_hostile_input import _render_service
from .test_nodes import StandinHttp
from .test_render import CATALOG, NO_GPU, _ctx, fixed_secrets

# --- inv restore: a Postgres that was down when restore checked the dumps' version ---------------------------------


@pytest.fixture
def platform(tmp_path, monkeypatch) -> Deployed:
    for module in (take, restore):
        monkeypatch.setattr(module, "Docker", EngineDocker)
    return deployed(tmp_path, _ctx, ["n8n"])


def test_a_postgres_down_at_the_check_and_older_once_started_gets_no_database_dropped(platform, monkeypatch):
    """Postgres was stopped when restore compared versions (no answer: nothing to compare), and the one restore then
    starts is older than the dumps: the restore stops before a database is dropped, and says what to do."""
    runner = RecordedRunner(echo=lambda _: None, engine=platform.engine)
    backup = take.take_backup(
        take.BackupOptions(platform.root, platform.root / "backups", None), platform.catalog, runner, lambda _: None
    ).path
    engine = platform.engine
    engine.postgres_version = 150010  # the dumps are Postgres 16's
    databases = dict(engine.databases)
    started = []

    def postgres_down_until_started(argv: list[str]) -> bool:  # the stand-in's Postgres answers once `up` ran
        if argv[:2] == ["docker", "compose"] and "up" in argv and argv[-1] == "postgres":
            started.append(argv)
        return argv[:3] == ["docker", "exec", POSTGRES] and not started

    engine.fail = postgres_down_until_started
    made: list[RecordedRunner] = []

    def recorded(dry_run: bool = False, **_: object) -> RecordedRunner:
        made.append(RecordedRunner(dry_run=dry_run, echo=lambda _: None, engine=engine))
        return made[-1]

    monkeypatch.setattr(running, "Runner", recorded)
    monkeypatch.setattr(deploying, "bring_up", lambda *args: deploying.DeployResult(plan=None))
    ran = run_inv("restore", str(backup), "--yes", "--root", str(platform.root))
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    said = " ".join(ran.stderr.split())
    assert "Databases not restored" in said and "Postgres 16" in said and "Postgres 15" in said, said
    assert "Restore into a platform whose Postgres is as new" in said, said  # what to do, not only what failed
    assert started, "the second check ran without restore starting Postgres"
    calls = [call.argv for one in made for call in one.calls]
    assert not [argv for argv in calls if {"dropdb", "pg_restore"} & set(argv)]
    assert engine.databases == databases


# --- inv status --json: the Ollama nodes ---------------------------------------------------------------------------


class _NoContainers:
    """A stand-in for Docker as `inv status` reads it: an engine that answers and runs none of the containers."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def engine_error(self) -> None:
        return None

    def containers(self) -> list:
        return []


def test_inv_status_json_lists_each_ollama_node_with_what_it_answered(tmp_path, monkeypatch):
    from aiplatform.engine import docker
    from aiplatform.host import nodes

    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({"models": ["llama3.2:3b", "qwen2.5:7b", "nomic-embed-text"], "ollama_nodes": [
        {"address": "192.0.2.21", "models": ["llama3.2:3b", "qwen2.5:7b"]}]}))  # fmt: skip
    out = tmp_path / "generated"
    rendered = run_inv("render", "--no-input", "--answers", str(answers), "--root", str(tmp_path / "root"),
                       "--out", str(out))  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    pages = {
        "http://192.0.2.21:11434/api/version": (200, {"version": "0.6.5"}),
        "http://192.0.2.21:11434/api/tags": (200, {"models": [{"name": "llama3.2:3b"}]}),
        "http://127.0.0.1:4000/health": (200, {"unhealthy_endpoints": []}),
    }
    monkeypatch.setattr(nodes.httpx, "get", StandinHttp(pages))
    monkeypatch.setattr(docker, "Docker", _NoContainers)
    ran = run_inv("status", "--out", str(out), "--json")
    assert ran.returncode == 1, ran.stderr  # nothing runs: unhealthy, and still the whole report
    report = json.loads(ran.stdout)
    assert report["nodes"] == [
        {
            "name": "192-0-2-21",
            "url": "http://192.0.2.21:11434",
            "reachable": True,
            "version": "0.6.5",
            "missing": ["qwen2.5:7b"],
            "gpu": "exporter silent",  # a node has a GPU unless told so; nothing answers at its :9400 here
            "down_in_litellm": False,
            "error": "",
        }
    ]


# --- systemd's quoting: specifiers in every line, $ only in Exec lines ---------------------------------------------


def _unit_value(line: str, exec_line: bool) -> list[str]:
    """The words systemd reads from one unit-file value (after `Key=`): quotes and backslash escapes, `%%` is `%`
    (specifiers are expanded in every line), and `$$` is `$` only in Exec lines (systemd.service(5): Environment=
    expands no variables, so `$$` there reaches the program as two)."""
    words = re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', line)
    found = [re.sub(r"\\(.)", r"\1", quoted or bare).replace("%%", "%") for quoted, bare in words]
    return [word.replace("$$", "$") for word in found] if exec_line else found


def test_ollamas_drop_in_passes_dollar_and_percent_through_to_ollama_as_written():
    root = "/srv/ai 100% $HOME"
    origins = ["https://$team.example", "app://100%"]
    settings = Settings(models=["m"], embedding_model="m", root=root, ollama_origins=origins)
    platform = Platform(settings, "minimal", CATALOG, NO_GPU, "192.0.2.10", fixed_secrets(settings, NO_GPU))
    lines = render_tree(platform)["config/ollama/override.conf"].data.decode().splitlines()
    environment = next(line for line in lines if "OLLAMA_ORIGINS" in line).removeprefix("Environment=")
    assert _unit_value(environment, exec_line=False) == ["OLLAMA_ORIGINS=https://$team.example,app://100%"]
    exec_start = next(line for line in lines if line.startswith("ExecStartPre=")).removeprefix("ExecStartPre=+")
    assert _unit_value(exec_start, exec_line=True) == ["/bin/sh", f"{root}/scripts/ollama-firewall.sh"]


# --- render's judgement of a read-only host path agrees with compose's reading of the mount ------------------------


@pytest.mark.parametrize(
    "mount",
    [
        "/etc:/e,ro",  # compose: a read-write bind at the container path "/e,ro"
        "/etc:ro",  # compose: the container path "ro" (no mode): not read-only either
    ],
)
def test_a_host_path_mount_compose_reads_as_read_write_is_refused(tmp_path, mount):
    container = {"image": "a/b:1.0.0", "host_paths": ["/etc"]}
    spec = {"name": "notes", "description": "x", "tier": "apps", "containers": {"notes": container}}
    with pytest.raises(UserError, match=re.escape("mounts the host's /etc read-write")):
        _render_service(tmp_path, spec, f"services:\n  notes:\n    volumes: ['{mount}']\n")


# --- settings -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["devel", "dev", "develop", "main", "master", "stable", "alpha", "current", "testing"])
def test_more_moving_tags_are_refused_as_unpinned(tag):
    problem = image_problem(f"example/notes:{tag}")
    assert problem is not None and "is not pinned" in problem and "moves" in problem, problem


def test_an_empty_admin_name_is_refused():
    ran = run_inv("settings", "--answers", str(PROJECT / "tests/unit/empty-answers.yaml"), "--set", "admin_name=")
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert "admin_name" in ran.stderr and "at least 1 character" in ran.stderr, ran.stderr


@pytest.mark.parametrize("domain", ["ci.test", "box.invalid", "ai.example", "AI.Test."])
def test_reserved_test_names_are_internal(domain):
    """RFC 6761's reserved names resolve nowhere on the internet: Let's Encrypt cannot certify them."""
    assert internal_domain(domain) is not None, domain


# --- inv diff --------------------------------------------------------------------------------------------------------


def _render(tmp_path: Path, environ: dict | None = None) -> tuple[Path, Path]:
    from aiplatform.inputs.context import Context

    ctx = Context(answers=tmp_path / "answers.yaml", flags={"root": str(tmp_path / "root")}, environ=environ or {},
                  nvml=fake_nvml([]))  # fmt: skip
    render_command(ctx, tmp_path / "generated", interactive=False)
    return tmp_path / "generated", tmp_path / "root"


def _applied(tmp_path: Path, environ: dict | None = None) -> tuple[Path, Path]:
    from aiplatform.engine.deploy import apply_files
    from aiplatform.host.runner import Runner

    out, root = _render(tmp_path, environ)
    apply_files(Runner(echo=lambda _: None), out, root)
    return out, root


def test_inv_diff_says_a_generated_folder_without_its_stamp_was_never_rendered(tmp_path):
    out, _ = _render(tmp_path)
    (out / STAMP_FILE).unlink()  # e.g. copied with `cp generated/*`: the dot file stays behind
    ran = run_inv("diff", "--out", str(out))
    assert "has not been rendered yet" in ran.stderr and "inv render" in ran.stderr, ran.stderr


def test_inv_diff_masks_a_six_character_secret_in_a_hand_edited_file(tmp_path):
    secret = "Pa55wd"  # a webdav password: the owner's, as short as they chose it
    out, root = _applied(tmp_path, {"AI_PLATFORM_BACKUP_REMOTE_TYPE": "webdav",
                                    "AI_PLATFORM_BACKUP_REMOTE_SECRET": secret})  # fmt: skip
    assert f"BACKUP_REMOTE_SECRET={secret}" in (root / "config/credentials.env").read_text()
    edited = root / "config/ollama/override.conf"
    edited.write_text(edited.read_text() + f"# webdav login: backup / {secret}\n")
    ran = run_inv("diff", "--out", str(out))
    assert "config/ollama/override.conf" in ran.stdout, ran.stdout
    assert secret not in ran.stdout + ran.stderr
    assert "-# webdav login: backup / ****" in ran.stdout.splitlines()


def test_inv_diff_keeps_a_line_without_final_newline_on_its_own_line(tmp_path):
    """The owner's editor dropped the root file's final newline: the diff shows its last line removed and added
    again, each on a line of its own (not run together as `-X+X`)."""
    out, root = _applied(tmp_path)
    edited = root / "config/ollama/override.conf"
    text = edited.read_text()
    edited.write_text(text.removesuffix("\n"))
    last = text.splitlines()[-1]
    ran = run_inv("diff", "--out", str(out))
    lines = ran.stdout.splitlines()
    assert f"-{last}" in lines and f"+{last}" in lines, ran.stdout


# --- render under a narrow umask ------------------------------------------------------------------------------------


def test_render_under_umask_077_still_writes_the_files_containers_read_as_0644(tmp_path):
    """A root shell with umask 077 (a hardened host): render's files keep their modes, or a container running as
    another user could not read its config."""
    old = os.umask(0o077)
    try:
        out, _ = _render(tmp_path)
    finally:
        os.umask(old)
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    assert modes["config/credentials.env"] == 0o600
    assert modes["config/litellm/config.yaml"] == 0o644
    assert modes["config/ollama/override.conf"] == 0o644
    scripts = [path for path in modes if path.startswith("scripts/") and path.endswith(".sh")]
    assert scripts and all(modes[path] == 0o755 for path in scripts), {path: oct(modes[path]) for path in scripts}
