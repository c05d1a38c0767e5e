"""generated/ by what it holds afterwards: the tree on disk is exactly the rendered one (bytes and modes), nothing is
left beside it, the stamp records what the render was made from and notices an edit, and `inv diff`'s tree is what
deploy would leave in the root (a secret only the root holds kept, a mode-only change shown)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from aiplatform import __version__
from aiplatform.envfile import format_env, parse_env
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command, service_urls, stale_reason
from aiplatform.generated.diff import applied_tree, diff_trees
from aiplatform.generated.files import RenderedFile, read_tree
from aiplatform.generated.stamp import read_stamp
from aiplatform.generated.write import write_tree

from .test_render import _ctx


def _on_disk(out: Path) -> dict[str, tuple[bytes, int]]:
    return {path: (file.data, file.mode) for path, file in read_tree(out).items()}


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _stamped(files: dict[str, tuple[bytes, int]]) -> dict[str, RenderedFile]:
    return {
        **{p: RenderedFile(data, mode) for p, (data, mode) in files.items()},
        ".aiplatform.json": RenderedFile(b"{}"),
    }


# Each step's tree, and what the write must report: created, changed, removed (the rest unchanged).
STEPS = [
    ({"a.txt": (b"one", 0o644), "bin/run.sh": (b"#!/bin/sh\n", 0o755), "config/credentials.env": (b"K='v'\n", 0o600)},
     (["a.txt", "bin/run.sh", "config/credentials.env", ".aiplatform.json"], [], [])),
    ({"a.txt": (b"two", 0o644), "bin/run.sh": (b"#!/bin/sh\n", 0o755), "config/credentials.env": (b"K='v'\n", 0o600)},
     ([], ["a.txt"], [])),
    ({"a.txt": (b"two", 0o644), "bin/run.sh": (b"#!/bin/sh\n", 0o700), "config/credentials.env": (b"K='v'\n", 0o600)},
     ([], ["bin/run.sh"], [])),
    ({"a.txt": (b"two", 0o644), "config/credentials.env": (b"K='w'\n", 0o600), "new/b.txt": (b"b", 0o644)},
     (["new/b.txt"], ["config/credentials.env"], ["bin/run.sh"])),
    ({"a.txt": (b"two", 0o644), "config/credentials.env": (b"K='w'\n", 0o600), "new/b.txt": (b"b", 0o644)},
     ([], [], [])),
]  # fmt: skip


def test_each_write_leaves_exactly_the_tree_and_reports_what_it_changed(tmp_path):
    out = tmp_path / "generated"
    (tmp_path / "other").mkdir()  # a neighbour render must never touch
    for files, (created, changed, removed) in STEPS:
        before = {p: os.stat(out / p).st_ino for p in files if (out / p).is_file()}
        result = write_tree(out, _stamped(files))
        assert _on_disk(out) == {**files, ".aiplatform.json": (b"{}", 0o644)}
        assert sorted(result.created) == sorted(created) and result.changed == changed and result.removed == removed
        assert sorted(result.unchanged) == sorted((set(files) | {".aiplatform.json"}) - set(created) - set(changed))
        assert {p: os.stat(out / p).st_ino for p in result.unchanged if p in before} == {
            p: before[p] for p in result.unchanged if p in before
        }  # an unchanged file is the same file, not a copy
        assert stat.S_IMODE(out.stat().st_mode) == 0o755
        assert _siblings(out) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["generated", "other"]


def test_a_folder_render_did_not_make_is_refused_and_left_as_it_is(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the owner's\n")
    with pytest.raises(UserError, match="not a folder render made"):
        write_tree(out, _stamped({"a.txt": (b"one", 0o644)}))
    assert _on_disk(out) == {"notes.txt": (b"the owner's\n", 0o644)}


def test_read_tree_takes_regular_files_only(tmp_path):
    out = tmp_path / "generated"
    write_tree(out, _stamped({"a.txt": (b"one", 0o644)}))
    (out / "link").symlink_to(out / "a.txt")  # (a FIFO would block the read of a broken read_tree for ever)
    (out / "folder-link").symlink_to(tmp_path)
    assert sorted(read_tree(out)) == [".aiplatform.json", "a.txt"]


def test_the_stamp_records_the_render_and_every_files_digest(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path, services=["n8n", "monitoring"]), out, interactive=False)
    stamp = read_stamp(out)
    assert stamp is not None
    assert stamp.root == str(tmp_path / "root") and stamp.tier == "minimal"
    written = json.loads((out / ".aiplatform.json").read_text())
    assert written["tool"] == "ai-platform" and written["version"] == __version__  # who made the folder
    assert list(written) == sorted(written) and list(written["urls"]) == sorted(written["urls"])  # one order to diff
    assert {"n8n", "monitoring", "litellm", "caddy"} <= set(stamp.services) and "dify" not in stamp.services
    on_disk = {p: hashlib.sha256(f.data).hexdigest() for p, f in read_tree(out).items() if p != ".aiplatform.json"}
    assert stamp.files == on_disk
    assert stamp.sources["answers"] == str(tmp_path / "answers.yaml")
    assert "domain" not in json.dumps(stamp.sources["flags"]) and stamp.sources["flags"]["services"] == [
        "n8n",
        "monitoring",
    ]


def test_a_rendered_tree_goes_stale_when_its_answers_change_and_says_which_file_was_edited(tmp_path):
    out = tmp_path / "generated"
    answers = tmp_path / "answers.yaml"
    answers.write_text("ollama_keep_alive: 10m\n")
    render_command(_ctx(tmp_path), out, interactive=False)
    assert stale_reason(out, {}) is None
    answers.write_text("ollama_keep_alive: 10m  # a comment is a change of the file\n")
    assert "is stale" in (stale_reason(out, {}) or "")
    render_command(_ctx(tmp_path), out, interactive=False)
    assert stale_reason(out, {}) is None
    with (out / "config/master.env").open("a") as handle:
        handle.write("# edited\n")
    assert "edited by hand (config/master.env)" in (stale_reason(out, {}) or "")


def test_staleness_is_checked_with_the_variables_render_was_given_unless_others_are(tmp_path, monkeypatch):
    """sudo drops the caller's AI_PLATFORM_* variables: the check takes them from the stamp."""
    for name in [name for name in os.environ if name.startswith("AI_PLATFORM_")]:
        monkeypatch.delenv(name)
    out = tmp_path / "generated"
    ctx = _ctx(tmp_path)
    ctx.environ = {"AI_PLATFORM_OLLAMA_KEEP_ALIVE": "20m"}
    render_command(ctx, out, interactive=False)
    assert read_stamp(out).sources["env"] == {"AI_PLATFORM_OLLAMA_KEEP_ALIVE": "20m"}
    assert stale_reason(out) is None
    assert "is stale" in (stale_reason(out, {}) or "")
    assert stale_reason(out, {"AI_PLATFORM_OLLAMA_KEEP_ALIVE": "20m"}) is None


