"""Terminal output: one rich Console for results (stdout) and one for progress, warnings and errors (stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}")


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")


def step(message: str) -> None:
    err.print(f"[cyan]→[/] {escape(message)}")


def ok(message: str) -> None:
    err.print(f"[green]✓[/] {escape(message)}")
