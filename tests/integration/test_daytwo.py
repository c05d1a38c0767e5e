"""Day two on a real engine: `inv logs`, `inv exec`, `inv restart`, `inv stop` / `inv start` and `inv url` on a
deployed core platform (stand-in images), each through the platform's compose project as an owner would type it."""

from __future__ import annotations

import json
import re
import shlex

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(platform):
    """The core services deployed and healthy."""
    platform.answer(services=[])
    platform.render()
    platform.deploy()
    return platform


def _inv(platform, *args: str, check: bool = True):
    return platform.inv(*args, "--out", platform.out, check=check)


def _started(platform, name: str) -> str:
    return platform.inspect(name)["State"]["StartedAt"]


def test_logs_show_a_containers_output(running):
    result = _inv(running, "logs", "postgres-init")
    assert "postgres-init: /init/litellm.sh" in result.stdout  # what its command echoes for each script
    echoed = result.stderr.strip().splitlines()[-1]  # the command, as it ran
    assert " compose --file " in echoed and echoed.endswith("--project-name ai-platform logs postgres-init")
    whole = _inv(running, "logs", "postgres", "--tail", "3")  # a service: all its containers, named on each line
    for name in ("postgres", "postgres-init"):  # compose pads the names to the longest it has seen so far
        assert re.search(rf"^(\x1b\[2K)?ai-platform-{name} +\| ", whole.stdout, re.MULTILINE), whole.stdout
    since = _inv(running, "logs", "postgres-init", "--since", "2000-01-01")
    assert "postgres-init: /init/litellm.sh" in since.stdout


def test_exec_runs_a_command_in_the_container_and_keeps_its_exit_code(running, host):
    result = _inv(running, "exec", "postgres", "psql -U postgres -tAc 'select 41 + 1'")
    assert result.stdout.strip() == "42"
    failed = running.inv("exec", "redis", "--out", running.out, "--", "sh", "-c", "exit 7", check=False)
    assert failed.rc == 7
    # without a command: a shell, reading the commands given on stdin when stdin is not a terminal
    shell = host.run(
        f"cd {shlex.quote(running.project)} && echo 'echo shell-$((6 * 7)) in $(hostname)' | "
        f"AI_PLATFORM_USER_SERVICES={shlex.quote(running.user_services)} {shlex.quote(running.python)} -m invoke "
        f"exec postgres --out {shlex.quote(running.out)}"
    )
    assert shell.rc == 0, shell.stderr
    assert "shell-42 in " in shell.stdout


def test_restart_restarts_that_service_only_and_waits_for_health(running):
    litellm, postgres = _started(running, "litellm"), _started(running, "postgres")
    ids = running.containers()
    result = _inv(running, "restart", "litellm")
    assert "Restarted litellm: up and healthy after" in result.stdout
    assert _started(running, "litellm") != litellm
    assert _started(running, "postgres") == postgres  # what litellm depends on is left alone
    assert running.containers() == ids  # restarted, not recreated
    assert running.inspect("litellm")["State"]["Health"]["Status"] == "healthy"


def test_stop_then_start_keeps_the_containers_and_the_data(running, host):
    made = running.psql(
        "litellm", "litellm", "LITELLM_DB_PASSWORD", "create table daytwo (x int); insert into daytwo values (42)"
    )
    assert made.rc == 0, made.stderr
    ids = running.containers()

    stopped = _inv(running, "stop")
    # all but postgres-init, done already
    assert f"Stopped {len(ids) - 1} containers; their data stays in {running.root}/data" in stopped.stdout
    states = {name: running.inspect(name)["State"]["Status"] for name in ids}
    assert set(states.values()) == {"exited"}, states
    assert running.containers() == ids  # stopped, not removed
    assert _inv(running, "stop").stdout.strip() == "Nothing was running."

    started = _inv(running, "start")
    assert f"Started {len(ids)} containers" in started.stdout
    assert running.containers() == ids  # the same containers: nothing recreated
    rc, status = running.status()
    assert rc == 0, [s for s in status["services"] if not s["healthy"]]
    kept = running.psql("litellm", "litellm", "LITELLM_DB_PASSWORD", "select x from daytwo")
    assert kept.rc == 0 and kept.stdout.strip() == "42", kept.stderr


def test_url_prints_urls_that_answer(running, host):
    found = json.loads(_inv(running, "url", "open-webui", "--json").stdout)
    local = next(u["url"] for u in found if u["kind"] == "local")
    assert local == "http://localhost:8080"
    assert host.run(f"curl -fsS -o /dev/null -w '%{{http_code}}' {local}/health").stdout == "200"  # Open WebUI's
    opened = _inv(running, "open", "open-webui")  # no desktop session here: printed, not opened
    assert local in opened.stdout and "No browser opens here" in opened.stdout
