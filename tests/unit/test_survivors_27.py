"""Outcomes the mutation benchmark (benchmarks/mutants.py, seed 27) found no test asserting: each test here failed
with one of its surviving one-line bugs applied and passes without it. Each is judged by what an owner keeps or sees:
the remote's newest backups kept, an archive whose top is a file refused, the call named when LiteLLM's key list
fails, the deploy timeout `inv upgrade --timeout` was given. (A dry run of `inv add --from-compose` checking the file
with the real compose is tests/validate/test_import.py.)"""

from __future__ import annotations

import pytest

from aiplatform.backup import remote
from aiplatform.backup.archive import member_problems
from aiplatform.engine import deploy as deploying
from aiplatform.engine.deploy import DeployResult, Failure, Plan
from aiplatform.generated.diff import TreeDiff
from aiplatform.manage import upgrade as upgrading
from tests.configure_platform import deploy_files, litellm_like, stand_ins

from .engine_standin import Engine, RecordedRunner
from .test_configure_outcome import configure
from .test_hostile_input import _archive
from .test_manage_outcome import RecordingRunner, StandinDocker, _pending_plan, _upgrade_ctx, platform  # noqa: F401

# --- the remote keeps its newest backups ----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3, 5])
def test_a_remote_holding_no_more_than_it_keeps_loses_nothing(count):
    names = [f"backup-2026112{day}-100000" for day in range(count)]
    engine = Engine(remote=list(names))
    made = remote.Remote("gdrive:box", {}, 5)
    assert remote.prune(made, RecordedRunner(echo=lambda _: None, engine=engine)) == []
    assert engine.remote == names


def test_a_remote_holding_more_than_it_keeps_loses_its_oldest_only():
    names = [f"backup-2026112{day}-100000" for day in range(7)]
    engine = Engine(remote=list(names))
    pruned = remote.prune(remote.Remote("gdrive:box", {}, 5), RecordedRunner(echo=lambda _: None, engine=engine))
    assert pruned == names[:2] and engine.remote == names[2:]


# --- restore: an archive whose top is not a folder ------------------------------------------------------------------


def test_an_archive_whose_top_entry_is_a_file_is_refused(tmp_path):
    archive = tmp_path / "data.tar.gz"
    _archive(archive, [("file", ".", b"not a folder"), ("file", "notes.txt", b"kept\n")])
    assert member_problems(archive, config=False) == ["'.': not a folder"]  # extracting it would replace the folder
    _archive(archive, [("dir", "."), ("file", "notes.txt", b"kept\n")])
    assert member_problems(archive, config=False) == []


# --- configure: LiteLLM's key list refused --------------------------------------------------------------------------


def test_a_refused_key_list_names_the_call(tmp_path):
    _, root = deploy_files(tmp_path)
    with litellm_like() as litellm, stand_ins(root, litellm.url, litellm={"fail": {"GET /key/list": 500}}) as services:
        report, table = configure(root, services, only=["litellm"])
    step = table[("litellm", "key for open-webui")]
    assert step.result == "FAILED" and not report.ok
    assert step.detail.startswith("LiteLLM: GET /key/list answered HTTP 500"), step


# --- inv upgrade --timeout reaches the deploy and its roll back -----------------------------------------------------


def test_upgrades_timeout_is_the_deploys_and_the_roll_backs(platform, monkeypatch):  # noqa: F811
    home, images = platform
    timeouts: list[int | None] = []

    def deploy(options, runner, stale, ui):
        timeouts.append(options.timeout)
        failures = [Failure("qdrant", "running", ["unhealthy"], "")] if len(timeouts) == 1 else []
        return DeployResult(Plan(TreeDiff(), {}), options.root, applied=True, failures=failures)

    monkeypatch.setattr(deploying, "deploy", deploy)
    runner = RecordingRunner(here=set(), order=[])
    StandinDocker.digests = {images["qdrant"]: "sha256:" + "c" * 64}
    result = upgrading.upgrade(lambda: _upgrade_ctx(home), home / "generated", _pending_plan(home, images), runner,
                               None, lambda: home / "backups/b1", lambda _: None, timeout=900)  # fmt: skip
    assert result.rolled_back is not None and timeouts == [900, 900]


# --- deploy's staleness check: a root remembered from the previous render -------------------------------------------


def test_a_tree_rendered_for_a_remembered_root_is_not_stale(tmp_path):
    """`inv render --root R`, then `inv render` (R remembered, no flag): deploy's check rebuilds the same context, the
    remembered root included, and finds the tree current."""
    from aiplatform.generated.build import stale_reason

    from .test_cli import render

    render(tmp_path, "--root", str(tmp_path / "elsewhere"))
    render(tmp_path)
    assert stale_reason(tmp_path / "generated", {}) is None
