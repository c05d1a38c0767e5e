"""The apps session: the real applications (tests/apps/install.py) configured by `inv configure`'s own code."""

from __future__ import annotations

from tests.apps.install import CACHE, TIMINGS


def pytest_terminal_summary(terminalreporter) -> None:
    """Each app's install and start time, as the issue asks the session to print them."""
    if not TIMINGS:
        return
    terminalreporter.section("real applications: install and start times")
    terminalreporter.write_line(f"cache: {CACHE}")
    for timing in TIMINGS:
        terminalreporter.write_line(f"{timing.what:<40} {timing.seconds:7.1f} s  {timing.note}")
