"""LiteLLM with its database, as the catalog's image runs it (DATABASE_URL set: virtual keys kept in Postgres), on a
machine that cannot download Prisma's native engines.

LiteLLM keeps its data through prisma-client-py, which needs (1) its Python client generated from LiteLLM's
schema.prisma by the Prisma CLI, and (2) Prisma's query engine, a native program that the CLI and the npm package
@prisma/engines download from Prisma's own host at install or run time (`getaddrinfo ENOTFOUND` here: only the
package registries are reachable). What this module does instead, each difference said where it is made:

- the Python side: a virtualenv with litellm[proxy] at the catalog's release and prisma-client-py 0.15.0. The image's
  requirements pin prisma 0.11.0, whose engine (5.4.2) has no build in any registry; 0.15.0 pins engine 5.17.0
  (393aa359...), which npm carries as @prisma/query-engine-wasm.
- the engine: that WebAssembly build of Prisma's engine, on Node 24 with Prisma's Postgres driver adapter
  (@prisma/adapter-pg), behind tests/apps/prisma_engine.mjs, which serves the native binary's HTTP interface and
  translates prisma-client-py's GraphQL requests to the engine's JSON protocol (see that file). It is named to
  prisma-client-py by PRISMA_QUERY_ENGINE_BINARY, the variable prisma-client-py reads for a local engine.
- generation: `prisma generate` (prisma-client-py's CLI, running the npm `prisma` CLI 5.17.0 on Node 24) from LiteLLM's
  schema.prisma with binaryTargets cut to "native" (the other targets would be downloaded), once per virtualenv.
- the schema in Postgres: LiteLLM runs `prisma migrate deploy` at start, which needs Prisma's native schema engine
  (no registry has it for 5.x); the test applies the same migration files (litellm_proxy_extras/migrations/*/
  migration.sql, in their order) with psql, as the migrate command would, and LiteLLM starts without the `prisma`
  command on its PATH, so it skips its own migration step (proxy_cli.py: "prisma package not found").
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.apps.install import CACHE, catalog_release, node_bin, npm_app, python_app, timed

PRISMA_CLIENT = "prisma==0.15.0"
ENGINE = "5.17.0-31.393aa359c9ad4a4bb28630fb5613f9c281cde053"
ENGINE_PACKAGES = (
    f"@prisma/query-engine-wasm@{ENGINE}",
    "@prisma/adapter-pg@5.17.0",
    "@prisma/driver-adapter-utils@5.17.0",
    "pg@8.23.1",
    "graphql@16.15.0",
)
SHIM = Path(__file__).resolve().parent / "prisma_engine.mjs"
GENERATED = ".prisma-generated"


@dataclass
class LiteLLMWithDatabase:
    bin: Path  # the virtualenv's bin/: litellm, and prisma (kept off LiteLLM's PATH)
    env: dict[str, str]  # what LiteLLM's process needs beside the container's environment
    url: str = ""  # its database on the test's Postgres (set once that runs)

    @property
    def site_packages(self) -> Path:
        return next((self.bin.parent / "lib").glob("python3*/site-packages"))


def _run(argv: list[str], env: dict[str, str], what: str, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def install() -> tuple[Path, Path]:
    """LiteLLM's proxy with Prisma's client (a virtualenv), Prisma's engine packages: their bin/, node_modules/."""
    bin_dir = python_app("litellm-db", f"litellm[proxy]=={catalog_release('litellm')}", PRISMA_CLIENT)
    return bin_dir, npm_app("prisma-engine", *ENGINE_PACKAGES).parent


def litellm_with_database(workdir: Path) -> LiteLLMWithDatabase:
    """The installs (cached) and the engine program for LiteLLM with its database; its client generated."""
    bin_dir, modules = install()
    workdir.mkdir(parents=True, exist_ok=True)
    engine = workdir / "query-engine"
    engine.write_text(f'#!/bin/sh\nexec "{node_bin() / "node"}" "{SHIM}" "$@"\n')
    engine.chmod(0o755)
    # The Prisma CLI refuses to run `generate` until it finds a schema engine (it downloads one otherwise), though
    # generate never calls it: this placeholder answers its version and refuses any real work.
    placeholder = workdir / "schema-engine"
    placeholder.write_text(
        f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "schema-engine-cli {ENGINE.rsplit(".", 1)[1]}"; exit 0; fi\n'
        'echo "no native schema engine here: the migrations are applied with psql" >&2; exit 1\n'
    )
    placeholder.chmod(0o755)
    env = {
        "PRISMA_QUERY_ENGINE_BINARY": str(engine),
        "PRISMA_SCHEMA_ENGINE_BINARY": str(placeholder),
        "PRISMA_ENGINE_MODULES": str(modules),
    }
    found = LiteLLMWithDatabase(bin_dir, env)
    _generate(found, workdir)
    return found


def _generate(found: LiteLLMWithDatabase, workdir: Path) -> None:
    marker = found.bin.parent / GENERATED
    if marker.exists():
        return
    schema = (found.site_packages / "litellm/proxy/schema.prisma").read_text()
    native = re.sub(r"binaryTargets\s*=\s*\[[^\]]*\]", 'binaryTargets = ["native"]', schema)
    (workdir / "schema.prisma").write_text(native)
    env = {
        **os.environ,
        **found.env,
        # prisma-client-py's generator (`prisma-client-py`) and Node 24 for the Prisma CLI it installs from npm
        "PATH": f"{found.bin}{os.pathsep}{node_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRISMA_BINARY_CACHE_DIR": str(CACHE / "prisma-python"),  # the CLI's npm install, outside the clone
        "PRISMA_HIDE_UPDATE_MESSAGE": "1",
    }
    with timed("litellm prisma generate"):
        _run([str(found.bin / "prisma"), "generate", "--schema", str(workdir / "schema.prisma")], env,
             "prisma generate (LiteLLM's schema)", cwd=workdir)  # fmt: skip
    marker.write_text(ENGINE)


def migrate(found: LiteLLMWithDatabase, database_url: str) -> int:
    """LiteLLM's migrations applied to `database_url` in order, as `prisma migrate deploy` applies them; how many."""
    folders = sorted(p for p in (found.site_packages / "litellm_proxy_extras/migrations").iterdir() if p.is_dir())
    files = [arg for folder in folders for arg in ("-f", str(folder / "migration.sql"))]
    env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    _run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url, *files], env, "LiteLLM's migrations")
    return len(folders)
