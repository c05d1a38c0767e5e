"""The one place that runs commands which change the host: argv lists, echoed before they run.

With `dry_run`, a command (or a file write, with its content) is printed and recorded instead of done, so
`--dry-run` output is the exact plan. Every change is also recorded in `history`, which is what tests assert on.
Read-only queries pass `changes=False`: they run even in a dry run (a plan needs to look at the world) and are not
echoed.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.cli import console
from aiplatform.errors import UserError
from aiplatform.host import hostfs


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Runner:
    dry_run: bool = False
    echo: Callable[[str], None] = console.step
    history: list[list[str]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str | Path],
        *,
        check: bool = True,
        changes: bool = True,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run argv and capture its output; a failure with `check` is a UserError showing the command and stderr."""
        args = [str(part) for part in argv]
        if changes:
            self.history.append(args)
            self.echo(("would run: " if self.dry_run else "") + shlex.join(args))
            if self.dry_run:
                return Result(args, 0)
        try:
            proc = subprocess.run(
                args,
                input=stdin,
                capture_output=True,
                text=True,
                env=None if env is None else dict(env),
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            if check:
                raise UserError(f"`{args[0]}` is not installed (needed for: {shlex.join(args)}).") from None
            return Result(args, 127, "", f"{args[0]}: command not found")
        except OSError as exc:  # not executable, a noexec mount, ...
            if check:
                raise UserError(f"Cannot run `{shlex.join(args)}`: {exc.strerror}.") from None
            return Result(args, 126, "", str(exc))
        except subprocess.TimeoutExpired:
            if check:
                raise UserError(f"`{shlex.join(args)}` did not finish within {timeout:g} s.") from None
            return Result(args, 124, "", "timed out")
        result = Result(args, proc.returncode, proc.stdout, proc.stderr)
        if check and not result.ok:
            detail = (result.stderr or result.stdout).strip().splitlines()[-15:]
            raise UserError(f"`{shlex.join(args)}` failed with exit code {result.returncode}:\n" + "\n".join(detail))
        return result

    def write(self, path: Path, data: bytes, mode: int = 0o644) -> None:
        """Write a file on the host (atomically, through hostfs); in a dry run, print its path, mode and content."""
        self.history.append(["write", str(path), f"{mode:04o}"])
        if self.dry_run:
            self.echo(f"would write {path} (mode {mode:04o}):")
            for line in data.decode(errors="replace").splitlines():
                self.echo(f"    {line}")
            return
        self.echo(f"write {path}")
        hostfs.write_file(path, data, mode)

    def start(self, argv: Sequence[str | Path]) -> subprocess.Popen[str] | None:
        """Start a long-running command in the background (None in a dry run); the caller waits for it."""
        args = [str(part) for part in argv]
        self.history.append(args)
        self.echo(("would run: " if self.dry_run else "") + shlex.join(args))
        if self.dry_run:
            return None
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
