"""Wait for the host's Ollama, saying which step failed and why, then pull models; nothing here prints.

The original setup gave up with "Ollama API did not respond after 30 attempts" and no reason. Here the wait is three
steps with their own time budgets (unit active, port listening, API answering); a failed step carries what was seen,
the fix and raw diagnostics, and `WaitResult.report()` is the text setup saves to logs/.
"""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
import ollama

from aiplatform.commands import SUDO_INV
from aiplatform.host.net import is_local, is_loopback, listeners
from aiplatform.host.runner import Runner

POLL_INTERVAL = 0.5  # seconds between attempts: quick to notice a slow start, light on a busy host
UNIT_STEP, PORT_STEP, API_STEP = "systemd unit active", "port listening", "API answers"
OVERRIDE = "/etc/systemd/system/ollama.service.d/override.conf"
SHOW_PROPERTIES = "LoadState,ActiveState,SubState,UnitFileState,Result,ExecMainStatus"
ERROR_WORDS = ("error", "fatal", "panic", "fail", "denied", "cannot", "unable", "no such")

Status = Literal["ok", "fail", "skipped"]
WaitProgress = Callable[[int, str, float, str], None]  # step number, step name, seconds in the step, what was seen
Attempt = Callable[[float], tuple[str, str]]  # seconds left -> ("ok" | "wait" | "stop", what was seen)


@dataclass(frozen=True)
class Budgets:
    """Seconds each step may take: a first start may unpack GPU libraries before it listens."""

    unit: float = 60.0
    port: float = 30.0
    api: float = 60.0


DEFAULT_BUDGETS = Budgets()


@dataclass
class StepResult:
    number: int
    name: str
    status: Status
    detail: str
    hint: str = ""
    diagnostics: str = ""
    elapsed: float = 0.0


@dataclass
class WaitResult:
    ok: bool
    steps: list[StepResult]
    version: str | None = None
    url: str = ""

    def report(self) -> str:
        """Every step with what was seen, the fix and the raw diagnostics: the text for a log file."""
        lines = [f"Ollama at {self.url}: " + (f"ready, version {self.version}" if self.ok else "NOT ready")]
        for step in self.steps:
            took = "" if step.status == "skipped" else f" after {step.elapsed:.1f} s"
            lines.append(f"[{step.number}] {step.name}: {step.status}{took}: {step.detail}")
            if step.hint:
                lines.append(f"    fix: {step.hint}")
            lines += [f"    {line}".rstrip() for line in step.diagnostics.rstrip().splitlines()]
        return "\n".join(lines) + "\n"


@dataclass
class _Poller:
    progress: WaitProgress | None
    clock: Callable[[], float]
    sleep: Callable[[float], None]

    def run(self, number: int, name: str, budget: float, attempt: Attempt) -> tuple[str, str, float]:
        """Repeat `attempt` until it settles ("ok" or "stop") or the budget is spent; returns state, seen, elapsed."""
        start = self.clock()
        while True:
            state, seen = attempt(max(budget - (self.clock() - start), 0.1))
            elapsed = self.clock() - start
            if self.progress is not None:
                self.progress(number, name, elapsed, seen)
            if state != "wait" or elapsed >= budget:
                return state, seen, elapsed
            self.sleep(min(POLL_INTERVAL, budget - elapsed))


