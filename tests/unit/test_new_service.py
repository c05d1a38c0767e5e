"""A new service from cookiecutter-service, both ways: `inv add --new NAME` checks each answer as it is given (asked
again, the other answers kept), and plain `cookiecutter cookiecutter-service` refuses broken answers in its hook with
one paragraph (no traceback, exit non-zero) and keeps them in cookiecutter's replay file. The hook reads the answers
as data: an answer written as Python code is refused, never run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from aiplatform.host.runner import Runner
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.new_service import answer_problem, questions
from aiplatform.manage.importer import bake_new
from aiplatform.paths import COOKIECUTTER_DIR, TEMPLATES_DIR

from .test_questionnaire import _converse

COOKIECUTTER = [sys.executable, "-m", "cookiecutter"]


def _payload(marker: Path) -> str:
    """An image answer that, pasted into the hook's Python source, runs code (it did before the fix)."""
    return f'nginx:1.27.3" + __import__("os").system("touch {marker}") * "" + "'


@pytest.mark.parametrize("key", ["image", "health_path", "data_path", "subdomain"])
def test_an_answer_written_as_python_is_refused_and_never_run(tmp_path, key, capfd):
    marker = tmp_path / "ran"
    with pytest.raises(FailedHookException):
        cookiecutter(str(COOKIECUTTER_DIR), no_input=True, output_dir=str(tmp_path / "out"),
                     extra_context={"name": "notes-app", key: _payload(marker)})  # fmt: skip
    assert not marker.exists()
    assert f"{key}: " in capfd.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_description_written_as_python_is_kept_as_text(tmp_path):
    marker = tmp_path / "ran"
    made = cookiecutter(str(COOKIECUTTER_DIR), no_input=True, output_dir=str(tmp_path / "out"),
                        extra_context={"name": "notes-app", "description": _payload(marker)})  # fmt: skip
    assert not marker.exists()
    assert yaml.safe_load((Path(made) / "service.yaml").read_text())["description"] == _payload(marker)


def test_a_description_with_yaml_syntax_stays_one_string(tmp_path):
    made = cookiecutter(str(COOKIECUTTER_DIR), no_input=True, output_dir=str(tmp_path),
                        extra_context={"name": "notes-app", "description": "Notes: yours & 'mine' <b>"})  # fmt: skip
    spec = yaml.safe_load((Path(made) / "service.yaml").read_text())
    assert spec["description"] == "Notes: yours & 'mine' <b>"


