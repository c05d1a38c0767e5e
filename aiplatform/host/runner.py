"""The one place that changes the host: commands (argv lists, echoed before they run) and every write outside
generated/ (files, folders, deletions, through hostfs).

With `dry_run`, a command or a write (with its content) is printed and recorded instead of done, so `--dry-run`
output is the exact plan. Every change is also recorded in `history`, which is what tests assert on. Read-only
queries pass `changes=False`: they run even in a dry run (a plan needs to look at the world) and are not echoed.
No other module imports hostfs.
"""

from __future__ import annotations

import os
import shlex
import signal
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

    def make_dirs(self, root: Path, names: list[str]) -> None:
        """Create `names` under `root` (and root itself) when missing."""
        self.history.append(["mkdir", str(root), *names])
        if self.dry_run:
            self.echo(f"would create folders {', '.join(names)} in {root}")
            return
        hostfs.make_dirs(root, names)

    def backup_and_write(
        self, root: Path, files: dict[str, tuple[bytes, int]], remove: list[str], backup_dir: Path
    ) -> list[str]:
        """Write `files` under root and delete `remove`, each replaced file first copied to `backup_dir`."""
        self.history.append(["apply", str(root), str(len(files)), str(len(remove))])
        if self.dry_run:
            self.echo(f"would write {len(files)} file(s) and remove {len(remove)} in {root} (backups in {backup_dir})")
            return []
        return hostfs.backup_and_write(root, files, remove, backup_dir)

    def remove_tree(self, path: Path) -> None:
        """Delete a folder and everything in it."""
        self.history.append(["rm", "-r", str(path)])
        self.echo(("would delete " if self.dry_run else "delete ") + str(path))
        if not self.dry_run:
            hostfs.remove_tree(path)

    def remove_file(self, path: Path) -> None:
        """Delete one file (nothing when it is not there)."""
        self.history.append(["rm", "-f", str(path)])
        if not self.dry_run:
            hostfs.remove_file(path)

    def stream(
        self,
        argv: Sequence[str | Path],
        *,
        into: Path | None = None,
        source: Path | None = None,
        stdin_text: str | None = None,
        env: Mapping[str, str] | None = None,
        mode: int = 0o600,
        timeout: float | None = None,
    ) -> Result:
        """Run argv with its stdout written to the file `into` (created with `mode`) and/or its stdin read from the
        file `source` (or given as `stdin_text`, e.g. a passphrase): bytes, never held in memory (a database dump).
        A failure is a UserError with its stderr."""
        args = [str(part) for part in argv]
        shown = shlex.join(args) + (f" < {source}" if source else "") + (f" > {into}" if into else "")
        self.history.append([*args, *(["<", str(source)] if source else []), *([">", str(into)] if into else [])])
        self.echo(("would run: " if self.dry_run else "") + shown)
        if self.dry_run:
            return Result(args, 0)
        out = hostfs.open_output(into, mode) if into else subprocess.PIPE
        given = {"input": stdin_text.encode()} if stdin_text is not None else {}
        try:
            with open(source, "rb") if source else open(os.devnull, "rb") as stdin:
                proc = subprocess.run(args, **({} if given else {"stdin": stdin}), **given, stdout=out,  # type: ignore[call-overload]
                                      stderr=subprocess.PIPE, env=None if env is None else dict(env), timeout=timeout,
                                      check=False)  # fmt: skip
        except FileNotFoundError:
            raise UserError(f"`{args[0]}` is not installed (needed for: {shown}).") from None
        except subprocess.TimeoutExpired:
            raise UserError(f"`{shown}` did not finish within {timeout:g} s.") from None
        finally:
            if into:
                os.close(out)
        stdout = proc.stdout.decode(errors="replace") if isinstance(proc.stdout, bytes) else ""
        result = Result(args, proc.returncode, stdout, proc.stderr.decode(errors="replace"))
        if not result.ok:
            detail = result.stderr.strip().splitlines()[-15:]
            raise UserError(f"`{shown}` failed with exit code {result.returncode}:\n" + "\n".join(detail))
        return result

    def make_dir(self, path: Path, mode: int = 0o755) -> None:
        self.history.append(["mkdir", "-m", f"{mode:04o}", str(path)])
        if not self.dry_run:
            hostfs.make_dir(path, mode)

    def rename(self, source: Path, target: Path) -> None:
        self.history.append(["mv", str(source), str(target)])
        self.echo(("would rename " if self.dry_run else "rename ") + f"{source} -> {target}")
        if not self.dry_run:
            hostfs.rename(source, target)

    def attach(self, argv: Sequence[str | Path]) -> int:
        """Run argv on the user's terminal (its stdin, stdout and stderr: a shell, followed logs) and return its exit
        code. Ctrl-C goes to the command, which decides what it means; this process only waits for it to end."""
        args = [str(part) for part in argv]
        self.history.append(args)
        self.echo(("would run: " if self.dry_run else "") + shlex.join(args))
        if self.dry_run:
            return 0
        # a handler that does nothing, not SIG_IGN: an ignored signal stays ignored in the child, a handler does not
        previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
        try:
            return subprocess.run(args, check=False).returncode
        except FileNotFoundError:
            raise UserError(f"`{args[0]}` is not installed (needed for: {shlex.join(args)}).") from None
        finally:
            signal.signal(signal.SIGINT, previous)

    def open_url(self, url: str) -> bool:
        """Open `url` in this desktop's web browser; False when no browser would open it."""
        self.history.append(["open", url])
        self.echo(("would open " if self.dry_run else "open ") + url)
        if self.dry_run:
            return True
        import webbrowser  # only here: it costs start-up time to every other command

        return webbrowser.open(url)

    def start(self, argv: Sequence[str | Path]) -> subprocess.Popen[str] | None:
        """Start a long-running command in the background (None in a dry run); the caller waits for it."""
        args = [str(part) for part in argv]
        self.history.append(args)
        self.echo(("would run: " if self.dry_run else "") + shlex.join(args))
        if self.dry_run:
            return None
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
