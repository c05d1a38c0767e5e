"""What the tasks ask and show while they work: confirmations, the deploy and setup consoles, progress bars.

Everything here talks to the terminal; the tables it shows come from tables.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text

from aiplatform.cli import console, tables
from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError

if TYPE_CHECKING:
    from aiplatform.engine.deploy import Plan
    from aiplatform.host.checks import Check
    from aiplatform.host.setup import Step
    from aiplatform.inputs.new_service import Question
    from aiplatform.manage.changes import MenuRow


class DeployConsole:
    """Deploy's UI on the terminal: preflight table, plan, question, and one line per state change."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.seen: dict[str, str] = {}

    def checks(self, found: list[Check]) -> None:
        console.err.print(tables.checks_table(found))

    def plan(self, plan: Plan) -> None:
        console.out.print(tables.deploy_plan(plan))

    def confirm(self, plan: Plan) -> bool:
        if not self.interactive:
            raise UserError(
                "deploy changes the host and no one is at a terminal to confirm.",
                f"Run `{INV} deploy --yes` (or review with `{INV} deploy --dry-run` first).",
            )
        from rich.prompt import Confirm

        return Confirm.ask("Apply these changes?", default=False, console=console.out)

    def pull_progress(self) -> PullBars:
        """A bar per image deploy pulls before it starts anything (sizes, rate, time left)."""
        return PullBars()

    def progress(self, states: dict[str, str]) -> None:
        for name, state in states.items():
            if self.seen.get(name) != state:
                self.seen[name] = state
                console.err.print(
                    Text.assemble("  ", (f"{name:22}", "bold"), (state, tables.STATUS_STYLE.get(state, "red")))
                )


class PullBars:
    """One rich progress bar per model or image (bytes, speed, ETA); a context manager around rich's Progress."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console.err,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> PullBars:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(None, None, None)

    def start(self, model: str) -> None:
        self.tasks[model] = self.bars.add_task(model, total=None)

    def update(self, model: str, status: str, completed: int | None, total: int | None) -> None:
        self.bars.update(
            self.tasks[model], description=escape(f"{model}: {status[:40]}"), completed=completed or 0, total=total
        )

    def done(self, model: str, ok: bool, message: str) -> None:
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        self.bars.update(self.tasks[model], description=f"{mark} {escape(model)}: {escape(message)}")


class SetupConsole:
    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.last_step = 0

    def plan(self, steps: list[Step]) -> None:
        console.out.print(tables.setup_plan(steps))

    def confirm(self) -> bool:
        if not self.interactive:
            raise UserError(
                "setup changes the host and no one is at a terminal to confirm.",
                f"Run `{SUDO_INV} setup --yes` (or see the plan first with `{INV} setup --dry-run`).",
            )
        from rich.prompt import Confirm

        return Confirm.ask("Apply this plan?", default=False, console=console.out)

    def wait_progress(self, number: int, name: str, elapsed: float, seen: str) -> None:
        if number != self.last_step:
            self.last_step = number
            console.step(f"waiting for Ollama, step {number}/3: {name}")
        elif int(elapsed) % 5 == 0 and elapsed >= 5 and seen:
            console.err.print(f"    {elapsed:4.0f} s: {seen}", markup=False, highlight=False)

    def pull_progress(self) -> PullBars:
        return PullBars()


class ChangeConsole(DeployConsole):
    """`inv add` / `inv remove`: the deploy plan of the change, what --purge deletes, and one question."""

    def purge_plan(self, items: list[tuple[str, int | None]]) -> None:
        console.out.print(tables.purge_table(items))

    def ask(self, question: str) -> bool:
        if not self.interactive:
            raise UserError(
                "this changes the platform and no one is at a terminal to confirm.",
                "Give --yes (see the change first with --dry-run).",
            )
        from rich.prompt import Confirm

        return Confirm.ask(question, default=False, console=console.out)


def confirm(question: str, what: str, yes_command: str, dry_run_command: str) -> None:
    """Ask `question` at a terminal; no answer, or no terminal, is a UserError that changes nothing."""
    if not sys.stdin.isatty():
        raise UserError(
            f"{what} and no one is at a terminal to confirm.",
            f"Run `{yes_command}` (or see what it would do with `{dry_run_command}`).",
        )
    from rich.prompt import Confirm

    if not Confirm.ask(question, default=False, console=console.out):
        raise UserError("Cancelled: nothing was changed.", f"`{yes_command}` does it without asking.")


def ask_text(question: str) -> str:
    from rich.prompt import Prompt

    return Prompt.ask(question, console=console.out).strip()


def choose_service(rows: list[MenuRow]) -> tuple[str, str]:
    """The `inv add` menu at a terminal: ("add", service) | ("compose", path) | ("new", name). Asks again after a
    choice it does not know; Ctrl-D cancels."""
    from rich.prompt import Prompt

    console.out.print(tables.services_menu(rows))
    keys = {str(index): row.name for index, row in enumerate(rows, start=1)}
    while True:
        choice = Prompt.ask("Add which (a number, c, n or q)", console=console.out).strip().lower()
        if choice in keys:
            return "add", keys[choice]
        if choice == "c":
            return "compose", ask_text("Path of your compose file")
        if choice == "n":
            return "new", ask_text("Name of the new service (lower-case letters, digits, dashes)")
        if choice == "q":
            raise UserError("Nothing added.")
        console.error(f"{choice!r} is not one of the choices: a number from 1 to {len(rows)}, c, n or q")


def ask_answer(question: Question, default: str, problem: Callable[[str], str | None]) -> str:
    """One question of the service template at a terminal, asked again until its answer follows the rule."""
    from rich.prompt import Prompt

    if question.choices:
        console.out.print(Text(question.text, style="bold"))
        for value, meaning in question.choices.items():
            console.out.print(Text(f"  {meaning}" if meaning.startswith(value) else f"  {value}: {meaning}"))
    while True:
        text = "  choose" if question.choices else question.text
        answer = Prompt.ask(text, default=default, choices=list(question.choices) or None, console=console.out)
        found = problem(answer.strip())
        if found is None:
            return answer.strip()
        console.error(f"{found}; answer again")
