"""configure as one call: every enabled service's steps in order — LiteLLM first (its keys and the chat the others
rely on), then each app — declared steps (service.yaml `setup:`) before a service's own module."""

from __future__ import annotations

from collections.abc import Callable

from aiplatform.commands import INV
from aiplatform.configure import declared, dify, flowise, litellm, n8n, openwebui, tailscale
from aiplatform.configure.facts import Facts
from aiplatform.configure.model import Report
from aiplatform.configure.steps import Progress, Step, StepContext, run_steps
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner

# The services whose configuration needs Python (sessions, several dependent calls), in the order they run.
MODULES: dict[str, Callable[[Facts], list[Step]]] = {
    "litellm": litellm.steps,
    "open-webui": openwebui.steps,
    "dify": dify.steps,
    "n8n": n8n.steps,
    "flowise": flowise.steps,
}


# Services whose steps do not build on each other: one that fails or would change something leaves the rest to run.
INDEPENDENT = ("litellm", "tailscale")


def plan(facts: Facts, only: list[str] | None = None) -> list[tuple[str, list[Step]]]:
    """(service, steps) for every enabled service that has any, in the order they run."""
    if only:
        unknown = sorted(set(only) - set(facts.services) - {"tailscale"})
        if unknown:
            raise UserError(
                f"--only names {', '.join(unknown)}, not enabled in {facts.root} ({', '.join(facts.services)}).",
                f"`{INV} info` lists what runs.",
            )
    order = [name for name in MODULES if facts.enabled(name)]
    order += [name for name in facts.services if name not in order]
    found = []
    for name in order:
        if only and name not in only:
            continue
        spec = facts.catalog.services.get(name)
        steps = declared.steps(spec, facts) if spec else []
        if name in MODULES:
            steps += MODULES[name](facts)
        if steps:
            found.append((name, steps))
    if not only or "tailscale" in only:
        found.append(("tailscale", tailscale.steps(facts)))
    return found


def run_configure(facts: Facts, runner: Runner, progress: Progress, only: list[str] | None = None) -> Report:
    report = Report()
    for service, steps in plan(facts, only):
        chained = service not in INDEPENDENT
        report.steps += run_steps(service, steps, StepContext(facts, runner), progress, chained)
    return report
