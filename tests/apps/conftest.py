"""The apps session: the real applications (tests/apps/install.py) configured by `inv configure`'s own code."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.apps import flowise, jupyterhub, litellm_db, mlflow, n8n, openwebui
from tests.apps.install import CACHE, TIMINGS

# By test module, largest first: on a fresh machine the installs (minutes, mostly downloads) run side by side and
# behind the first tests, instead of one after the other in front of each app's tests.
INSTALLS = {
    "test_open_webui": openwebui.install,
    "test_n8n": n8n.install,
    "test_litellm_keys": litellm_db.install,
    "test_mlflow": mlflow.install,
    "test_flowise": flowise.install,
    "test_jupyterhub": jupyterhub.install,
}


@pytest.fixture(scope="session", autouse=True)
def prefetch(request: pytest.FixtureRequest) -> Iterator[None]:
    """The installs of the apps whose tests run, started in the background (three at a time). Each install holds its
    folder's lock, so a test waits for its own app's install alone; a failed install fails the test when the test
    installs again itself, with the install's log."""
    modules = {item.module.__name__.rsplit(".", 1)[-1] for item in request.session.items}
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="install") as pool:
        for module, install in INSTALLS.items():
            if module in modules:
                pool.submit(install)
        yield


def pytest_terminal_summary(terminalreporter) -> None:
    """Each app's install and start time, as the issue asks the session to print them."""
    if not TIMINGS:
        return
    terminalreporter.section("real applications: install and start times")
    terminalreporter.write_line(f"cache: {CACHE}")
    for timing in TIMINGS:
        terminalreporter.write_line(f"{timing.what:<40} {timing.seconds:7.1f} s  {timing.note}")
