"""The real MLflow server (the release the catalog's image pins, from the registry) started on loopback the way the
rendered compose file starts the container: its command, its environment, the rendered basic_auth.ini; its tracking
store and its auth app's users in the real Postgres of tests/apps/postgres.py.

What the host forces, and nothing else: the two database URLs name that Postgres instead of `postgres:5432`, the
artifacts live in a temporary folder instead of /mlflow/artifacts, the server listens on a free loopback port, the
auth config is read from the rendered root instead of /etc/mlflow, and the allowed Host names include that port.

The install: mlflow 3.18.0 wants mlflow-tracing==3.18.0, which this machine's package index does not have (its
newest is 3.17.2). mlflow-tracing is a subset of mlflow-skinny (every file it ships is in mlflow-skinny's wheel, its
requirements too), so the venv holds mlflow-skinny 3.18.0, the requirements of mlflow 3.18.0's own wheel (its
METADATA, less mlflow-tracing), and mlflow 3.18.0 itself installed without its dependencies: the 3.18.0 server code,
nothing older."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from aiplatform.envfile import read_env
from tests.apps.dockerfile import image_packages
from tests.apps.install import catalog_release, only_one, python_app, timed
from tests.apps.postgres import Postgres
from tests.apps.processes import leaving_nothing
from tests.configure_platform import rendered_environ
from tests.serving import serving
from tests.standins.ollama_api import free_port

# mlflow 3.18.0's wheel METADATA, Requires-Dist without an extra marker, less mlflow-skinny/mlflow-tracing (above);
# waitress is Windows-only there.
MLFLOW_REQUIRES = (
    "Flask-CORS<7",
    "Flask<4",
    "aiohttp<4,>=3.7.0",
    "alembic!=1.10.0,<2",
    "cryptography<51,>=43.0.0",
    "docker<8,>=4.0.0",
    "graphene<4",
    "gunicorn<27",
    "huey<4,>=2.5.4",
    "matplotlib<4",
    "numpy<3",
    "pandas<4",
    "pyarrow<27,>=4.0.0",
    "scikit-learn<2",
    "scipy<2",
    "skops<1",
    "sqlalchemy<3,>=1.4.0",
)


def install() -> Path:
    """The venv's bin/ with the catalog's MLflow release (see the module docstring for how)."""
    release = catalog_release("mlflow")
    image = image_packages("mlflow", "mlflow.Dockerfile.j2")
    bin_dir = python_app("mlflow", f"mlflow-skinny=={release}", *MLFLOW_REQUIRES, *image)
    with only_one(bin_dir.parent):  # the session's prefetch may be here too
        if not list(bin_dir.parent.glob(f"lib/python*/site-packages/mlflow-{release}.dist-info")):
            with timed("mlflow install", f"mlflow {release} without its dependencies"):
                done = subprocess.run(
                    [str(bin_dir / "pip"), "install", "--quiet", "--no-deps", f"mlflow=={release}"],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
    return bin_dir


@dataclass
class MLflow:
    url: str
    environ: dict[str, str]
    artifacts: Path


def command(root: Path) -> list[str]:
    """The container's command from the rendered compose file."""
    compose = yaml.safe_load((root / "docker/docker-compose.mlflow.yml").read_text())
    return [str(part) for part in compose["services"]["mlflow"]["command"]]


@contextlib.contextmanager
def mlflow_server(root: Path, postgres: Postgres, workdir: Path) -> Iterator[MLflow]:
    """The real MLflow for the platform applied at `root`, its databases on `postgres`; stopped afterwards."""
    bin_dir = install()
    workdir.mkdir(parents=True, exist_ok=True)
    secrets = read_env(root / "config/credentials.env")
    environ = rendered_environ(root, secrets, "mlflow", "mlflow")
    port = free_port()
    # The host's changes (module docstring): the tracking store and the auth database on the test's Postgres ...
    environ["MLFLOW_BACKEND_STORE_URI"] = postgres.url(environ["MLFLOW_BACKEND_STORE_URI"])
    auth_ini = workdir / "basic_auth.ini"
    auth_ini.write_text(postgres.url((root / "config/mlflow/basic_auth.ini").read_text()))
    environ["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_ini)  # ... the rendered file, only its database URL changed
    environ["MLFLOW_SERVER_ALLOWED_HOSTS"] += f",127.0.0.1:{port}"  # ... the port this server listens on
    argv = command(root)
    argv[argv.index("--host") + 1] = "127.0.0.1"  # ... loopback, a free port
    argv[argv.index("--port") + 1] = str(port)
    artifacts = workdir / "artifacts"  # ... and the artifacts in the test's folder, not /mlflow/artifacts
    argv[argv.index("--artifacts-destination") + 1] = str(artifacts)
    argv[0] = str(bin_dir / argv[0])
    url = f"http://127.0.0.1:{port}"
    # The container's PATH finds the image's python and gunicorn; here the venv's bin/ does.
    process_env = {**environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(workdir)}
    with contextlib.ExitStack() as stack:
        # stopped last: uvicorn, the job runner and its consumers, which outlive `mlflow server` (processes.py)
        process_env = stack.enter_context(leaving_nothing(process_env))
        with timed("mlflow start"):
            stack.enter_context(serving("mlflow", argv, f"{url}/health", workdir / "mlflow.log", env=process_env,
                                        cwd=workdir, timeout=180))  # fmt: skip
        yield MLflow(url, environ, artifacts)
