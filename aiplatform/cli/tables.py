"""Tables and summaries the tasks print. Pure formatting: each function takes data and returns a rich renderable.

Types of the other modules are imported for annotations only, so `inv render` does not pay for loading the Docker
client and friends.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from aiplatform.commands import INV, SUDO_INV
from aiplatform.paths import CREDENTIALS_ENV
from aiplatform.render.platform import enabled_services, public_url

if TYPE_CHECKING:
    from aiplatform.backup.manifest import Manifest
    from aiplatform.backup.remote import CopyReport, Remote
    from aiplatform.backup.restore import RestoreReport
    from aiplatform.backup.take import BackupReport
    from aiplatform.configure.info import Info
    from aiplatform.configure.model import Report, StepResult
    from aiplatform.engine.cleanup import CleanupPlan, CleanupResult
    from aiplatform.engine.deploy import DeployResult, Plan
    from aiplatform.engine.status import StatusReport
    from aiplatform.generated.build import RenderResult
    from aiplatform.generated.diff import TreeDiff
    from aiplatform.generated.stamp import Stamp
    from aiplatform.host.checks import Check
    from aiplatform.host.setup import SetupReport, Step
    from aiplatform.inputs.hardware import HardwareReport
    from aiplatform.inputs.settings import Resolved
    from aiplatform.manage.changes import ChangeResult, MenuRow
    from aiplatform.manage.upgrade import UpgradePlan


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
        table.add_row(key, str(value))
    return table


def settings_table(resolved: Resolved, stored: dict[str, str] | None = None) -> Table:
    title = f"Settings (tier {resolved.tier}" + (", detected" if resolved.detected_tier else "") + ")"
    table = Table(title=title, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    table.add_column("source")
    for key, value, source in resolved.table(stored):
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items())
        style = "dim" if source == "default" else ""
        table.add_row(key, "" if shown is None else str(shown), source, style=style)
    return table


def login_lines(url: str, admin: str, credentials: str) -> list[Text]:
    """Where to log in, as whom, and where the password is (never the password itself)."""
    return [
        Text.assemble(("Open ", ""), (url, "bold"), f" and log in as {admin}"),
        Text(f"  password: ADMIN_PASSWORD in {credentials} (`{SUDO_INV} info --show-secrets` shows it)"),
    ]


def render_summary(result: RenderResult) -> Group:
    """After `inv render`: the root, services on, files created / changed / removed, new secrets, login, next step."""
    written = result.written
    platform = result.rendered.platform
    parts: list[Any] = [
        Text(
            f"Rendered {result.out} for root {result.root} "
            f"(tier {platform.tier}, {platform.address}, TLS {platform.settings.ssl_mode})"
        ),
        Text("Services: " + ", ".join(spec.name for spec in enabled_services(platform))),
        Text(
            f"Files: {len(written.created)} created, {len(written.changed)} changed, "
            f"{len(written.unchanged)} unchanged" + (f", {len(written.removed)} removed" if written.removed else "")
        ),
    ]
    for label, paths in (("created", written.created), ("changed", written.changed), ("removed", written.removed)):
        parts += [Text.assemble("  ", (label, "green"), f" {path}") for path in paths if len(paths) <= 40]
    changes = result.rendered.secret_changes
    if changes.added:
        parts.append(Text("New secrets (in config/credentials.env, mode 0600): " + ", ".join(changes.added)))
    if changes.changed:
        parts.append(Text("Secrets changed: " + ", ".join(changes.changed)))
    webui = platform.catalog.services.get("open-webui")
    if webui is not None:
        parts += login_lines(
            public_url(platform, webui),
            platform.settings.admin_email,
            f"{result.out / CREDENTIALS_ENV} (after deploy: {result.root / CREDENTIALS_ENV}, root only)",
        )
    parts.append(
        Text.assemble(
            "Next: ",
            (f"{INV} diff", "bold"),
            " to review what would change on the host, then ",
            (f"{SUDO_INV} deploy", "bold"),
            ".",
        )
    )
    return Group(*parts)


def diff_report(result: TreeDiff, generated: Path, root: Path, stat: bool = False) -> Group:
    """A colored unified diff per file (with `stat`: one line per file, lines added and removed), then the secret
    names that change and a one-line summary."""
    parts: list[Any] = []
    if stat:
        width = max((len(item.path) for item in result.files), default=0)
        for item in result.files:
            lines = item.text.splitlines()
            added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
            removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
            parts.append(
                Text.assemble(
                    f" {item.path:{width}} | {item.status:7} ",
                    (f"+{added}", "green"),
                    " ",
                    (f"-{removed}", "red"),
                    f"  {item.note}" if item.note else "",
                )
            )
    for item in [] if stat else result.files:
        parts.append(Text.assemble((item.status, "bold"), f" {item.path}", f" ({item.note})" if item.note else ""))
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
                f"Apply with: {SUDO_INV} deploy",
                style="bold",
            )
        )
    else:
        parts.append(Text(f"{root} already matches {generated}: nothing to apply.", style="bold"))
    return Group(*parts)


# --- deploy, status, cleanup -------------------------------------------------------------------------------------

STATUS_STYLE = {"healthy": "green", "running": "green", "done": "green", "starting": "yellow", "waiting": "dim"}


def checks_table(found: list[Check], title: str = "Preflight") -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    for column in ("check", "verdict", "detail", "fix"):
        table.add_column(column)
    style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
    for check in found:
        table.add_row(check.name, Text(check.status.upper(), style=style[check.status]), check.detail, check.fix)
    return table


def deploy_report(result: DeployResult, stamp: Stamp | None) -> Group:
    urls = stamp.urls if stamp else {}
    parts: list[Any] = [Text(f"Root: {result.root}")]
    if result.reloaded:
        parts.append(
            Text(
                "Reloaded without a restart: " + ", ".join(f"{n} ({', '.join(f)})" for n, f in result.reloaded.items())
            )
        )
    if result.backed_up and result.backup_dir:
        parts.append(Text(f"Backed up {len(result.backed_up)} replaced file(s) to {result.backup_dir}"))
    for failure in result.failures:
        parts.append(Text(f"\n{failure.container} did not become healthy: {failure.state}", style="bold red"))
        if failure.health_log:
            parts.append(Text("Health log (last checks):", style="bold"))
            parts += [Text(f"  {line}") for line in failure.health_log]
        parts.append(Text(f"Last 50 lines of `docker logs ai-platform-{failure.container}`:", style="bold"))
        parts.append(Text(failure.logs.rstrip() or "(empty)"))
    if result.not_started:
        parts.append(Text(f"Not started (a dependency failed): {', '.join(result.not_started)}", style="yellow"))
    table = Table(title="Services", title_justify="left")
    for column in ("container", "state", "URL"):
        table.add_column(column)
    for name, state in result.states.items():
        if name not in result.plan.containers and result.plan.containers:
            continue
        shown = "healthy" if state.ready else state.state + (f", {state.health}" if state.health else "")
        if state.state == "exited" and state.exit_code == 0:
            shown = "done"
        url = urls.get(name, {})
        link = url.get("local") or url.get("public", "")
        table.add_row(name, Text(shown, style=STATUS_STYLE.get(shown, "red")), link)
    parts.append(table)
    changed = len(result.created) + len(result.recreated)
    parts.append(
        Text(
            f"{len(result.created)} created, {len(result.recreated)} recreated, {len(result.unchanged)} unchanged"
            + (" — nothing changed, no container was recreated" if result.applied and changed == 0 else "")
            + f" ({result.seconds:.1f} s)",
            style="bold",
        )
    )
    webui = urls.get("open-webui", {})
    if stamp is not None and stamp.admin_email and webui:
        parts += login_lines(
            webui.get("public") or webui.get("local", ""), stamp.admin_email, str(result.root / CREDENTIALS_ENV)
        )
    return Group(*parts)


def status_table(report: StatusReport) -> Group:
    table = Table(title="Platform status", title_justify="left")
    for column in ("container", "service", "state", "image", "ports", "URL", "drift"):
        table.add_column(column)
    for row in report.rows:
        table.add_row(
            row.container,
            row.service,
            Text(row.state, style="green" if row.healthy else "red"),
            row.image,
            "\n".join(row.ports),
            row.url,
            Text("DRIFT", style="yellow") if row.drift else "",
        )
    parts: list[Any] = [table]
    status, line = report.backup
    parts.append(Text(f"Last backup: {line}", style={"ok": "", "warn": "yellow"}.get(status, "red")))
    for node in report.nodes:
        state = f"Ollama {node.version}" if node.reachable else f"does not answer ({node.error})"
        extra = [f"missing {', '.join(node.missing)}"] if node.missing else []
        extra += [f"GPU {node.gpu}"] if node.gpu else []
        extra += ["down for LiteLLM (no requests)"] if node.down_in_litellm else []
        style = "red" if not node.reachable else "yellow" if node.missing or node.down_in_litellm else ""
        parts.append(Text(f"Node {node.name} ({node.url}): " + "; ".join([state, *extra]), style=style))
    if any(row.drift for row in report.rows):
        parts.append(
            Text(f"Drift: running containers differ from generated/: run `{SUDO_INV} deploy`.", style="yellow")
        )
    if report.orphans:
        parts.append(
            Text(
                "Orphans (labelled, no longer in generated/): "
                + ", ".join(f"{c.name} ({c.state})" for c in report.orphans),
                style="yellow",
            )
        )
    if report.root_differs:
        parts.append(
            Text(
                f"The root differs from generated/ in {len(report.root_differs)} file(s): see `{INV} diff`.",
                style="yellow",
            )
        )
    verdict = (
        "all healthy"
        if report.healthy
        else "NOT healthy: " + ", ".join(r.container for r in report.rows if not r.healthy)
    )
    parts.append(Text(verdict, style="bold green" if report.healthy else "bold red"))
    return Group(*parts)


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size:.1f} TB"


def cleanup_plan(plan: CleanupPlan) -> Group:
    lines = [Text("Cleanup plan", style="bold")]
    if plan.no_engine:
        lines.append(
            Text(f"  Docker: not looked at ({plan.no_engine}): nothing of Docker's would be removed", style="yellow")
        )
    lines.append(Text(f"  containers: {', '.join(name for _, name in plan.containers) or 'none'}"))
    lines.append(Text(f"  networks:   {', '.join(plan.networks) or 'none'}"))
    if plan.volumes:
        lines.append(Text("  volumes:    " + ", ".join(f"{n} ({_size(s)})" for n, s in plan.volumes)))
    if plan.root:
        lines.append(
            Text(
                f"  root:       {plan.root[0]} ({_size(plan.root[1])}) — config, data/, logs/"
                + (" (backups/ kept)" if plan.backups else ", backups/"),
                style="bold red",
            )
        )
    if plan.images:
        lines.append(Text(f"  images:     {', '.join(plan.images)}"))
    if plan.timer:
        lines.append(Text(f"  timer:      {plan.timer} — the daily or weekly backup of this root"))
    for path in plan.legacy:
        lines.append(
            Text(
                f"  legacy root of the old scripts: {path} "
                f"(kept; `{SUDO_INV} cleanup --root {path} --purge` removes it)",
                style="yellow",
            )
        )
    return Group(*lines)


def cleanup_summary(result: CleanupResult, kept: list[str]) -> Group:
    plan = result.plan
    removed = [f"{len(plan.containers)} container(s)", f"{len(plan.networks)} network(s)"]
    if plan.volumes:
        removed.append(f"{len(plan.volumes)} volume(s)")
    if plan.images:
        removed.append(f"{len(plan.images)} image(s)")
    if plan.root:
        removed.append(str(plan.root[0]))
    if plan.timer:
        removed.append(f"the backup timer ({plan.timer.name})")
    return Group(
        Text("Removed: " + ", ".join(removed), style="bold"),
        Text("Verified: nothing labelled ai-platform.managed=true is left.", style="green"),
        Text("Kept: " + "; ".join(kept)),
    )


# --- setup and doctor --------------------------------------------------------------------------------------------


def setup_report(report: SetupReport, dry_run: bool) -> Group:
    parts: list[Any] = []
    if dry_run:
        parts.append(
            Text(
                "Dry run: nothing was changed. Then setup would wait for Ollama (unit, port, API) and pull the models.",
                style="bold",
            )
        )
        return Group(*parts)
    if report.wait is not None and not report.wait.ok:
        parts.append(Text(report.wait.report(), style="red"))
        parts.append(Text(f"Saved to {report.diagnostics_file}", style="bold"))
    if report.pull is not None:
        pull = report.pull
        parts.append(
            Text(f"Models: {len(pull.pulled)} pulled, {len(pull.skipped)} already present, {len(pull.failed)} failed")
        )
        parts += [Text(f"  {model}: {reason}", style="yellow") for model, reason in pull.failed.items()]
    parts.append(checks_table(report.checks, title="Setup summary"))
    return Group(*parts)


def deploy_plan(plan: Plan) -> Group:
    """The files deploy would apply and what it would do to each container."""
    files = plan.files.files
    parts: list[Any] = [Text(f"Files to apply: {len(files)}" + (" (none)" if not files else ""), style="bold")]
    parts += [Text(f"  {item.status:8} {item.path}" + (f"  {item.note}" if item.note else "")) for item in files]
    if plan.files.secrets_changed:
        parts.append(Text(f"  secrets changed: {', '.join(plan.files.secrets_changed)}"))
    grouped: dict[str, list[str]] = {}
    for name, action in plan.containers.items():
        grouped.setdefault(action, []).append(name)
    labels = {"create": "to create", "recreate": "to recreate", "start": "to start", "unchanged": "left alone"}
    for action, label in labels.items():
        if grouped.get(action):
            names = [f"{n} ({plan.reasons[n]})" if n in plan.reasons else n for n in grouped[action]]
            parts.append(Text(f"Containers {label}: {', '.join(names)}"))
    if plan.reloads:
        reloads = ", ".join(f"{name} ({', '.join(files)})" for name, files in plan.reloads.items())
        parts.append(Text(f"Containers to reload, without a restart: {reloads}"))
    if plan.remove:
        removed = ", ".join(c.container for c in plan.remove)
        parts.append(Text(f"Containers to remove (no longer in generated/; volumes kept): {removed}"))
    return Group(*parts)


def setup_plan(steps: list[Step]) -> Group:
    """Each setup step with its state, the commands and files it would run and write, notes and errors."""
    style = {"to do": "yellow", "already done": "green", "skipped": "dim", "error": "bold red"}
    parts: list[Any] = []
    for step in steps:
        label = step.state + (f" ({step.skipped})" if step.skipped else "")
        parts.append(Text.assemble((f"{step.name:10}", "bold"), (label, style[step.state])))
        parts += [Text(f"    {action.describe()}") for action in step.actions]
        parts += [Text(f"    note: {note}", style="cyan") for note in step.notes]
        parts += [Text(f"    error: {problem}", style="red") for problem in step.errors]
    return Group(*parts)


# --- configure and info ------------------------------------------------------------------------------------------

RESULT_STYLE = {"done": "green", "already done": "green", "ok": "green", "skipped": "yellow", "would do": "cyan"}


def configure_line(step: StepResult) -> Text:
    """One line per step while configure runs."""
    style = RESULT_STYLE.get(step.result, "bold red")
    return Text.assemble(
        "  ",
        (f"{step.service:11}", "bold"),
        f"{step.step}: ",
        (step.result, style),
        f" — {step.detail}" if step.detail else "",
    )


def configure_report(report: Report, dry_run: bool) -> Group:
    table = Table(title="Configure" + (" (dry run: nothing was changed)" if dry_run else ""), title_justify="left")
    for column in ("service", "step", "result"):
        table.add_column(column)
    for step in report.steps:
        shown = step.result + (f" ({step.detail})" if step.result == "skipped" and step.detail else "")
        table.add_row(step.service, step.step, Text(shown, style=RESULT_STYLE.get(step.result, "bold red")))
    parts: list[Any] = [table]
    for step in report.steps:
        if step.result == "FAILED":
            parts.append(Text(f"{step.service} / {step.step}: {step.detail}", style="bold red"))
            if step.fix:
                parts.append(Text(f"  fix: {step.fix}"))
    counts = {result: sum(1 for s in report.steps if s.result == result) for result in RESULT_STYLE}
    failed = sum(1 for s in report.steps if s.result == "FAILED")
    summary = ", ".join(f"{n} {result}" for result, n in counts.items() if n) + (f", {failed} FAILED" if failed else "")
    if not report.changed and report.ok and not dry_run:
        summary += " — nothing changed"
    parts.append(Text(summary, style="bold" if report.ok else "bold red"))
    return Group(*parts)


def info_table(info: Info) -> Group:
    """Each service's URLs and sign-in as whole lines, never a table cell: a URL, a path or a secret is never cut nor
    broken in two (the console soft-wraps, so a copied value is the whole value at any width, and when piped)."""
    parts: list[Any] = [Text(f"AI Platform ({info.source})", style="bold")]
    quiet = []
    for service in info.services:
        rows = service.labelled_urls()
        if service.user:
            rows.append(("sign in", service.user))
        if service.password:
            rows.append((service.secret_kind or "password", service.password))
        if not rows:
            quiet.append(service.service)
            continue
        width = max(len(label) for label, _ in rows) + 1
        parts.append(Text.assemble((service.service, "bold"), (f"  {service.description}", "dim")))
        parts += [Text(f"  {label + ':':<{width}} {value}") for label, value in rows]
        if service.note:
            parts.append(Text(f"  {'':<{width}} ({service.note})"))
    if quiet:
        parts.append(Text(f"Also running, with no URL or sign-in of their own: {', '.join(quiet)}"))
    if info.litellm_base:
        parts.append(Text("OpenAI-compatible API (LiteLLM):"))
        parts += [Text(f"  {kind + ':':<8} {url}") for kind, url in info.litellm_base.items()]
    if not info.shown:
        parts.append(Text(f"Passwords and keys: `{SUDO_INV} info --show-secrets` shows them."))
    return Group(*parts)


# --- add and remove ----------------------------------------------------------------------------------------------


def services_menu(rows: list[MenuRow]) -> Group:
    table = Table(title="Services to add", title_justify="left")
    for column in ("#", "service", "what it is", "needs"):
        table.add_column(column)
    table.add_column("URL once added", overflow="fold")
    for index, row in enumerate(rows, start=1):
        table.add_row(str(index), row.name, row.description, row.needs, row.url)
    return Group(
        table,
        Text("c  a service from your compose file (inv add --from-compose FILE --name NAME)"),
        Text("n  a new service from the template (inv add --new NAME)"),
        Text("q  nothing"),
    )


def services_list(rows: list[MenuRow]) -> Group:
    """The menu without a terminal: one line per service, whole, for a reader or a script."""
    lines = [Text(f"{r.name}: {r.description} Needs {r.needs}." + (f" {r.url}" if r.url else "")) for r in rows]
    return Group(Text("Services to add:"), *lines)


def purge_table(items: list[tuple[str, int | None]]) -> Table:
    table = Table(title="--purge deletes, for good", title_justify="left", title_style="bold red")
    table.add_column("what", overflow="fold")
    table.add_column("size")
    for what, size in items:
        table.add_row(what, _size(size) if size is not None else "")
    return table


def change_summary(result: ChangeResult) -> Group:
    parts: list[Any] = []
    if result.added:
        parts.append(Text(f"Added {', '.join(result.added)} (recorded in {result.answers})", style="bold"))
    if result.removed:
        kept = "" if result.purged else "; its data and secrets are kept (--purge deletes them)"
        parts.append(Text(f"Removed {', '.join(result.removed)} (recorded in {result.answers}){kept}", style="bold"))
    if result.purged:
        parts.append(Text("Deleted: " + ", ".join(what for what, _ in result.purged)))
    return Group(*parts)


# --- backup and restore ------------------------------------------------------------------------------------------


def backup_summary(report: BackupReport) -> Group:
    manifest = report.manifest
    table = Table(title=f"Backup {report.path}", title_justify="left")
    for column in ("service", "item", "how", "size"):
        table.add_column(column)
    for item in manifest.items:
        table.add_row(item.service, f"{item.kind} {item.name}", item.method, _size(item.size))
    parts: list[Any] = [table]
    for service, why in manifest.left_out.items():
        parts.append(Text(f"  {service}: left out — {why}"))
    for service, seconds in report.stopped.items():
        parts.append(Text(f"  {service}: stopped {seconds:.1f} s for a consistent copy, then started again"))
    if report.deleted:
        parts.append(Text(f"Retention: deleted {', '.join(p.name for p in report.deleted)}"))
    sealed = ", encrypted (gpg AES256; keep BACKUP_PASSPHRASE off the box)" if manifest.encrypted else ""
    parts.append(
        Text(f"{len(manifest.items)} items, {_size(manifest.size)}{sealed} in {report.seconds:.1f} s", style="bold")
    )
    return Group(*parts)


def copy_summary(report: CopyReport) -> Text:
    deleted = f"; deleted there: {', '.join(report.deleted)}" if report.deleted else ""
    return Text(f"Copied to {report.target}, `rclone check` found no difference{deleted}", style="bold")


def backups_table(backups: list[Path], dest: Path, on_remote: list[str], remote: Remote | None) -> Group:
    """One line per backup, newest first (lines, not a table: names and times stay whole in a narrow terminal)."""
    from aiplatform.backup.manifest import read_manifest

    lines = [Text(f"Backups in {dest}" + (f" and on {remote.target}" if remote else ""), style="bold")]
    for path in reversed(backups):
        manifest = read_manifest(path)
        copied = ("  copied off the box" if path.name in on_remote else "  not off the box") if remote else ""
        lines.append(Text(f"{path.name}  {manifest.created}  {_size(manifest.size)}  "
                          f"{', '.join(manifest.services)}{copied}"))  # fmt: skip
    for name in sorted(set(on_remote) - {p.name for p in backups}, reverse=True):
        lines.append(Text(f"{name}  only on {remote.target if remote else 'the remote'}"))
    if len(lines) == 1:
        lines.append(Text("  none yet"))
    return Group(*lines)


def restore_plan(backup: Path, manifest: Manifest, replaced: list[str]) -> Group:
    lines = [
        Text(f"Restore {backup} (taken {manifest.created} by ai-platform {manifest.tool_version})", style="bold"),
        Text(f"Checksums: all {len(manifest.items)} files match the manifest"),
        Text("Replaces, in this order:"),
    ]
    lines += [Text(f"  {what}") for what in replaced]
    return Group(*lines)


def restore_summary(report: RestoreReport) -> Group:
    parts: list[Any] = []
    if report.result is not None:
        parts.append(deploy_report(report.result, None))
    ok = "restored and healthy" if report.ok else "restored, but not everything is healthy (see above)"
    parts.append(Text(f"{len(report.replaced)} items {ok}. Run `{INV} render` then `{INV} diff`: generated/ may "
                      "differ from what the backup brought back.", style="bold"))  # fmt: skip
    return Group(*parts)


def upgrade_plan(plan: UpgradePlan) -> Group:
    """One line per container that would change (lines: image references stay whole)."""
    lines = [Text(f"Images of {plan.root}", style="bold")]
    for change in plan.pending:
        was = f"{change.running}" + (f" ({change.running_digest[:19]})" if change.running_digest else "")
        lines.append(Text(f"  {change.container}: {change.kind}: {was or '-'} -> {change.target}"))
    same = len(plan.changes) - len(plan.pending)
    lines.append(Text(f"{len(plan.pending)} to change, {same} already on the image generated/ names", style="bold"))
    if plan.postgres:
        lines.append(Text(f"Postgres {plan.postgres[0]} -> {plan.postgres[1]}: a major-version change "
                          "(`--postgres-major` moves the data with a dump)", style="yellow"))  # fmt: skip
    return Group(*lines)
