"""`inv add` and `inv remove` without a running platform: the menu (on a real pseudo-terminal and without one), what
is refused and why, answers.yaml kept as its owner wrote it, compose files imported or refused key by key, the
cookiecutter baked into the owner's catalog, and a broken folder that does not break the other commands.
The same commands on a real engine are tests/integration/test_add.py."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from aiplatform import paths
from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.inputs.answers import with_list
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.context import Context
from aiplatform.inputs.settings import Settings
from aiplatform.manage import changes
from aiplatform.paths import TEMPLATES_DIR
from aiplatform.render.platform import Platform
from aiplatform.render.tree import render_tree

from .conftest import run_inv
from .test_questionnaire import _converse
from .test_render import NO_GPU


@pytest.fixture
def owner(tmp_path, monkeypatch):
    return make_owner(tmp_path, monkeypatch)


def make_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project of the owner's own: answers.yaml, generated/, a root and the user catalog, all under tmp_path."""
    monkeypatch.setattr(paths, "USER_SERVICES_DIR", tmp_path / "services")
    answers = tmp_path / "answers.yaml"
    answers.write_text("# my platform\ndomain: ''  # by IP\n\nservices:\n  - monitoring  # dashboards\n")
    return tmp_path


def _flags(home: Path) -> list[str]:
    return ["--answers", str(home / "answers.yaml"), "--out", str(home / "generated"), "--root", str(home / "root")]


# --- answers.yaml ---------------------------------------------------------------------------------------------------


def test_answers_keep_comments_and_order_when_a_service_is_added_or_removed(tmp_path):
    text = "# mine\ndomain: ai.example.com  # the public name\n\nservices:\n  - monitoring  # dashboards\nmodels: [a]\n"
    added = with_list(text, tmp_path / "a.yaml", "services", add=["mlflow"])
    assert added.startswith("# mine\ndomain: ai.example.com  # the public name\n\nservices:\n")
    assert "- monitoring  # dashboards" in added and added.index("mlflow") < added.index("models:")
    assert yaml.safe_load(added)["services"] == ["monitoring", "mlflow"]
    removed = with_list(added, tmp_path / "a.yaml", "services", remove=["monitoring"])
    assert yaml.safe_load(removed) == {"domain": "ai.example.com", "services": ["mlflow"], "models": ["a"]}
    assert "# the public name" in removed


def test_a_missing_list_starts_from_what_its_absence_meant(tmp_path):
    assert yaml.safe_load(with_list("", tmp_path / "a.yaml", "services", add=["n8n"], default=["monitoring"])) == {
        "services": ["monitoring", "n8n"]
    }
    with pytest.raises(UserError, match="must be a list"):
        with_list("services: dify\n", tmp_path / "a.yaml", "services", add=["n8n"])


# --- the menu -------------------------------------------------------------------------------------------------------


def test_without_a_terminal_the_menu_is_printed_and_the_exit_code_is_2(owner):
    result = run_inv("add", *_flags(owner))
    assert result.returncode == 2
    listed = [line.split(":")[0] for line in result.stdout.splitlines()[1:]]
    assert listed == ["dify", "flowise", "jupyterhub", "milvus", "mlflow", "n8n"]  # not monitoring: enabled
    mlflow = result.stdout.splitlines()[5]
    assert "MLflow" in mlflow and "1 GB RAM, 5 GB disk, database mlflow" in mlflow and "https://" in mlflow
    assert "no service named" in result.stderr and "add dify" in result.stderr


def test_menu_rows_say_what_each_service_needs_and_where_it_will_be(owner):
    ctx = Context(answers=owner / "answers.yaml", flags={"root": str(owner / "root"), "domain": "ai.example.com"})
    rows = {row.name: row for row in changes.menu_rows(ctx)}
    assert rows["mlflow"].url == "https://mlflow.ai.example.com"
    assert rows["milvus"].url == "localhost:19530"  # no web page: its gRPC port on this host
    assert "database dify" in rows["dify"].needs and "4 GB RAM" in rows["dify"].needs
    assert set(rows) == {"dify", "flowise", "jupyterhub", "milvus", "mlflow", "n8n"}


