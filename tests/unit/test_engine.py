"""The engine's decisions, without an engine: what deploy does to each container, what status calls drift, what
cleanup --purge may delete, who holds a port; and the masks and secrets the diff and render rely on."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field

import pytest
import yaml
from rich.console import Console

from aiplatform.backup import schedule
from aiplatform.cli import tables
from aiplatform.engine import cleanup
from aiplatform.engine.deploy import _action
from aiplatform.engine.docker import ContainerInfo, Docker
from aiplatform.engine.project import ExpectedContainer, Project, load_project
from aiplatform.engine.status import platform_status
from aiplatform.errors import UserError
from aiplatform.generated.build import current_inputs, render_command
from aiplatform.generated.diff import mask, maskable
from aiplatform.generated.stamp import staleness
from aiplatform.host.checks import ports
from aiplatform.host.runner import Result, Runner
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.secrets import SecretSpec, resolve_secrets
from aiplatform.paths import SERVICES_DIR

from .test_render import _ctx


def info(name: str, state: str = "running", health: str = "healthy", exit_code: int = 0, **labels) -> ContainerInfo:
    return ContainerInfo(
        id=f"id-{name}",
        name=f"ai-platform-{name}",
        container=name,
        service=labels.get("service", name),
        config_hash=labels.get("config_hash", ""),
        compose_hash=labels.get("compose_hash", "h1"),
        state=state,
        health=health,
        exit_code=exit_code,
        image="img:1.0",
        ports=labels.get("ports", []),
    )


@pytest.mark.parametrize(
    ("current", "oneshot", "expected"),
    [
        (None, False, "create"),
        (info("x", compose_hash="old"), False, "recreate"),
        (info("x"), False, "unchanged"),
        (info("x", health=""), False, "unchanged"),  # up, no healthcheck
        (info("x", state="exited", exit_code=137), False, "start"),
        (info("x", state="created"), False, "start"),
        (info("x", state="exited", health="", exit_code=0), True, "unchanged"),  # a one-shot that did its job
        (info("x", state="exited", health="", exit_code=1), True, "start"),  # ... or failed: run it again
        (info("x", state="exited", health="", exit_code=0, compose_hash="old"), True, "recreate"),
    ],
)
def test_deploy_decides_per_container(current, oneshot, expected):
    project = Project(directory=None)  # type: ignore[arg-type]
    project.containers["x"] = ExpectedContainer("x", "svc", "cfg", oneshot)
    assert _action(project, "x", current, "h1") == expected


@dataclass
class FakeDocker:
    """What status and cleanup read from the engine, given as data."""

    running: list[ContainerInfo] = field(default_factory=list)
    runner: Runner = field(default_factory=lambda: Runner(echo=lambda _: None))

    def containers(self) -> list[ContainerInfo]:
        return self.running

    def engine_error(self) -> str | None:
        return None

    def networks(self) -> list[str]:
        return []

    def volumes(self) -> list[tuple[str, str]]:
        return []

    def remove_containers(self, ids: list[str]) -> None:
        assert not ids

    remove_networks = remove_volumes = remove_images = remove_containers


def test_status_drift_is_a_container_made_from_other_config_than_generated(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    project = load_project(out)
    running = [
        info(name, "exited" if c.oneshot else "running", "" if c.oneshot else "healthy", 0, config_hash=c.config_hash)
        for name, c in project.containers.items()
    ]
    catalog = load_catalog(SERVICES_DIR)
    report = platform_status(out, tmp_path / "root", catalog, FakeDocker(running))
    assert report.healthy and not [row.container for row in report.rows if row.drift]
    (out / "config/litellm/config.yaml").write_text("# a hand edit\n")  # generated/ now says something else
    report = platform_status(out, tmp_path / "root", catalog, FakeDocker(running))
    assert [row.container for row in report.rows if row.drift] == ["litellm"]
    stale = [*running[:-1], info(running[-1].container, config_hash="0000000000000000")]
    report = platform_status(out, tmp_path / "root", catalog, FakeDocker(stale))
    assert running[-1].container in [row.container for row in report.rows if row.drift]


def test_hand_edits_make_generated_stale(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    assert "is stale" in staleness(out, current_inputs(_ctx(tmp_path, ollama_keep_alive="9m"), "192.0.2.10"))
    stamp_inputs = __import__("json").loads((out / ".aiplatform.json").read_text())["inputs_hash"]
    assert staleness(out, stamp_inputs) is None
    (out / "config/caddy/Caddyfile").write_text("# edited\n")
    assert "edited by hand (config/caddy/Caddyfile)" in staleness(out, stamp_inputs)


def test_purge_deletes_only_a_platform_root(tmp_path):
    docker = FakeDocker()
    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="does not look like a platform root"):
        cleanup.make_plan(docker, stranger, purge=True, images=False)  # type: ignore[arg-type]
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    (root / ".aiplatform.json").write_text("{}")
    plan = cleanup.make_plan(docker, root, purge=True, images=False)  # type: ignore[arg-type]
    assert plan.root is not None and plan.root[0] == root
    assert cleanup.make_plan(docker, stranger, purge=False, images=False).root is None  # type: ignore[arg-type]


def test_purge_removes_the_backup_timer_of_this_root_only(tmp_path):
    """A timer left behind would run `inv backup` every day on a root that is gone; another root's timer stays."""
    root, units = tmp_path / "ai 50%", tmp_path / "units"
    (root / "config").mkdir(parents=True)
    (root / ".aiplatform.json").write_text("{}")
    units.mkdir()
    made = schedule.units("daily", root)
    (units / schedule.SERVICE).write_text(made.service)
    (units / schedule.TIMER).write_text(made.timer)
    docker = FakeDocker(runner=Runner(dry_run=True, echo=lambda _: None))
    assert cleanup.make_plan(docker, root, False, False, units).timer is None  # type: ignore[arg-type]
    other = tmp_path / "other"
    (other / "config").mkdir(parents=True)
    (other / ".aiplatform.json").write_text("{}")
    assert cleanup.make_plan(docker, other, True, False, units).timer is None  # type: ignore[arg-type]
    plan = cleanup.make_plan(docker, root, True, False, units)  # type: ignore[arg-type]
    assert plan.timer == units / schedule.TIMER
    shown = Console(width=200, record=True)
    shown.print(tables.cleanup_plan(plan))
    assert f"timer:      {units / schedule.TIMER}" in shown.export_text()
    cleanup.remove(docker, plan)  # type: ignore[arg-type]
    history = docker.runner.history
    assert ["systemctl", "disable", "--now", schedule.TIMER] in history
    assert ["rm", "-f", str(units / schedule.SERVICE)] in history
    assert ["rm", "-f", str(units / schedule.TIMER)] in history
    assert history.index(["systemctl", "disable", "--now", schedule.TIMER]) < history.index(["rm", "-r", str(root)])


