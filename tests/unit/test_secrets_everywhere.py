"""Every secret setting, taken from the settings schema (each field typed SecretStr), never shows: not in `inv
settings` (the table, --json, `get`), `inv info` without --show-secrets, `inv diff` (old values nor new), error
messages, nor any process's command line (what `ps` shows) in the tasks that run without an engine; and a
credentials.env readable by others is said and set back to 0600.

Command lines are recorded in two places: every process this one starts (subprocess.Popen, real ones: the docker CLI
answers that no engine runs) and every command the runner plans or runs (a dry run's "would run" lines included)."""

from __future__ import annotations

import os
import secrets as random
import stat
import subprocess
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from aiplatform.engine.deploy import apply_files
from aiplatform.envfile import read_env
from aiplatform.generated.diff import maskable
from aiplatform.host.runner import Runner
from aiplatform.inputs.settings import ENV_PREFIX, SECRET_KEYS, Settings

from .conftest import run_inv


def _is_secret(annotation: typing.Any) -> bool:
    return annotation is SecretStr or any(_is_secret(arg) for arg in typing.get_args(annotation))


SCHEMA_SECRETS = sorted(key for key, field in Settings.model_fields.items() if _is_secret(field.annotation))


def _value(key: str) -> str:
    # an admin password every app takes (upper, lower, digit, a dash), distinct per key and per run
    return f"Zq9-{key.replace('_', '')[:10]}-{random.token_hex(6)}"


def _env(values: dict[str, str]) -> dict[str, str]:
    return {f"{ENV_PREFIX}{key.upper()}": value for key, value in values.items()}


ANSWERS = {
    "services": ["monitoring", "mlflow", "n8n"],
    "backup_encrypt": True,  # BACKUP_PASSPHRASE is made and used
    "backup_remote_type": "webdav",  # the remote's secret is a password rclone wants obscured
    "backup_remote_options": {"url": "https://dav.example.com/remote.php"},
}


class Home:
    """An owner's project rendered with every schema secret given, and a root as deploy leaves it."""

    def __init__(self, base: Path, given: dict[str, str]) -> None:
        self.base, self.given = base, given
        self.answers, self.out, self.root = base / "answers.yaml", base / "generated", base / "root"
        self.answers.write_text(yaml.safe_dump(ANSWERS))

    def flags(self, answers: bool = True) -> list[str]:
        where = ["--out", str(self.out), "--root", str(self.root)]
        return ["--answers", str(self.answers), *where] if answers else where

    def render(self, env: dict[str, str] | None = None) -> None:
        result = run_inv("render", "--no-input", *self.flags(), env=env)
        assert result.returncode == 0, result.stderr

    def secrets(self) -> list[str]:
        """Every secret value the platform holds (generated/ and the root), longest first."""
        values = [*read_env(self.out / "config/credentials.env").values(), *self.given.values()]
        if (self.root / "config/credentials.env").is_file():
            values += read_env(self.root / "config/credentials.env").values()
        return maskable(values)


def _make_home(base: Path) -> Home:
    home = Home(base, {key: _value(key) for key in SCHEMA_SECRETS})
    home.render(_env(home.given))
    apply_files(Runner(echo=lambda _: None), home.out, home.root)
    return home


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return _make_home(tmp_path_factory.mktemp("secrets"))


def _leaks(text: str, values: list[str]) -> list[str]:
    return [value for value in values if value in text]


# --- the list of secrets ----------------------------------------------------------------------------------------------


def test_the_masked_list_is_every_secret_field_of_the_schema(home):
    assert SCHEMA_SECRETS, "the schema has secret fields"
    assert set(SECRET_KEYS) == set(SCHEMA_SECRETS)
    stored = read_env(home.out / "config/credentials.env")
    for key, value in home.given.items():  # each reached credentials.env, so each is among the values checked below
        assert stored[key.upper()] == value, key
    assert stat.S_IMODE((home.out / "config/credentials.env").stat().st_mode) == 0o600
    for path in home.out.rglob("*"):  # and no other generated file holds one
        if path.is_file() and path.name != "credentials.env":
            assert not _leaks(path.read_text(errors="replace"), list(home.given.values())), path


