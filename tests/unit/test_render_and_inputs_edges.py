"""Outcomes a mutation run showed unchecked: a host-network service renders without `networks:` (compose refuses the
two together), the recorded hardware profile is read back with the free disk space measured now, and every moving
tag word is refused as unpinned."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import yaml

from aiplatform.inputs.answers import with_values
from aiplatform.inputs.context import Context
from aiplatform.inputs.hardware import format_profile_env, make_report
from aiplatform.inputs.images import image_problem

from .conftest import fake_nvml
from .test_hostile_input import _catalog, _project, _render_service
from .test_render import ONE_GPU


def test_a_host_network_service_renders_without_networks_which_compose_refuses_beside_network_mode(tmp_path):
    from aiplatform.manage.importer import from_project

    rendered = {}
    for name, keys in {"plain": {}, "host": {"network_mode": "host"}}.items():
        project, path = _project(tmp_path / name, **keys)
        spec, template = from_project(project, path, "notes", _catalog(), allow_privileged=True)
        rendered[name] = _render_service(tmp_path / name, spec, template)["notes"]
    assert rendered["plain"].get("networks") and "network_mode" not in rendered["plain"]  # the default has networks
    assert rendered["host"]["network_mode"] == "host"
    assert "networks" not in rendered["host"], rendered["host"]


def test_a_recorded_hardware_profile_reads_back_with_the_free_disk_space_measured_now(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    recorded = make_report(ONE_GPU, "performance", ["llama3.2:3b"], 2.0)
    (root / "config" / "hardware-profile.env").write_text(format_profile_env(recorded, "test"))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(900 * 1024**3, 123 * 1024**3, 777 * 1024**3))
    context = Context(answers=None, flags={"root": str(root)}, environ={}, nvml=fake_nvml([]))
    hardware, source = context.hardware_at(root)
    assert source.endswith("hardware-profile.env")
    assert hardware.disk_free_gb == 777


@pytest.mark.parametrize("tag", ["latest", "next", "canary", "nightly", "edge", "beta", "rc", "lts", "unstable"])
def test_a_moving_tag_is_refused_as_unpinned(tag):
    problem = image_problem(f"example/notes:{tag}")
    assert problem is not None and "is not pinned" in problem, problem
    assert image_problem(f"example/notes:2.1.0-{tag}") is None  # a release number pins it


@pytest.mark.parametrize("value", ["2026-13-45", "a\x85b", "a\u2028b", "tab\there", "two\nlines", "yes", "12:30"])
def test_a_value_written_to_answers_yaml_reads_back_as_it_was_given(value):
    """`2026-13-45` (no date YAML can make) once raised ValueError; a NEL in single quotes read back as a space."""
    text = with_values("admin_email: owner@example.com  # kept\n", Path("answers.yaml"), {"admin_name": value})
    assert yaml.safe_load(text) == {"admin_email": "owner@example.com", "admin_name": value}
    assert "# kept" in text