def test_a_port_held_by_another_process_is_named_and_the_platforms_own_is_fine():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        project = Project(directory=None)  # type: ignore[arg-type]
        project.containers["web"] = ExpectedContainer("web", "svc", "", False, (f"127.0.0.1:{port}:80",))
        found = ports(project, [])
        assert [c.status for c in found] == ["fail"]
        assert f"{port} is already in use by" in found[0].detail and f"(pid {os.getpid()})" in found[0].detail
        ours = info("web", ports=[f"127.0.0.1:{port}->80/tcp"])
        assert [c.status for c in ports(project, [ours])] == ["ok"]


def test_mask_hides_every_secret_and_longer_ones_first():
    secrets = maskable(["abcdef123", "abcdef123456789", "short"])
    assert secrets == ["abcdef123456789", "abcdef123"]  # too short to mask safely: left out
    text = "a=abcdef123456789 b=abcdef123 c=abcdef123"
    assert mask(text, secrets) == "a=**** b=**** c=****"


def test_a_disabled_services_secrets_are_kept():
    wanted = [SecretSpec(name="POSTGRES_PASSWORD", format="password")]
    previous = {"POSTGRES_PASSWORD": "pg-pass-1", "N8N_ENCRYPTION_KEY": "n8n-key-that-encrypts-its-data"}
    values, changes = resolve_secrets(wanted, explicit={}, root_store={}, previous=previous)
    assert values["N8N_ENCRYPTION_KEY"] == "n8n-key-that-encrypts-its-data"  # n8n is off; its data still needs it
    assert values["POSTGRES_PASSWORD"] == "pg-pass-1" and not changes.added and not changes.changed


