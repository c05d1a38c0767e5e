"""Day two without an engine: the exact `docker compose` argv of logs, exec, restart, stop and start (through the
runner's dry run and history), which compose project they use, what a name stands for and the errors of a wrong one,
the wait for health, and where a service answers (url / open).

A `docker` on PATH here is a stand-in that only records that it was called (and answers like a CLI whose engine is
down): compose_command() needs a docker binary to name, and a dry run must never run it."""

from __future__ import annotations

import os
import re
import shutil
from types import SimpleNamespace

import pytest

from aiplatform.engine import operate
from aiplatform.engine.docker import ContainerInfo
from aiplatform.engine.project import load_project
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command
from aiplatform.host.runner import Runner

from .conftest import run_inv
from .test_render import _ctx

MONITORING = ["prometheus", "grafana", "node-exporter", "cadvisor"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """generated/ of a platform with monitoring (core + prometheus, grafana, node-exporter, cadvisor)."""
    base = tmp_path_factory.mktemp("operate")
    render_command(_ctx(base, services=["monitoring"]), base / "generated", interactive=False)
    return base / "generated", base / "root"


@pytest.fixture
def docker_cli(tmp_path, monkeypatch):
    """A stand-in `docker` first on PATH: writes its argv to a file and fails as the real CLI does without an engine."""
    folder = tmp_path / "bin"
    folder.mkdir()
    calls = tmp_path / "docker-calls"
    script = folder / "docker"
    script.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    return SimpleNamespace(path=str(script), calls=calls, folder=folder)


def _base(docker: str, directory) -> list[str]:
    files = sorted((directory / "docker").glob("docker-compose.*.yml"))
    return [
        docker,
        "compose",
        *[part for path in files for part in ("--file", str(path))],
        "--env-file",
        str(directory / "config/master.env"),
        "--env-file",
        str(directory / "config/credentials.env"),
        "--project-name",
        "ai-platform",
    ]


def _dry(rendered) -> operate.Platform:
    return operate.Platform(load_project(rendered[0]), Runner(dry_run=True, echo=lambda line: None))


@pytest.mark.parametrize(
    ("call", "tail"),
    [
        (lambda p, s: p.logs(None), ["logs"]),
        (
            lambda p, s: p.logs(s("monitoring"), follow=True, since="10m", tail=5),
            ["logs", "--follow", "--since", "10m", "--tail", "5", *MONITORING],
        ),
        (lambda p, s: p.logs(s("postgres")), ["logs", "postgres", "postgres-init"]),  # a service: its one-shot too
        (lambda p, s: p.exec(s("postgres"), [], tty=True), ["exec", "postgres", *operate.DEFAULT_SHELL]),
        (
            lambda p, s: p.exec(s("ai-platform-grafana"), ["grafana-cli", "-v"], tty=False),
            ["exec", "-T", "grafana", "grafana-cli", "-v"],
        ),
        (lambda p, s: p.restart(s("postgres"), None, print), ["restart", "--no-deps", "postgres"]),
        (lambda p, s: p.restart(s("postgres-init"), None, print), ["restart", "--no-deps", "postgres-init"]),
        (lambda p, s: p.restart(s("monitoring"), None, print), ["restart", "--no-deps", *MONITORING]),
        (lambda p, s: p.stop(), ["stop"]),
        (lambda p, s: p.start(None, print), ["start"]),
    ],
)
def test_each_command_is_one_compose_call_on_the_platforms_project(rendered, docker_cli, call, tail):
    platform = _dry(rendered)
    call(platform, lambda name: operate.select(platform.project, name))
    assert platform.runner.history == [[*_base(docker_cli.path, rendered[0]), *tail]]
    assert not docker_cli.calls.exists()  # a dry run runs nothing, not even a query


def test_the_roots_files_once_deployed_and_readable_else_generated(rendered, tmp_path, monkeypatch):
    out, _ = rendered
    root = tmp_path / "root"
    assert operate.platform_project(out, root).directory == out  # not deployed yet
    shutil.copytree(out, root)  # as deploy leaves it
    assert operate.platform_project(out, root).directory == root
    # credentials.env is root's own on a real root: a user in the docker group cannot read it
    readable = os.access
    monkeypatch.setattr(operate.os, "access", lambda p, m: not str(p).endswith("credentials.env") and readable(p, m))
    assert operate.platform_project(out, root).directory == out


def test_a_name_is_a_service_or_a_container(rendered):
    project = load_project(rendered[0])
    assert operate.select(project, "monitoring") == operate.Selection("monitoring", MONITORING, service=True)
    assert operate.select(project, "grafana") == operate.Selection("grafana", ["grafana"], service=False)
    assert operate.select(project, " ai-platform-redis ").containers == ["redis"]  # as `docker ps` names it
    assert operate.select(project, "postgres").containers == ["postgres", "postgres-init"]


@pytest.mark.parametrize("name", ["mlflow", "", "ai-platform-", "grafana-x"])
def test_an_unknown_name_lists_the_valid_ones(rendered, name):
    with pytest.raises(UserError) as caught:
        operate.select(load_project(rendered[0]), name)
    assert f"{name!r} is neither a service nor a container of this platform" in caught.value.message
    assert "Services: caddy, litellm, monitoring, open-webui, postgres, qdrant, redis." in caught.value.message
    assert "Containers: caddy, cadvisor, grafana, litellm, node-exporter, open-webui, postgres, postgres-init, " in (
        caught.value.message
    )
    assert "add NAME" in caught.value.fix


def test_exec_runs_in_one_container(rendered):
    project = load_project(rendered[0])
    assert operate.exec_container(project, operate.select(project, "postgres")) == "postgres"
    assert operate.exec_container(project, operate.select(project, "node-exporter")) == "node-exporter"
    with pytest.raises(UserError, match=r"monitoring has 4 containers \(prometheus, grafana, node-exporter, cadvisor"):
        operate.exec_container(project, operate.select(project, "monitoring"))


@pytest.mark.parametrize("since", ["10m", "1h30m", "90s", "1706688000", "2026-01-31", "2026-01-31T08:00:00Z",
                                   "2026-01-31T08:00", "2026-01-31T08:00:00.5+01:00"])  # fmt: skip
def test_since_takes_what_docker_logs_takes(since):
    assert operate.check_since(since) == since


@pytest.mark.parametrize("since", ["yesterday", "10 m", "-5m", "2026-1-31", "10m; rm -rf /", "5d"])
def test_since_refuses_anything_else(since):
    with pytest.raises(UserError, match="expected a duration"):
        operate.check_since(since)


# --- through the tasks, as typed ---------------------------------------------------------------------------------


def test_dry_runs_print_the_command_and_change_nothing(rendered, docker_cli):
    out = str(rendered[0])
    for args, said in (
        (["stop"], "Dry run: nothing was stopped."),
        (["start"], "Dry run: nothing was started."),
        (["restart", "litellm"], "Dry run: nothing was restarted."),
    ):
        result = run_inv(*args, "--dry-run", "--out", out)
        assert result.returncode == 0, result.stderr
        assert said in result.stdout
        assert f"would run: {docker_cli.path} compose --file " in result.stderr
        assert result.stderr.rstrip().endswith(f"--project-name ai-platform {' '.join(args)}".replace(
            "restart litellm", "restart --no-deps litellm"))  # fmt: skip
    assert not docker_cli.calls.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["restart", "nope", "--dry-run"], "'nope' is neither a service nor a container of this platform"),
        (["logs", "nope"], "'nope' is neither a service nor a container"),
        (["exec", "monitoring"], "monitoring has 4 containers"),
        (["logs", "--since", "yesterday"], "--since 'yesterday': expected a duration"),
        (["logs", "--tail", "ten"], "--tail 'ten': expected a number"),
        (["restart", "redis", "--timeout", "soon", "--dry-run"], "--timeout 'soon': expected a number of seconds"),
        (["exec", "postgres", "psql -c 'x", "--root", "/elsewhere"], "was rendered for root"),
    ],
)
def test_bad_input_is_one_clear_error_before_docker(rendered, docker_cli, args, message):
    result = run_inv(*args, "--out", str(rendered[0]))
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not docker_cli.calls.exists()


