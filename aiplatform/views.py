"""Tables and summaries the tasks print. Pure formatting: each function takes data and returns a rich renderable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .diff import TreeDiff
from .hardware import HardwareReport
from .render import enabled_services
from .settings import Resolved


def hardware_table(report: HardwareReport, source: str) -> Table:
    hw = report.hardware
    table = Table(title=f"Hardware ({source})", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, Any]] = [
        ("CPU", f"{hw.cpu_cores} cores, {hw.cpu_model}"),
        ("RAM", f"{hw.ram_gb} GB"),
        ("Disk", f"{hw.disk_free_gb} GB free of {hw.disk_total_gb} GB ({hw.disk_type}) at {hw.disk_path}"),
    ]
    if hw.gpus:
        for index, gpu in enumerate(hw.gpus):
            rows.append((f"GPU {index}", f"{gpu.name}, {gpu.vram_mb} MB VRAM, driver {gpu.driver_version}"))
        if len(hw.gpus) > 1:
            rows.append(("VRAM total", f"{hw.vram_mb} MB"))
    else:
        rows.append(("GPU", f"none ({hw.gpu_status})"))
    rows += [
        ("Tier", report.tier),
        ("Default models", f"{', '.join(report.models)} (about {report.models_size_gb:g} GB)"),
    ]
    for key, value in rows:
        table.add_row(key, escape(str(value)))
    return table


def settings_table(resolved: Resolved) -> Table:
    title = f"Settings (tier {resolved.tier}" + (", detected" if resolved.detected_tier else "") + ")"
    table = Table(title=title, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    table.add_column("source")
    for key, value, source in resolved.table():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items())
        style = "dim" if source == "default" else ""
        table.add_row(key, escape("" if shown is None else str(shown)), source, style=style)
    return table


def render_summary(result: Any) -> Group:
    """After `inv render`: services on, files created / changed / unchanged / removed, new secrets, next command."""
    written = result.written
    platform = result.rendered.platform
    lines = [
        f"Rendered {escape(str(result.out))} "
        f"(tier {platform.tier}, {platform.address}, TLS {platform.settings.ssl_mode})",
        "Services: " + ", ".join(spec.name for spec in enabled_services(platform)),
        f"Files: {len(written.created)} created, {len(written.changed)} changed, {len(written.unchanged)} unchanged"
        + (f", {len(written.removed)} removed" if written.removed else ""),
    ]
    for label, paths in (("created", written.created), ("changed", written.changed), ("removed", written.removed)):
        lines += [f"  [green]{label}[/] {escape(path)}" for path in paths if len(paths) <= 40]
    changes = result.rendered.secret_changes
    if changes.added:
        lines.append("New secrets (in config/credentials.env, mode 0600): " + ", ".join(changes.added))
    if changes.changed:
        lines.append("Secrets changed: " + ", ".join(changes.changed))
    lines.append("Next: [bold]inv diff[/] to review what would change on the host, then [bold]sudo inv deploy[/].")
    return Group(*(Text.from_markup(line) for line in lines))


def diff_report(result: TreeDiff, generated: Path, root: Path) -> Group:
    """A colored unified diff per file, then the secret names that change and a one-line summary."""
    parts: list[Any] = []
    for item in result.files:
        title = f"[bold]{item.status}[/] {escape(item.path)}" + (f" ({item.note})" if item.note else "")
        parts.append(Text.from_markup(title))
        for line in item.text.splitlines():
            style = (
                "green"
                if line.startswith("+")
                else "red"
                if line.startswith("-")
                else "cyan"
                if line.startswith("@@")
                else ""
            )
            parts.append(Text(line, style=style))
    for label, names in (
        ("added", result.secrets_added),
        ("changed", result.secrets_changed),
        ("removed", result.secrets_removed),
    ):
        if names:
            parts.append(Text(f"Secrets {label}: {', '.join(names)} (values not shown)"))
    if result.differs:
        counts = {
            status: sum(1 for f in result.files if f.status == status) for status in ("new", "changed", "removed")
        }
        parts.append(
            Text(
                f"{root} would change: {counts['new']} new, {counts['changed']} changed, {counts['removed']} removed. "
                "Apply with: sudo inv deploy",
                style="bold",
            )
        )
    else:
        parts.append(Text(f"{root} already matches {generated}: nothing to apply.", style="bold"))
    return Group(*parts)
