"""aiplatform.host.ollama against tests/standins/ollama_api.py, a stand-in for Ollama's HTTP API, over real sockets.

Only step 1's systemctl/journalctl answers are scripted (ScriptedSystemctl): this machine has no systemd.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import psutil
import pytest

from aiplatform.host.ollama import Budgets, NullPullProgress, last_error_line, pull_models, wait_for_ollama
from aiplatform.host.runner import Result
from tests.standins.ollama_api import OllamaStandIn, free_port

OWN_NAME = psutil.Process().name()  # the stand-in runs in this process: it is the "ollama" the port check expects
FAST = Budgets(unit=2, port=2, api=2)

SHOW_FAILED = "LoadState=loaded\nActiveState=failed\nSubState=failed\nUnitFileState=enabled\nResult=exit-code\n"
SHOW_FAILED += "ExecMainStatus=1\n"
JOURNAL_FAILED = """\
Apr 01 10:00:00 gpu1 systemd[1]: Started ollama.service - Ollama Service.
Apr 01 10:00:01 gpu1 ollama[812]: time=2025-04-01T10:00:01 level=INFO msg="starting"
Apr 01 10:00:01 gpu1 ollama[812]: Error: listen tcp 0.0.0.0:11434: bind: address already in use
Apr 01 10:00:01 gpu1 systemd[1]: ollama.service: Main process exited, code=exited, status=1/FAILURE
Apr 01 10:00:01 gpu1 systemd[1]: ollama.service: Failed with result 'exit-code'.
"""


class ScriptedSystemctl:
    """Not a Runner: a fake that records argv and answers systemctl/journalctl with scripted Results."""

    def __init__(self, is_active: str = "active", show: str = "", journal: str = "") -> None:
        self.answers = {"is-active": is_active, "show": show, "status": f"● ollama.service\n   Active: {is_active}"}
        self.journal = journal
        self.calls: list[tuple[list[str], bool]] = []

    def run(self, argv, *, check=True, changes=True, **_kwargs) -> Result:
        argv = [str(part) for part in argv]
        self.calls.append((argv, changes))
        if argv[0] == "journalctl":
            return Result(argv, 0, self.journal)
        out = self.answers[argv[1]]
        active = self.answers["is-active"] == "active"
        return Result(argv, 0 if active or argv[1] == "show" else 3, out + "\n")


class FakeClock:
    """Time that passes only when slept: step-1 budgets are spent without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class RecordingProgress(NullPullProgress):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, model: str) -> None:
        self.events.append(("start", model))

    def update(self, model: str, status: str, completed: int | None, total: int | None) -> None:
        self.events.append(("update", model, status, completed, total))

    def done(self, model: str, ok: bool, message: str) -> None:
        self.events.append(("done", model, ok, message))


def statuses(result):
    return [step.status for step in result.steps]


def non_loopback_ipv4() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), else any non-loopback IPv4."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))
            ip = sock.getsockname()[0]
            if not ip.startswith(("127.", "0.")):
                return ip
        except OSError:
            pass
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith("127."):
                return addr.address
    return None


# --- the wait --------------------------------------------------------------------------------------------------


def test_all_three_steps_pass_and_the_version_is_reported():
    runner = ScriptedSystemctl("active")
    seen = []
    with OllamaStandIn(version="0.6.5") as ollama:
        result = wait_for_ollama(
            ollama.url,
            runner=runner,
            budgets=FAST,
            expect_process=OWN_NAME,
            progress=lambda number, name, elapsed, message: seen.append(number),
        )
    assert result.ok, result.report()
    assert statuses(result) == ["ok", "ok", "ok"]
    assert result.version == "0.6.5"
    assert runner.calls == [(["systemctl", "is-active", "ollama"], False)]
    assert sorted(set(seen)) == [1, 2, 3]
    assert "ready, version 0.6.5" in result.report()


def test_nothing_on_the_port():
    port = free_port()
    result = wait_for_ollama(
        f"http://127.0.0.1:{port}", runner=ScriptedSystemctl(), budgets=Budgets(port=0.6), check_unit=False
    )
    assert not result.ok
    assert statuses(result) == ["skipped", "fail", "skipped"]
    assert result.steps[1].detail == f"nothing listens on port {port}"
    assert "journalctl -u ollama" in result.steps[1].hint
    assert result.steps[2].detail == "not checked: step 2 failed"