def test_plain_cookiecutter_refuses_in_one_paragraph_and_keeps_the_answers_for_replay(tmp_path):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = tmp_path / "out"
    argv = [*COOKIECUTTER, "--no-input", "-o", str(out), str(COOKIECUTTER_DIR)]
    refused = subprocess.run([*argv, "name=notes-app", "image=example/notes:latest", "description=My notes"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, check=False)  # fmt: skip
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "Traceback" not in said
    assert "image: 'example/notes:latest' is not pinned" in refused.stderr
    replay = tmp_path / ".cookiecutter_replay" / "cookiecutter-service.json"
    assert f"Your answers are kept in {replay}" in refused.stderr
    assert "cookiecutter --replay" in refused.stderr
    assert not out.exists() or not any(out.iterdir())
    kept = json.loads(replay.read_text())
    assert kept["cookiecutter"]["description"] == "My notes"  # what was answered is kept
    kept["cookiecutter"]["image"] = "example/notes:2.1.0"  # corrected there, as the message says
    replay.write_text(json.dumps(kept))
    replayed = subprocess.run([*COOKIECUTTER, "--replay", "-o", str(out), str(COOKIECUTTER_DIR)],
                              capture_output=True, text=True, env=env, cwd=tmp_path, check=False)  # fmt: skip
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    spec = yaml.safe_load((out / "notes-app" / "service.yaml").read_text())
    assert spec["containers"]["notes-app"]["image"] == "example/notes:2.1.0"
    assert spec["description"] == "My notes"


def test_inv_add_new_asks_again_only_for_the_answer_that_breaks_a_rule(tmp_path):
    catalog = load_catalog(TEMPLATES_DIR / "services")
    taken = str(catalog.services["mlflow"].route.ip_port)
    given = {
        "description": ["Notes {{ 7*7 }}", "Notes of the team"],
        "image": ["example/notes:latest", _payload(tmp_path / "ran"), "example/notes:2.1.0"],
        "ip_port": [taken, "9555"],
        "needs_database": ["yes"],
    }
    asked: list[str] = []
    refused: list[str] = []

    def ask(question, default, problem):
        asked.append(question.key)
        for answer in given.get(question.key, [default]):
            found = problem(answer)
            if found is None:
                return answer
            refused.append(found)
        raise AssertionError(f"{question.key}: no answer left")

    folder = bake_new("notes-app", catalog, tmp_path / "services", Runner(echo=lambda _: None), ask)
    assert asked == [q.key for q in questions(COOKIECUTTER_DIR) if q.key != "name"]  # each once, in order
    assert refused[0].startswith("description: no braces")
    assert (
        refused[1]
        == "image: 'example/notes:latest' is not pinned: tag 'latest' moves ('latest' points at a new build over time)"
    )
    assert refused[2].startswith("image: ") and "not an image reference" in refused[2]
    assert refused[3] == f"ip_port: {taken} is taken by another service of the catalog"
    spec = yaml.safe_load((folder / "service.yaml").read_text())
    assert spec["description"] == "Notes of the team"
    assert spec["containers"]["notes-app"]["image"] == "example/notes:2.1.0"
    assert spec["route"]["ip_port"] == 9555 and spec["databases"][0]["name"] == "notes_app"
    assert spec["route"]["subdomain"] == "notes-app"  # the default from the name
    assert not (tmp_path / "ran").exists()


def test_every_free_answer_has_a_rule_and_every_choice_is_checked():
    for question in questions(COOKIECUTTER_DIR):
        if question.choices:
            assert answer_problem(question.key, "nope", list(question.choices)) is not None
            assert answer_problem(question.key, question.default, list(question.choices)) is None
        else:
            assert answer_problem(question.key, "a\nb{{") is not None, question.key


def test_inv_add_new_at_a_real_terminal_checks_the_image_as_it_is_given(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text("domain: ''\n")
    flags = ["--answers", str(answers), "--out", str(tmp_path / "generated"), "--root", str(tmp_path / "root")]
    script = (
        "import sys; from pathlib import Path; from aiplatform import paths; "
        f"paths.USER_SERVICES_DIR = Path({str(tmp_path / 'services')!r}); "
        "from invoke import main; sys.argv = ['inv', *sys.argv[1:]]; main.program.run()"
    )
    replies = [("One sentence", "Notes of the team"), ("Container image", "example/notes:latest"),
               ("answer again", "example/notes:2.1.0")]  # fmt: skip
    replies += [(q.text[:20] if not q.choices else "choose", "") for q in questions(COOKIECUTTER_DIR)[3:]]
    code, output, unanswered = _converse([sys.executable, "-c", script, "add", "--new", "notes-app", "--dry-run",
                                          *flags], replies)  # fmt: skip
    assert not unanswered, output
    assert "is not pinned" in output and "Traceback" not in output
    assert "notes-app" in output.split("Containers to create:")[1].splitlines()[0], output
    assert code == 0 or "a real run would stop at its preflight: port" in output, output  # this box's ports


def test_each_choice_defaults_to_its_first_option_as_cookiecutter_does():
    # cookiecutter takes a list's first item when the owner just presses Enter; the menu must show that one
    # (Caddy's login in front of a new service, no database, no LiteLLM key unless asked for)
    defaults = {q.key: q.default for q in questions(COOKIECUTTER_DIR) if q.choices}
    assert defaults == {"tier": "apps", "healthcheck_tool": "curl", "needs_database": "no", "calls_litellm": "no",
                        "admin_login": "no", "auth": "caddy"}  # fmt: skip
    assert all(q.default == "vendor/myservice:1.0.0" for q in questions(COOKIECUTTER_DIR) if q.key == "image")
