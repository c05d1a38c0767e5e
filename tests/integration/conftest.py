"""Integration fixtures: a real Docker engine, stand-in images, and a platform rendered and driven like a user would.

Every step runs through testinfra's `host` (local:// by default, `--hosts ssh://vm` for a remote VM that has this
checkout at the same path and a Docker engine): the tasks are run with `host.run("... inv deploy ...")` and the
results are checked with host.docker / host.socket / host.file. These tests create and delete ai-platform
containers, networks, volumes and a root under /tmp: run them only on a disposable host (nox -s integration).
"""

from __future__ import annotations

import json
import shlex
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from aiplatform.envfile import parse_env

PROJECT = Path(__file__).resolve().parents[2]


def pytest_addoption(parser):
    parser.addoption("--project-dir", default=str(PROJECT), help="this checkout's path on the tested host")
    parser.addoption("--project-python", default=sys.executable, help="python with the project installed, there")


@dataclass
class Platform:
    """One platform under test: its answers, generated/ and root on the tested host, and how to run the tasks."""

    host: object
    project: str
    python: str
    base: str
    images: dict[str, str]

    @property
    def root(self) -> str:
        return f"{self.base}/root"

    @property
    def out(self) -> str:
        return f"{self.base}/generated"

    @property
    def answers(self) -> str:
        return f"{self.base}/answers.yaml"

    @property
    def user_services(self) -> str:
        """The owner's catalog of this platform (`inv add --from-compose` and `--new` write there)."""
        return f"{self.base}/services"

    def inv(self, *args: str, check: bool = True, env: dict[str, str] | None = None):
        variables = {"AI_PLATFORM_USER_SERVICES": self.user_services, **(env or {})}
        command = (
            f"cd {shlex.quote(self.project)} && "
            + " ".join(f"{key}={shlex.quote(value)}" for key, value in variables.items())
            + f" {shlex.quote(self.python)} -m invoke "
            + shlex.join(args)
        )
        result = self.host.run(command)
        if check and result.rc != 0:
            pytest.fail(f"inv {' '.join(args)} failed ({result.rc}):\n{result.stdout}\n{result.stderr}")
        return result

    def write(self, path: str, text: str) -> None:
        folder = shlex.quote(str(Path(path).parent))
        self.host.run_expect([0], f"mkdir -p {folder} && printf %s {shlex.quote(text)} > {shlex.quote(path)}")

    def answer(self, **settings) -> None:
        """Write answers.yaml: the stand-in images plus `settings`."""
        images = {**self.images, **settings.pop("images", {})}
        self.write(self.answers, yaml.safe_dump({"services": ["monitoring"], "images": images, **settings}))

    def render(self, env: dict[str, str] | None = None) -> None:
        self.inv("render", "--no-input", "--answers", self.answers, "--root", self.root, "--out", self.out, env=env)

    def deploy(self, *args: str, check: bool = True, configure: bool = False):
        """`inv deploy`; without configure unless asked (test_configure runs the services it needs for it)."""
        return self.inv(
            "deploy", "--out", self.out, "--yes", *args, *([] if configure else ["--no-configure"]), check=check
        )

    def status(self, check: bool = False) -> tuple[int, dict]:
        result = self.inv("status", "--out", self.out, "--json", check=check)
        return result.rc, json.loads(result.stdout)

    def containers(self) -> dict[str, str]:
        """compose service name -> container id, for every labelled container."""
        out = self.host.check_output(
            "docker ps -a --filter label=ai-platform.managed=true "
            "--format '{{.Label \"com.docker.compose.service\"}} {{.ID}}'"
        )
        return dict(line.split() for line in out.splitlines() if line.strip())

    def credentials(self) -> dict[str, str]:
        return parse_env(self.host.check_output(f"cat {shlex.quote(self.root)}/config/credentials.env"))

    def psql(self, user: str, database: str, password_key: str, query: str):
        """Log in to the platform's Postgres over TCP as `user`, with the password credentials.env holds."""
        password = self.credentials()[password_key]
        return self.host.run(
            f"docker exec -e PGPASSWORD={shlex.quote(password)} ai-platform-postgres "
            f"psql -h 127.0.0.1 -U {user} -d {database} -tAc {shlex.quote(query)}"
        )

    def inspect(self, name: str) -> dict:
        return json.loads(self.host.check_output(f"docker inspect ai-platform-{name}"))[0]

    def expected(self) -> list[str]:
        """Containers generated/ defines."""
        names = []
        listing = self.host.check_output(f"ls {shlex.quote(self.out)}/docker/")
        for name in sorted(listing.split()):
            text = self.host.check_output(f"cat {shlex.quote(self.out)}/docker/{name}")
            names += list(yaml.safe_load(text)["services"])
        return names


@pytest.fixture(scope="module")
def standins(host, request):
    """Build the stand-in images on the tested host (cached there): {variant: {container: image}}."""
    project = request.config.getoption("--project-dir")
    python = request.config.getoption("--project-python")
    host.run_expect(
        [0],
        f"cd {shlex.quote(project)} && {shlex.quote(python)} -m tests.integration.standins.build "
        "--variants test,broken",
    )
    from tests.integration.standins.images import images_override

    return {"test": images_override("test"), "broken": images_override("broken")}


@pytest.fixture(scope="module")
def platform(host, standins, request):
    """A platform in a fresh root; whatever the tests leave behind is removed at the end (with --purge)."""
    base = f"/tmp/aip-it-{uuid.uuid4().hex[:8]}"
    project = request.config.getoption("--project-dir")
    python = request.config.getoption("--project-python")
    instance = Platform(host, project, python, base, standins["test"])
    instance.answer()
    yield instance
    host.run(f"cd {shlex.quote(project)} && {shlex.quote(python)} -m invoke cleanup --yes --purge --root {base}/root")
    host.run(f"rm -rf {shlex.quote(base)}")