def test_another_program_on_the_port_is_named():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        name = psutil.Process(server.pid).name()
        url = f"http://127.0.0.1:{port}"
        held = wait_for_ollama(url, runner=ScriptedSystemctl(), budgets=FAST, check_unit=False)
        anyone = wait_for_ollama(url, runner=ScriptedSystemctl(), budgets=FAST, check_unit=False, expect_process=None)
    finally:
        server.terminate()
        server.wait(timeout=5)
    assert statuses(held) == ["skipped", "fail", "skipped"]
    assert held.steps[1].detail == f"port {port} is held by {name} (pid {server.pid}), not ollama"
    # without the name check, the API step finds it is no Ollama: http.server has no /api/version
    assert statuses(anyone) == ["skipped", "ok", "fail"]
    assert anyone.steps[2].detail.startswith("GET /api/version answered HTTP 404")
    assert f"{name} (pid {server.pid})" in anyone.report()


def test_api_answering_500_fails_step_3():
    with OllamaStandIn(version_status=500) as ollama:
        result = wait_for_ollama(
            ollama.url, runner=ScriptedSystemctl(), budgets=Budgets(api=1), expect_process=OWN_NAME
        )
    assert statuses(result) == ["ok", "ok", "fail"]
    assert result.steps[2].detail.startswith("GET /api/version answered HTTP 500: ")
    assert "stand-in: version fails" in result.steps[2].detail
    assert result.version is None


def test_slow_start_within_the_budget():
    ollama = OllamaStandIn().start(delay=1.5)
    with ollama:
        result = wait_for_ollama(
            ollama.url, runner=ScriptedSystemctl(), budgets=Budgets(port=5, api=2), expect_process=OWN_NAME
        )
    assert result.ok, result.report()
    assert result.steps[1].elapsed >= 1.0


def test_slow_start_beyond_the_budget():
    ollama = OllamaStandIn().start(delay=3)
    with ollama:
        started = time.monotonic()
        result = wait_for_ollama(ollama.url, runner=ScriptedSystemctl(), budgets=Budgets(port=1), check_unit=False)
        took = time.monotonic() - started
    assert statuses(result) == ["skipped", "fail", "skipped"]
    assert result.steps[1].detail == f"nothing listens on port {ollama.port}"
    assert took < 2.5


@pytest.mark.parametrize(
    ("is_active", "show", "detail", "hint"),
    [
        ("inactive", "LoadState=masked\nActiveState=inactive", "unit ollama is masked", "sudo systemctl unmask ollama"),
        ("inactive", "LoadState=not-found\nActiveState=inactive", "Ollama is not installed", "sudo inv setup"),
        ("inactive", "LoadState=loaded\nActiveState=inactive", "inactive (not started)", "sudo systemctl start ollama"),
        ("activating", "LoadState=loaded\nActiveState=activating", "still activating after 2 s", "journalctl"),
    ],
)
def test_unit_not_active_gets_the_fitting_hint(is_active, show, detail, hint):
    runner = ScriptedSystemctl(is_active, show=show, journal="Apr 01 gpu1 systemd[1]: nothing to see")
    clock = FakeClock()
    result = wait_for_ollama("http://127.0.0.1:1", runner=runner, budgets=FAST, clock=clock, sleep=clock.sleep)
    assert statuses(result) == ["fail", "skipped", "skipped"]
    assert detail in result.steps[0].detail
    assert hint in result.steps[0].hint
    assert clock.now >= FAST.unit  # it waited the whole budget
    run = [argv for argv, _ in runner.calls]
    assert ["systemctl", "show", "ollama", "-p", "LoadState,ActiveState,SubState,UnitFileState,Result,ExecMainStatus",
            "--no-pager"] in run  # fmt: skip
    assert ["systemctl", "status", "ollama", "--no-pager", "-l"] in run
    assert ["journalctl", "-u", "ollama", "-n", "50", "--no-pager"] in run
    assert all(changes is False for _, changes in runner.calls)
    assert show.splitlines()[0] in result.report()


def test_failed_unit_shows_the_journals_last_error():
    runner = ScriptedSystemctl("failed", show=SHOW_FAILED, journal=JOURNAL_FAILED)
    clock = FakeClock()
    result = wait_for_ollama("http://127.0.0.1:1", runner=runner, budgets=FAST, clock=clock, sleep=clock.sleep)
    step = result.steps[0]
    assert step.status == "fail"
    assert step.detail == (
        "unit ollama failed (Result=exit-code, ExecMainStatus=1): "
        "Error: listen tcp 0.0.0.0:11434: bind: address already in use"
    )
    assert "sudo systemctl restart ollama" in step.hint
    assert clock.now == 0  # a failed unit does not recover by waiting
    assert "status=1/FAILURE" in step.diagnostics


def test_last_error_line_falls_back_to_systemds_lines():
    journal = "x systemd[1]: Starting...\nx systemd[1]: ollama.service: Failed with result 'exit-code'.\n"
    assert last_error_line(journal) == "ollama.service: Failed with result 'exit-code'."
    assert last_error_line("x ollama[1]: all fine") == ""


