"""`inv backup --schedule daily|weekly|off`: a systemd service and timer that run `inv backup --yes` for this root
(Persistent, so a run missed while the box was off happens at boot; spread over an hour), logging to
<root>/logs/backup.log. Units are rendered from templates/platform/systemd/ and written by the runner."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from aiplatform import __version__
from aiplatform.host.runner import Runner
from aiplatform.inputs.root import root_flag
from aiplatform.paths import PROJECT_DIR, TEMPLATES_DIR
from aiplatform.render.templates import environment, render_template

UNIT_DIR = Path("/etc/systemd/system")
SERVICE = "ai-platform-backup.service"
TIMER = "ai-platform-backup.timer"
SCHEDULES = {"daily": "daily", "weekly": "weekly"}
DESCRIPTION = "Description=AI Platform backup of "  # the service's line naming its root (scheduled_root reads it)


@dataclass
class Units:
    service: str
    timer: str


def units(schedule: str, root: Path, python: str = sys.executable, project: Path = PROJECT_DIR) -> Units:
    """The two unit files for `schedule` (daily or weekly)."""
    env = environment((TEMPLATES_DIR,))
    command = [python, "-m", "invoke", "--search-root", str(project), "backup", "--root", str(root)]
    context = {
        "header": f"Written by `inv backup --schedule {schedule}` (ai-platform {__version__}); `off` removes it.",
        "root": root,
        "project": project,
        "command": command,
        "log": root / "logs" / "backup.log",
        "schedule": SCHEDULES[schedule],
    }
    return Units(
        render_template(env, "platform/systemd/ai-platform-backup.service.j2", context),
        render_template(env, "platform/systemd/ai-platform-backup.timer.j2", context),
    )


def scheduled_root(unit_dir: Path = UNIT_DIR) -> Path | None:
    """The root the installed backup timer backs up (its service's Description), or None when none is installed."""
    try:
        text = (unit_dir / SERVICE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.startswith(DESCRIPTION):
            return Path(line[len(DESCRIPTION) :].replace("%%", "%"))
    return None


def uninstall(runner: Runner, unit_dir: Path = UNIT_DIR) -> list[str]:
    """Stop, disable and remove the timer and its service (`off`, and cleanup --purge of the root it backs up)."""
    runner.run(["systemctl", "disable", "--now", TIMER], check=False)
    for name in (TIMER, SERVICE):
        runner.remove_file(unit_dir / name)
    runner.run(["systemctl", "daemon-reload"], check=False)
    return [f"removed {unit_dir / TIMER} and {unit_dir / SERVICE}"]


def install(schedule: str, root: Path, runner: Runner, unit_dir: Path = UNIT_DIR) -> list[str]:
    """Write and enable the timer, or (off) disable and remove it. Returns what changed."""
    if schedule == "off":
        return uninstall(runner, unit_dir)
    made = units(schedule, root_flag(str(root)))  # a newline in it would add a line to the unit
    runner.write(unit_dir / SERVICE, made.service.encode(), 0o644)
    runner.write(unit_dir / TIMER, made.timer.encode(), 0o644)
    runner.run(["systemctl", "daemon-reload"])
    runner.run(["systemctl", "enable", "--now", TIMER])
    return [f"{unit_dir / TIMER}: {schedule}, logs in {root / 'logs' / 'backup.log'}"]
