"""Terminal output: one rich Console for results (stdout) and one for progress, warnings and errors (stderr).

Nothing printed is parsed as markup (markup=False): a path, a password or an IPv6 URL with brackets or backslashes
shows as it is, in messages and table cells alike; styles are given as Text.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def _say(mark: str, style: str, message: str) -> None:
    err.print(Text.assemble((mark, style), " ", message))


def warn(message: str) -> None:
    _say("warning:", "yellow", message)


def error(message: str) -> None:
    _say("error:", "bold red", message)


def step(message: str) -> None:
    _say("→", "cyan", message)


def ok(message: str) -> None:
    _say("✓", "green", message)
