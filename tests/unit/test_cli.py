"""The tasks as a new user meets them: flags, hints that work when pasted, messages instead of tracebacks, the root
kept between commands, what the summaries say; and the package's layout rules."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from invoke import Collection

import tasks
from aiplatform import __version__, commands
from aiplatform.envfile import parse_env
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command
from aiplatform.inputs.context import Context

from .conftest import INV, PROJECT, fake_nvml, run_inv

NO_DOCKER = {"PATH": "/nonexistent"}  # no docker CLI (nor anything else) to be found


def render(tmp_path, *args: str, env: dict | None = None):
    result = run_inv("render", "--no-input", "--out", str(tmp_path / "generated"), *args, env=env)
    assert result.returncode == 0, result.stderr
    return result


# --- flags and hints -------------------------------------------------------------------------------------------


def test_every_short_flag_means_one_thing_in_every_task():
    meanings: dict[str, set[str]] = defaultdict(set)
    for name, task in Collection.from_module(tasks).tasks.items():
        for argument in task.get_arguments():
            for short in (n for n in argument.names if len(n) == 1):
                attr = argument.attr_name or argument.name
                meanings[short].add(attr)
                assert tasks.SHORT_FLAGS.get(attr) == short, (name, argument.names)
    assert all(len(names) == 1 for names in meanings.values()), dict(meanings)
    assert {"y", "n", "j", "r", "o"} <= set(meanings)


def test_every_task_has_help_text():
    for name, task in Collection.from_module(tasks).tasks.items():
        assert task.__doc__ and task.__doc__.strip(), name
        result = run_inv("--help", name)
        assert result.returncode == 0 and task.__doc__.split()[0] in result.stdout, name
        for argument in task.get_arguments():
            assert argument.help, f"inv --help {name}: --{argument.name} has no help"


@pytest.mark.parametrize("help_first", [True, False], ids=["inv --help TASK", "inv TASK --help"])
def test_help_of_every_task_in_both_spellings(help_first):
    """`inv add --help` once gave `unknown service '--help'`: a task's positional argument ate the flag."""
    for name, task in Collection.from_module(tasks).tasks.items():
        for flag in ("--help", "-h"):
            result = run_inv(flag, name) if help_first else run_inv(name, flag)
            assert result.returncode == 0, (name, flag, result.stderr)
            assert f"Usage: inv [--core-opts] {name}" in result.stdout, (name, flag, result.stdout)
            assert " ".join(task.__doc__.split()[:6]) in " ".join(result.stdout.split()), (name, flag)
            assert not result.stderr, (name, flag, result.stderr)


@pytest.mark.parametrize("words", [("render", "--answers"), ("logs", "--tail"), ("backup", "--only")])
def test_help_after_a_flag_that_waits_for_its_value_is_the_help_flag(words):
    """`inv render --answers --help` once read the answers from a file named --help."""
    result = run_inv(*words, "--help")
    assert result.returncode == 0 and f"Usage: inv [--core-opts] {words[0]}" in result.stdout, result.stderr


