"""Writing generated/: atomic, one render at a time, recoverable after a kill, and loud about what it fixes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from aiplatform.envfile import format_env
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command
from aiplatform.generated.files import RenderedFile, read_tree
from aiplatform.generated.write import recover, render_lock, write_tree
from aiplatform.host import hostfs

from .conftest import PROJECT, run_inv
from .test_render import _ctx, _snapshot


def _tree(text: str) -> dict[str, RenderedFile]:
    """A rendered tree: with its stamp, which tells render's next write that the folder is its own."""
    return {"a.txt": RenderedFile(text.encode()), "config/credentials.env": RenderedFile(b"K='v'\n", 0o600),
            ".aiplatform.json": RenderedFile(b"{}\n")}  # fmt: skip


def test_leftovers_of_a_killed_render_are_cleaned_and_the_next_render_works(tmp_path):
    out = tmp_path / "generated"
    write_tree(out, _tree("one"))
    half = tmp_path / ".generated.new-abc123"
    (half / "config").mkdir(parents=True)
    (half / "config/credentials.env").write_text("SECRET=half-written\n")
    old = tmp_path / ".generated.old"
    (old / "config").mkdir(parents=True)
    result = write_tree(out, _tree("two"))
    assert result.changed == ["a.txt"]
    assert not half.exists() and not old.exists()
    assert (out / "a.txt").read_text() == "two"


def test_a_render_killed_between_the_renames_is_put_back(tmp_path):
    out = tmp_path / "generated"
    write_tree(out, _tree("one"))
    os.rename(out, tmp_path / ".generated.old")  # killed after moving the old tree away, before the new one came
    assert recover(out) == [f"restored {out} from {tmp_path / '.generated.old'}"]
    assert (out / "a.txt").read_text() == "one"


def test_the_temp_tree_is_private_while_it_holds_credentials(tmp_path, monkeypatch):
    out = tmp_path / "generated"
    seen = {}
    real_link = os.link

    def spy(src, dst, *args, **kwargs):  # called while the new tree is being built
        seen["tmp"] = stat.S_IMODE(next(tmp_path.glob(".generated.new-*")).stat().st_mode)
        return real_link(src, dst, *args, **kwargs)

    write_tree(out, _tree("one"))
    monkeypatch.setattr(os, "link", spy)
    write_tree(out, _tree("two"))
    assert seen["tmp"] == 0o700
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_a_failure_mid_write_leaves_the_previous_tree_and_its_git_folder(tmp_path, monkeypatch):
    out = tmp_path / "generated"
    write_tree(out, _tree("one"))
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    before = _snapshot(out)

    real_rename = os.rename

    def broken_rename(src, dst):  # the last step, the new tree into place, fails
        if Path(src).name.startswith(".generated.new-") and Path(dst) == out:
            raise OSError(28, "No space left on device", str(dst))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(UserError, match="No space left on device"):
        write_tree(out, _tree("two"))
    monkeypatch.undo()
    assert _snapshot(out) == before
    assert not list(tmp_path.glob(".generated.new-*"))


def test_sigkill_during_the_write_then_render_again(tmp_path):
    # A real child process is killed with SIGKILL while it builds the new tree (it sleeps inside os.link, so the
    # kill lands mid-write); the next render in this process recovers and writes the whole tree.
    out = tmp_path / "generated"
    write_tree(out, _tree("one"))
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(PROJECT)!r})
        from aiplatform.generated import write
        from aiplatform.generated.files import RenderedFile
        def slow_link(src, dst):
            print("writing", flush=True)
            time.sleep(60)
        os.link = slow_link
        with write.render_lock(write.Path({str(out)!r})):
            write.write_tree(write.Path({str(out)!r}), {{
                "a.txt": RenderedFile(b"killed"),
                "config/credentials.env": RenderedFile(b"K='v'\\n", 0o600),
                "b.txt": RenderedFile(b"new"),
            }})
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert list(tmp_path.glob(".generated.new-*")), "the kill should have left the half-built tree"
    with render_lock(out, wait=5):  # the kernel released the dead process's lock
        write_tree(out, _tree("two"))
    assert not list(tmp_path.glob(".generated.new-*"))
    assert sorted(read_tree(out)) == [".aiplatform.json", "a.txt", "config/credentials.env"]


