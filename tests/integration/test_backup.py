"""Backup → `cleanup --purge` → restore into a fresh root, on the real engine: the rows each service wrote in its own
Postgres database (real Postgres in the stand-in), the files in its volumes and data folders, the Qdrant collection
(the stand-in of Qdrant's REST and snapshot API) come back identical, with the same secrets, and every service
healthy; a credential stored in Flowise (its stand-in: upstream's user, home and encryption key rules, its data in
Postgres) still decrypts. A corrupted file and an unfinished backup are refused; the off-box copy goes through real
rclone to a WebDAV server `rclone serve` runs on loopback (standing in for a cloud remote)."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from aiplatform.backup.qdrant import Qdrant
from aiplatform.host.runner import Runner
from tests.standins.ollama_api import free_port

pytestmark = pytest.mark.integration

DATABASES = [
    ("openwebui", "openwebui", "OPENWEBUI_DB_PASSWORD"),
    ("litellm", "litellm", "LITELLM_DB_PASSWORD"),
    ("n8n", "n8n", "N8N_DB_PASSWORD"),
]


SERVICES = ["n8n", "monitoring", "flowise"]
FLOWISE = "http://127.0.0.1:3001"
FLOWISE_ADMIN = {"name": "Admin", "email": "owner@example.com", "credential": "Backup-Pass-1!"}


@pytest.fixture(scope="module")
def deployed(platform):
    platform.answer(services=SERVICES)
    platform.render()
    platform.deploy()
    return platform


def _qdrant(platform) -> Qdrant:
    return Qdrant(Runner(echo=lambda _: None), platform.credentials()["QDRANT_API_KEY"])


def _files(platform, host) -> dict[str, str]:
    """sha256 of every file the test wrote, by where it is."""
    n8n = json.loads(host.check_output("docker volume inspect ai-platform_n8n-data"))[0]["Mountpoint"]
    places = {"open-webui": f"{platform.root}/data/open-webui/uploads", "n8n": f"{n8n}/owner"}
    return {name: host.check_output(f"cd {shlex.quote(path)} && sha256sum * | sort") for name, path in places.items()}


def _rows(platform) -> dict[str, str]:
    out = {}
    for database, user, secret in DATABASES:
        found = platform.psql(user, database, secret, "select note from owner_made order by note")
        out[database] = found.stdout.strip() if found.rc == 0 else f"failed: {found.stderr.strip()}"
    return out


def _points(platform) -> list:
    return _qdrant(platform).call("POST", "/collections/notes/points/scroll", {"limit": 10}, changes=False)["points"]


@pytest.fixture(scope="module")
def owner_data(deployed, host):
    """Rows, files and vectors made as the apps would make them."""
    platform = deployed
    for database, user, secret in DATABASES:
        made = platform.psql(user, database, secret, f"create table owner_made (note text); insert into owner_made "
                             f"values ('{database} row 1'), ('{database} row 2')")  # fmt: skip
        assert made.rc == 0, made.stderr
    n8n = json.loads(host.check_output("docker volume inspect ai-platform_n8n-data"))[0]["Mountpoint"]
    for folder in (f"{platform.root}/data/open-webui/uploads", f"{n8n}/owner"):
        host.run_expect([0], f"mkdir -p {folder} && head -c 300000 /dev/urandom > {folder}/blob.bin && "
                             f"echo workflow > {folder}/flow.json")  # fmt: skip
    client = _qdrant(platform)
    client.call("PUT", "/collections/notes", {"vectors": {"size": 3, "distance": "Cosine"}})
    client.call("PUT", "/collections/notes/points?wait=true",
                {"points": [{"id": 1, "vector": [0.1, 0.2, 0.3], "payload": {"text": "kept"}}]})  # fmt: skip
    with closing(_flowise()) as flowise:
        body = {"name": "kept", "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": "sk-kept"}}
        made = flowise.post("/api/v1/credentials", json=body)
        assert made.status_code == 200, made.text
    assert _flowise_credential(made.json()["id"])[0] == 200
    return {"rows": _rows(platform), "files": _files(platform, host), "points": _points(platform),
            "secrets": platform.credentials(), "flowise_credential": made.json()["id"]}  # fmt: skip


def _flowise() -> httpx.Client:
    """A signed-in Flowise session as configure makes one (its cookies sent by hand: they are Secure under TLS)."""
    client = httpx.Client(base_url=FLOWISE, timeout=30, trust_env=False, headers={"X-Forwarded-Proto": "https"})
    client.post("/api/v1/account/register", json={"user": FLOWISE_ADMIN})  # 400 once the organization exists
    login = {"email": FLOWISE_ADMIN["email"], "password": FLOWISE_ADMIN["credential"]}
    signed = client.post("/api/v1/auth/login", json=login)
    assert signed.status_code == 200, signed.text
    cookies = "; ".join(f"{name}={value}" for name, value in signed.cookies.items() if name != "refreshToken")
    client.headers.update({"Cookie": cookies, "x-request-from": "internal"})
    return client


def _flowise_credential(ident: str) -> tuple[int, dict]:
    """GET /api/v1/credentials/<id>: the call that decrypts it with Flowise's key of this start."""
    with closing(_flowise()) as client:
        read = client.get(f"/api/v1/credentials/{ident}")
    return read.status_code, read.json()