def _menu_number(owner: Path, name: str) -> str:
    rows = changes.menu_rows(Context(answers=owner / "answers.yaml", flags={"root": str(owner / "root")}))
    return str([row.name for row in rows].index(name) + 1)


def _inv_at_terminal(owner: Path, *args: str, replies: list[tuple[str, str]]):
    script = (
        "import sys; from pathlib import Path; from aiplatform import paths; "
        f"paths.USER_SERVICES_DIR = Path({str(owner / 'services')!r}); "
        "from invoke import main; sys.argv = ['inv', *sys.argv[1:]]; main.program.run()"
    )
    return _converse([sys.executable, "-c", script, *args, *_flags(owner)], replies)


def test_the_menu_at_a_real_terminal_asks_again_after_a_bad_choice(owner):
    number = _menu_number(owner, "mlflow")
    code, output, unanswered = _inv_at_terminal(
        owner, "add", "--dry-run", replies=[("Add which", "42"), ("Add which", number)]
    )
    assert not unanswered, output
    assert "'42' is not one of the choices" in output
    assert code == 0, output
    assert "mlflow" in output.split("Containers to create:")[1].splitlines()[0]
    assert "Dry run: nothing was changed" in output
    assert "mlflow" not in (owner / "answers.yaml").read_text()


def test_q_in_the_menu_adds_nothing(owner):
    code, output, unanswered = _inv_at_terminal(owner, "add", "--dry-run", replies=[("Add which", "q")])
    assert not unanswered and code == 1 and "Nothing added" in output


# --- what add and remove refuse -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["postgres"], 1, "'postgres' is a core service"),
        (["nosuch"], 1, "nosuch"),
        (["monitoring"], 1, "already enabled"),  # an error exits non-zero
        (["jupyterhub"], 1, "error: 'jupyterhub' asks for docker-socket: that is root on this host."),
        (["--from-compose", "x.yml"], 1, "--from-compose needs --name"),
    ],
)
def test_add_refuses_with_the_reason(owner, args, code, message):
    result = run_inv("add", *args, "--dry-run", *_flags(owner))
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "Preflight" not in result.stdout  # the name is refused before the host's checks run


@pytest.mark.parametrize("task", ["add", "remove"])
def test_a_name_that_cannot_be_changed_is_refused_before_the_hosts_checks(owner, monkeypatch, task):
    """`inv add nosuch` with Docker down says the name is unknown, not that Docker is down: the host's checks (the
    engine, Ollama's wait) are not run for a change that cannot happen."""
    checked = []
    monkeypatch.setattr(changes, "preflight", lambda *args: checked.append(args) or [])
    result = run_inv(task, "nosuch", "--dry-run", *_flags(owner))
    assert result.returncode == 1 and "unknown service 'nosuch'" in result.stderr and checked == [], result.stderr


def test_jupyterhub_is_added_once_its_privilege_is_accepted(owner):
    result = run_inv("add", "jupyterhub", "--allow-privileged", "--dry-run", *_flags(owner))
    assert result.returncode == 0, result.stderr
    assert "jupyterhub" in result.stdout.split("Containers to create:")[1].splitlines()[0]


def test_a_privileged_service_in_answers_without_consent_is_refused(owner, answers):
    (owner / "answers.yaml").write_text("services: [jupyterhub]\n")
    result = run_inv("settings", "--answers", str(owner / "answers.yaml"))
    assert result.returncode == 1 and "docker-socket" in result.stderr and "--allow-privileged" in result.stderr
    (owner / "answers.yaml").write_text("services: [monitoring]\nprivileged_services: [jupyterhb]\n")
    result = run_inv("settings", "--answers", str(owner / "answers.yaml"))
    assert result.returncode == 1 and "unknown service 'jupyterhb'" in result.stderr


@pytest.mark.parametrize(
    ("service", "message"),
    [("litellm", "'litellm' is a core service"), ("dify", "'dify' is not enabled"), ("nosuch", "nosuch")],
)
def test_remove_refuses_with_the_reason(owner, service, message):
    result = run_inv("remove", service, "--dry-run", *_flags(owner))
    assert result.returncode == 1 and message in result.stderr, result.stderr  # not enabled: exit 0 once