def test_a_second_render_waits_and_says_who_holds_the_lock(tmp_path):
    out = tmp_path / "generated"
    said: list[str] = []
    release = threading.Event()

    def holder():
        with render_lock(out):
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    time.sleep(0.2)
    with pytest.raises(UserError, match=f"Another render \\(pid {os.getpid()}\\)"), render_lock(out, 0.5, said.append):
        pass
    assert said == [f"waiting for another render (pid {os.getpid()}) to finish writing {out}"]
    threading.Timer(0.3, release.set).start()
    with render_lock(out, wait=5):  # waits until the first one is done, then goes on
        pass
    thread.join()


def test_a_file_where_render_keeps_the_old_tree_is_named_and_the_tree_is_left_as_it_was(tmp_path):
    """While it swaps the new tree in, render moves the old one to .generated.old beside it: a file of that name is
    what is in the way, not generated/ (a folder), and generated/ keeps the last tree."""
    out = tmp_path / "generated"
    write_tree(out, _tree("one"))
    blocker = tmp_path / ".generated.old"
    blocker.write_text("someone's file")
    with pytest.raises(UserError) as refused:
        write_tree(out, _tree("two"))
    assert (refused.value.message, refused.value.fix) == (
        f"Cannot write {out}: {blocker} is in the way (a file where render puts a folder).",
        f"Move {blocker} away, then render again.",
    )
    assert read_tree(out) == _tree("one") and blocker.read_text() == "someone's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".generated.old", "generated"]


def test_an_unwritable_out_is_a_message(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_inv("render", "--no-input", "--root", str(tmp_path / "root"), "--out", str(blocker / "generated"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{blocker} is a file, not a folder" in result.stderr
    # /sys refuses new folders even to root: a real PermissionError
    denied = run_inv("render", "--no-input", "--root", str(tmp_path / "root"), "--out", "/sys/ai-platform-test/out")
    assert denied.returncode == 1 and "Traceback" not in denied.stderr
    assert "/sys/ai-platform-test" in denied.stderr


def test_credentials_readable_by_others_are_fixed_and_said(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    (out / "config/credentials.env").chmod(0o644)
    root_credentials = tmp_path / "root" / "config" / "credentials.env"
    root_credentials.write_text(format_env({"REDIS_PASSWORD": "FromTheRoot123"}))
    root_credentials.chmod(0o640)
    result = render_command(_ctx(tmp_path), out, interactive=False)
    assert stat.S_IMODE((out / "config/credentials.env").stat().st_mode) == 0o600
    assert f"{out / 'config/credentials.env'} was mode 0644 (readable by others): set back to 0600." in result.warnings
    assert any(f"{root_credentials} is mode 0640" in w and "deploy" in w for w in result.warnings)


def test_a_duplicated_key_in_credentials_is_an_error_naming_both_lines(tmp_path):
    out = tmp_path / "generated"
    render_command(_ctx(tmp_path), out, interactive=False)
    root_credentials = tmp_path / "root" / "config" / "credentials.env"
    root_credentials.write_text("REDIS_PASSWORD='one'\nQDRANT_API_KEY='x'\nREDIS_PASSWORD='two'\n")
    with pytest.raises(UserError) as caught:
        render_command(_ctx(tmp_path), out, interactive=False)
    assert "line 3: REDIS_PASSWORD is set again (first on line 1)" in str(caught.value)
    assert "'one'" not in str(caught.value) and "'two'" not in str(caught.value)


def test_hostfs_write_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "config" / "x.env"
    hostfs.write_file(target, b"old", 0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(UserError, match="No space left"):
        hostfs.write_file(target, b"new", 0o600)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.env"]  # no temp file left behind


def test_backup_and_write_keeps_what_it_replaces_with_its_mode(tmp_path):
    root, backups = tmp_path / "root", tmp_path / "backups"
    hostfs.write_file(root / "config/a.env", b"A=1\n", 0o600)
    hostfs.write_file(root / "config/same.env", b"S=1\n", 0o644)
    hostfs.write_file(root / "config/gone.env", b"G=1\n", 0o644)
    backed = hostfs.backup_and_write(
        root,
        {"config/a.env": (b"A=2\n", 0o600), "config/same.env": (b"S=1\n", 0o644), "config/new.env": (b"N=1\n", 0o644)},
        ["config/gone.env"],
        backups,
    )
    assert backed == ["config/a.env", "config/gone.env"]
    assert (backups / "config/a.env").read_bytes() == b"A=1\n"
    assert stat.S_IMODE((backups / "config/a.env").stat().st_mode) == 0o600
    assert (root / "config/a.env").read_bytes() == b"A=2\n" and not (root / "config/gone.env").exists()
    assert (root / "config/new.env").read_bytes() == b"N=1\n"