def _backup(platform, *args: str, check: bool = True):
    return platform.inv("backup", "--out", platform.out, *args, check=check)


def _latest(platform, host, folder: str | None = None) -> str:
    listing = host.check_output(f"ls -1d {folder or platform.root + '/backups'}/backup-* | grep -v partial | tail -1")
    return listing.strip()


def test_backup_purge_restore_gives_back_identical_data(deployed, owner_data, host):
    platform = deployed
    taken = _backup(platform)
    backup = _latest(platform, host)
    assert "stopped" in taken.stdout and "left out" in taken.stdout  # n8n stopped for its volume; redis left out
    assert host.file(backup).mode == 0o700
    manifest = json.loads(host.check_output(f"cat {backup}/manifest.json"))
    kinds = {(item["kind"], item["name"]) for item in manifest["items"]}
    assert {("config", "config"), ("postgres-globals", "roles"), ("postgres", "n8n"), ("qdrant", "notes"),
            ("volume", "n8n-data"), ("folder", "open-webui"), ("postgres", "flowise"),
            ("folder", "flowise")} <= kinds  # fmt: skip
    assert manifest["postgres_version"] and manifest["images"]["postgres"]["image"]
    assert host.file(f"{backup}/config.tar.gz").mode == 0o600
    secrets = owner_data["secrets"]
    assert secrets["N8N_ENCRYPTION_KEY"] not in host.check_output(f"cat {backup}/manifest.json")
    assert json.loads(host.check_output(f"cat {platform.root}/logs/backup-last.json"))["ok"] is True

    platform.inv("cleanup", "--yes", "--purge", "--root", platform.root)
    assert host.check_output("docker ps -aq --filter label=ai-platform.managed=true") == ""
    assert not host.file(f"{platform.root}/config").exists and host.file(backup).exists  # backups/ kept

    restored = platform.inv("restore", backup, "--yes", "--root", platform.root)  # the root is never the backup's word
    assert "restored and healthy" in restored.stdout, restored.stdout + restored.stderr
    assert _rows(platform) == owner_data["rows"]
    assert _files(platform, host) == owner_data["files"]
    assert _points(platform) == owner_data["points"]
    assert platform.credentials() == secrets  # the same keys: the data restored stays readable
    # Flowise's credentials (in its database) decrypt with the key of the new container: the key came back too
    answered, credential = _flowise_credential(owner_data["flowise_credential"])
    assert answered == 200 and credential["plainDataObj"] == {
        "openAIApiKey": "_FLOWISE_BLANK_07167752-1a71-43b1-bf8f-4f32252165db"
    }, credential
    rc, status = platform.status()
    assert rc == 0, [s for s in status["services"] if not s["healthy"]]


