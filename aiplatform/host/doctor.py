"""inv doctor: the read-only checks of setup and deploy together, each OK / WARN / FAIL with its hint."""

from __future__ import annotations

from pathlib import Path

from aiplatform.commands import INV, SUDO_INV
from aiplatform.engine.docker import Docker
from aiplatform.engine.project import load_project
from aiplatform.errors import UserError
from aiplatform.host import checks
from aiplatform.host.checks import Check
from aiplatform.host.nodes import node_checks, node_states
from aiplatform.host.ollama import Budgets, wait_for_ollama
from aiplatform.host.runner import Runner
from aiplatform.host.setup import systemd_running

# Short budgets: doctor looks at the host as it is, it does not wait for a start.
DOCTOR_BUDGETS = Budgets(unit=3.0, port=3.0, api=5.0)


def nvidia_check(runner: Runner, docker_ok: bool) -> Check:
    """With a GPU: the toolkit and Docker's nvidia runtime; "installed but never configured" is named."""
    toolkit = (
        runner.run(
            ["dpkg-query", "-W", "-f", "${db:Status-Status}", "nvidia-container-toolkit"], check=False, changes=False
        ).stdout.strip()
        == "installed"
    )
    runtimes = runner.run(["docker", "info", "--format", "{{json .Runtimes}}"], check=False, changes=False).stdout
    if docker_ok and "nvidia" in runtimes:
        return Check("nvidia runtime", "ok", "docker info lists the nvidia runtime")
    if toolkit:
        return Check(
            "nvidia runtime",
            "fail",
            "nvidia-container-toolkit is installed but Docker's nvidia runtime was never configured",
            "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker",
        )
    return Check("nvidia runtime", "fail", "nvidia-container-toolkit is not installed", f"Run `{SUDO_INV} setup`.")


def run_doctor(
    *, runner: Runner, root: Path, out: Path, gpu: bool, ollama_url: str | None, ollama_port: int
) -> list[Check]:
    docker = Docker(runner)
    found = [checks.engine(docker)]
    docker_ok = found[0].status == "ok"
    found.append(checks.compose(docker))  # the plugin answers `version` without an engine
    if gpu:
        found.append(nvidia_check(runner, docker_ok))
    url = ollama_url or f"http://127.0.0.1:{ollama_port}"
    check_unit = ollama_url is None and systemd_running()
    wait = wait_for_ollama(
        url,
        runner=runner,
        budgets=DOCTOR_BUDGETS,
        check_unit=check_unit,
        expect_process="ollama" if ollama_url is None else None,
    )
    for step in wait.steps:
        status = {"ok": "ok", "fail": "fail", "skipped": "warn"}[step.status]
        if step.status == "skipped" and step.number == 1 and not check_unit:
            status = "ok" if wait.ok else "warn"
        found.append(Check(f"ollama {step.number}: {step.name}", status, step.detail, step.hint))
    try:
        project = load_project(out)
    except UserError:
        found.append(Check("ports", "warn", f"no rendered project in {out}", f"Run `{INV} render` to know the ports."))
    else:
        found += checks.ports(project, docker.containers() if docker_ok else [])
    found.append(checks.disk(root))
    found += node_checks(node_states(out))
    if (root / ".aiplatform.json").is_file():  # deployed: its data is worth a backup
        found.append(checks.last_backup(root))
    for legacy in checks.legacy_roots():
        found.append(
            Check(
                "legacy root",
                "warn",
                f"{legacy} (from the original scripts) exists",
                f"Not used by this tool; move its data over, then `{SUDO_INV} cleanup --root {legacy} --purge`.",
            )
        )
    return found
