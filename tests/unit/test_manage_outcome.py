"""add, remove, settings, upgrade and the importer judged by what they leave behind: answers.yaml as the owner reads
it, the files of generated/ and of the root, the secrets kept, the services enabled, the images locked, the catalog
folder an import writes and what render makes of it.

The engine is never needed: deploy is a stand-in that copies generated/ into the root as deploy's own apply_files
does (and answers healthy, or names a failure), Docker's answers for upgrade come from a stand-in that says which
containers run which image."""

from __future__ import annotations

import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from aiplatform.engine import deploy as deploying
from aiplatform.engine.deploy import DeployResult, Failure, Plan, apply_files
from aiplatform.envfile import parse_env, read_env
from aiplatform.generated.build import render_command
from aiplatform.generated.diff import TreeDiff, diff_trees
from aiplatform.generated.files import read_tree
from aiplatform.host.runner import Result, Runner
from aiplatform.inputs.context import Context
from aiplatform.inputs.images import format_lock, read_lock
from aiplatform.manage import changes
from aiplatform.manage import upgrade as upgrading
from aiplatform.paths import PROFILES_DIR

from .conftest import fake_nvml, run_inv
from .test_add import _flags, make_owner

# --- add and remove, applied -----------------------------------------------------------------------------------------


@dataclass
class Deployed:
    """What the deploy stand-in was asked to do."""

    calls: list[deploying.DeployOptions]


@pytest.fixture
def owner(tmp_path, monkeypatch):
    """The owner's project (answers.yaml with comments, monitoring on), rendered and deployed into its root; deploy
    is a stand-in from here on (it copies generated/ into the root and answers healthy)."""
    home = make_owner(tmp_path, monkeypatch)
    assert run_inv("render", "--no-input", *_flags(home)).returncode == 0
    apply_files(Runner(echo=lambda _: None), home / "generated", home / "root")
    return home


@pytest.fixture
def deployed(monkeypatch):
    calls: list[deploying.DeployOptions] = []
    real = deploying.deploy

    def standin_deploy(options, runner, stale, ui):
        if options.dry_run:  # the preview: deploy's own plan, nothing runs
            return real(options, runner, stale, ui)
        calls.append(options)
        apply_files(runner, options.out, options.root)
        return DeployResult(Plan(TreeDiff(), {}), options.root, applied=True)

    monkeypatch.setattr(deploying, "deploy", standin_deploy)
    monkeypatch.setattr(changes, "preflight", lambda *args: [])  # stands for a host where every check passes
    return Deployed(calls)


def _services(home: Path) -> list[str]:
    return yaml.safe_load((home / "answers.yaml").read_text())["services"]


def _credentials(folder: Path) -> dict[str, str]:
    return read_env(folder / "config/credentials.env")


def test_add_records_the_service_renders_it_and_deploys_it_into_the_root(owner, deployed):
    secrets_before = _credentials(owner / "generated")
    result = run_inv("add", "mlflow", "--yes", "--no-configure", *_flags(owner))
    assert result.returncode == 0, result.stdout + result.stderr
    text = (owner / "answers.yaml").read_text()
    assert text.startswith("# my platform\ndomain: ''  # by IP\n") and "- monitoring  # dashboards" in text
    assert yaml.safe_load(text) == {"domain": "", "services": ["monitoring", "mlflow"]}  # nothing else written
    out = owner / "generated"
    compose = yaml.safe_load((out / "docker/docker-compose.mlflow.yml").read_text())
    assert "mlflow" in compose["services"]
    secrets = _credentials(out)
    assert {"MLFLOW_DB_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"} <= set(secrets)
    assert {k: secrets[k] for k in secrets_before} == secrets_before  # every secret it had, unchanged
    init = "".join(p.read_text() for p in (out / "config/postgres/init").glob("*"))
    assert "mlflow" in init and "MLFLOW_DB_PASSWORD" in init
    caddy = (out / "config/caddy/Caddyfile").read_text()
    assert "# mlflow\n" in caddy and "reverse_proxy mlflow:" in caddy
    stamp = yaml.safe_load((out / ".aiplatform.json").read_text())
    assert "mlflow" in stamp["services"]
    assert [(c.out, c.root, c.dry_run) for c in deployed.calls] == [(out, owner / "root", False)]
    assert (owner / "root/docker/docker-compose.mlflow.yml").is_file()
    assert not diff_trees(out, owner / "root").differs  # the root holds what generated/ holds
    assert "mlflow" in result.stdout  # the summary and the new service's login