def test_remove_names_the_service_that_depends_on_it(owner):
    folder = owner / "services" / "tracker"  # an owner's service that uses MLflow
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text(
        "name: tracker\ndescription: Uses MLflow.\ntier: apps\ndepends_on: [mlflow]\n"
        "containers:\n  tracker:\n    image: example/tracker:1.0.0\n"
    )
    (folder / "compose.yml.j2").write_text("services:\n  tracker: {}\n")
    (owner / "answers.yaml").write_text("services: [monitoring, mlflow, tracker]\n")
    result = run_inv("remove", "mlflow", "--dry-run", *_flags(owner))
    assert result.returncode == 1
    assert "tracker depends on 'mlflow'" in result.stderr and "remove tracker" in result.stderr


def test_remove_dry_run_with_purge_lists_what_it_would_delete_with_sizes(owner):
    (owner / "answers.yaml").write_text("services: [monitoring, mlflow]\n")
    assert run_inv("render", "--no-input", *_flags(owner)).returncode == 0
    shutil.copytree(owner / "generated", owner / "root")  # as deploy leaves it
    artifacts = owner / "root" / "data" / "mlflow" / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "run.bin").write_bytes(b"x" * 3000)
    result = run_inv("remove", "mlflow", "--purge", "--dry-run", *_flags(owner))
    assert result.returncode == 0, result.stderr
    purge = result.stdout.split("--purge deletes, for good")[1]
    compact = re.sub(r"[\s│]", "", purge)  # the table folds long paths
    assert f"folder3KB{artifacts}" in compact, purge  # 3000 bytes, in the first line of the folded cell
    assert "database mlflow (Postgres)" in purge and "secret MLFLOW_DB_PASSWORD" in purge
    assert "removed  docker/docker-compose.mlflow.yml" in result.stdout  # nothing runs here: no container to name
    assert "mlflow" in (owner / "answers.yaml").read_text()  # a dry run


# --- the cookiecutter -----------------------------------------------------------------------------------------------


def test_add_new_bakes_the_cookiecutter_into_the_owners_catalog(owner):
    result = run_inv("add", "--new", "notes-app", "--dry-run", *_flags(owner))
    assert result.returncode == 0, result.stderr
    assert "notes-app" in result.stdout.split("Containers to create:")[1].splitlines()[0]
    assert not (owner / "services").exists()  # dry run: a scratch copy
    made = Runner()
    from aiplatform.manage.importer import bake_new

    catalog = load_catalog(TEMPLATES_DIR / "services")
    folder = bake_new("notes-app", catalog, owner / "services", made)
    spec = yaml.safe_load((folder / "service.yaml").read_text())
    used = {int(p.split(":")[-2]) for s in catalog.services.values() for c in s.containers.values() for p in c.publish}
    assert int(spec["containers"]["notes-app"]["publish"][0].split(":")[1]) not in used  # a free port, not 8000
    assert "notes-app" in load_catalog(TEMPLATES_DIR / "services", owner / "services").optional
    with pytest.raises(UserError, match="exists already"):
        bake_new("notes-app", catalog, owner / "services", made)


# --- a broken folder ------------------------------------------------------------------------------------------------


def test_a_broken_folder_is_reported_and_the_rest_keeps_working(owner):
    folder = owner / "services" / "half"
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text("name: half\ndescription: [unclosed\n")
    result = run_inv("settings", "--answers", str(owner / "answers.yaml"))
    assert result.returncode == 0, result.stderr
    assert "service folder 'half' left out" in result.stderr
    result = run_inv("add", "half", "--dry-run", *_flags(owner))
    assert result.returncode == 1 and "half" in result.stderr and "service.yaml" in result.stderr
    (owner / "answers.yaml").write_text("services: [half]\n")
    result = run_inv("render", "--no-input", *_flags(owner))
    assert result.returncode == 1 and "the service 'half' cannot be used" in result.stderr


