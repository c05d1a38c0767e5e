"""A real PostgreSQL server (Debian's, the tests' own cluster in a temporary folder) for the apps that keep their
state in the platform's Postgres, with each service's database and user created by the rendered init scripts
(config/postgres/init/*.sh), exactly as the postgres-init container runs them on a deploy."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiplatform.envfile import read_env
from tests.serving import stop
from tests.standins.ollama_api import free_port


@dataclass
class Postgres:
    host: str
    port: int

    def url(self, rendered: str) -> str:
        """`rendered` (a URL naming the container postgres:5432) pointed at this server instead."""
        return rendered.replace("@postgres:5432", f"@{self.host}:{self.port}")


def _bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if not found:
        pytest.fail("PostgreSQL's server is not installed: `tests/tools/install-tools postgres` installs it")
    return found[-1]


@contextlib.contextmanager
def postgres_for(root: Path, workdir: Path) -> Iterator[Postgres]:
    """A server for the platform applied at `root`, its superuser password POSTGRES_PASSWORD and every rendered
    database created; stopped and removed afterwards."""
    secrets = read_env(root / "config/credentials.env")
    user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None  # the server refuses to run as root
    # Its own folder under the system's temp dir: the postgres user cannot enter pytest's tmp_path (mode 0700).
    workdir.mkdir(parents=True, exist_ok=True)
    own = Path(tempfile.mkdtemp(prefix="ai-platform-pg-"))
    data = own / "pgdata"
    data.mkdir()
    password_file = own / "pgpass-init"
    password_file.write_text(secrets["POSTGRES_PASSWORD"])
    if user:
        for path in (own, data, password_file):
            os.chown(path, user.pw_uid, user.pw_gid)

    def as_owner(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(argv, user=user.pw_uid if user else None, group=user.pw_gid if user else None,
                              capture_output=True, text=True, check=False, **kwargs)  # fmt: skip

    done = as_owner([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                     f"--pwfile={password_file}", "--no-sync"])  # fmt: skip
    password_file.unlink()
    if done.returncode:
        pytest.fail(f"initdb failed:\n{done.stdout}{done.stderr}")
    port = free_port()
    log = workdir / "postgres.log"
    server = subprocess.Popen(
        [_bin("postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
         "-c", f"unix_socket_directories={own}", "-c", "fsync=off"],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
        user=user.pw_uid if user else None, group=user.pw_gid if user else None,
    )  # fmt: skip
    try:
        env = {**os.environ, **secrets, "PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "postgres",
               "PGDATABASE": "postgres", "PGPASSWORD": secrets["POSTGRES_PASSWORD"]}  # fmt: skip
        for _ in range(100):
            if subprocess.run(["pg_isready", "-q"], env=env, check=False).returncode == 0:
                break
            if server.poll() is not None:
                pytest.fail(f"postgres exited:\n{log.read_text()}")
            subprocess.run(["sleep", "0.2"], check=False)
        else:
            pytest.fail(f"postgres did not accept connections in 20 s:\n{log.read_text()}")
        for script in sorted((root / "config/postgres/init").glob("*.sh")):
            done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, check=False)
            if done.returncode:
                pytest.fail(f"{script.name} failed:\n{done.stdout}{done.stderr}")
        yield Postgres("127.0.0.1", port)
    finally:
        stop(server)
        shutil.rmtree(own, ignore_errors=True)