@pytest.mark.parametrize("args", [["logs"], ["exec", "postgres"], ["restart", "redis"], ["stop"], ["start"]])
def test_without_an_engine_the_message_other_tasks_give(rendered, docker_cli, args):
    result = run_inv(*args, "--out", str(rendered[0]))
    assert result.returncode == 1
    assert "The Docker engine does not answer: Cannot connect to the Docker daemon" in result.stderr
    assert "Start it (`sudo systemctl start docker`)" in result.stderr
    assert docker_cli.calls.read_text().splitlines() == ["system info --format {{json .}}"]  # only asked if it answers


def test_without_compose_v2_it_is_named_missing(rendered, docker_cli):
    # a CLI whose engine answers and that has no compose plugin: `docker compose` is docker's own usage error
    (docker_cli.folder / "docker").write_text(
        f'#!/bin/sh\necho "$*" >> {docker_cli.calls}\n'
        'if [ "$1 $2" = "system info" ]; then echo \'{"ID": "x", "ServerVersion": "27.0.0"}\'; exit 0; fi\n'
        'echo "Usage:  docker [OPTIONS] COMMAND" >&2; exit 1\n'
    )
    result = run_inv("restart", "redis", "--out", str(rendered[0]))
    assert result.returncode == 1
    assert "Docker Compose v2 (the `docker compose` CLI plugin) is not installed: `inv restart` needs it." in (
        result.stderr
    )
    assert "restart" not in docker_cli.calls.read_text()  # named missing before compose was asked to do anything