def test_a_second_folder_of_a_broken_name_keeps_the_first_ones_error(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "half").mkdir(parents=True)
    (first / "half" / "service.yaml").write_text("name: half\ndescription: [unclosed\n")
    shutil.copytree(TEMPLATES_DIR / "services" / "mlflow", second / "half")
    (second / "mlflow").mkdir()
    (second / "mlflow" / "service.yaml").write_text("name: mlflow\n")
    catalog = load_catalog(TEMPLATES_DIR / "services", first, second)
    assert "service.yaml" in catalog.broken["half"][0] and str(first / "half") in catalog.broken["half"][0]
    assert catalog.broken["mlflow"][0].startswith(f"{second / 'mlflow'}: a service named 'mlflow' is already in ")
    assert str(TEMPLATES_DIR / "services" / "mlflow") in catalog.broken["mlflow"][0]


def test_a_template_cannot_take_back_what_the_platform_sets(tmp_path):
    services = tmp_path / "services"
    shutil.copytree(TEMPLATES_DIR / "services", services)
    compose = services / "n8n" / "compose.yml.j2"
    for key, value in {"network_mode": "host", "restart": "always", "privileged": "true"}.items():
        text = compose.read_text()
        compose.write_text(text.replace("  n8n:\n", f"  n8n:\n    {key}: {value}\n", 1))
        catalog = load_catalog(services)
        settings = Settings(models=["m"], embedding_model="m", services=["n8n"])
        with pytest.raises(UserError, match=key):
            render_tree(Platform(settings, "minimal", catalog, NO_GPU, "192.0.2.10", {}))
        compose.write_text(text)


def test_an_add_whose_deploy_cannot_run_leaves_answers_and_generated_as_they_were(owner, monkeypatch):
    """deploy raising (compose failed, the engine went away): answers.yaml goes back to the owner's text and
    generated/ is rendered again without the service; the preview pinned the images images.lock names."""
    from aiplatform.engine import deploy as deploying

    assert run_inv("render", "--no-input", *_flags(owner)).returncode == 0
    before = (owner / "answers.yaml").read_text()
    redis = load_catalog(TEMPLATES_DIR / "services").services["redis"].containers["redis"].image
    (owner / "images.lock").write_text(json.dumps({"images": {redis: "sha256:" + "ab" * 32}}))
    previewed: list[str] = []
    real_deploy = deploying.deploy

    def deploy(options, runner, stale, ui):
        if options.dry_run:  # the preview
            compose = yaml.safe_load((options.out / "docker/docker-compose.redis.yml").read_text())
            previewed.append(compose["services"]["redis"]["image"])
            return real_deploy(options, runner, stale, ui)
        raise UserError("docker compose up failed: the engine went away.")

    monkeypatch.setattr(deploying, "deploy", deploy)
    monkeypatch.setattr(changes, "preflight", lambda *args: [])  # stands for a host where every check passes
    result = run_inv("add", "mlflow", "--yes", *_flags(owner))
    assert result.returncode == 1 and "docker compose up failed" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert previewed == [f"{redis}@sha256:{'ab' * 32}"]
    assert (owner / "answers.yaml").read_text() == before
    assert not (owner / "generated/docker/docker-compose.mlflow.yml").exists()


def test_a_service_another_brings_along_cannot_be_removed(owner):
    """top depends on mid, mid on helper: with top and helper listed, helper is still needed (through mid)."""
    for port, (name, needs) in enumerate((("helper", []), ("mid", ["helper"]), ("top", ["mid"])), start=8201):
        folder = owner / "services" / name
        folder.mkdir(parents=True)
        (folder / "service.yaml").write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "description": "Mine.",
                    "tier": "apps",
                    "depends_on": needs,
                    "containers": {name: {"image": f"example/{name}:1.0.0", "publish": [f"127.0.0.1:{port}:8080"]}},
                }
            )
        )
        (folder / "compose.yml.j2").write_text(f"services:\n  {name}: {{}}\n")
    (owner / "answers.yaml").write_text("services: [top, helper]\n")
    result = run_inv("remove", "helper", "--dry-run", *_flags(owner))
    assert result.returncode == 1 and "mid depends on 'helper'" in result.stderr, result.stderr