def test_a_corrupted_file_is_refused_with_its_name(deployed, host):
    platform = deployed
    backup = _latest(platform, host)
    copy = f"{platform.base}/corrupted"
    host.run_expect([0], f"cp -a {backup} {copy} && printf x >> {copy}/postgres/n8n.dump")
    before = _rows(platform)
    refused = platform.inv("restore", copy, "--yes", "--root", platform.root, check=False)
    assert refused.rc == 1 and "postgres/n8n.dump" in refused.stderr and "nothing was restored" in refused.stderr
    assert _rows(platform) == before


def test_dumps_of_a_newer_postgres_are_refused_before_anything_changes(deployed, host):
    platform = deployed
    backup = _latest(platform, host)
    copy = f"{platform.base}/from-postgres-99"
    host.run_expect([0], f"cp -a {backup} {copy}")
    manifest = json.loads(host.check_output(f"cat {copy}/manifest.json"))
    manifest["postgres_version"] = 990001  # as a backup taken on a platform already on Postgres 99
    host.run_expect([0], f"echo {shlex.quote(json.dumps(manifest))} > {copy}/manifest.json")
    before = (_rows(platform), host.check_output("docker ps -q --no-trunc | sort"), platform.credentials())
    for dry in ([], ["--dry-run"]):
        refused = platform.inv("restore", copy, "--yes", "--root", platform.root, *dry, check=False)
        assert refused.rc == 1 and "Postgres 99" in refused.stderr and "Nothing was restored" in refused.stderr
        assert "upgrade --postgres-major" in refused.stderr and "Traceback" not in refused.stderr
    after = (_rows(platform), host.check_output("docker ps -q --no-trunc | sort"), platform.credentials())
    assert after == before  # the same containers (none stopped or recreated), rows and secrets


def test_an_interrupted_backup_is_never_taken_for_a_finished_one(deployed, host):
    platform = deployed
    proc = subprocess.Popen(
        [platform.python, "-m", "invoke", "backup", "--out", platform.out],
        cwd=platform.project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    partial = ""
    for _ in range(300):  # killed as soon as its folder exists, mid-way
        partial = host.run(f"ls -1d {platform.root}/backups/*.partial 2>/dev/null").stdout.strip()
        if partial:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert partial, "the backup never started"
    refused = platform.inv("restore", partial, "--yes", check=False)
    assert refused.rc == 1 and "not a complete backup" in refused.stderr
    host.run("docker start $(docker ps -aq --filter label=ai-platform.managed=true --filter status=exited) || true")
    _backup(platform, "--only", "litellm")  # the next backup deletes the unfinished one
    assert not host.file(partial).exists


@pytest.fixture
def webdav(tmp_path):
    """`rclone serve webdav` on loopback with a user and password: the stand-in of a cloud remote."""
    port = free_port()
    store = tmp_path / "remote"
    store.mkdir()
    proc = subprocess.Popen(["rclone", "serve", "webdav", str(store), "--addr", f"127.0.0.1:{port}", "--user",
                             "backup", "--pass", "remote-secret-1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", store
    proc.terminate()
    proc.wait()


def test_off_box_copies_go_through_rclone_checked_and_pruned(deployed, host, webdav):
    platform = deployed
    url, store = webdav
    platform.answer(services=SERVICES, backup_remote_type="webdav", backup_remote_path="box1",
                    backup_remote_options={"url": url, "vendor": "other", "user": "backup"},
                    backup_remote_keep=2)  # fmt: skip
    platform.render(env={"AI_PLATFORM_BACKUP_REMOTE_SECRET": "remote-secret-1"})  # given once, kept in credentials
    platform.deploy()
    for _ in range(3):
        done = _backup(platform, "--only", "litellm")
        assert "`rclone check` found no difference" in done.stdout, done.stdout
        time.sleep(1.1)  # backup names are per second
    on_remote = sorted(p.name for p in (store / "box1").iterdir())
    local = sorted(Path(p).name for p in host.check_output(f"ls -1d {platform.root}/backups/backup-*").split())
    assert len(on_remote) == 2 and on_remote == local[-2:]  # the remote keeps its newest two
    assert "remote-secret-1" not in done.stdout + done.stderr
    listed = _backup(platform, "--list").stdout
    assert f"{on_remote[-1]}  " in listed and "only on" not in listed
    assert f"{local[0]}  " in listed and listed.count("copied off the box") == 2
