"""`inv upgrade`: the images the catalog (and settings) now pin, in place of the running ones — with a way back.

The plan compares, per container, the image generated/ would name after a render (into a scratch copy) with the one
the running container was made from, by reference and by digest. `--check` stops there. Otherwise: a refused
Postgres major-version change (its data directory cannot be read by another major: the way is dump → new cluster
→ restore, `--postgres-major`), a backup, the new images pulled (those not on this host yet), their digests recorded
in images.lock (render pins `image@sha256:` from it), render and deploy; when a service does not become healthy,
the previous images.lock and generated/ come back and are deployed again, so the previous images run on the same
data (volumes are never touched by either deploy).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.backup.take import server_version
from aiplatform.commands import INV, SUDO_INV
from aiplatform.engine import deploy as deploying
from aiplatform.engine.docker import Docker, require_engine
from aiplatform.engine.project import load_project
from aiplatform.errors import UserError
from aiplatform.generated import build
from aiplatform.generated.files import Tree, read_tree
from aiplatform.generated.write import render_lock, write_tree
from aiplatform.host.runner import Runner
from aiplatform.inputs.context import Context
from aiplatform.inputs.images import format_lock, read_lock


@dataclass
class Change:
    container: str
    running: str  # image reference the container runs ("" when it does not exist yet)
    running_digest: str
    target: str  # what generated/ would name
    kind: str  # new image | new digest | new container | same


@dataclass
class UpgradePlan:
    root: Path
    changes: list[Change]
    postgres: tuple[int, int] | None = None  # (running major, target major) when they differ

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.kind != "same"]


@dataclass
class UpgradeResult:
    plan: UpgradePlan
    backup: Path | None = None
    pulled: list[str] = field(default_factory=list)
    deployed: deploying.DeployResult | None = None
    rolled_back: deploying.DeployResult | None = None
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.deployed is not None and self.deployed.ok


def _major(image: str) -> int | None:
    found = re.search(r":(\d+)(?:[.\-]|$)", image.split("@")[0])
    return int(found.group(1)) if found else None


def make_plan(make_context: Callable[[], Context], out: Path, runner: Runner) -> UpgradePlan:
    """Render into a scratch copy of generated/ and compare its images with the running containers'. Without an
    engine there is nothing to compare with: a UserError, never a plan of every container as new."""
    docker = Docker(runner)
    require_engine(docker)
    ctx = make_context()
    with tempfile.TemporaryDirectory(prefix="ai-platform-upgrade-") as scratch:
        preview = Path(scratch) / "generated"
        if out.is_dir():
            shutil.copytree(out, preview, symlinks=True)
        rendered = build.render_command(ctx, preview, interactive=False)
        targets = _images(preview)
    root = rendered.root
    running = {c.container: c for c in docker.containers()}
    changes = []
    for name, target in sorted(targets.items()):
        current = running.get(name)
        if current is None:
            changes.append(Change(name, "", "", target, "new container"))
            continue
        digest = docker.image_digest(current.image)
        wanted = target.partition("@")[2]
        if target.split("@")[0] != current.image.split("@")[0]:
            kind = "new image"
        elif wanted and digest and wanted != digest:
            kind = "new digest"
        else:
            kind = "same"
        changes.append(Change(name, current.image, digest, target, kind))
    plan = UpgradePlan(root, changes)
    postgres = next((c for c in changes if c.container == "postgres" and c.kind == "new image"), None)
    if postgres and running.get("postgres"):
        server, target_major = server_version(runner), _major(postgres.target)
        if server and target_major and server // 10000 != target_major:
            plan.postgres = (server // 10000, target_major)
    return plan


def _images(out: Path) -> dict[str, str]:
    return {name: c.image for name, c in load_project(out).containers.items()}


def upgrade(
    make_context: Callable[[], Context],
    out: Path,
    plan: UpgradePlan,
    runner: Runner,
    ui: deploying.DeployUI,
    take_backup: Callable[[], Path],
    progress: Callable[[str], None],
    postgres_major: bool = False,
    timeout: int | None = None,
) -> UpgradeResult:
    """Backup, pull, lock, render, deploy; roll back to the previous lock and generated/ when health fails."""
    if plan.postgres and not postgres_major:
        running, target = plan.postgres
        raise UserError(
            f"Postgres {running} → {target} is a major-version change: Postgres {target} cannot read the data "
            f"folder of Postgres {running}, so nothing was changed.",
            f"`{SUDO_INV} upgrade --postgres-major` moves the data with a dump: a backup, a new cluster, the dumps "
            f"restored into it (the old folder is kept as data/postgres-{running}). Or keep Postgres {running} "
            "with the `images:` setting.",
        )
    result = UpgradeResult(plan)
    lockfile = make_context().lockfile
    previous_lock = lockfile.read_bytes() if lockfile.is_file() else None
    previous_tree = read_tree(out) if out.is_dir() else {}
    progress("backing up first")
    result.backup = take_backup()
    for change in plan.pending:  # the exact target: a new digest of a tag already here is pulled too
        if runner.run(["docker", "image", "inspect", change.target], changes=False, check=False).ok:
            continue
        progress(f"pulling {change.target}")
        runner.run(["docker", "pull", change.target], timeout=3600)
        result.pulled.append(change.target)
    locked = read_lock(lockfile)
    for change in plan.pending:
        reference, _, wanted = change.target.partition("@")
        if digest := wanted or Docker(runner).image_digest(reference):
            locked[reference] = digest
    if locked:
        runner.write(lockfile, format_lock(locked), 0o644)
    data = plan.root / "data" / "postgres"
    kept = plan.root / "data" / f"postgres-{plan.postgres[0]}" if plan.postgres else None
    options = deploying.DeployOptions(out=out, root=plan.root, yes=True, timeout=timeout)
    try:
        build.render_command(make_context(), out, interactive=False)
        if kept is not None:  # a new cluster for the new major; the old folder stays, untouched
            progress(f"moving {data} aside to {kept}: the new Postgres starts an empty cluster")
            runner.run(["docker", "rm", "--force", "ai-platform-postgres"])
            runner.rename(data, kept)
        result.deployed = deploying.deploy(options, runner, build.stale_reason(out), ui)
        if result.deployed.ok and kept is not None:
            progress("restoring every database from the backup into the new cluster")
            _restore_databases(result.backup, plan.root, runner, ui, progress)
    except UserError as error:  # a step that stopped half-way: the same way back, then the reason
        progress(f"upgrade stopped ({error.message}): rolling back to the previous images")
        _roll_back(out, previous_tree, lockfile, previous_lock, data, kept, runner)
        deploying.deploy(options, runner, None, ui)
        raise
    if result.deployed.ok:
        return result
    result.failed = [f.container for f in result.deployed.failures] + result.deployed.not_started
    progress(f"{', '.join(result.failed)} did not become healthy: rolling back to the previous images")
    _roll_back(out, previous_tree, lockfile, previous_lock, data, kept, runner)
    result.rolled_back = deploying.deploy(options, runner, None, ui)  # the previous tree, on purpose
    return result


def _roll_back(out: Path, tree: Tree, lockfile: Path, lock: bytes | None, data: Path, kept: Path | None,
               runner: Runner) -> None:  # fmt: skip
    """The previous images.lock and generated/ back in place, and the previous Postgres folder when it was moved."""
    if lock is None:
        runner.remove_file(lockfile)
    else:
        runner.write(lockfile, lock, 0o644)
    with render_lock(out):
        write_tree(out, tree)
    if kept is not None and kept.exists():
        runner.run(["docker", "rm", "--force", "ai-platform-postgres"])
        runner.remove_tree(data)
        runner.rename(kept, data)


def _restore_databases(
    backup: Path, root: Path, runner: Runner, ui: deploying.DeployUI, progress: Callable[[str], None]
) -> None:
    from aiplatform.backup import restore as restoring

    manifest, items, _ = restoring.plan(backup, root, None)
    databases = [i for i in items if i.kind in ("postgres-globals", "postgres")]
    passphrase = restoring.passphrase_for(backup, manifest, root)  # the backup taken just now, with this root's
    restoring.restore(backup, root, databases, manifest, runner, progress, ui, passphrase)


def explain_rollback(result: UpgradeResult) -> str:
    back = result.rolled_back
    healthy = back is not None and back.ok
    return (
        f"Upgrade failed: {', '.join(result.failed)} did not become healthy. Rolled back to the previous images"
        + (" — every service is healthy again" if healthy else " — but not everything is healthy: see above")
        + f"; data untouched, backup taken first: {result.backup}. generated/ is the previous one: fix the image "
        f"(answers.yaml `images:`, or wait for a fixed release), then `{INV} upgrade --check`."
    )
