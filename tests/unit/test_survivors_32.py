"""What the mutation benchmark's seed-32 draw changed unseen: the backup upgrade takes goes where every other task
looks for backups, a dry-run backup still reads which databases there are, `upgrade --postgres-major` puts every
database and role of its backup into the new cluster, a built image's Dockerfile template sees its own service, and a
template's choice question is asked in its own words."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from aiplatform.backup import restore, take
from aiplatform.engine import deploy as deploying
from aiplatform.engine.deploy import DeployResult, Plan
from aiplatform.envfile import read_env
from aiplatform.generated.diff import TreeDiff
from aiplatform.inputs.new_service import questions
from aiplatform.manage import upgrade as upgrading
from aiplatform.paths import COOKIECUTTER_DIR, MASTER_ENV

from .engine_standin import POSTGRES, Deployed, EngineDocker, RecordedRunner, deployed
from .test_backup_outcome import DATABASES, SERVICES, _backup
from .test_render import _ctx
from .test_route_auth import owner_catalog, whole_catalog


@pytest.fixture
def platform(tmp_path, monkeypatch) -> Deployed:
    for module in (take, restore):
        monkeypatch.setattr(module, "Docker", EngineDocker)
    return deployed(tmp_path, _ctx, SERVICES)


def test_the_backup_upgrade_takes_first_goes_into_the_platforms_backups_folder(platform):
    """`inv upgrade` backs up through BackupOptions.for_root without a folder: master.env's BACKUPS_DIR, where
    `inv backup --list`, `inv status` and `cleanup --purge` (which keeps it) look."""
    master = read_env(platform.root / MASTER_ENV)
    assert take.BackupOptions.for_root(platform.root).dest == Path(master["BACKUPS_DIR"]) == platform.root / "backups"


def test_a_dry_run_backup_still_lists_the_databases_and_names_the_dump_of_each(platform):
    """The database list is a read (psql), answered in a dry run as on a real one: each database's pg_dump is then
    named as what a backup would run, and nothing is written."""
    runner = RecordedRunner(dry_run=True, echo=lambda _: None, engine=platform.engine)
    take.take_backup(take.BackupOptions(platform.root, platform.root / "backups"), platform.catalog, runner, print)
    dumps = [argv for argv in runner.history if argv[:4] == ["docker", "exec", POSTGRES, "pg_dump"]]
    dumped = {argv[argv.index("-Fc") + 1] for argv in dumps}
    assert dumped == {name for _, name in DATABASES}
    assert not (platform.root / "backups").exists() or not any((platform.root / "backups").iterdir())


def test_a_postgres_major_upgrade_restores_every_database_and_role_into_the_new_cluster(platform, monkeypatch):
    """The new major starts an empty cluster (the stand-in deploy empties the engine's Postgres); what the backup
    taken first holds is then restored into it: every database with the same bytes, and the roles."""
    backup, _ = _backup(platform)
    dumps, roles = dict(platform.engine.databases), set(platform.engine.roles)
    assert dumps and roles

    def deploy(options, runner, stale, ui):  # a stand-in: the new Postgres comes up empty and healthy
        platform.engine.databases.clear()
        platform.engine.roles.clear()
        return DeployResult(Plan(TreeDiff(), {}), options.root, applied=True)

    monkeypatch.setattr(deploying, "deploy", deploy)
    monkeypatch.setattr(deploying, "bring_up", lambda *args, **kwargs: deploying.DeployResult(plan=None))
    plan = upgrading.UpgradePlan(platform.root, [], postgres=(15, 16))
    runner = RecordedRunner(echo=lambda _: None, engine=platform.engine)
    ui = SimpleNamespace(progress=lambda states: None)
    result = upgrading.upgrade(lambda: _ctx(platform.root.parent), platform.out, plan, runner, ui,
                               lambda: backup, lambda _: None, postgres_major=True)  # fmt: skip
    assert result.ok
    assert platform.engine.databases == dumps and platform.engine.roles == roles


def test_a_built_images_dockerfile_template_sees_its_own_service_and_base(tmp_path):
    """Every template of a service sees it as `service`: its compose file, its config files and its Dockerfile."""
    folder = owner_catalog(tmp_path) / "notes"
    text = (folder / "service.yaml").read_text()
    built = (
        "    image: example/notes:1.0.0\n    build:\n      dockerfile: notes.Dockerfile.j2\n"
        "      tag: example/notes:1.0.0-ours\n"
    )
    (folder / "service.yaml").write_text(text.replace("    image: example/notes:1.0.0\n", built))
    (folder / "notes.Dockerfile.j2").write_text("FROM {{ base }}\nLABEL org.example.service={{ service.name }}\n")
    tree = whole_catalog(tmp_path).tree
    [dockerfile] = [path for path in tree if path.endswith("/notes/Dockerfile")]
    assert tree[dockerfile].data.decode().splitlines() == [
        "FROM example/notes:1.0.0",
        "LABEL org.example.service=notes",
    ]


def test_a_choice_question_is_asked_in_its_templates_words(tmp_path):
    """A choice's wording is its __prompts__ entry: the dict's __prompt__ (each choice explained), or a plain string."""
    asked = {q.key: q for q in questions(COOKIECUTTER_DIR)}
    prompts = json.loads((COOKIECUTTER_DIR / "cookiecutter.json").read_text())["__prompts__"]
    assert asked["tier"].text == prompts["tier"]["__prompt__"] == "When it starts"
    assert asked["tier"].choices["ai"] == prompts["tier"]["ai"]
    (tmp_path / "cookiecutter.json").write_text(json.dumps({"size": ["s", "m"], "__prompts__": {"size": "How big"}}))
    [size] = questions(tmp_path)
    assert (size.text, size.default, size.choices) == ("How big", "s", {"s": "s", "m": "m"})