def test_add_with_allow_privileged_consents_only_for_the_service_that_asks(owner, deployed):
    result = run_inv("add", "jupyterhub,mlflow", "--allow-privileged", "--yes", "--no-configure", *_flags(owner))
    assert result.returncode == 0, result.stdout + result.stderr
    answers = yaml.safe_load((owner / "answers.yaml").read_text())
    assert answers["services"] == ["monitoring", "jupyterhub", "mlflow"]
    assert answers["privileged_services"] == ["jupyterhub"]
    assert (owner / "generated/docker/docker-compose.jupyterhub.yml").is_file()


def test_remove_takes_the_service_out_and_keeps_its_data_and_secrets(owner, deployed):
    (owner / "answers.yaml").write_text("# mine\nservices:\n  - monitoring\n  - n8n  # flows\n")
    assert run_inv("render", "--no-input", *_flags(owner)).returncode == 0
    apply_files(Runner(echo=lambda _: None), owner / "generated", owner / "root")
    data = owner / "root/data/n8n"
    data.mkdir(parents=True, exist_ok=True)
    (data / "workflows.json").write_text("[]")
    key = _credentials(owner / "generated")["N8N_ENCRYPTION_KEY"]
    result = run_inv("remove", "n8n", "--yes", *_flags(owner))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (owner / "answers.yaml").read_text().startswith("# mine\nservices:\n  - monitoring\n")
    assert _services(owner) == ["monitoring"]
    assert not (owner / "generated/docker/docker-compose.n8n.yml").exists()
    assert not (owner / "root/docker/docker-compose.n8n.yml").exists()  # deploy removed the file it had applied
    assert (data / "workflows.json").read_text() == "[]"  # the data stays
    for folder in (owner / "generated", owner / "root"):  # and its secrets: the data is encrypted with them
        assert _credentials(folder)["N8N_ENCRYPTION_KEY"] == key
    assert (owner / "root/docker/docker-compose.monitoring.yml").is_file()
    assert len(deployed.calls) == 1


def test_remove_of_a_service_another_brings_along_changes_nothing(owner, deployed):
    before_answers, before_tree = (owner / "answers.yaml").read_bytes(), read_tree(owner / "generated")
    result = run_inv("remove", "n8n", "--yes", *_flags(owner))  # not enabled
    assert result.returncode == 1 and "'n8n' is not enabled" in result.stderr
    assert (owner / "answers.yaml").read_bytes() == before_answers and read_tree(owner / "generated") == before_tree
    assert deployed.calls == []


def test_a_change_not_confirmed_leaves_everything_as_it_was(owner, deployed):
    before_answers, before_tree = (owner / "answers.yaml").read_bytes(), read_tree(owner / "generated")
    root_before = read_tree(owner / "root")
    for args in (["add", "mlflow"], ["add", "mlflow", "--dry-run"]):  # not at a terminal, no --yes: not applied
        result = run_inv(*args, *_flags(owner))
        assert "Traceback" not in result.stderr
        assert (owner / "answers.yaml").read_bytes() == before_answers, args
        assert read_tree(owner / "generated") == before_tree, args
        assert read_tree(owner / "root") == root_before, args
    assert deployed.calls == []


class AnsweringUI:
    """A stand-in for the console of add/remove: shows nothing, answers "Apply?" with `answer`, records questions."""

    def __init__(self, answer: bool) -> None:
        self.answer, self.asked, self.purged = answer, [], []

    def checks(self, found):
        pass

    def plan(self, plan):
        pass

    def confirm(self, plan):
        return True

    def progress(self, states):
        pass

    def purge_plan(self, items):
        self.purged.append(items)

    def ask(self, question: str) -> bool:
        self.asked.append(question)
        return self.answer


