"""The rendered jupyterhub_config.py run by the real JupyterHub (the release the catalog's image pins, installed from
PyPI by `nox -s validate`) behind the real configurable-http-proxy (npm): the admin and a user sign in through the
hub's own login form with the passwords of credentials.env, and a wrong password is refused.

What the test changes in the rendered config (a second config file loads it, then overrides): a local spawner instead
of DockerSpawner (no Docker engine here, and nobody is spawned: the test only signs in), SQLite instead of Postgres,
the cookie secret in a temp folder, and every port on 127.0.0.1 (free ones). Authentication is left as rendered."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from aiplatform.envfile import parse_env
from tests.serving import serving
from tests.standins.ollama_api import free_port

from .conftest import render_scenario, require

OVERRIDES = """\
c = get_config()  # noqa: F821
load_subconfig({rendered!r})  # noqa: F821

# The test's changes (see the module docstring); authentication stays as rendered.
c.JupyterHub.spawner_class = "simple"  # jupyterhub.spawner.SimpleLocalProcessSpawner, not DockerSpawner
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.hub_connect_ip = "127.0.0.1"
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    base = tmp_path_factory.mktemp("jupyterhub")
    rendered = render_scenario("everything-domain-letsencrypt", base)
    credentials = parse_env((rendered / "config/credentials.env").read_text())
    with real_hub(rendered / "config/jupyterhub/jupyterhub_config.py", credentials, base) as url:
        yield url, credentials


@contextmanager
def real_hub(config: Path, credentials: dict[str, str], work: Path) -> Iterator[str]:
    jupyterhub, chp = require("jupyterhub"), require("configurable-http-proxy")
    port = free_port()
    test_config = work / "test_config.py"
    test_config.write_text(
        OVERRIDES.format(
            rendered=str(config),
            port=port,
            hub_port=free_port(),
            api_port=free_port(),
            cookie_secret=str(work / "cookie_secret"),
            chp=chp,
        )
    )
    environ = {
        **os.environ,
        **{name: credentials[name] for name in credentials if name.startswith(("JUPYTERHUB_", "LITELLM_KEY_"))},
        "JUPYTERHUB_DB_URL": f"sqlite:///{work / 'jupyterhub.sqlite'}",
    }
    url = f"http://127.0.0.1:{port}"
    argv = [jupyterhub, "-f", str(test_config)]
    with serving("jupyterhub", argv, f"{url}/hub/health", work / "jupyterhub.log", env=environ, cwd=work, timeout=60):
        yield url


@contextmanager
def sign_in(url: str, username: str, password: str) -> Iterator[tuple[httpx.Client, httpx.Response]]:
    """The login form as a browser fills it in (its _xsrf field and cookie): (the client with the session cookies
    the hub set, the hub's answer to the form)."""
    with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as client:
        page = client.get("/hub/login")
        assert page.status_code == 200, page.text
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert xsrf, "no _xsrf field in the login form"
        form = {"username": username, "password": password, "_xsrf": xsrf.group(1)}
        yield client, client.post("/hub/login", data=form)


def signed_in(answer: httpx.Response) -> bool:
    """The hub redirects a signed-in user away from the login page; a refused one gets the form again (403)."""
    return answer.status_code == 302 and "/hub/login" not in answer.headers.get("location", "")


def test_the_admin_signs_in_with_the_admin_password_and_is_an_admin(hub):
    url, credentials = hub
    with sign_in(url, "admin", credentials["JUPYTERHUB_ADMIN_PASSWORD"]) as (client, answer):
        assert signed_in(answer), answer.text[-500:]
        assert client.get("/hub/admin").status_code == 200  # the admin page: admins only


def test_any_user_signs_in_with_the_shared_user_password(hub):
    # The decision (templates/services/jupyterhub/jupyterhub_config.py.j2): allow_all, so anyone given the shared
    # password (credentials.env JUPYTERHUB_USER_PASSWORD) signs in under a name of their choosing, not as an admin.
    url, credentials = hub
    with sign_in(url, "alice", credentials["JUPYTERHUB_USER_PASSWORD"]) as (client, answer):
        assert signed_in(answer), answer.text[-500:]
        assert client.get("/hub/admin").status_code == 403


def test_wrong_passwords_are_refused(hub):
    url, credentials = hub
    for username, password in (
        ("admin", credentials["JUPYTERHUB_USER_PASSWORD"]),  # the admin only with the admin's password
        ("alice", "not-the-password-" + "x" * 32),
    ):
        with sign_in(url, username, password) as (_, answer):
            assert answer.status_code == 403 and not signed_in(answer), (username, answer.status_code)