def test_check_unit_false_skips_step_1():
    runner = ScriptedSystemctl("failed")
    with OllamaStandIn() as ollama:
        result = wait_for_ollama(ollama.url, runner=runner, budgets=FAST, check_unit=False, expect_process=OWN_NAME)
    assert result.ok
    assert statuses(result) == ["skipped", "ok", "ok"]
    assert runner.calls == []


def test_bound_to_loopback_only_while_the_url_is_not():
    ip = non_loopback_ipv4()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with OllamaStandIn(host="127.0.0.1") as ollama:
        result = wait_for_ollama(
            f"http://{ip}:{ollama.port}", runner=ScriptedSystemctl(), budgets=Budgets(port=0.6), check_unit=False
        )
    assert statuses(result) == ["skipped", "fail", "skipped"]
    assert result.steps[1].detail == "bound to 127.0.0.1 only: the override was not applied"
    assert "OLLAMA_HOST=0.0.0.0" in result.steps[1].hint


# --- pulls -----------------------------------------------------------------------------------------------------


def test_pull_streams_progress_and_the_model_appears():
    progress = RecordingProgress()
    with OllamaStandIn(layer_size=4_000_000, chunks=4) as ollama:
        summary = pull_models(
            ollama.url, ["llama3"], sizes_gb={"llama3": 4.7}, free_bytes=lambda: 100 * 10**9, progress=progress
        )
        listed = list(ollama.models)
    assert summary.ok
    assert summary.pulled == ["llama3"]
    assert listed == ["llama3:latest"]
    assert progress.events[0] == ("start", "llama3")
    completed = [event[3] for event in progress.events if event[0] == "update" and event[3] is not None]
    assert completed == [1_000_000, 2_000_000, 3_000_000, 4_000_000]
    assert [event[2] for event in progress.events if event[0] == "update"][-1] == "success"
    assert progress.events[-1] == ("done", "llama3", True, "pulled")


def test_error_line_mid_stream_fails_that_model_and_the_next_is_pulled():
    message = "pull model manifest: file does not exist"
    progress = RecordingProgress()
    with OllamaStandIn(fail_pull={"nosuch": message}) as ollama:
        summary = pull_models(ollama.url, ["nosuch", "phi3"], sizes_gb={}, free_bytes=lambda: 0, progress=progress)
        pulls = list(ollama.pull_requests)
    assert not summary.ok
    assert summary.failed == {"nosuch": message}
    assert summary.pulled == ["phi3"]
    assert pulls == ["nosuch", "phi3"]
    assert ("done", "nosuch", False, message) in progress.events
    assert any(event[:2] == ("update", "nosuch") and event[3] for event in progress.events)  # progress came first


def test_stream_ending_without_success_fails():
    with OllamaStandIn(cut_pull={"gone"}) as ollama:
        summary = pull_models(ollama.url, ["gone"], sizes_gb={}, free_bytes=lambda: 0, progress=NullPullProgress())
        listed = list(ollama.models)
    assert summary.failed == {"gone": "the stream ended before success (last status: pulling 283bb9deef02)"}
    assert listed == []


def test_present_models_are_skipped_without_a_pull_request():
    with OllamaStandIn(models=["llama3", "phi3:latest"]) as ollama:
        summary = pull_models(
            ollama.url, ["llama3:latest", "phi3"], sizes_gb={}, free_bytes=lambda: 0, progress=NullPullProgress()
        )
        requests_made = list(ollama.requests)
    assert summary.skipped == ["llama3:latest", "phi3"]
    assert summary.pulled == [] and summary.ok
    assert requests_made == [("GET", "/api/tags")]


def test_too_little_disk_fails_before_pulling():
    with OllamaStandIn() as ollama:
        summary = pull_models(
            ollama.url,
            ["big:70b", "small"],
            sizes_gb={"big:70b": 40},
            free_bytes=lambda: 5 * 10**9,
            progress=NullPullProgress(),
        )
        pulls = list(ollama.pull_requests)
    assert summary.failed == {"big:70b": "needs 40 GB of disk but only 5.0 GB is free"}
    assert summary.pulled == ["small"]  # size unknown: no check
    assert pulls == ["small"]


def test_connection_refused_fails_each_model():
    url = f"http://127.0.0.1:{free_port()}"
    summary = pull_models(url, ["a", "b"], sizes_gb={}, free_bytes=lambda: 0, progress=NullPullProgress())
    assert set(summary.failed) == {"a", "b"}
    assert summary.failed["a"].startswith("ConnectError: ")