@pytest.mark.parametrize("answer", [False, True])
def test_the_change_is_applied_only_when_the_owner_says_yes(owner, deployed, answer):
    from aiplatform.errors import UserError

    def make_context(answers):
        return Context(answers=answers or owner / "answers.yaml", flags={"root": str(owner / "root")},
                       environ={}, nvml=fake_nvml([]))  # fmt: skip

    before_answers, before_tree = (owner / "answers.yaml").read_bytes(), read_tree(owner / "generated")
    ui = AnsweringUI(answer)
    runner = Runner(echo=lambda _: None)
    if not answer:
        with pytest.raises(UserError, match="Cancelled: nothing was changed"):
            changes.change_services(make_context, owner / "generated", runner, ui, add=["mlflow"])
        assert (owner / "answers.yaml").read_bytes() == before_answers
        assert read_tree(owner / "generated") == before_tree and deployed.calls == []
    else:
        result = changes.change_services(make_context, owner / "generated", runner, ui, add=["mlflow"])
        assert result.added == ["mlflow"] and result.deployed is not None and len(deployed.calls) == 1
        assert deployed.calls[0].yes  # the owner said yes once: deploy does not ask again
        assert _services(owner) == ["monitoring", "mlflow"]
    assert ui.asked == ["Apply this change (add mlflow)?"]


def test_without_services_in_answers_a_change_starts_from_the_services_the_profile_enables(owner, deployed, tmp_path):
    """answers.yaml without `services:` runs what the tier profile lists (here n8n besides monitoring): adding one
    writes the profile's list with it, removing one writes the profile's list without it, never an empty list."""
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES_DIR, profiles)
    minimal = yaml.safe_load((profiles / "minimal.yaml").read_text())
    minimal["settings"]["services"] = ["monitoring", "n8n"]
    (profiles / "minimal.yaml").write_text(yaml.safe_dump(minimal))

    def make_context(answers):
        return Context(answers=answers or owner / "answers.yaml", flags={"root": str(owner / "root")},
                       environ={}, nvml=fake_nvml([]), profiles_dir=profiles)  # fmt: skip

    runner = Runner(echo=lambda _: None)
    for add, remove, services in ((["mlflow"], None, ["monitoring", "n8n", "mlflow"]), (None, "n8n", ["monitoring"])):
        (owner / "answers.yaml").write_text("# mine\ndomain: ''\n")
        render_command(make_context(None), owner / "generated", interactive=False)
        changes.change_services(make_context, owner / "generated", runner, AnsweringUI(True), add=add, remove=remove)
        assert _services(owner) == services, (add, remove)
        assert (owner / "answers.yaml").read_text().startswith("# mine\ndomain: ''\n")


def test_the_new_ports_of_a_change_are_checked_against_generated(owner, tmp_path):
    """Only the ports the change adds are checked again: mlflow's, not the ones generated/ publishes already."""
    ctx = Context(answers=owner / "answers.yaml", flags={"root": str(owner / "root")})
    preview = tmp_path / "preview"
    answers = tmp_path / "preview-answers.yaml"
    answers.write_text("services: [monitoring, mlflow]\n")
    render_command(Context(answers=answers, flags={"root": str(owner / "root")}), preview, interactive=False)
    found = changes._new_ports(owner / "generated", preview, Runner(echo=lambda _: None))
    published = {int(c.name.split()[-1]) for c in found}
    spec = ctx.catalog.services["mlflow"]
    mlflow = {int(p.split(":")[1]) for c in spec.containers.values() for p in c.publish}
    mlflow.add(spec.route.ip_port)  # its Caddy route's port
    assert published == mlflow and published


def test_a_failed_check_stops_the_change_before_any_question_but_a_dry_run_shows_it(owner):
    from aiplatform.errors import UserError
    from aiplatform.host.checks import Check

    ctx = Context(answers=owner / "answers.yaml", flags={"root": str(owner / "root")})

    class UI:
        def __init__(self):
            self.shown = []

        def checks(self, found):
            self.shown += found

    failing = [Check("port 443", "fail", "in use", "free it")]
    import aiplatform.engine.deploy as d

    original = d.preflight
    try:
        d.preflight = lambda *args, **kwargs: failing
        with pytest.raises(UserError):
            changes.preflight(ctx, owner / "generated", Runner(echo=lambda _: None), UI())
        ui = UI()
        assert changes.preflight(ctx, owner / "generated", Runner(dry_run=True, echo=lambda _: None), ui) == failing
        assert ui.shown == failing
    finally:
        d.preflight = original


