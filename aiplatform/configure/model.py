"""What configure reports: one result per step, and the steps' shared way to say what happened.

A step is a function of a StepContext. It looks first; when the state already holds it returns `already(...)` (or
`ok(...)` for a check that changes nothing), else it calls `ctx.act(what)` before changing anything — in a dry run
that stops the step with "would ..." — and returns `done(...)`. A problem the owner can fix raises StepFailed with
the reason and the fix; a service that does not answer raises it too (http.Api does), naming the hop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Result = Literal["done", "already done", "ok", "skipped", "would do", "FAILED"]
CHANGES: tuple[Result, ...] = ("done",)


@dataclass
class StepResult:
    service: str
    step: str
    result: Result
    detail: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Report:
    steps: list[StepResult] = field(default_factory=list)
    logins: list[dict[str, Any]] = field(default_factory=list)  # filled by the caller from `inv info`

    @property
    def ok(self) -> bool:
        return not any(step.result == "FAILED" for step in self.steps)

    @property
    def changed(self) -> list[StepResult]:
        return [step for step in self.steps if step.result in CHANGES]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "steps": [step.as_dict() for step in self.steps]}


class StepFailed(Exception):
    """A step could not do its job: `detail` says why, `fix` what to do about it."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


class StepSkipped(Exception):
    """A step that cannot run here and is not a failure of the platform (no key given, no internet)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class WouldDo(Exception):
    """Raised by StepContext.act in a dry run: the step stops before its first change."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass
class Outcome:
    result: Result
    detail: str = ""


def done(detail: str = "") -> Outcome:
    return Outcome("done", detail)


def already(detail: str = "") -> Outcome:
    return Outcome("already done", detail)


def ok(detail: str = "") -> Outcome:
    return Outcome("ok", detail)
