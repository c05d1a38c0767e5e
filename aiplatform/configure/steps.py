"""Run configure's steps: service by service, each step's outcome reported as it comes, a failed step stopping
only the rest of its own service."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from aiplatform.configure.facts import Facts
from aiplatform.configure.http import Api
from aiplatform.configure.model import Outcome, StepFailed, StepResult, StepSkipped, WouldDo
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner


@dataclass
class StepContext:
    facts: Facts
    runner: Runner
    state: dict[str, Any] = field(default_factory=dict)  # what one step leaves for the next (sessions, tokens)

    @property
    def dry_run(self) -> bool:
        return self.runner.dry_run

    def api(self, service: str, container: str, timeout: float = 30.0) -> Api:
        """The service's API client, made by its first step and shared by the rest (its session: cookies, token)."""
        if "api" not in self.state:
            self.state["api"] = Api(service, container, self.facts.local_url(container), timeout)
        api: Api = self.state["api"]
        return api

    def act(self, what: str) -> None:
        """Say what the step is about to change; in a dry run the step stops here with "would <what>"."""
        if self.dry_run:
            raise WouldDo(what)


Step = tuple[str, Callable[[StepContext], Outcome]]
Progress = Callable[[StepResult], None]


def run_steps(
    service: str, steps: list[Step], ctx: StepContext, progress: Progress, chained: bool = True
) -> list[StepResult]:
    """Each step in order. `chained`: a step that failed (or, in a dry run, would change something) leaves the
    rest of the service skipped, as they build on it; independent steps (LiteLLM's) all run."""
    results: list[StepResult] = []
    stopped = ""
    for name, body in steps:
        if stopped:
            result = StepResult(service, name, "skipped", f"{stopped} did not finish")
        else:
            try:
                outcome = body(ctx)
                result = StepResult(service, name, outcome.result, outcome.detail)
            except WouldDo as would:
                result = StepResult(service, name, "would do", would.what)
                stopped = f"{name} (dry run)"
            except StepSkipped as skipped:
                result = StepResult(service, name, "skipped", skipped.why)
            except StepFailed as failed:
                result = StepResult(service, name, "FAILED", failed.detail, failed.fix)
                stopped = name
            except UserError as error:  # a missing secret, a command that failed: this step's failure, not the run's
                result = StepResult(service, name, "FAILED", error.message, error.fix)
                stopped = name
        if not chained:
            stopped = ""
        result = masked(result, ctx.facts.secrets.values() if ctx.facts else ())
        results.append(result)
        progress(result)
    return results


MASK = "********"


def masked(result: StepResult, secrets: Iterable[str]) -> StepResult:
    """`result` with every secret of credentials.env blanked out of what it says: an app's answer quoted in a failure
    may echo the request (FastAPI's 422 repeats the body, the admin's password in it)."""
    detail, fix = result.detail, result.fix
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):  # a longer one first
        detail, fix = detail.replace(secret, MASK), fix.replace(secret, MASK)
    return replace(result, detail=detail, fix=fix) if (detail, fix) != (result.detail, result.fix) else result