def test_the_menu_lists_what_a_service_brings_along(owner):
    (owner / "answers.yaml").write_text("services: [monitoring]\n")
    ctx = Context(answers=owner / "answers.yaml", flags={"root": str(owner / "root")})
    rows = {row.name: row for row in changes.menu_rows(ctx)}
    for name, row in rows.items():
        spec = ctx.catalog.services[name]
        brought = [dep for dep in spec.depends_on if not ctx.catalog.services[dep].core and dep != "monitoring"]
        assert [part for part in row.needs.split(", ") if part.startswith("+")] == [f"+{d}" for d in brought], name
    assert "monitoring" not in rows


# --- settings, then render -------------------------------------------------------------------------------------------


def _settings(home: Path, *words: str, env=None):
    return run_inv("settings", *words, "--answers", str(home / "answers.yaml"), "--out", str(home / "generated"),
                   "--root", str(home / "root"), env=env)  # fmt: skip


def _litellm(home: Path) -> dict:
    return yaml.safe_load((home / "generated/config/litellm/config.yaml").read_text())


def test_nodes_set_and_unset_reach_litellms_pool(owner):
    (owner / "answers.yaml").write_text("models: [llama3.2:3b, nomic-embed-text]\nservices: [monitoring]\n")
    result = _settings(owner, "set", "ollama_nodes=[{address: 10.0.0.5, weight: 3, name: gpu2}]")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((owner / "answers.yaml").read_text())["ollama_nodes"] == [
        {"address": "10.0.0.5", "weight": 3, "name": "gpu2"}
    ]
    assert run_inv("render", "--no-input", *_flags(owner)).returncode == 0
    entries = [(e["model_name"], e["model_info"].get("id"), e["litellm_params"]["api_base"],
                e["litellm_params"].get("weight")) for e in _litellm(owner)["model_list"]]  # fmt: skip
    assert ("llama3.2:3b", "llama3.2:3b@gpu2", "http://10.0.0.5:11434", 3) in entries
    assert ("llama3.2:3b", "llama3.2:3b@local", "os.environ/OLLAMA_BASE_URL", 1) in entries
    master = parse_env((owner / "generated/config/master.env").read_text())
    assert [n["name"] for n in yaml.safe_load(master["OLLAMA_NODES"])] == ["gpu2"]
    assert (owner / "generated/scripts/nodes/gpu2/ollama-firewall.sh").is_file()
    assert _settings(owner, "unset", "ollama_nodes").returncode == 0
    assert "ollama_nodes" not in (owner / "answers.yaml").read_text()
    assert run_inv("render", "--no-input", *_flags(owner)).returncode == 0
    assert all("@" not in str(e.get("model_info", {}).get("id", "")) for e in _litellm(owner)["model_list"])
    assert not (owner / "generated/scripts/nodes").exists()


def test_set_writes_typed_values_keeps_the_files_mode_and_render_applies_them(owner):
    path = owner / "answers.yaml"
    path.chmod(0o640)
    result = _settings(owner, "set", "ollama_num_parallel=4", "litellm_cache=true", "ollama_keep_alive=30m")
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load(path.read_text())
    assert answers["ollama_num_parallel"] == 4 and answers["litellm_cache"] is True
    assert answers["ollama_keep_alive"] == "30m"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    said = result.stdout + result.stderr
    assert "ollama_num_parallel = 4 in" in said and "litellm_cache = true in" in said
    assert run_inv("render", "--no-input", *_flags(owner)).returncode == 0
    override = (owner / "generated/config/ollama/override.conf").read_text()
    assert "OLLAMA_NUM_PARALLEL=4" in override and "OLLAMA_KEEP_ALIVE=30m" in override
    again = _settings(owner, "set", "ollama_num_parallel=4")
    assert "ollama_num_parallel: already so" in again.stdout and "(was" not in again.stdout + again.stderr
    unset = _settings(owner, "unset", "litellm_cache", "models")
    assert unset.returncode == 0, unset.stderr
    assert "litellm_cache taken out of" in unset.stderr + unset.stdout and "(was true)" in unset.stderr + unset.stdout
    assert "models: already so" in unset.stdout
    assert "litellm_cache" not in path.read_text() and "ollama_num_parallel: 4" in path.read_text()