# --- inv settings ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", [True, False], ids=["from the environment", "kept in credentials.env"])
def test_settings_shows_every_secret_only_as_stars(home, given):
    env = _env(home.given) if given else None
    table = run_inv("settings", *home.flags(), env=env)
    listed = run_inv("settings", "--json", *home.flags(), env=env)
    got = run_inv("settings", "get", *SCHEMA_SECRETS, *home.flags(), env=env)
    got_json = run_inv("settings", "get", *SCHEMA_SECRETS, "--json", *home.flags(), env=env)
    for result in (table, listed, got, got_json):
        assert result.returncode == 0, result.stderr
        assert not _leaks(result.stdout + result.stderr, home.secrets()), result.args
    assert got.stdout.split() == ["****"] * len(SCHEMA_SECRETS)
    rows = yaml.safe_load(listed.stdout)["settings"]
    for key in SCHEMA_SECRETS:
        assert rows[key]["value"] == "****", key
        assert yaml.safe_load(got_json.stdout)[key]["value"] == "****", key


def test_settings_set_refuses_a_secret_without_repeating_it(home):
    for key in SCHEMA_SECRETS:
        before = home.answers.read_bytes()
        result = run_inv("settings", "set", f"{key}={home.given[key]}", *home.flags())
        assert result.returncode == 1 and "is a secret" in result.stderr, (key, result.stderr)
        assert not _leaks(result.stdout + result.stderr, home.secrets()), key
        assert home.answers.read_bytes() == before


# --- inv info --------------------------------------------------------------------------------------------------------


def test_info_without_show_secrets_shows_none(home):
    for args in ([], ["--json"]):
        result = run_inv("info", *args, *home.flags(answers=False))
        assert result.returncode == 0, result.stderr
        assert not _leaks(result.stdout + result.stderr, home.secrets()), args
    shown = run_inv("info", "--show-secrets", *home.flags(answers=False))  # the same check sees one when it shows
    assert home.given["admin_password"] in shown.stdout


# --- inv diff --------------------------------------------------------------------------------------------------------


def test_diff_masks_old_and_new_values_of_every_secret(tmp_path):
    home = _make_home(tmp_path)
    old = home.secrets()
    new = {key: _value(key) for key in SCHEMA_SECRETS}
    master = home.root / "config/master.env"  # an old value that turns up in another file is masked there too
    master.write_text(master.read_text() + f"# note {home.given['admin_password']}\n")
    home.given = {**home.given, **new}
    home.render(_env(new))
    result = run_inv("diff", *home.flags(answers=False))
    assert result.returncode == 0, result.stderr
    assert not _leaks(result.stdout + result.stderr, [*old, *maskable(new.values())])
    for key in SCHEMA_SECRETS:
        assert f"{key.upper()}=**** (changed)" in result.stdout, key
    assert "# note ****" in result.stdout


# --- error messages --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", SCHEMA_SECRETS)
def test_a_bad_secret_value_is_named_never_shown(home, key):
    bad = home.given[key] + "\x01" + home.given[key][::-1]  # a control character: refused for every key
    for how, extra in (("env", {}), ("flag", {"set": f"{key}={bad}"})):
        env = _env({key: bad}) if how == "env" else None
        args = ["render", "--no-input", *home.flags(), *(["--set", extra["set"]] if extra else [])]
        result = run_inv(*args, env=env)
        assert result.returncode == 1, (key, how, result.stdout)
        assert key in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert home.given[key] not in result.stdout + result.stderr, (key, how, result.stderr)
        assert home.given[key][::-1] not in result.stdout + result.stderr, (key, how)


def test_an_admin_password_the_apps_refuse_is_named_never_shown(home):
    weak = "weakpassword-" + random.token_hex(4)  # no upper-case letter
    result = run_inv("render", "--no-input", *home.flags(), env=_env({"admin_password": weak}))
    assert result.returncode == 1 and "admin_password" in result.stderr and "upper-case" in result.stderr
    assert weak not in result.stdout + result.stderr


# --- command lines ---------------------------------------------------------------------------------------------------


