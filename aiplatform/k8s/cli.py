"""The Kubernetes target of `inv diff`, `inv deploy`, `inv status` and `inv setup --k3s-*`, as tasks.py calls them:
each builds generated/k8s/ with kubectl, runs one library function and prints its result."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from invoke.exceptions import Exit

from aiplatform.cli import console, prompts
from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.k8s import apply, k3s
from aiplatform.k8s.kubectl import Kubectl
from aiplatform.k8s.status import k8s_status, status_lines

TARGETS = ("compose", "k8s")


def check_target(target: str) -> None:
    """--target: compose (the default) or k8s; anything else a UserError."""
    if target not in TARGETS:
        raise UserError(f"--target {target!r}: expected one of {', '.join(TARGETS)}.")


def tree(out: Path) -> Path:
    return out / "k8s"


def _say(line: str) -> None:
    console.err.print(f"  {line}", markup=False, highlight=False)


def _plan(out: Path, runner: Runner) -> tuple[Kubectl, apply.Plan]:
    kubectl = Kubectl(runner)
    return kubectl, apply.make_plan(kubectl.build(tree(out)), tree(out))


def diff(out: Path) -> None:
    """`kubectl diff --server-side` of the render: exit 0 same, 1 differs (as kubectl), 2 when it could not tell."""
    kubectl, plan = _plan(out, Runner())
    differs, text = apply.diff(kubectl, plan)
    if not differs:
        console.out.print(f"The cluster matches {tree(out)}: nothing to apply.")
        return
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    console.out.print(f"`{SUDO_INV} deploy --target k8s` applies it (kubectl masks Secret values in this diff).")
    raise Exit(code=1)


def deploy(out: Path, yes: bool, dry_run: bool, timeout: int | None) -> None:
    """Show the plan, ask (unless --yes or a dry run), apply tier by tier, wait, prune; print what was done."""
    kubectl, plan = _plan(out, Runner(dry_run=dry_run))
    console.out.print("\n".join(apply.plan_lines(plan)), markup=False, highlight=False)
    if not (yes or dry_run):
        prompts.confirm(
            "Apply these objects to the cluster?",
            "deploy changes the cluster",
            f"{SUDO_INV} deploy --target k8s --yes",
            f"{INV} deploy --target k8s --dry-run",
        )
    result = apply.deploy(kubectl, plan, apply.DEFAULT_TIMEOUT if timeout is None else timeout, _say)
    if dry_run:
        console.out.print(
            "Dry run: nothing was applied and the cluster was not asked. A deploy would apply each tier above in turn "
            "(server-side), wait for it, then prune the tool's labelled objects the render no longer has; "
            f"`{INV} diff --target k8s` compares with the cluster."
        )
        return
    console.out.print(f"Applied tiers {', '.join(result.applied)}: every workload ready.")
    if result.pruned:
        console.out.print(f"Pruned (no longer in the render): {', '.join(result.pruned)}")
    if result.kept:
        console.warn(
            f"Kept with their data, though the render no longer has them: {', '.join(result.kept)} "
            f"(`kubectl -n {kubectl.namespace} delete {result.kept[0]}` deletes one and its data)."
        )


def status(out: Path, json_: bool) -> None:
    """Per service: its workloads' ready/desired and tier; orphans. Exit 1 when one is not ready."""
    kubectl, plan = _plan(out, Runner())
    rows, orphans = k8s_status(kubectl, plan)
    if json_:
        sys.stdout.write(json.dumps({"workloads": [r.as_dict() for r in rows], "orphans": orphans}, indent=2) + "\n")
    else:
        console.out.print("\n".join(status_lines(rows, orphans)), markup=False, highlight=False)
    if not all(row.ok for row in rows):
        raise Exit(code=1)


def setup(server_role: bool, agent_role: bool, server: str | None, token_file: str | None, airgap: str | None,
          yes: bool, dry_run: bool, gpu: Callable[[], bool]) -> None:  # fmt: skip
    """`inv setup --k3s-server` / `--k3s-agent --server ADDR`: the k3s install, printed, then run with consent."""
    if server_role == agent_role:
        raise UserError(
            "--k3s-server or --k3s-agent (one of them): "
            + ("a host is one or the other." if server_role else "--server, --token-file and --airgap go with one."),
            f"`{SUDO_INV} setup --k3s-server` on the first box, `{SUDO_INV} setup --k3s-agent --server ADDR "
            "--token-file FILE` on the others.",
        )
    options = k3s.K3sOptions(
        role="server" if server_role else "agent",
        server=server or "",
        token_file=Path(token_file) if token_file else None,
        airgap=Path(airgap) if airgap else None,
    )
    ui = prompts.SetupConsole(sys.stdin.isatty())
    steps = k3s.install(options, Runner(dry_run=dry_run), gpu(), ui.plan, ui.confirm, yes)
    if any(step.errors for step in steps):
        raise Exit(code=1)
    if dry_run:
        console.out.print("Dry run: nothing was changed.")
    elif any(step.actions for step in steps):
        console.ok(f"k3s {options.role} installed ({k3s.K3S_VERSION}).")