@pytest.mark.parametrize(
    ("words", "env", "warned"),
    [
        (["ollama_keep_alive=30m"], {"AI_PLATFORM_OLLAMA_KEEP_ALIVE": "2h"}, "AI_PLATFORM_OLLAMA_KEEP_ALIVE overrides"),
        (["ollama_keep_alive=30m", "--set", "ollama_keep_alive=1h"], None, "--set ollama_keep_alive=... overrides"),
        (["domain=ai.internal", "ssl_mode=letsencrypt"], None, "Let's Encrypt"),
    ],
)
def test_set_warns_when_something_else_decides(owner, words, env, warned):
    result = _settings(owner, "set", *words, env=env)
    assert result.returncode == 0, result.stderr
    assert warned in " ".join(result.stderr.split()), result.stderr


def test_set_warns_about_lets_encrypt_when_the_domain_alone_becomes_internal(owner):
    """letsencrypt with a public name is fine; the domain alone changed to an internal name warns (Let's Encrypt
    would certify nothing); another key set later does not repeat it."""
    first = _settings(owner, "set", "ssl_mode=letsencrypt", "domain=ai.example.com")
    assert first.returncode == 0 and "Let's Encrypt" not in " ".join(first.stderr.split()), first.stderr
    internal = _settings(owner, "set", "domain=ai.internal")
    assert internal.returncode == 0 and "Let's Encrypt" in " ".join(internal.stderr.split()), internal.stderr
    other = _settings(owner, "set", "ollama_keep_alive=30m")
    assert other.returncode == 0 and "Let's Encrypt" not in " ".join(other.stderr.split()), other.stderr


@pytest.mark.parametrize(
    ("key", "env", "flags", "source", "where"),
    [
        ("ollama_port", {}, [], "default", "built-in default"),
        ("domain", {}, [], "answers", "answers.yaml line 2"),
        ("ollama_port", {"AI_PLATFORM_OLLAMA_PORT": "11500"}, [], "env", "AI_PLATFORM_OLLAMA_PORT"),
        ("ollama_port", {}, ["--set", "ollama_port=11600"], "flag", "--set ollama_port"),
        ("admin_password", {}, [], "credentials", "config/credentials.env"),
        ("docker_log_max_file", {}, [], "default", "built-in default"),
    ],
)
def test_get_names_the_source_and_where_of_a_value(owner, key, env, flags, source, where):
    result = _settings(owner, "get", key, *flags, "--json", env=env)
    assert result.returncode == 0, result.stderr
    got = yaml.safe_load(result.stdout)[key]
    assert got["source"] == source and where in got["where"], got


def test_get_names_the_previous_renders_stamp_as_where_the_root_came_from(owner):
    # the owner fixture rendered with --root once; a later command without it keeps that root
    result = run_inv("settings", "get", "root", "--answers", str(owner / "answers.yaml"),
                     "--out", str(owner / "generated"), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = yaml.safe_load(result.stdout)["root"]
    assert (got["value"], got["source"]) == (str(owner / "root"), "previous render"), got
    assert got["where"] == str(owner / "generated/.aiplatform.json"), got


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, ""), (True, "true"), (False, "false"), (["a", "b"], "a, b"), ({"x": "1", "y": "2"}, "x=1, y=2"), (4, "4")],
)
def test_format_value_is_what_set_takes(value, shown):
    from aiplatform.manage.settings import format_value

    assert format_value(value) == shown


# --- upgrade ---------------------------------------------------------------------------------------------------------


DIGEST_A, DIGEST_B, DIGEST_C = ("sha256:" + c * 64 for c in "abc")


@dataclass
class Running:
    container: str
    image: str


class StandinDocker:
    """A stand-in for the engine as upgrade asks it: the containers running (by image) and each image's digest."""

    running: ClassVar[list[Running]] = []
    digests: ClassVar[dict[str, str]] = {}

    def __init__(self, runner, *args) -> None:
        self.runner = runner

    def containers(self):
        return list(self.running)

    def image_digest(self, image: str) -> str:
        return self.digests.get(image, "")