def wait_for_ollama(
    url: str,
    *,
    runner: Runner,
    budgets: Budgets = DEFAULT_BUDGETS,
    check_unit: bool = True,
    unit: str = "ollama",
    expect_process: str | None = "ollama",
    progress: WaitProgress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitResult:
    """Wait for the unit, then the port, then the API; each step runs only if the one before did not fail.

    `check_unit=False` skips step 1 (no systemd, or a remote URL). `expect_process` is the process name that must hold
    a local port (None: any); a name this user cannot see is not held against it.
    """
    poller = _Poller(progress, clock, sleep)
    if check_unit:
        steps = [_unit_step(poller, runner, unit, budgets.unit)]
    else:
        steps = [StepResult(1, UNIT_STEP, "skipped", "not checked (no systemd here, or a remote URL)")]
    version = None
    if steps[-1].status != "fail":
        steps.append(_port_step(poller, url, unit, expect_process, budgets.port))
    if steps[-1].status == "ok":
        api, version = _api_step(poller, url, unit, budgets.api)
        steps.append(api)
    failed = len(steps)
    for number, name in list(enumerate((UNIT_STEP, PORT_STEP, API_STEP), 1))[failed:]:
        steps.append(StepResult(number, name, "skipped", f"not checked: step {failed} failed"))
    return WaitResult(all(step.status != "fail" for step in steps), steps, version, url)


def _unit_step(poller: _Poller, runner: Runner, unit: str, budget: float) -> StepResult:
    def attempt(_left: float) -> tuple[str, str]:
        result = runner.run(["systemctl", "is-active", unit], changes=False, check=False)
        state = result.stdout.strip()
        if result.ok:
            return "ok", state
        # a failed unit needs a fix, and an empty answer means systemctl itself cannot answer: waiting changes neither
        return ("stop" if state in ("failed", "") else "wait"), state or (result.stderr.strip() or "no answer")

    state, seen, elapsed = poller.run(1, UNIT_STEP, budget, attempt)
    if state == "ok":
        return StepResult(1, UNIT_STEP, "ok", f"{unit} is active", elapsed=elapsed)
    show, status, journal = (
        runner.run(argv, changes=False, check=False)
        for argv in (  # what `systemctl status` hides: the properties, and the log's last lines
            ["systemctl", "show", unit, "-p", SHOW_PROPERTIES, "--no-pager"],
            ["systemctl", "status", unit, "--no-pager", "-l"],
            ["journalctl", "-u", unit, "-n", "50", "--no-pager"],
        )
    )
    props = dict(line.split("=", 1) for line in show.stdout.splitlines() if "=" in line)
    detail, hint = _unit_verdict(unit, seen, budget, props, journal.stdout)
    diagnostics = "\n\n".join(
        f"$ {shlex.join(r.argv)}  (exit {r.returncode})\n{r.stdout}{r.stderr}".rstrip() for r in (show, status, journal)
    )
    return StepResult(1, UNIT_STEP, "fail", detail, hint, diagnostics, elapsed)


def _unit_verdict(unit: str, seen: str, budget: float, props: dict[str, str], journal: str) -> tuple[str, str]:
    """What the unit's state means and the command that fixes it."""
    load, active = props.get("LoadState", ""), props.get("ActiveState", seen)
    if not props:
        return f"systemctl cannot answer: {seen}", "Without systemd, start `ollama serve` yourself (no unit check)."
    if load == "masked":
        return f"unit {unit} is masked", f"sudo systemctl unmask {unit} && sudo systemctl start {unit}"
    if load == "not-found":
        return f"unit {unit} does not exist: Ollama is not installed", f"Install it: `{SUDO_INV} setup`."
    if active == "failed":
        why = f"Result={props.get('Result', '?')}, ExecMainStatus={props.get('ExecMainStatus', '?')}"
        last = last_error_line(journal) or "the journal shows no error line"
        return f"unit {unit} failed ({why}): {last}", f"Fix that, then `sudo systemctl restart {unit}`."
    if active == "inactive":
        return f"unit {unit} is inactive (not started)", f"sudo systemctl start {unit}"
    return f"unit {unit} is still {active} after {budget:g} s", f"Watch it: `journalctl -u {unit} -f`."


def last_error_line(journal: str) -> str:
    """The last journal line that reads like an error, preferring the service's own lines to systemd's summary."""
    errors = [line for line in journal.splitlines() if any(word in line.lower() for word in ERROR_WORDS)]
    own = [line for line in errors if "systemd[" not in line]
    picked = (own or errors or [""])[-1]
    return picked.split("]: ", 1)[-1].strip()  # drop "Apr 01 10:00:00 host ollama[812]: "


def _port_step(poller: _Poller, url: str, unit: str, expect: str | None, budget: float) -> StepResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)

    def attempt(left: float) -> tuple[str, str]:
        try:
            with socket.create_connection((host, port), timeout=min(1.0, left)):
                return "ok", f"{host}:{port} accepts connections"
        except OSError as exc:
            return "wait", f"{host}:{port}: {type(exc).__name__}: {exc}"

    state, seen, elapsed = poller.run(2, PORT_STEP, budget, attempt)
    local = is_local(host)
    held = listeners(port) if local else []
    diagnostics = "\n".join([seen] + [f"listening on {item.ip}:{port}: {item.holder}" for item in held])
    if state == "ok":
        # only a visible name counts against the holder: without root another user's process has none
        strangers = [item for item in held if expect is not None and item.name is not None and expect not in item.name]
        if strangers and len(strangers) == len(held):
            who = ", ".join(item.holder for item in strangers)
            hint = f"Stop it, or give Ollama another port (setting ollama_port, then `{SUDO_INV} setup`)."
            detail = f"port {port} is held by {who}, not {expect}"
            return StepResult(2, PORT_STEP, "fail", detail, hint, diagnostics, elapsed)
        return StepResult(2, PORT_STEP, "ok", seen, diagnostics=diagnostics, elapsed=elapsed)
    if not held and local:
        detail, hint = f"nothing listens on port {port}", f"Why Ollama does not listen: `journalctl -u {unit} -n 50`."
    elif not held:
        detail, hint = f"{seen} (another machine: who listens is unknown)", "Check Ollama and the firewall there."
    elif not is_loopback(host) and all(is_loopback(item.ip) for item in held):
        detail = f"bound to {held[0].ip} only: the override was not applied"
        hint = f"{OVERRIDE} sets OLLAMA_HOST=0.0.0.0:{port}: run `sudo systemctl daemon-reload`, restart {unit}."
    else:
        where = ", ".join(f"{item.ip} by {item.holder}" for item in held)
        detail, hint = f"port {port} is held ({where}) but {seen}", "Check the firewall and OLLAMA_HOST in " + OVERRIDE
    return StepResult(2, PORT_STEP, "fail", detail, hint, diagnostics, elapsed)