def test_help_read_by_a_reader_that_goes_away_stops_quietly():
    """`inv --help deploy | head -1`: the pipe closes before inv has written all; no traceback, exit 141 (SIGPIPE)."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before inv writes a line
    try:
        proc = subprocess.run([*INV, "--help", "deploy"], cwd=PROJECT, stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_version():
    result = run_inv("version")
    assert result.returncode == 0 and f"ai-platform {__version__}" in result.stdout


@pytest.mark.parametrize(
    ("argv0", "on_path", "plain", "sudo"),
    [
        ("{venv}/bin/inv", False, ".venv/bin/inv", "sudo .venv/bin/inv"),
        ("{venv}/bin/inv", True, "inv", "sudo .venv/bin/inv"),
        ("/opt/other/bin/inv", False, "/opt/other/bin/inv", "sudo /opt/other/bin/inv"),
        ("/usr/lib/python3/dist-packages/invoke/__main__.py", False, "inv", "sudo inv"),
    ],
)
def test_hints_print_the_command_that_works_when_pasted(tmp_path, monkeypatch, argv0, on_path, plain, sudo):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "inv").write_text("#!/bin/sh\n")
    (venv / "bin" / "inv").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [argv0.format(venv=venv), "deploy"])
    monkeypatch.setenv("PATH", f"{venv / 'bin'}:/usr/bin" if on_path else "/usr/bin")
    assert str(commands.INV) == plain
    assert f"`{commands.SUDO_INV} deploy`" == f"`{sudo} deploy`"


def test_cookiecutter_comes_with_the_tool_not_only_with_the_tests():
    requirements = importlib.metadata.requires("ai-platform") or []
    plain = [r for r in requirements if "extra ==" not in r]
    assert any(r.startswith("cookiecutter") for r in plain), plain
    assert not any(r.startswith("requests") for r in requirements), "one HTTP client: httpx"


# --- messages, not tracebacks ----------------------------------------------------------------------------------


def test_without_a_docker_cli_every_task_speaks(tmp_path):
    render(tmp_path, "--root", str(tmp_path / "root"))
    out = str(tmp_path / "generated")
    status = run_inv("status", "--out", out, env=NO_DOCKER)
    assert status.returncode == 1 and "the docker CLI is not installed" in status.stderr
    doctor = run_inv("doctor", "--out", out, "--json", env=NO_DOCKER)
    engine = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "docker engine")
    assert doctor.returncode == 1 and engine["detail"] == "the docker CLI is not installed"
    deploy = run_inv("deploy", "--out", out, "--dry-run", env=NO_DOCKER)
    assert deploy.returncode == 0, deploy.stderr
    assert "Files to apply:" in deploy.stdout and "config/credentials.env" in deploy.stdout
    actions = [line for line in deploy.stdout.splitlines() if line.startswith("Containers ")]
    assert len(actions) == 1 and actions[0].startswith("Containers to create: "), actions
    created = set(actions[0].removeprefix("Containers to create: ").split(", "))
    assert {"postgres", "postgres-init", "litellm", "open-webui", "caddy", "prometheus"} <= created
    cleanup = run_inv("cleanup", "--dry-run", "--root", str(tmp_path / "root"), env=NO_DOCKER)
    assert "not looked at (the docker CLI is not installed)" in cleanup.stdout  # the plan it could make is shown
    assert cleanup.returncode == 1 and "were not listed" in cleanup.stderr  # ... and it says it could not finish
    real_cleanup = run_inv("cleanup", "--yes", "--root", str(tmp_path / "root"), env=NO_DOCKER)
    assert real_cleanup.returncode == 1 and "the docker CLI is not installed" in real_cleanup.stderr
    for result in (status, doctor, deploy, cleanup, real_cleanup):
        assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "root").exists()


def test_upgrade_check_without_an_engine_says_it_could_not_look(tmp_path):
    """It once listed every container as "new container" and exited 0: a check that could not look."""
    render(tmp_path, "--root", str(tmp_path / "root"))
    result = run_inv("upgrade", "--check", "--out", str(tmp_path / "generated"), env=NO_DOCKER)
    assert result.returncode == 1, result.stdout
    assert "The Docker engine does not answer: the docker CLI is not installed" in result.stderr
    assert "new container" not in result.stdout and "Traceback" not in result.stderr


def test_an_error_never_exits_zero():
    with pytest.raises(ValueError, match="exits non-zero"):
        UserError("printed as an error", exit_code=0)


def test_a_stamp_of_the_wrong_shape_is_a_message(tmp_path):
    render(tmp_path, "--root", str(tmp_path / "root"))
    stamp = tmp_path / "generated" / ".aiplatform.json"
    data = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({**data, "files": ["not", "a", "mapping"]}))
    result = run_inv("diff", "--out", str(tmp_path / "generated"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{stamp}: not a stamp render wrote (key files" in result.stderr


def test_credentials_that_are_not_utf8_are_a_message(tmp_path):
    render(tmp_path, "--root", str(tmp_path / "root"))
    credentials = tmp_path / "root" / "config" / "credentials.env"
    credentials.parent.mkdir(parents=True)
    credentials.write_bytes(b"ADMIN_PASSWORD='\xff\xfe'\n")
    stamp = (tmp_path / "generated" / ".aiplatform.json").read_text()
    (tmp_path / "root" / ".aiplatform.json").write_text(stamp)  # as after a deploy: the root lists its files
    result = run_inv("diff", "--out", str(tmp_path / "generated"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{credentials} is not UTF-8 text" in result.stderr


# --- the root, the summaries ---------------------------------------------------------------------------------------


def test_the_root_given_once_is_kept_and_shown(tmp_path):
    first = render(tmp_path, "--root", str(tmp_path / "elsewhere"))
    assert f"for root {tmp_path / 'elsewhere'}" in first.stdout
    again = render(tmp_path)  # no --root: the previous render's root, not the default
    assert f"for root {tmp_path / 'elsewhere'}" in again.stdout
    master = parse_env((tmp_path / "generated/config/master.env").read_text())
    assert master["BASE_DIR"] == str(tmp_path / "elsewhere")
    shown = run_inv("settings", "--json", "--out", str(tmp_path / "generated"))
    root = json.loads(shown.stdout)["settings"]["root"]
    assert root == {"value": str(tmp_path / "elsewhere"), "source": "previous render"}
    moved = render(tmp_path, "--root", str(tmp_path / "third"))
    assert f"for root {tmp_path / 'third'}" in moved.stdout


def test_render_says_where_to_log_in_and_where_the_password_is(tmp_path):
    result = render(tmp_path, "--root", str(tmp_path / "root"), "--set", "domain=192.0.2.44")
    password = parse_env((tmp_path / "generated/config/credentials.env").read_text())["ADMIN_PASSWORD"]
    assert "https://192.0.2.44 and log in as admin@example.com" in result.stdout
    assert f"ADMIN_PASSWORD in {tmp_path / 'generated/config/credentials.env'}" in result.stdout
    assert password not in result.stdout + result.stderr


def test_settings_shows_a_secret_kept_in_credentials_as_masked(tmp_path):
    render(tmp_path, "--root", str(tmp_path / "root"), env={"AI_PLATFORM_OPENAI_API_KEY": "sk-given-once-123"})
    result = run_inv("settings", "--json", "--out", str(tmp_path / "generated"))
    data = json.loads(result.stdout)["settings"]
    assert data["openai_api_key"]["value"] == "****"
    assert data["openai_api_key"]["source"].startswith("credentials (")
    assert data["anthropic_api_key"] == {"value": None, "source": "default"}
    assert "sk-given-once-123" not in result.stdout


def test_diff_stat_lists_files_with_their_counts(tmp_path):
    render(tmp_path, "--root", str(tmp_path / "root"))
    result = run_inv("diff", "--stat", "--out", str(tmp_path / "generated"))
    lines = [line for line in result.stdout.splitlines() if "|" in line]
    caddy = next(line for line in lines if "config/caddy/Caddyfile" in line)
    size = len((tmp_path / "generated/config/caddy/Caddyfile").read_text().splitlines())
    assert f"new     +{size} -0" in caddy
    assert "@@" not in result.stdout  # no hunks, only the list


def test_free_disk_space_is_a_reading_not_config(tmp_path, monkeypatch):
    out = tmp_path / "generated"

    def ctx():
        return Context(answers=None, flags={"root": str(tmp_path / "root")}, environ={}, nvml=fake_nvml([]))

    render_command(ctx(), out, interactive=False)
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=real(path).free - 7 * 1024**3))
    again = render_command(ctx(), out, interactive=False)
    assert not (again.written.created or again.written.changed), again.written.changed
    assert "DISK_FREE_GB" not in (out / "config/hardware-profile.env").read_text()


# --- layout rules --------------------------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


PACKAGE = sorted((PROJECT / "aiplatform").rglob("*.py"))


def test_only_the_runner_writes_outside_generated():
    users = [p.relative_to(PROJECT).as_posix() for p in PACKAGE if "aiplatform.host.hostfs" in _imports(p)]
    assert users == ["aiplatform/host/runner.py"]
    assert "aiplatform.host.hostfs" not in _imports(PROJECT / "tasks.py")


def _fixes(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each plain string in the fix of a UserError or StepFailed the module raises."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("UserError", "StepFailed"):
            fix = node.args[1:2] + [k.value for k in node.keywords if k.arg == "fix"]
            found += [(c.lineno, c.value) for f in fix for c in ast.walk(f) if isinstance(c, ast.Constant)]
    return [(line, text) for line, text in found if isinstance(text, str)]


def test_every_fix_spells_the_command_as_it_works_when_pasted():
    """A fix names this tool's command through INV / SUDO_INV (`.venv/bin/inv`, `sudo /abs/.venv/bin/inv` when
    that is what works), never a bare `inv`, which is not on PATH outside the virtualenv nor under sudo."""
    bare = [f"{p.relative_to(PROJECT)}:{line}: {text!r}" for p in [*PACKAGE, PROJECT / "tasks.py"]
            for line, text in _fixes(p) if re.search(r"`(sudo )?inv ", text)]  # fmt: skip
    assert not bare, "\n".join(bare)


def test_one_http_client_library():
    assert not [p for p in PACKAGE if {"requests", "urllib.request"} & _imports(p)]


def test_the_renderer_is_pure_and_diff_and_deploy_do_not_load_it():
    for path in (PROJECT / "aiplatform" / "render").glob("*.py"):
        outside = {
            m for m in _imports(path) if m.startswith(("aiplatform.host", "aiplatform.engine", "aiplatform.cli"))
        }
        assert not outside, (path.name, outside)
    for module in ("generated/diff.py", "engine/deploy.py", "engine/status.py"):
        heavy = {
            m for m in _imports(PROJECT / "aiplatform" / module) if m.startswith(("aiplatform.render.tree", "jinja2"))
        }
        assert not heavy, (module, heavy)


def test_a_question_without_a_terminal_names_the_flag_that_answers_it(monkeypatch):
    import io

    from aiplatform.cli import prompts
    from aiplatform.errors import UserError

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(UserError) as caught:
        prompts.confirm("Delete?", "cleanup deletes things", "inv cleanup --yes", "inv cleanup --dry-run")
    assert caught.value.message == "cleanup deletes things and no one is at a terminal to confirm."
    assert "`inv cleanup --yes`" in caught.value.fix and "`inv cleanup --dry-run`" in caught.value.fix


def test_every_library_name_tasks_py_uses_exists():
    """tasks.py is not type-checked (invoke reads its untyped signatures): a renamed function would only fail when a
    user reaches that line."""
    import importlib

    tree = ast.parse((PROJECT / "tasks.py").read_text())
    modules = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aiplatform"):
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                try:
                    modules[alias.asname or alias.name] = importlib.import_module(target)
                except ImportError:
                    assert hasattr(importlib.import_module(node.module), alias.name), target
    missing = [
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
        and not hasattr(modules[node.value.id], node.attr)
    ]  # fmt: skip
    assert not missing


def test_table_cells_and_messages_print_as_they_are_never_as_markup(monkeypatch):
    """A password, an IPv6 URL or a path with brackets: rich would take them for markup (dropping `[word]`, or
    raising on `[/]`) unless the consoles print without it."""
    from aiplatform.cli import console, tables
    from aiplatform.host.checks import Check

    found = [Check("node gpu2", "fail", "http://[fd00::5]:11434 does not answer", "password Ab1[/]x, Pass[word]1")]
    monkeypatch.setattr(console.out, "_width", 200)  # one line per row
    with console.out.capture() as captured:
        console.out.print(tables.checks_table(found))
        console.out.print("[bold]not a style[/]")
    assert "http://[fd00::5]:11434" in captured.get() and "Ab1[/]x, Pass[word]1" in captured.get()
    assert "[bold]not a style[/]" in captured.get()