class RecordingRunner(Runner):
    """A stand-in runner: records every command; `docker image inspect` answers for the images `here` names."""

    def __init__(self, here: set[str], order: list[str]) -> None:
        super().__init__(echo=lambda _: None)
        self.here, self.order = here, order

    def run(self, argv, **kwargs):
        args = [str(a) for a in argv]
        self.history.append(args)
        self.order.append(" ".join(args[:3]))
        if args[:3] == ["docker", "image", "inspect"]:
            return Result(args, 0 if args[-1] in self.here else 1)
        return Result(args, 0)


def _upgrade_ctx(home: Path) -> Context:
    return Context(answers=home / "answers.yaml", flags={"root": str(home / "root")}, environ={}, nvml=fake_nvml([]))


@pytest.fixture
def platform(tmp_path, monkeypatch):
    (tmp_path / "answers.yaml").write_text("services: []\n")
    render_command(_upgrade_ctx(tmp_path), tmp_path / "generated", interactive=False)
    monkeypatch.setattr(upgrading, "Docker", StandinDocker)
    monkeypatch.setattr(upgrading, "require_engine", lambda docker: None)
    images = {name: c.image for name, c in upgrading.load_project(tmp_path / "generated").containers.items()}
    return tmp_path, images


def test_the_plan_says_per_container_what_changes(platform, monkeypatch):
    home, images = platform
    redis = images["redis"]
    (home / "images.lock").write_bytes(format_lock({redis: DIGEST_A}))
    others = [Running(name, image) for name, image in images.items() if name not in ("redis", "qdrant", "caddy")]
    StandinDocker.running = [*others, Running("redis", redis), Running("qdrant", "qdrant/qdrant:v1.0.0")]
    StandinDocker.digests = {redis: DIGEST_B}
    plan = upgrading.make_plan(lambda: _upgrade_ctx(home), home / "generated", Runner(echo=lambda _: None))
    kinds = {c.container: c.kind for c in plan.changes}
    assert kinds["redis"] == "new digest" and kinds["qdrant"] == "new image" and kinds["caddy"] == "new container"
    assert {kinds[n] for n in images if n not in ("redis", "qdrant", "caddy")} == {"same"}
    assert [c.container for c in plan.pending] == sorted(["caddy", "qdrant", "redis"])
    assert next(c for c in plan.changes if c.container == "redis").target == f"{redis}@{DIGEST_A}"
    assert plan.root == home / "root" and plan.postgres is None
    assert read_tree(home / "generated") == read_tree(home / "generated")  # the plan rendered into a copy only


def test_a_postgres_major_change_is_found_and_refused_without_its_flag(platform, monkeypatch):
    home, images = platform
    StandinDocker.running = [Running(n, i) for n, i in images.items() if n != "postgres"] + [
        Running("postgres", "postgres:15.8-alpine")
    ]
    StandinDocker.digests = {}
    monkeypatch.setattr(upgrading, "server_version", lambda runner: 150008)
    plan = upgrading.make_plan(lambda: _upgrade_ctx(home), home / "generated", Runner(echo=lambda _: None))
    assert plan.postgres == (15, int(images["postgres"].split(":")[1].split(".")[0]))
    lock_before = (home / "images.lock").exists()
    with pytest.raises(upgrading.UserError, match="major-version change"):
        upgrading.upgrade(lambda: _upgrade_ctx(home), home / "generated", plan, Runner(), None, _no_backup, print)
    assert (home / "images.lock").exists() == lock_before
    monkeypatch.setattr(upgrading, "server_version", lambda runner: 160004)
    StandinDocker.running[-1] = Running("postgres", "postgres:16.1-alpine")
    plan = upgrading.make_plan(lambda: _upgrade_ctx(home), home / "generated", Runner(echo=lambda _: None))
    assert plan.postgres is None  # 16.1 → 16.x: the same major


def _no_backup() -> Path:
    raise AssertionError("no backup may be taken")