def _api_step(poller: _Poller, url: str, unit: str, budget: float) -> tuple[StepResult, str | None]:
    found: dict[str, Any] = {}
    base = url.rstrip("/")
    # the host's own Ollama is never behind a proxy: HTTP(S)_PROXY in setup's environment must not intercept it
    with httpx.Client(trust_env=False) as session:

        def attempt(left: float) -> tuple[str, str]:
            for path, key in (("/api/version", "version"), ("/api/tags", "models")):
                problem = _get_json(session, base, path, key, max(0.5, min(5.0, left)), found)
                if problem:
                    return "wait", problem
            return "ok", f"version {found['version']}, {len(found['models'])} model(s) present"

        state, seen, elapsed = poller.run(3, API_STEP, budget, attempt)
    if state == "ok":
        return StepResult(3, API_STEP, "ok", seen, elapsed=elapsed), str(found["version"])
    hint = "Something other than Ollama answers on this port." if "JSON" in seen else f"`journalctl -u {unit} -n 50`"
    return StepResult(3, API_STEP, "fail", seen, hint, elapsed=elapsed), found.get("version")


def _get_json(session: httpx.Client, base: str, path: str, key: str, timeout: float, found: dict[str, Any]) -> str:
    """GET base+path and store body[key] in `found`; returns what went wrong, or "" when it worked."""
    try:
        response = session.get(base + path, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"GET {path} failed: {type(exc).__name__}: {_excerpt(str(exc))}"
    if response.status_code != 200:
        return f"GET {path} answered HTTP {response.status_code}: {_excerpt(response.text)}"
    try:
        body = response.json()
    except ValueError:
        return f"GET {path} answered HTTP 200 but not JSON: {_excerpt(response.text)}"
    if not isinstance(body, dict) or key not in body:
        return f'GET {path} answered JSON without "{key}": {_excerpt(response.text)}'
    found[key] = body[key]
    return ""


def _excerpt(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


class PullProgress(Protocol):
    """Receives a pull's progress: start and done once per model (skipped ones too), update per streamed part."""

    def start(self, model: str) -> None: ...
    def update(self, model: str, status: str, completed: int | None, total: int | None) -> None: ...
    def done(self, model: str, ok: bool, message: str) -> None: ...


class NullPullProgress:
    """A PullProgress that shows nothing (for tests and --quiet)."""

    def start(self, model: str) -> None: ...
    def update(self, model: str, status: str, completed: int | None, total: int | None) -> None: ...
    def done(self, model: str, ok: bool, message: str) -> None: ...


@dataclass
class PullSummary:
    pulled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already present
    failed: dict[str, str] = field(default_factory=dict)  # model -> reason

    @property
    def ok(self) -> bool:
        return not self.failed


def pull_models(
    url: str,
    models: Sequence[str],
    *,
    sizes_gb: Mapping[str, float],
    free_bytes: Callable[[], int],
    progress: PullProgress,
    client: ollama.Client | None = None,
) -> PullSummary:
    """Pull each model not yet present; a model that fails is recorded and the next one is tried."""
    # trust_env=False: as for the wait, a proxy from the environment must not stand between us and our own Ollama.
    # Only connecting has a time limit: verifying a large model's digest can keep the stream silent for minutes.
    client = client or ollama.Client(host=url, timeout=httpx.Timeout(None, connect=10.0), trust_env=False)
    present = _present(client)
    summary = PullSummary()
    for model in models:
        progress.start(model)
        if _names(model) & present:
            summary.skipped.append(model)
            progress.done(model, True, "already present")
            continue
        reason = _too_little_disk(sizes_gb.get(model), free_bytes) or _pull_one(client, model, progress)
        if reason:
            summary.failed[model] = reason
        else:
            summary.pulled.append(model)
        progress.done(model, not reason, reason or "pulled")
    return summary


def _too_little_disk(size_gb: float | None, free_bytes: Callable[[], int]) -> str:
    """Why the disk cannot hold a model of `size_gb` (decimal GB, as Ollama shows sizes), or "" (also: size unknown)."""
    free = free_bytes() if size_gb is not None else 0
    if size_gb is None or free >= size_gb * 1e9:
        return ""
    return f"needs {size_gb:g} GB of disk but only {free / 1e9:.1f} GB is free"


def _names(name: str) -> set[str]:
    """A model's name with and without ":latest": Ollama lists "llama3:latest" for a pull of "llama3"."""
    if ":" not in name.rsplit("/", 1)[-1]:
        return {name, f"{name}:latest"}
    return {name, name.removesuffix(":latest")}


def _present(client: ollama.Client) -> set[str]:
    """Names of the models already pulled; empty when the list fails (each pull then says why it fails)."""
    try:
        listed = client.list().models
    except (ollama.ResponseError, ConnectionError, httpx.HTTPError, ValueError):
        return set()
    # the client's ListResponse keeps "model" only ("name" is dropped by its pydantic model); both hold the same name
    return {name for item in listed if item.model for name in _names(item.model)}


def _pull_one(client: ollama.Client, model: str, progress: PullProgress) -> str:
    """Stream one pull; returns why it failed, or "" when Ollama said "success"."""
    last = ""
    try:
        for part in client.pull(model, stream=True):
            last = part.status or ""
            # the client raises on an {"error"} line; a status that says error would be the same failure in disguise
            if last.lower().startswith("error"):
                return last
            progress.update(model, last, part.completed, part.total)
    except ollama.ResponseError as exc:
        # HTTP errors carry their status; an {"error"} line in a 200 stream has status_code -1
        return exc.error if exc.status_code == -1 else f"HTTP {exc.status_code}: {exc.error}"
    except (ConnectionError, httpx.HTTPError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except ValueError as exc:  # a line that is not JSON, or JSON that is not a progress part: not Ollama
        return f"unexpected answer: {_excerpt(str(exc))}"
    return "" if last == "success" else f"the stream ended before success (last status: {last or 'none'})"
