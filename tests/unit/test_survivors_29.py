"""Outcomes the mutation benchmark (benchmarks/mutants.py, seed 29) found no test asserting: each test here failed
with one of its surviving one-line bugs applied and passes without it. A service's config hash covers its own files
only, never another file whose path merely starts like one of them; an unknown tier is named with the tiers; the
admin password's length bounds are inclusive; a node's unknown key is refused. (Others of seed 29 are in
test_backup_outcome.py: the roles come back from the globals' SQL, an encrypted backup restores under its files' own
names; engine_standin.py now refuses a docker command docker lacks; test_manage_outcome.py: the Let's Encrypt warning
when the domain alone changes.)"""

from __future__ import annotations

import pytest

from aiplatform.errors import UserError
from aiplatform.inputs.catalog import ServiceSpec
from aiplatform.inputs.profiles import load_profile
from aiplatform.inputs.secrets import admin_password_problem
from aiplatform.render.confighash import owned_files
from aiplatform.render.tree import RenderedFile


def test_a_services_files_are_its_own_paths_not_others_that_start_like_them():
    """`files:` paths are whole paths (a `{name}` stands for one database name): a file of another service whose
    path starts like one of them is not this service's, and a change to it does not recreate this one."""
    spec = ServiceSpec.model_validate({
        "name": "notes", "description": "x", "tier": "apps",
        "containers": {"notes": {"image": "example/notes:1.0.0"}},
        "files": [{"template": "app.ini.j2", "path": "config/notes/app.ini"},
                  {"template": "init.sh.j2", "path": "config/notes/init/{name}.sh", "each": "database"}],
    })  # fmt: skip
    tree = {path: RenderedFile(b"x") for path in [
        "config/notes/app.ini", "config/notes/app.ini.d/extra.ini", "config/notes/init/n8n.sh",
        "config/notes/init/n8n.sh.orig", "config/notes/init/a/b.sh", "docker/build/notes/Dockerfile",
    ]}  # fmt: skip
    assert sorted(owned_files(spec, tree)) == [
        "config/notes/app.ini", "config/notes/init/n8n.sh", "docker/build/notes/Dockerfile"
    ]  # fmt: skip


def test_a_tier_that_is_not_one_is_named_with_the_ones_there_are():
    """load_profile of a tier name no profile has (a caller passing it unchecked): the tiers and where to pick one."""
    with pytest.raises(UserError) as error:
        load_profile("huge")
    assert error.value.message == "Unknown tier 'huge': expected one of minimal, standard, performance (or auto)."
    assert error.value.fix == "Pass --profile with one of those, or set `profile:` in answers.yaml."


@pytest.mark.parametrize(("length", "taken"), [(11, False), (12, True), (64, True), (65, False)])
def test_the_admin_password_takes_12_to_64_characters_both_ends_included(length, taken):
    """MLflow wants 12 at least, n8n 64 at most: both bounds are passwords every app takes."""
    password = ("Ab1-" * 17)[:length]
    assert (admin_password_problem(password) is None) == taken, (length, admin_password_problem(password))


def test_an_ollama_node_with_a_key_it_does_not_have_is_refused_naming_it(tmp_path):
    """A typo in a node's keys (`wieght: 2`) would otherwise be dropped silently and the node get weight 1."""
    from .conftest import run_inv

    answers = tmp_path / "answers.yaml"
    answers.write_text("ollama_nodes:\n  - address: gpu1.lan\n  - address: gpu2.lan\n    wieght: 2\n")
    ran = run_inv("settings", "--answers", str(answers))
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert f"{answers} line 4: key 'ollama_nodes[1].wieght': Extra inputs are not permitted" in ran.stderr  # its line