def test_the_applied_tree_keeps_a_secret_only_the_root_holds_and_the_rendered_values_win(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    rendered = parse_env((out / "config/credentials.env").read_text())
    root_config = tmp_path / "root" / "config"
    root_config.mkdir(parents=True, exist_ok=True)
    (root_config / "credentials.env").write_text(
        format_env({"N8N_API_KEY": "made-by-configure", "REDIS_PASSWORD": "x"})
    )
    (root_config / "credentials.env").chmod(0o600)
    applied = applied_tree(out, tmp_path / "root")["config/credentials.env"]
    values = parse_env(applied.data.decode())
    assert values == {**rendered, "N8N_API_KEY": "made-by-configure"} and applied.mode == 0o600


def test_diff_shows_a_change_of_mode_alone(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    root = tmp_path / "root"
    for path, file in applied_tree(out, root).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(file.data)
        (root / path).chmod(file.mode)
    assert not diff_trees(out, root).differs
    (root / "config/credentials.env").chmod(0o644)
    found = diff_trees(out, root).files
    assert [(f.path, f.status, f.note) for f in found] == [("config/credentials.env", "changed", "mode 0644 → 0600")]


def test_each_local_url_is_the_host_port_it_is_published_on(tmp_path):
    out = tmp_path / "generated"
    result = render_command(_ctx(tmp_path, services=["flowise", "mlflow", "monitoring"]), out, interactive=False)
    urls = service_urls(result.rendered.platform)
    assert urls["flowise"]["local"] == "http://localhost:3001"  # published 127.0.0.1:3001:3000
    assert urls["mlflow"]["local"] == "http://localhost:5005"
    assert json.loads((out / ".aiplatform.json").read_text())["urls"] == urls