def _deploys(monkeypatch, outcomes: list[bool]) -> list[Path]:
    """A stand-in deploy answering healthy or not, in turn; returns the folders it deployed."""
    done: list[Path] = []

    def deploy(options, runner, stale, ui):
        done.append(options.out)
        healthy = outcomes[len(done) - 1]
        failures = [] if healthy else [Failure("qdrant", "running", ["unhealthy"], "")]
        return DeployResult(Plan(TreeDiff(), {}), options.root, applied=True, failures=failures,
                            not_started=[] if healthy else ["open-webui"])  # fmt: skip

    monkeypatch.setattr(deploying, "deploy", deploy)
    return done


def _pending_plan(home: Path, images: dict[str, str]) -> upgrading.UpgradePlan:
    redis, qdrant = images["redis"], images["qdrant"]
    return upgrading.UpgradePlan(home / "root", [
        upgrading.Change("redis", redis, DIGEST_B, f"{redis}@{DIGEST_A}", "new digest"),
        upgrading.Change("qdrant", "qdrant/qdrant:v1.0.0", "", qdrant, "new image"),
        upgrading.Change("postgres", images["postgres"], "", images["postgres"], "same"),
    ])  # fmt: skip


def test_upgrade_backs_up_first_pulls_what_is_missing_and_locks_the_digests(platform, monkeypatch):
    home, images = platform
    plan = _pending_plan(home, images)
    order: list[str] = []
    runner = RecordingRunner(here={f"{images['redis']}@{DIGEST_A}"}, order=order)
    StandinDocker.digests = {images["qdrant"]: DIGEST_C}
    deployed = _deploys(monkeypatch, [True])

    def backup() -> Path:
        order.append("backup")
        return home / "backups/b1"

    result = upgrading.upgrade(lambda: _upgrade_ctx(home), home / "generated", plan, runner, None, backup, print)
    assert result.ok and result.backup == home / "backups/b1" and result.rolled_back is None
    assert order[0] == "backup"
    assert result.pulled == [images["qdrant"]]  # the redis digest is here already; postgres does not change
    assert ["docker", "pull", images["qdrant"]] in runner.history
    assert read_lock(home / "images.lock") == {images["redis"]: DIGEST_A, images["qdrant"]: DIGEST_C}
    compose = yaml.safe_load((home / "generated/docker/docker-compose.qdrant.yml").read_text())
    assert compose["services"]["qdrant"]["image"] == f"{images['qdrant']}@{DIGEST_C}"  # rendered from the lock
    assert deployed == [home / "generated"]


@pytest.mark.parametrize("had_lock", [True, False])
def test_an_unhealthy_upgrade_puts_back_the_previous_lock_and_tree_and_deploys_them(platform, monkeypatch, had_lock):
    home, images = platform
    if had_lock:
        (home / "images.lock").write_bytes(format_lock({images["redis"]: DIGEST_B}))
        render_command(_upgrade_ctx(home), home / "generated", interactive=False)
    lock_before = (home / "images.lock").read_bytes() if had_lock else None
    tree_before = read_tree(home / "generated")
    runner = RecordingRunner(here=set(), order=[])
    StandinDocker.digests = {images["qdrant"]: DIGEST_C}
    deployed = _deploys(monkeypatch, [False, True])
    result = upgrading.upgrade(lambda: _upgrade_ctx(home), home / "generated", _pending_plan(home, images), runner,
                               None, lambda: home / "backups/b1", print)  # fmt: skip
    assert not result.ok and result.rolled_back is not None and result.rolled_back.ok
    assert result.failed == ["qdrant", "open-webui"]
    assert deployed == [home / "generated", home / "generated"]
    assert read_tree(home / "generated") == tree_before
    if had_lock:
        assert (home / "images.lock").read_bytes() == lock_before
    else:
        assert not (home / "images.lock").exists()
    said = upgrading.explain_rollback(result)
    assert "qdrant, open-webui did not become healthy" in said and "every service is healthy again" in said
    assert str(home / "backups/b1") in said


