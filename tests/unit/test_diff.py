"""inv diff: what deploy would change in the root, with secrets masked, --exit-code, stale warnings."""

from __future__ import annotations

from aiplatform.engine.deploy import apply_files
from aiplatform.envfile import parse_env
from aiplatform.generated.build import render_command
from aiplatform.generated.diff import diff_trees
from aiplatform.host.runner import Runner
from aiplatform.inputs.context import Context

from .conftest import fake_nvml, run_inv


def render(tmp_path, environ=None, **flags):
    ctx = Context(
        answers=tmp_path / "answers.yaml",
        flags={"root": str(tmp_path / "root"), **flags},
        environ=environ or {},
        nvml=fake_nvml([]),
    )
    render_command(ctx, tmp_path / "generated", interactive=False)
    return tmp_path / "generated", tmp_path / "root"


def test_empty_root_everything_is_new_then_nothing_after_apply(tmp_path):
    out, root = render(tmp_path)
    first = diff_trees(out, root)
    assert first.differs and {f.status for f in first.files} == {"new"}
    assert "config/credentials.env" in [f.path for f in first.files]
    apply_files(Runner(), out, root)
    assert not diff_trees(out, root).differs


def test_changed_and_removed_files(tmp_path):
    out, root = render(tmp_path)
    apply_files(Runner(), out, root)
    render(tmp_path, services=[], ollama_keep_alive="45m")  # monitoring off, one Ollama setting changed
    result = diff_trees(out, root)
    by_path = {f.path: f for f in result.files}
    assert by_path["config/ollama/override.conf"].status == "changed"
    assert '-Environment="OLLAMA_KEEP_ALIVE=5m"' in by_path["config/ollama/override.conf"].text
    assert '+Environment="OLLAMA_KEEP_ALIVE=45m"' in by_path["config/ollama/override.conf"].text
    assert by_path["docker/docker-compose.monitoring.yml"].status == "removed"
    removed = by_path["config/prometheus/prometheus.yml"]
    assert removed.status == "removed"
    assert removed.text.startswith("--- root/config/prometheus/prometheus.yml\n+++ /dev/null\n")  # as diff -N
    assert all(line.startswith(("---", "+++", "@@", "-")) for line in removed.text.splitlines())


def test_secret_values_never_shown_only_their_names(tmp_path):
    out, root = render(tmp_path)
    apply_files(Runner(), out, root)
    old = parse_env((root / "config/credentials.env").read_text())
    render(tmp_path, environ={"AI_PLATFORM_ADMIN_PASSWORD": "Brand-New-Password-42"})
    # the root's value wins over generated/ for generated secrets, but an explicit value is the user's choice
    result = diff_trees(out, root)
    assert result.secrets_changed == ["ADMIN_PASSWORD"]
    text = "".join(f.text for f in result.files)
    assert "ADMIN_PASSWORD=**** (changed)" in text
    assert "Brand-New-Password-42" not in text
    for value in old.values():
        assert value not in text


def test_inv_diff_exit_code_and_masking(tmp_path):
    out, root = render(tmp_path)
    result = run_inv("diff", "--out", str(out), "--exit-code")
    assert result.returncode == 1
    secrets = parse_env((out / "config/credentials.env").read_text())
    for value in secrets.values():
        assert value not in result.stdout + result.stderr
    assert "Secrets added: ADMIN_PASSWORD" in result.stdout
    apply_files(Runner(), out, root)
    same = run_inv("diff", "--out", str(out), "--exit-code")
    assert same.returncode == 0, same.stderr
    assert "nothing to apply" in same.stdout


def test_inv_diff_warns_when_generated_is_stale(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text("ollama_keep_alive: 10m\n")
    out = tmp_path / "generated"
    rendered = run_inv(
        "render", "--no-input", "--answers", str(answers), "--root", str(tmp_path / "root"), "--out", str(out)
    )
    assert rendered.returncode == 0, rendered.stderr
    fresh = run_inv("diff", "--out", str(out))
    assert "stale" not in fresh.stderr
    answers.write_text("ollama_keep_alive: 20m\n")
    stale = run_inv("diff", "--out", str(out))
    assert "is stale" in stale.stderr and "inv render" in stale.stderr


def test_inv_diff_refuses_another_root(tmp_path):
    out, _ = render(tmp_path)
    result = run_inv("diff", "--out", str(out), "--root", "/srv/elsewhere")
    assert result.returncode == 1 and "was rendered for root" in result.stderr and "Traceback" not in result.stderr


def test_deploy_refuses_an_unknown_only_service_before_touching_anything(tmp_path):
    out, root = render(tmp_path)
    result = run_inv("deploy", "--out", str(out), "--yes", "--only", "litellm,wordpress")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--only names wordpress" in result.stderr and "litellm" in result.stderr
    assert not root.exists()
