"""`inv upgrade` on the real engine. A new image is what render now names: here the `images:` setting points a
container at another stand-in, as a catalog bump would. `--check` changes nothing; an image that never becomes
healthy (the `broken` stand-in) is rolled back with the data intact; a Postgres major-version change is refused,
then done through dump → new cluster → restore when asked (the real Postgres of the stand-in, tagged as 16.4)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(platform):
    platform.answer(services=["n8n"])
    platform.render()
    platform.deploy()
    made = platform.psql("n8n", "n8n", "N8N_DB_PASSWORD", "create table kept (x int); insert into kept values (7)")
    assert made.rc == 0, made.stderr
    return platform


def _upgrade(platform, *args: str, check: bool = True):
    where = ["--answers", platform.answers, "--out", platform.out]
    return platform.inv("upgrade", *args, *where, check=check)


def _kept(platform) -> str:
    found = platform.psql("n8n", "n8n", "N8N_DB_PASSWORD", "select x from kept")
    return found.stdout.strip() if found.rc == 0 else found.stderr


def test_check_lists_the_new_image_and_changes_nothing(running, host, standins):
    running.answer(services=["n8n"], images={"n8n": standins["broken"]["n8n"]})
    before = running.containers()
    stamp = host.check_output(f"cat {running.out}/.aiplatform.json")
    result = _upgrade(running, "--check")
    assert f"n8n: new image: {standins['test']['n8n']} -> {standins['broken']['n8n']}" in result.stdout
    assert "1 to change" in result.stdout
    assert running.containers() == before
    assert host.check_output(f"cat {running.out}/.aiplatform.json") == stamp
    assert not host.file(f"{running.base}/images.lock").exists
    assert host.run(f"ls {running.root}/backups/backup-* 2>/dev/null").stdout == ""


def test_an_upgrade_that_never_becomes_healthy_rolls_back(running, host, standins):
    result = _upgrade(running, "--yes", "--timeout", "20", check=False)
    assert result.rc == 1, result.stdout
    assert "Rolled back to the previous images — every service is healthy again" in result.stderr, result.stderr
    n8n = running.inspect("n8n")
    assert n8n["Config"]["Image"] == standins["test"]["n8n"] and n8n["State"]["Health"]["Status"] == "healthy"
    assert _kept(running) == "7"
    assert host.run(f"ls -d {running.root}/backups/backup-*").stdout.strip()  # taken first
    rc, status = running.status()
    assert rc == 0, [s for s in status["services"] if not s["healthy"]]


def test_a_postgres_major_change_is_refused_then_moved_with_a_dump(running, host, standins):
    newer = "aiplatform-standin/postgres:16.4"  # the same real Postgres, tagged as a new major
    host.run_expect([0], f"docker tag {standins['test']['postgres']} {newer}")
    running.answer(services=["n8n"], backup_encrypt=True)  # the dumps the move restores are gpg-encrypted
    running.render()
    running.deploy()
    running.answer(services=["n8n"], images={"postgres": newer}, backup_encrypt=True)
    check = _upgrade(running, "--check")
    assert "Postgres 15 -> 16" in check.stdout
    refused = _upgrade(running, "--yes", check=False)
    assert refused.rc == 1 and "major-version change" in refused.stderr and "--postgres-major" in refused.stderr
    assert running.inspect("postgres")["Config"]["Image"] == standins["test"]["postgres"]
    moved = _upgrade(running, "--yes", "--postgres-major")
    assert "restoring every database" in moved.stdout + moved.stderr
    taken = host.check_output(f"ls -1d {running.root}/backups/backup-* | tail -1")
    assert json.loads(host.check_output(f"cat {taken}/manifest.json"))["encrypted"] is True
    assert running.inspect("postgres")["Config"]["Image"] == newer
    assert _kept(running) == "7"
    assert host.file(f"{running.root}/data/postgres-15").is_directory  # the old cluster, kept
    host.run(f"docker image rm {newer}")
