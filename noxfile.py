"""Test sessions. `nox` runs lint, unit, validate and integration; `nox -s bench` prints the benchmarks.

validate and integration need Debian/Ubuntu and root (or sudo): they install the real tools they check with
(tests/tools/install-tools). integration creates and removes ai-platform containers, so it runs only on a
disposable host: CI=true, or `nox -s integration -- --disposable`.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "unit", "validate", "integration"]
nox.options.reuse_existing_virtualenvs = True

INSTALL_TOOLS = "tests/tools/install-tools"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _install(session: nox.Session, *extra: str) -> None:
    session.install("-e", ".[dev]", *extra)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff on everything, mypy (strict) on the package."""
    _install(session)
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session
def unit(session: nox.Session) -> None:
    """Pure functions, golden files, bad input: no Docker, no root, seconds. `-- --update-golden` refreshes goldens."""
    _install(session)
    session.run("pytest", "tests/unit", *session.posargs)
