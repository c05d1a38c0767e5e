"""The one error a user can cause: it carries a message and the command that fixes it.

Library code raises UserError for anything the user can fix (bad input, a missing tool, a stale tree). tasks.py
turns it into a red paragraph and its exit code (1 unless given, never 0: an error always exits non-zero); any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: `message` says what is wrong, `fix` says what to run or change."""

    def __init__(self, message: str, fix: str = "", exit_code: int = 1) -> None:
        if exit_code == 0:  # printed as an error: a script must be able to tell it from success
            raise ValueError(f"a UserError exits non-zero: {message}")
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message}\n{self.fix}" if self.fix else self.message