def test_an_unhealthy_postgres_major_upgrade_removes_the_new_postgres_before_the_old_folder_goes_back(
    platform, monkeypatch
):
    home, images = platform
    plan = _pending_plan(home, images)
    plan.postgres = (15, 16)
    data = home / "root/data/postgres"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    runner = RecordingRunner(here=set(), order=[])
    StandinDocker.digests = {images["qdrant"]: DIGEST_C}
    deployed: list[bool] = []

    def deploy(options, runner, stale, ui):  # a stand-in: the new Postgres makes its cluster, then qdrant fails
        healthy = bool(deployed)
        deployed.append(healthy)
        if not healthy:
            data.mkdir()
            (data / "PG_VERSION").write_text("16\n")
        failures = [] if healthy else [Failure("qdrant", "running", ["unhealthy"], "")]
        return DeployResult(Plan(TreeDiff(), {}), options.root, applied=True, failures=failures)

    monkeypatch.setattr(deploying, "deploy", deploy)
    result = upgrading.upgrade(lambda: _upgrade_ctx(home), home / "generated", plan, runner, None,
                               lambda: home / "backups/b1", print, postgres_major=True)  # fmt: skip
    assert not result.ok and result.rolled_back is not None and deployed == [False, True]
    assert (data / "PG_VERSION").read_text() == "15\n" and not (home / "root/data/postgres-15").exists()
    history = runner.history
    removed = [n for n, argv in enumerate(history) if argv == ["docker", "rm", "--force", "ai-platform-postgres"]]
    put_back = history.index(["mv", str(home / "root/data/postgres-15"), str(data)])
    assert len(removed) == 2 and removed[1] < history.index(["rm", "-r", str(data)]) < put_back  # 16's container gone


# --- the importer: a compose file of the owner's, then render ------------------------------------------------------


def test_an_imported_compose_file_becomes_a_service_render_wires_in(tmp_path, monkeypatch):
    from aiplatform import paths
    from aiplatform.manage import importer

    from .test_hostile_input import StandinComposeRunner, _catalog

    monkeypatch.setattr(importer, "require_compose", lambda docker, needed: None)  # compose "is there"
    path = tmp_path / "project/compose.yml"
    path.parent.mkdir(parents=True)
    path.write_text("services: {}\n")  # what counts is the stand-in's recorded answer
    project = {
        "services": {
            "notes": {
                "image": "example/notes:2.1.0",
                "ports": [{"target": 8080, "published": "8123", "host_ip": "127.0.0.1"}],
                "environment": {"NOTES_TOKEN": "${NOTES_TOKEN}", "MODE": "prod"},
                "volumes": [
                    {"type": "bind", "source": str(path.parent / "store"), "target": "/data"},
                    {"type": "volume", "source": "cache", "target": "/cache"},
                ],
            },
        },
        "volumes": {"cache": {}},
    }
    catalog_dir = tmp_path / "services"
    made = importer.import_compose(path, "notebook", _catalog(), catalog_dir, StandinComposeRunner(project))
    spec = yaml.safe_load((made / "service.yaml").read_text())
    assert spec["containers"]["notes"]["publish"] == ["127.0.0.1:8123:8080"]
    assert spec["route"]["upstream"] == "notes:8080" and spec["auth"] == "caddy"
    assert [s["name"] for s in spec["secrets"]] == ["NOTES_TOKEN"] and spec["volumes"] == ["cache"]
    assert importer.auth_note(made) is not None
    monkeypatch.setattr(paths, "USER_SERVICES_DIR", catalog_dir)
    (tmp_path / "answers.yaml").write_text("services: [notebook]\n")
    out = tmp_path / "generated"
    assert run_inv("render", "--no-input", "--answers", str(tmp_path / "answers.yaml"), "--out", str(out),
                   "--root", str(tmp_path / "root")).returncode == 0  # fmt: skip
    compose = yaml.safe_load((out / "docker/docker-compose.notebook.yml").read_text())
    notes = compose["services"]["notes"]
    assert notes["labels"]["ai-platform.managed"] == "true" and "ai-platform" in notes["networks"]
    assert f"{tmp_path / 'root'}/data/notebook/store:/data" in notes["volumes"]
    assert notes["environment"]["NOTES_TOKEN"] == "${NOTES_TOKEN}" and notes["environment"]["MODE"] == "prod"
    assert len(_credentials(out)["NOTES_TOKEN"]) >= 20  # generated into credentials.env, not copied anywhere
    caddy = (out / "config/caddy/Caddyfile").read_text()
    assert "# notebook\n" in caddy and "reverse_proxy notes:8080" in caddy and "basic_auth" in caddy