class Recorder:
    """Every command line of this process's children and of the runner (planned in a dry run, or run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.argv: list[list[str]] = []
        popen_init = subprocess.Popen.__init__

        def record_popen(proc, args, *rest, **kwargs):
            self.argv.append([args] if isinstance(args, (str, bytes)) else [str(a) for a in args])
            return popen_init(proc, args, *rest, **kwargs)

        monkeypatch.setattr(subprocess.Popen, "__init__", record_popen)
        for name in ("run", "stream", "start", "attach"):
            real = getattr(Runner, name)

            def record(runner, argv, *args, _real=real, **kwargs):
                self.argv.append([str(a) for a in argv])
                return _real(runner, argv, *args, **kwargs)

            monkeypatch.setattr(Runner, name, record)

    def leaks(self, values: list[str]) -> list[list[str]]:
        return [argv for argv in self.argv if _leaks(" ".join(argv), values)]


def standin_commands(calls: list[list[str]]):
    """A stand-in for subprocess.run where a backup needs an engine: every command succeeds; Postgres lists no
    database of its own, Qdrant no collection, rclone obscures; a command writing into a file writes a few bytes."""

    def run(args, input=None, stdout=None, **kwargs):  # noqa: A002 - subprocess.run's own name
        args = [str(a) for a in args]
        calls.append(args)
        text = kwargs.get("text") or kwargs.get("universal_newlines")
        if Path(args[0]).name == "docker" and args[1:3] == ["system", "info"]:  # the engine's own API: not here
            return subprocess.CompletedProcess(args, 1, "" if text else b"", "no engine" if text else b"no engine")
        answer = ""
        if args[:2] == ["rclone", "obscure"]:
            answer = "obscured-by-rclone\n"
        elif "ai-platform-qdrant" in args:
            answer = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"result": {"collections": []}}'
        elif "server_version_num" in args:
            answer = "160004\n"
        if isinstance(stdout, int) and stdout > 2:  # Runner.stream into a file
            os.write(stdout, b"-- stand-in output\n")
            return subprocess.CompletedProcess(args, 0, None, b"")
        return subprocess.CompletedProcess(args, 0, answer if text else answer.encode(), "" if text else b"")

    return run


def test_no_task_puts_a_secret_on_a_command_line(tmp_path, monkeypatch):
    from .conftest import PROJECT

    home = _make_home(tmp_path)
    recorder = Recorder(monkeypatch)
    bin_dir = tmp_path / "bin"  # `tailscale` is a stand-in CLI (tests/standins/tailscale_cli.py): configure joins
    bin_dir.mkdir()
    (bin_dir / "tailscale").symlink_to(PROJECT / "tests/standins/tailscale_cli.py")
    path = f"{bin_dir}:{os.environ['PATH']}"
    state = {"PATH": path, "TAILSCALE_STANDIN_STATE": str(tmp_path / "tailscale.json")}
    runs = [
        ["render", "--no-input", *home.flags()],
        ["settings", *home.flags()],
        ["diff", *home.flags(answers=False)],
        ["info", *home.flags(answers=False)],
        ["deploy", "--dry-run", *home.flags(answers=False)],
        ["add", "flowise", "--dry-run", *home.flags()],
        ["remove", "n8n", "--purge", "--dry-run", *home.flags()],
        ["configure", "--dry-run", *home.flags(answers=False)],
        ["configure", "--only", "tailscale", *home.flags(answers=False)],  # joins the tailnet: the stand-in CLI
        ["status", *home.flags(answers=False)],
        ["doctor", *home.flags(answers=False)],
        ["upgrade", "--check", *home.flags()],
        ["cleanup", "--dry-run", "--purge", "--root", str(home.root)],
    ]
    for args in runs:
        result = run_inv(*args, env={**_env(home.given), **state})
        assert "Traceback" not in result.stderr, result.stderr
        assert not _leaks(result.stdout + result.stderr, home.secrets()), (args, result.stdout, result.stderr)
    assert any(argv[:2] == ["tailscale", "up"] for argv in recorder.argv), "configure joined the tailnet"
    ran = len(recorder.argv)
    assert ran > len(runs)
    # a backup with the settings' remote (encrypted, copied off with rclone) on a stand-in engine and rclone
    commands: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", standin_commands(commands))
    result = run_inv("backup", "--root", str(home.root), env=_env(home.given))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not _leaks(result.stdout + result.stderr, home.secrets())
    assert [c[:2] for c in commands if c[0] == "rclone"] == [["rclone", "obscure"], ["rclone", "copy"],
                                                            ["rclone", "check"], ["rclone", "lsf"]]  # fmt: skip
    assert any(c[:3] == ["gpg", "--batch", "--yes"] for c in commands)
    assert any("pg_dumpall" in c for c in commands)
    assert len(recorder.argv) > ran
    assert recorder.leaks(home.secrets()) == [], recorder.leaks(home.secrets())


def test_the_off_box_copy_gives_rclone_its_secret_outside_the_command_line(home, monkeypatch):
    """The settings' remote through a stand-in for rclone (it records and succeeds): the password reaches `rclone
    obscure` on stdin and the copy through the environment, never through argv."""
    from aiplatform.backup import remote

    calls: list[tuple[list[str], str | None, dict[str, str]]] = []

    def standin_rclone(args, input=None, env=None, **kwargs):  # noqa: A002 - subprocess.run's own name
        calls.append((list(args), input, dict(env or {})))
        out = "obscured-by-rclone\n" if args[:2] == ["rclone", "obscure"] else ""
        return subprocess.CompletedProcess(args, 0, out, "")

    monkeypatch.setattr(subprocess, "run", standin_rclone)
    runner = Runner(echo=lambda _: None)
    off_box = remote.from_root(home.root, runner)
    assert off_box is not None
    backup = home.base / "b-20260101"
    backup.mkdir(exist_ok=True)
    remote.copy_off(backup, off_box, runner)
    secret = home.given["backup_remote_secret"]
    assert calls[0][0] == ["rclone", "obscure", "-"] and calls[0][1] == secret
    assert [c[0][1] for c in calls[1:3]] == ["copy", "check"]
    assert all(c[2].get("RCLONE_CONFIG_AIPLATFORM_PASS") == "obscured-by-rclone" for c in calls[1:])
    assert not [c[0] for c in calls if _leaks(" ".join(c[0]), home.secrets())]


# --- credentials.env's mode ------------------------------------------------------------------------------------------


def test_a_credentials_file_whose_mode_alone_changed_is_said_and_set_back(tmp_path):
    home = _make_home(tmp_path)
    root_file, out_file = home.root / "config/credentials.env", home.out / "config/credentials.env"
    before = root_file.read_bytes()
    root_file.chmod(0o644)
    diff = run_inv("diff", "--exit-code", *home.flags(answers=False))
    assert diff.returncode == 1, diff.stdout  # the bytes are the same: the mode alone is a change
    assert "config/credentials.env" in diff.stdout and "0644 → 0600" in diff.stdout
    out_file.chmod(0o640)
    render = run_inv("render", "--no-input", *home.flags(), env=_env(home.given))
    assert render.returncode == 0, render.stderr
    assert f"{out_file} was mode 0640" in render.stderr and "set back to 0600" in render.stderr
    assert f"{root_file} is mode 0644" in " ".join(render.stderr.split())
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    apply_files(Runner(echo=lambda _: None), home.out, home.root)  # what deploy copies
    assert stat.S_IMODE(root_file.stat().st_mode) == 0o600 and root_file.read_bytes() == before
    assert run_inv("diff", "--exit-code", *home.flags(answers=False)).returncode == 0


def test_configure_storing_a_secret_sets_a_loose_credentials_file_back_to_0600(tmp_path):
    """configure keeps n8n's API key beside the rendered secrets; a credentials.env made 0644 meanwhile goes back
    to 0600, and the other keys stay."""
    from types import SimpleNamespace

    from aiplatform.configure.secrets import store_secret
    from aiplatform.configure.steps import StepContext

    path = tmp_path / "config/credentials.env"
    path.parent.mkdir()
    path.write_text("REDIS_PASSWORD=Kept123456\n")
    path.chmod(0o644)
    facts = SimpleNamespace(root=tmp_path, secrets={})  # a stand-in for configure's Facts: the two fields it reads
    store_secret(StepContext(facts, Runner(echo=lambda _: None)), "N8N_API_KEY", "n8n-key-123456")  # type: ignore[arg-type]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_env(path) == {"N8N_API_KEY": "n8n-key-123456", "REDIS_PASSWORD": "Kept123456"}


def test_a_failed_step_quoting_an_answer_that_echoes_the_request_shows_no_secret():
    """FastAPI's 422 repeats the request body: the real Open WebUI answered a sign-up without `name` with the admin's
    password in it, and configure quoted the answer."""
    import json
    from types import SimpleNamespace

    import httpx

    from aiplatform.configure.http import Api
    from aiplatform.configure.steps import StepContext, run_steps

    password, key = "Adm1n-" + random.token_hex(8), "sk-" + random.token_hex(16)
    body = {"email": "admin@example.com", "password": password}
    echoed = {"detail": [{"type": "missing", "loc": ["body", "name"], "msg": "Field required", "input": body}]}
    api = Api("Open WebUI", "open-webui", "http://127.0.0.1:9")

    def sign_up(ctx):
        answer = httpx.Response(422, text=json.dumps(echoed), request=httpx.Request("POST", "/api/v1/auths/signup"))
        raise api.unexpected(answer, f"Check the key {key} and the password {password}.")

    facts = SimpleNamespace(secrets={"ADMIN_PASSWORD": password, "LITELLM_KEY_OPEN_WEBUI": key, "EMPTY": ""})
    [result] = run_steps("open-webui", [("admin account", sign_up)], StepContext(facts, Runner()), lambda r: None)
    assert result.result == "FAILED" and "Field required" in result.detail and "admin@example.com" in result.detail
    assert password not in result.detail + result.fix and key not in result.fix and "********" in result.detail
