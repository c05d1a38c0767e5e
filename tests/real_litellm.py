"""The real LiteLLM proxy (the PyPI release the catalog's image runs), started on loopback from a rendered tree.

It runs with the rendered config.yaml and the environment the rendered compose file gives the container (`${VAR}`
filled from the rendered env files), with two differences the test machine forces: no database (LiteLLM's database
mode downloads its engine at run time, from no registry: `database_url` and DATABASE_URL are left out) and
OLLAMA_BASE_URL pointing at the Ollama stand-in the test runs instead of host.docker.internal. With `database` (the
apps session, tests/apps/litellm_db.py), it runs with its database as the image does: DATABASE_URL and STORE_MODEL_IN_DB
kept, DATABASE_URL pointed at the test's Postgres, from the virtualenv that holds the generated Prisma client.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
import yaml

from aiplatform.envfile import read_env
from aiplatform.generated.build import render_platform
from aiplatform.generated.write import write_tree
from aiplatform.inputs.context import Context
from tests.serving import serving
from tests.standins.ollama_api import free_port
from tests.unit.conftest import fake_nvml

WITHOUT_DATABASE = ("DATABASE_URL", "STORE_MODEL_IN_DB")


class LiteLLMDatabase(Protocol):
    """What runs LiteLLM with its database (tests/apps/litellm_db.py)."""

    bin: Path  # the virtualenv's bin/ with litellm and the generated Prisma client
    env: dict[str, str]  # the engine's variables
    url: str  # the database, on the test's Postgres


def render_pool(folder: Path, nodes: list[dict], models: list[str], local: bool = True, host_ip: str = "192.0.2.10"
                ) -> Path:  # fmt: skip
    """Render the platform for `models` served by Ollama `nodes` (and the host's own when `local`) into
    folder/generated, for the root folder/root; returns generated/."""
    answers = folder / "answers.yaml"
    answers.write_text(yaml.safe_dump({"models": models, "ollama_local": local, "ollama_nodes": nodes}))
    ctx = Context(answers=answers, flags={"root": str(folder / "root")}, environ={}, nvml=fake_nvml([]))
    out = folder / "generated"
    write_tree(out, render_platform(ctx, out, host_ip=host_ip).tree)
    return out


def container_environment(rendered: Path, database: bool = False) -> dict[str, str]:
    """The LiteLLM container's environment as compose would give it, from the rendered files (without its database
    unless `database`)."""
    values = {**read_env(rendered / "config/master.env"), **read_env(rendered / "config/credentials.env")}
    compose = yaml.safe_load((rendered / "docker/docker-compose.litellm.yml").read_text())
    environment = compose["services"]["litellm"]["environment"]

    def fill(text: str) -> str:
        text = re.sub(r"(?<!\$)\$\{([A-Z0-9_]+)\}", lambda m: values[m.group(1)], str(text))
        return text.replace("$$", "$")

    return {key: fill(value) for key, value in environment.items() if database or key not in WITHOUT_DATABASE}


@contextlib.contextmanager
def litellm_proxy(
    rendered: Path,
    workdir: Path,
    ollama_url: str,
    timeout: float = 90.0,
    host: str = "127.0.0.1",
    port: int = 0,
    database: LiteLLMDatabase | None = None,
) -> Iterator[str]:
    """Run the proxy for `rendered` on `host`:`port` (a free one by default); yields its base URL
    (http://127.0.0.1:PORT); stops it afterwards."""
    binary = (database.bin if database else Path(sys.executable).parent) / "litellm"
    if not binary.exists():
        pytest.fail("the LiteLLM proxy is not installed: `nox -s validate` installs the version the image runs")
    config = yaml.safe_load((rendered / "config/litellm/config.yaml").read_text())
    if not database:
        config.get("general_settings", {}).pop("database_url", None)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "litellm-config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list
        **container_environment(rendered, database=database is not None),
        "OLLAMA_BASE_URL": ollama_url,
    }
    if database:  # the test's Postgres for postgres:5432; the engine program (its PATH holds no `prisma`: see there)
        env.update({**database.env, "DATABASE_URL": database.url})
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(binary), "--config", str(config_path), "--host", host, "--port", str(port)]
    with serving("the LiteLLM proxy", argv, f"{url}/health/liveliness", workdir / "litellm.log", env=env, cwd=workdir,
                 timeout=timeout):  # fmt: skip
        yield url