def test_without_a_docker_cli(rendered, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_inv("logs", "grafana", "--out", str(rendered[0]), env={"PATH": str(empty)})
    assert result.returncode == 1
    assert "The Docker engine does not answer: the docker CLI is not installed" in result.stderr


def test_the_command_of_exec_as_typed(monkeypatch):
    import tasks

    def c(remainder=""):
        return SimpleNamespace(remainder=remainder)

    assert tasks._command(c(), None) == []
    assert tasks._command(c(), "psql -U postgres -c 'select 1'") == ["psql", "-U", "postgres", "-c", "select 1"]
    monkeypatch.setattr("sys.argv", ["inv", "exec", "postgres", "--", "psql", "-c", "select 1"])
    assert tasks._command(c("psql -c select 1"), None) == ["psql", "-c", "select 1"]  # the words, not re-split
    with pytest.raises(UserError, match="not both"):
        tasks._command(c("psql"), "sh")
    with pytest.raises(UserError, match="cannot be split into words"):
        tasks._command(c(), "psql -c 'select 1")


# --- waiting for health ------------------------------------------------------------------------------------------


def _state(name, state="running", health="healthy", exit_code=0) -> ContainerInfo:
    return ContainerInfo(f"id-{name}", f"ai-platform-{name}", name, "", "", "", state, health, exit_code, "img")


def _live(rendered, monkeypatch, *rounds):
    """A platform whose runner really runs (a stand-in `true` for compose) and whose engine shows `rounds` of states
    one after the other (the last one stays)."""
    platform = operate.Platform(load_project(rendered[0]), Runner(echo=lambda line: None))
    seen = list(rounds)
    monkeypatch.setattr(platform.docker, "engine_error", lambda: None)
    monkeypatch.setattr(platform.docker, "compose_version", lambda: "2.26.1")
    monkeypatch.setattr(platform.docker, "compose_command", lambda: ["true"])
    monkeypatch.setattr(platform.docker, "containers", lambda: seen.pop(0) if len(seen) > 1 else seen[0])
    monkeypatch.setattr(operate.time, "sleep", lambda seconds: None)
    return platform


def test_restart_waits_until_healthy_and_says_so(rendered, monkeypatch):
    lines = []
    platform = _live(
        rendered,
        monkeypatch,
        [_state("postgres")],  # exists
        [_state("postgres", health="starting")],
        [_state("postgres", health="starting")],
        [_state("postgres")],
    )
    done = platform.restart(operate.select(platform.project, "postgres"), None, lines.append)
    assert done.containers == ["postgres"]
    assert lines == ["postgres: running, starting", "postgres: ready"]
    assert platform.runner.history == [["true", "restart", "--no-deps", "postgres"]]


@pytest.mark.parametrize(
    ("name", "state", "health", "code", "shown"),
    [
        ("litellm", "exited", "", 1, "exited (exit 1)"),
        ("redis", "exited", "", 0, "exited (exit 0)"),  # a service that should keep running
        ("postgres-init", "exited", "", 1, "exited (exit 1)"),  # a one-shot that failed
        ("qdrant", "running", "unhealthy", 0, "running, unhealthy"),
    ],
)
def test_start_fails_at_once_naming_what_did_not_come_back(rendered, monkeypatch, name, state, health, code, shown):
    everything = [
        _state(n, "exited", "", 0) if n == "postgres-init" else _state(n) for n in load_project(rendered[0]).containers
    ]
    broken = [_state(name, state, health, code) if c.container == name else c for c in everything]
    platform = _live(rendered, monkeypatch, everything, broken)
    monkeypatch.setattr(operate.time, "sleep", lambda seconds: pytest.fail("waited for a container that failed"))
    with pytest.raises(
        UserError, match=rf"Not where it should be after \d+ s: {name} \({re.escape(shown)}\)\."
    ) as caught:
        platform.start(3600, lambda line: None)
    assert f"logs {name}` shows why" in caught.value.fix


def test_start_gives_up_after_the_timeout(rendered, monkeypatch):
    everything = [
        _state(n, "exited", "", 0) if n == "postgres-init" else _state(n) for n in load_project(rendered[0]).containers
    ]
    slow = [_state(c.container, health="starting") if c.container == "qdrant" else c for c in everything]
    platform = _live(rendered, monkeypatch, everything, slow)
    with pytest.raises(UserError, match=r"Not where it should be after \d+ s: qdrant \(running, starting\)\."):
        platform.start(0, lambda line: None)


def test_start_never_creates_a_container(rendered, monkeypatch):
    platform = _live(rendered, monkeypatch, [_state(n) for n in load_project(rendered[0]).containers if n != "redis"])
    with pytest.raises(UserError, match="No container for redis: not deployed yet") as caught:
        platform.start(None, lambda line: None)
    assert "deploy" in caught.value.fix
    assert platform.runner.history == []  # refused before anything started


def test_stop_with_nothing_running_runs_nothing(rendered, monkeypatch):
    platform = _live(rendered, monkeypatch, [_state(n, "exited", "", 0) for n in load_project(rendered[0]).containers])
    assert platform.stop().containers == []
    assert platform.runner.history == []


def test_a_oneshot_is_done_when_it_exited_0(rendered, monkeypatch):
    lines = []
    platform = _live(rendered, monkeypatch, [_state("postgres-init", "exited", "", 0)])
    platform.restart(operate.select(platform.project, "postgres-init"), None, lines.append)
    assert lines == ["postgres-init: done"]


# --- url and open ------------------------------------------------------------------------------------------------


def test_url_prints_every_url_of_each_container_uncut(rendered):
    result = run_inv("url", "monitoring", "--out", str(rendered[0]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "prometheus  local    http://localhost:9090",
        "grafana     local    http://localhost:3000",
        "grafana     public   https://192.0.2.2:3443",
    ]


def test_url_of_a_service_without_one(rendered):
    result = run_inv("url", "redis", "--out", str(rendered[0]))
    assert result.returncode == 1 and "redis has no URL" in result.stderr


def test_the_tailnet_url_of_a_service_of_the_same_name():
    selection = operate.Selection("open-webui", ["open-webui"], service=True)
    stamped = {"open-webui": {"public": "https://h", "local": "http://localhost:8080"}}
    found = operate.urls(selection, stamped, {"open-webui": "https://ai.tail1.ts.net", "litellm": "https://x"})
    assert [(u.kind, u.url) for u in found] == [
        ("local", "http://localhost:8080"),
        ("public", "https://h"),
        ("tailnet", "https://ai.tail1.ts.net"),
    ]


def test_open_picks_the_routed_container_and_its_local_url_here():
    found = [
        operate.Url("prometheus", "local", "http://localhost:9090"),
        operate.Url("grafana", "local", "http://localhost:3000"),
        operate.Url("grafana", "public", "https://192.0.2.2:3443"),
    ]
    assert operate.url_to_open(found) == "http://localhost:3000"
    assert "open https://192.0.2.2:3443 from your own machine" in operate.no_browser(found)
    assert "ssh -L 9090:localhost:9090" in operate.no_browser(found[:1])


@pytest.mark.parametrize(
    ("environ", "euid", "usable"),
    [
        ({"DISPLAY": ":0"}, 1000, True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, 1000, True),
        ({}, 1000, False),  # a headless box, or ssh without X forwarding
        ({"DISPLAY": ":0"}, 0, False),  # root: browsers refuse to run
    ],
)
def test_a_browser_only_on_a_desktop_session(environ, euid, usable):
    assert operate.browser_usable(environ, euid) is usable


def test_open_on_a_headless_box_only_prints(rendered, monkeypatch):
    monkeypatch.setattr("webbrowser.open", lambda url: pytest.fail(f"a browser was started for {url}"))
    result = run_inv("open", "grafana", "--out", str(rendered[0]), env={"DISPLAY": ""})
    assert result.returncode == 0, result.stderr
    assert "grafana  public   https://192.0.2.2:3443" in result.stdout
    assert "No browser opens here" in result.stdout


def test_open_with_a_desktop_opens_the_url(rendered, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = run_inv("open", "open-webui", "--out", str(rendered[0]), env={"DISPLAY": ":0"})
    assert result.returncode == 0, result.stderr
    assert opened == ["http://localhost:8080"]
    assert "No browser" not in result.stdout


# --- the runner's terminal-attached command ----------------------------------------------------------------------


def test_attach_returns_the_exit_code_and_leaves_ctrl_c_to_the_command():
    runner = Runner(echo=lambda line: None)
    assert runner.attach(["sh", "-c", "exit 3"]) == 3
    # Ctrl-C reaches the whole foreground group: the command handles it, this process waits and goes on
    assert runner.attach(["sh", "-c", "trap 'exit 130' INT; kill -INT $PPID $$; sleep 5"]) == 130
    assert runner.history == [["sh", "-c", "exit 3"], ["sh", "-c", "trap 'exit 130' INT; kill -INT $PPID $$; sleep 5"]]


def test_attach_in_a_dry_run_only_prints():
    said = []
    runner = Runner(dry_run=True, echo=said.append)
    assert runner.attach(["sh", "-c", "exit 3"]) == 0
    assert said == ["would run: sh -c 'exit 3'"]
