"""Outcomes the mutation benchmark (benchmarks/mutants.py, seed 28) found no test asserting: each test here failed
with one of its surviving one-line bugs applied and passes without it. A template may set none of the keys that widen
a container's reach into the host (each one named), and a bad `--name` of `inv add --from-compose` is named as that
flag. (Others of seed 28 are in test_configure_outcome.py: Open WebUI's embedding tuning kept and the key found there
said; test_manage_outcome.py: add's deploy does not ask a second time; test_backup_outcome.py: the last-backup record
is a text file.)"""

from __future__ import annotations

import pytest

from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.manage import importer

from .test_hostile_input import _catalog, _render_service

QUIET = Runner(echo=lambda _: None)

# What widens what a container may do to the host: service.yaml's `privileges:` gives it, render sets it; a template
# setting it is refused. Written out here, not read from the code: a key dropped from the code's list fails here.
WIDENING = {
    "privileged": "true",
    "network_mode": "host",
    "pid": "host",
    "ipc": "host",
    "userns_mode": "host",
    "cap_add": "[SYS_ADMIN]",
    "security_opt": "[seccomp=unconfined]",
    "devices": "[/dev/sda]",
    "device_cgroup_rules": "['b 8:* rmw']",
    "uts": "host",
    "cgroup": "host",
    "cgroup_parent": "/",
}


@pytest.mark.parametrize(("key", "value"), WIDENING.items(), ids=list(WIDENING))
def test_a_template_setting_a_key_that_widens_the_containers_reach_is_refused(tmp_path, key, value):
    spec = {"name": "notes", "description": "x", "tier": "apps", "containers": {"notes": {"image": "a/b:1.0.0"}}}
    with pytest.raises(UserError) as error:
        _render_service(tmp_path, spec, f"services:\n  notes:\n    {key}: {value}\n")
    assert error.value.message.endswith(f": notes sets {key}, which widen what it may do to the host."), error.value
    assert "`privileges:`" in error.value.fix


@pytest.mark.parametrize("name", ["Notes", "1notes", "no_tes", "-x"])
def test_a_bad_name_for_an_imported_service_is_named_as_the_flag_that_gave_it(tmp_path, name):
    with pytest.raises(UserError) as error:
        importer.import_compose(tmp_path / "compose.yml", name, _catalog(), tmp_path / "services", QUIET)
    assert error.value.message == f"--name {name!r}: lower-case letters, digits and dashes, starting with a letter."
    assert not (tmp_path / "services").exists()