def test_project_reads_what_render_wrote(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    project = load_project(out)
    compose = yaml.safe_load((out / "docker/docker-compose.postgres.yml").read_text())
    assert project.containers["postgres-init"].oneshot is True
    assert (
        project.containers["postgres"].config_hash
        == compose["services"]["postgres"]["labels"]["ai-platform.config-hash"]
    )


class _Engine:
    """A stand-in for Docker as make_plan reads it: every container of the root's compose files running, with the
    compose hash of its definition there; compose_hashes gives those of generated/ (the same rule, both sides)."""

    def __init__(self, root: Project, out: Project) -> None:
        self.root, self.out = root, out

    @staticmethod
    def _hash(container: ExpectedContainer) -> str:
        return str(sorted(container.keys.items()))

    def containers(self) -> list[ContainerInfo]:
        return [info(name, compose_hash=self._hash(c)) for name, c in self.root.containers.items()]

    def compose_hashes(self) -> dict[str, str]:
        return {name: self._hash(c) for name, c in self.out.containers.items()}


def _plan_for_adding(tmp_path, service: str, **flags):
    import shutil

    from aiplatform.engine.deploy import make_plan

    out, root = tmp_path / "generated", tmp_path / "root"
    render_command(_ctx(tmp_path, services=["monitoring"], **flags), out, interactive=False)
    shutil.copytree(out, root, dirs_exist_ok=True)  # as the last deploy left it
    render_command(_ctx(tmp_path, services=["monitoring", service], **flags), out, interactive=False)
    return make_plan(out, root, load_project(out), _Engine(load_project(root), load_project(out)), None)


def test_adding_a_service_recreates_only_what_must_change_and_says_why(tmp_path):
    plan = _plan_for_adding(tmp_path, "milvus")  # reached by IP: a service with a route would need a new port
    assert {n for n, a in plan.containers.items() if a == "create"} == {"milvus", "milvus-etcd", "milvus-minio"}
    assert plan.reasons == {}  # no database, no route: nothing that ran is recreated
    assert {n for n, a in plan.containers.items() if a == "recreate"} == set()
    assert plan.reloads == {"prometheus": ["config/prometheus/prometheus.yml"]}  # a new target, read without restart


def test_a_new_route_by_ip_recreates_caddy_for_its_port_and_postgres_init_for_the_database(tmp_path):
    plan = _plan_for_adding(tmp_path, "mlflow")
    assert {n for n, a in plan.containers.items() if a == "recreate"} == {"caddy", "postgres-init"}
    assert plan.reasons["caddy"] == "ports, config/caddy/Caddyfile changed"  # mlflow's port 6443
    assert plan.reasons["postgres-init"] == (  # their passwords: MLflow's and its auth app's databases
        "environment, config/postgres/init/mlflow.sh, config/postgres/init/mlflow_auth.sh changed"
    )
    assert "caddy" not in plan.reloads


def test_a_new_route_by_domain_is_a_caddy_reload(tmp_path):
    plan = _plan_for_adding(tmp_path, "mlflow", domain="ai.example.com")
    assert plan.containers["caddy"] == "unchanged" and plan.reloads["caddy"] == ["config/caddy/Caddyfile"]


class ScriptedEngine(Runner):
    """A stand-in for the docker CLI behind the Runner: `network rm` fails with Docker's "has active endpoints" until
    the stale endpoint is disconnected (or, with `clears_after`, by itself after that many tries); `ps -aq` lists the
    containers that still exist. Records every argv."""

    def __init__(self, endpoints: dict[str, str], alive: set[str], clears_after: int | None = None) -> None:
        super().__init__(echo=lambda _: None)
        self.endpoints, self.alive, self.clears_after, self.networks = endpoints, alive, clears_after, {"ai-platform"}
        self.calls: list[list[str]] = []

    def run(self, argv, *, check=True, changes=True, stdin=None, env=None, timeout=None):
        args = [str(a) for a in argv]
        self.calls.append(args)
        out, code = "", 0
        if args[1:3] == ["network", "inspect"]:
            out = json.dumps({cid: {"Name": name} for cid, name in self.endpoints.items()})
        elif args[1:3] == ["ps", "-aq"]:
            out = "\n".join(sorted(self.alive))
        elif args[1:3] == ["network", "disconnect"]:
            self.endpoints = {cid: n for cid, n in self.endpoints.items() if n != args[-1]}
        elif args[1:3] == ["network", "rm"]:
            tries = sum(c[1:3] == ["network", "rm"] for c in self.calls)
            if self.endpoints and (self.clears_after is None or tries <= self.clears_after):
                code = 1
            else:
                self.networks -= set(args[3:])
        result = Result(args, code, out, "Error response from daemon: network has active endpoints" if code else "")
        if check and code:
            raise UserError("failed")
        return result


def _docker(engine: ScriptedEngine) -> Docker:
    docker = Docker.__new__(Docker)  # no python-on-whales client: only the Runner's commands are used
    docker.runner = engine
    docker.all_network_names = lambda: set(engine.networks)  # type: ignore[method-assign]
    return docker


def test_a_network_held_by_the_endpoint_of_a_removed_container_is_freed_and_removed():
    engine = ScriptedEngine(endpoints={"gone": "ai-platform-litellm"}, alive={"other"})
    _docker(engine).remove_networks(["ai-platform"], pause=0)
    assert ["docker", "network", "disconnect", "--force", "ai-platform", "ai-platform-litellm"] in engine.calls
    assert engine.networks == set()


def test_a_container_that_still_exists_is_never_disconnected_and_the_failure_is_said():
    engine = ScriptedEngine(endpoints={"owners": "owners-app"}, alive={"owners"})
    with pytest.raises(UserError):
        _docker(engine).remove_networks(["ai-platform"], attempts=3, pause=0)
    assert not [c for c in engine.calls if c[1:3] == ["network", "disconnect"]]
    assert engine.networks == {"ai-platform"}


def test_an_endpoint_docker_is_still_releasing_is_waited_for():
    engine = ScriptedEngine(endpoints={"x": "ai-platform-x"}, alive={"x"}, clears_after=3)
    _docker(engine).remove_networks(["ai-platform"], pause=0)
    assert engine.networks == set()
    assert sum(c[1:3] == ["network", "rm"] for c in engine.calls) == 4
