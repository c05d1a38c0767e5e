"""Remove what the platform created — its containers and networks, and with --purge its volumes, data/ and root,
with --images its images — and nothing else. Replaces the original "complete cleanup" script, which also
uninstalled Docker and other packages: this never removes a package.

Selection is by the `ai-platform.managed=true` label and the `ai-platform` compose project; an unlabelled container,
network or volume is never touched. Legacy roots of the old scripts are reported, never deleted unless given as --root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.backup import schedule
from aiplatform.backup.manifest import complete_backups
from aiplatform.commands import SUDO_INV
from aiplatform.engine.docker import Docker, require_engine
from aiplatform.errors import UserError
from aiplatform.host import checks
from aiplatform.paths import LEGACY_ROOTS, dir_size


@dataclass
class CleanupPlan:
    containers: list[tuple[str, str]]  # (id, name)
    networks: list[str]
    volumes: list[tuple[str, int]] = field(default_factory=list)  # (name, bytes)
    images: list[str] = field(default_factory=list)
    root: tuple[Path, int] | None = None  # (path, bytes) with --purge
    backups: Path | None = None  # the root's backups/, kept by --purge when it holds any
    timer: Path | None = None  # the backup timer of this root with --purge: it would run daily on a root that is gone
    legacy: list[Path] = field(default_factory=list)
    no_engine: str = ""  # why Docker was not looked at (a dry run on a box without an engine)

    @property
    def empty(self) -> bool:
        return not (self.containers or self.networks or self.volumes or self.images or self.root or self.timer)


@dataclass
class CleanupResult:
    plan: CleanupPlan
    removed: bool = False
    left: list[str] = field(default_factory=list)  # labelled objects still there after removal


def make_plan(docker: Docker, root: Path, purge: bool, images: bool, unit_dir: Path = schedule.UNIT_DIR) -> CleanupPlan:
    """What cleanup would remove. Without an engine only a dry run goes on (with nothing of Docker's in it)."""
    problem = docker.engine_error()
    if problem and not docker.runner.dry_run:
        require_engine(docker)
    containers = [] if problem else docker.containers()
    plan = CleanupPlan(
        containers=[(c.id, c.name) for c in containers],
        networks=[] if problem else docker.networks(),
        legacy=[path for path in checks.legacy_roots() if path.resolve() != root.resolve()],
        no_engine=problem or "",
    )
    if purge:
        volumes = [] if problem else docker.volumes()
        plan.volumes = [(name, dir_size(Path(mount))) for name, mount in volumes]
        if root.is_dir():
            if not is_platform_root(root):
                raise UserError(
                    f"{root} does not look like a platform root (no .aiplatform.json, no config/master.env): "
                    "--purge will not delete it.",
                    "Check --root (or AI_PLATFORM_ROOT / root: in answers.yaml).",
                )
            backups = root / "backups"
            if complete_backups(backups):  # what `inv restore` needs after a purge: never deleted with the rest
                plan.backups = backups
            plan.root = (root, dir_size(root) - (dir_size(backups) if plan.backups else 0))
        timed = schedule.scheduled_root(unit_dir)
        if timed is not None and timed.resolve() == root.resolve():
            plan.timer = unit_dir / schedule.TIMER
    if images:
        plan.images = sorted({c.image for c in containers})
    return plan


def is_platform_root(path: Path) -> bool:
    """A root this tool deployed (its stamp), or one the old scripts made (their master.env), or a legacy path."""
    legacy = {p.expanduser().resolve() for p in LEGACY_ROOTS}
    markers = (path / ".aiplatform.json", path / "config" / "master.env")
    return any(m.is_file() for m in markers) or path.resolve() in legacy


def remove(docker: Docker, plan: CleanupPlan) -> CleanupResult:
    """Remove everything in the plan, then verify that nothing labelled is left."""
    result = CleanupResult(plan)
    docker.remove_containers([cid for cid, _ in plan.containers])
    docker.remove_networks(plan.networks)
    docker.remove_volumes([name for name, _ in plan.volumes])
    docker.remove_images(plan.images)
    if plan.timer is not None:
        schedule.uninstall(docker.runner, plan.timer.parent)
    if plan.root is not None:
        root = plan.root[0]
        for entry in sorted(root.iterdir()) if plan.backups else [root]:
            if entry == plan.backups:
                continue
            if entry.is_dir() and not entry.is_symlink():
                docker.runner.remove_tree(entry)
            else:
                docker.runner.remove_file(entry)
    result.removed = True
    if docker.runner.dry_run or plan.no_engine:
        return result
    result.left = [c.name for c in docker.containers()] + docker.networks()
    if plan.volumes:
        result.left += [name for name, _ in docker.volumes()]
    if result.left:
        raise UserError(
            f"Cleanup left labelled objects behind: {', '.join(result.left)}.",
            f"Run `{SUDO_INV} cleanup` again, or remove them with docker rm / docker network rm.",
        )
    return result


def kept(docker: Docker, root: Path, purge: bool, images: bool) -> list[str]:
    """What cleanup leaves in place, for the summary."""
    out = []
    if not purge:
        volumes = docker.volumes()
        if volumes:
            out.append(f"{len(volumes)} volume(s): {', '.join(name for name, _ in volumes)} (--purge removes them)")
        if root.is_dir():
            out.append(f"{root} with data/ (--purge removes it)")
    elif complete_backups(root / "backups"):
        out.append(f"{root / 'backups'} with {len(complete_backups(root / 'backups'))} backup(s) (delete it by hand)")
    if not images:
        out.append("images (--images removes them)")
    out.append("Docker and every installed package")
    return out
