"""The real JupyterHub (the release the catalog's image pins, with the packages jupyterhub.Dockerfile.j2 adds) behind
the real configurable-http-proxy (the range upstream's hub image installs with npm, here on Node 24), started on
loopback with the rendered jupyterhub_config.py and the container's rendered environment; its database the real
Postgres of tests/apps/postgres.py.

A second config file loads the rendered one and changes only what the host forces (each said there, OVERRIDES); the
authenticator and everything else stay as rendered."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiplatform.envfile import read_env
from tests.apps.dockerfile import image_packages
from tests.apps.install import catalog_release, node_bin, npm_app, python_app, timed
from tests.apps.postgres import Postgres
from tests.apps.processes import leaving_nothing
from tests.configure_platform import rendered_environ
from tests.serving import serving
from tests.standins.ollama_api import free_port

# upstream's hub image: `npm install -g configurable-http-proxy@^4.2.0` (jupyterhub's Dockerfile)
PROXY = "configurable-http-proxy@^4.2.0"

OVERRIDES = """\
c = get_config()  # noqa: F821
load_subconfig({rendered!r})  # noqa: F821

# The host's changes; authentication, the database URL's source and the rest stay as rendered.
# A local spawner instead of DockerSpawner: no Docker engine here, and the test spawns nobody (it signs in).
c.JupyterHub.spawner_class = "simple"  # jupyterhub.spawner.SimpleLocalProcessSpawner
# Loopback and free ports instead of 0.0.0.0:8000, 0.0.0.0:8081 and the proxy's default API port 8001.
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
# The proxy reaches the hub on loopback, not by the container name "jupyterhub".
c.JupyterHub.hub_connect_ip = "127.0.0.1"
# The cookie secret in the test's folder instead of the /srv/jupyterhub/data volume.
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
# The proxy from the npm install (the image has it on its PATH).
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
"""


def install() -> tuple[Path, Path]:
    """(the hub venv's bin/, the proxy's node_modules/.bin)."""
    release = catalog_release("jupyterhub")
    hub = python_app("jupyterhub", f"jupyterhub=={release}", *image_packages("jupyterhub", "jupyterhub.Dockerfile.j2"))
    return hub, npm_app("configurable-http-proxy", PROXY)


@dataclass
class Hub:
    url: str
    environ: dict[str, str]  # the container's environment as the hub got it
    log: Path
    bin: Path  # the hub venv's bin/


@contextlib.contextmanager
def jupyterhub(root: Path, postgres: Postgres, workdir: Path) -> Iterator[Hub]:
    """The real hub for the platform applied at `root`, its database on `postgres`; stopped afterwards."""
    hub_bin, proxy_bin = install()
    workdir.mkdir(parents=True, exist_ok=True)
    environ = rendered_environ(root, read_env(root / "config/credentials.env"), "jupyterhub", "jupyterhub")
    environ["JUPYTERHUB_DB_URL"] = postgres.url(environ["JUPYTERHUB_DB_URL"])  # the test's Postgres
    port = free_port()
    config = workdir / "test_config.py"
    config.write_text(
        OVERRIDES.format(
            rendered=str(root / "config/jupyterhub/jupyterhub_config.py"),
            port=port,
            hub_port=free_port(),
            api_port=free_port(),
            cookie_secret=str(workdir / "cookie_secret"),
            proxy=str(proxy_bin / "configurable-http-proxy"),
        )
    )
    # The proxy is a node script: Node 24 first on the PATH (the image's node is on its PATH).
    path = os.pathsep.join((str(hub_bin), str(node_bin()), os.environ.get("PATH", "")))
    process_env = {**os.environ, **environ, "PATH": path}
    url = f"http://127.0.0.1:{port}"
    log = workdir / "jupyterhub.log"
    argv = [str(hub_bin / "jupyterhub"), "-f", str(config)]
    with contextlib.ExitStack() as stack:
        process_env = stack.enter_context(leaving_nothing(process_env))  # the proxy too, if the hub left it
        with timed("jupyterhub start"):
            stack.enter_context(serving("jupyterhub", argv, f"{url}/hub/health", log, env=process_env, cwd=workdir,
                                        timeout=120))  # fmt: skip
        yield Hub(url, environ, log, hub_bin)


def unknown_settings(root: Path, hub_bin: Path) -> list[str]:
    """Every `c.Class.name = ...` of the rendered config that the installed class does not take as config (traitlets
    only warns about those, and DockerSpawner is never loaded here): checked against the installed releases."""
    script = """
import json, sys
from traitlets.config.loader import PyFileConfigLoader
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
from dockerspawner import DockerSpawner
classes = {c.__name__: c for c in (JupyterHub, Authenticator, SharedPasswordAuthenticator, DockerSpawner)}
config = PyFileConfigLoader(sys.argv[1]).load_config()
bad = []
for section, values in config.items():
    cls = classes.get(section)
    for name in values:
        trait = cls.class_traits().get(name) if cls else None
        if trait is None or not trait.metadata.get("config"):
            bad.append(f"{section}.{name}")
print(json.dumps(bad))
"""
    import json

    environ = {
        **os.environ,
        **{name: "x" * 40 for name in ("JUPYTERHUB_DB_URL", "JUPYTERHUB_ADMIN_PASSWORD", "JUPYTERHUB_USER_PASSWORD")},
        "LITELLM_KEY_JUPYTERHUB": "sk-test",
    }
    done = subprocess.run(
        [str(hub_bin / "python"), "-c", script, str(root / "config/jupyterhub/jupyterhub_config.py")],
        capture_output=True, text=True, env=environ, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)
