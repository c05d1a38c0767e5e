"""The real JupyterHub (tests/apps/jupyterhub.py: the catalog's release from the registry, the real
configurable-http-proxy on Node 24) started with the rendered jupyterhub_config.py and its users in the real Postgres:
the admin signs in through the hub's own login form with the password of credentials.env and is an admin, any other
name signs in with the shared user password and is not, wrong passwords are refused, and the hub keeps its users in
the rendered Postgres database. The spawner is swapped for a local one (no Docker engine here; nobody is spawned):
the rendered DockerSpawner settings are checked against the dockerspawner release the image installs instead."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from aiplatform.envfile import read_env
from tests.apps.jupyterhub import Hub, jupyterhub, unknown_settings
from tests.apps.postgres import Postgres, postgres_for
from tests.configure_platform import deploy_files


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[tuple[Path, Postgres, Hub]]:
    work = tmp_path_factory.mktemp("jupyterhub")
    _, root = deploy_files(work, services=["jupyterhub"], privileged_services=["jupyterhub"])
    with postgres_for(root, work / "postgres") as postgres, jupyterhub(root, postgres, work / "hub") as hub:
        yield root, postgres, hub


@pytest.fixture(scope="module")
def credentials(platform) -> dict[str, str]:
    return read_env(platform[0] / "config/credentials.env")


@contextmanager
def sign_in(url: str, username: str, password: str) -> Iterator[tuple[httpx.Client, httpx.Response]]:
    """The login form as a browser fills it in (its _xsrf field and cookie): (the client with the cookies the hub
    set, the hub's answer to the form)."""
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        page = client.get("/hub/login")
        assert page.status_code == 200, page.text
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert xsrf, "no _xsrf field in the login form"
        yield client, client.post("/hub/login", data={"username": username, "password": password, "_xsrf": xsrf[1]})


def signed_in(answer: httpx.Response) -> bool:
    """The hub redirects a signed-in user away from the login page; a refused one gets the form again (403)."""
    return answer.status_code == 302 and "/hub/login" not in answer.headers.get("location", "")


def users_in_postgres(postgres: Postgres, credentials: dict[str, str]) -> dict[str, bool]:
    """name -> admin, read from the hub's own table in the jupyterhub database as its rendered user."""
    done = subprocess.run(
        ["psql", "-h", postgres.host, "-p", str(postgres.port), "-U", "jupyterhub", "-d", "jupyterhub", "-At",
         "-F", "|", "-c", "select name, admin from users order by name"],
        env={"PGPASSWORD": credentials["JUPYTERHUB_DB_PASSWORD"], "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return {name: admin == "t" for name, admin in (line.split("|") for line in done.stdout.splitlines())}


def test_the_admin_signs_in_with_the_admin_password_and_is_an_admin(platform, credentials):
    _, postgres, hub = platform
    with sign_in(hub.url, "admin", credentials["JUPYTERHUB_ADMIN_PASSWORD"]) as (client, answer):
        assert signed_in(answer), answer.text[-500:]
        assert client.get("/hub/admin").status_code == 200  # the admin page: admins only
    assert users_in_postgres(postgres, credentials).get("admin") is True


def test_any_user_signs_in_with_the_shared_user_password_and_is_no_admin(platform, credentials):
    # templates/services/jupyterhub/jupyterhub_config.py.j2: allow_all, so anyone given the shared password
    # (JUPYTERHUB_USER_PASSWORD) signs in under a name of their choosing, never as an admin.
    _, postgres, hub = platform
    with sign_in(hub.url, "alice", credentials["JUPYTERHUB_USER_PASSWORD"]) as (client, answer):
        assert signed_in(answer), answer.text[-500:]
        assert client.get("/hub/admin").status_code == 403
    assert users_in_postgres(postgres, credentials).get("alice") is False


def test_wrong_passwords_are_refused(platform, credentials):
    _, postgres, hub = platform
    for username, password in (
        ("admin", credentials["JUPYTERHUB_USER_PASSWORD"]),  # the admin only with the admin's password
        ("admin", "not-the-password-" + "x" * 32),
        ("mallory", "not-the-password-" + "x" * 32),
    ):
        with sign_in(hub.url, username, password) as (_, answer):
            assert answer.status_code == 403 and not signed_in(answer), (username, answer.status_code)
    assert "mallory" not in users_in_postgres(postgres, credentials)


def test_the_rendered_config_names_only_settings_the_installed_releases_take(platform):
    """Traitlets only warns about a setting a class does not have; DockerSpawner is never loaded here."""
    root, _, hub = platform
    assert unknown_settings(root, hub.bin) == []
    assert "not recognized" not in hub.log.read_text()
