"""KEY=value files that bash `source`, docker compose `--env-file` and this library all read the same way.

Values are written with POSIX shell quoting (shlex.quote) and read back with shlex, so quotes, spaces and `$` survive
a round trip through `bash -c 'source FILE'` untouched: single-quoted text is never expanded by bash.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def format_env(values: Mapping[str, object], header: str = "") -> str:
    """Render `values` as KEY=value lines in the given order; `header` becomes leading comment lines."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    for key, value in values.items():
        if not _KEY.fullmatch(key):
            raise UserError(f"{key!r} is not a valid environment variable name (letters, digits and _).")
        text = _as_text(value)
        if "\n" in text or "\r" in text or "\0" in text:
            # the value is not shown: it may be a secret
            raise UserError(
                f"The value of {key} holds a line break (or a NUL), which no env file can hold.",
                f"Give {key} as one line (AI_PLATFORM_{key}, --set or the questionnaire).",
            )
        lines.append(f"{key}={shlex.quote(text) if text else ''}")
    return "\n".join(lines) + "\n"


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def parse_env(text: str, source: str = "env file") -> dict[str, str]:
    """Read KEY=value lines as a shell would (quotes removed, nothing expanded); comments and blanks are skipped."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, rest = line.partition("=")
        if not sep or not _KEY.fullmatch(key):
            # the line itself is not shown: in credentials.env it may hold a secret
            raise UserError(f"{source} line {number}: expected KEY=value (a name of letters, digits and _).")
        if key in lines:
            # bash, compose and this reader would each take the last one silently: with secrets, say which is meant
            raise UserError(
                f"{source} line {number}: {key} is set again (first on line {lines[key]}).",
                f"Keep one of the two lines in {source} (the value in use so far is the last one).",
            )
        lines[key] = number
        values[key] = _parse_value(rest, f"{source} line {number}", key)
    return values


def _parse_value(rest: str, where: str, key: str) -> str:
    # One shell word, quotes removed, nothing expanded; a trailing `# comment` is allowed, more words are not.
    lexer = shlex.shlex(rest, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        words = list(lexer)
    except ValueError as exc:
        raise UserError(f"{where}: {exc} in the value of {key} (check its quotes).") from None
    if len(words) > 1 and not rest.split(None, 1)[1].startswith("#"):
        raise UserError(f"{where}: the value of {key} has unquoted spaces; quote it: {key}='...'.")
    return words[0] if words else ""


def count_of(values: Mapping[str, str], key: str, default: int, source: Path) -> int:
    """A whole number of 1 or more that render wrote to an env file (BACKUP_KEEP), or `default` when unset; a
    hand-edited value that is not one is a UserError naming the file, the key and the value."""
    value = values.get(key, "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise UserError(
            f"{source}: {key}={value!r} is not a count (a whole number, 1 or more).",
            f"Keep it with `{INV} settings set {key.lower()}=N`, then `{INV} render` and `{SUDO_INV} deploy` "
            f"(render writes {source.name}); or correct the line in {source}.",
        )
    return int(value)


def read_env(path: Path) -> dict[str, str]:
    """parse_env on a file; a missing file reads as empty, an unreadable one is a UserError (never "empty": a
    credentials store read as empty would make render generate new secrets)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except PermissionError:
        raise UserError(f"No permission to read {path}.", "Run the command with sudo (the file is root's).") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text.", f"Fix or remove {path}.") from None
    except OSError as exc:
        raise UserError(f"Cannot read {path}: {exc.strerror}.") from None
    return parse_env(text, source=str(path))
