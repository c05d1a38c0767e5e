"""The first-run questionnaire: answers saved without secrets, validation, and a real terminal session."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time

import pytest
import yaml

from aiplatform.errors import UserError
from aiplatform.inputs.context import Context
from aiplatform.inputs.questionnaire import ask_and_save
from aiplatform.manage.settings import ASKED_SECRETS

from .conftest import PROJECT, fake_nvml


class ScriptedAsker:
    """Answers questions from a list, in order, and records the prompts."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.prompts: list[str] = []

    def _next(self, prompt):
        self.prompts.append(prompt)
        return self.answers.pop(0)

    def text(self, prompt, default):
        answer = self._next(prompt)
        return default if answer is None else answer

    def secret(self, prompt):
        return self._next(prompt)

    def choice(self, prompt, choices, default):
        answer = self._next(prompt)
        assert answer is None or answer in choices
        return default if answer is None else answer

    def confirm(self, prompt, default):
        answer = self._next(prompt)
        return default if answer is None else answer


def ctx(tmp_path):
    return Context(
        answers=tmp_path / "answers.yaml", flags={"root": str(tmp_path / "root")}, environ={}, nvml=fake_nvml([])
    )


def test_ip_forces_selfsigned_and_secrets_stay_out_of_answers(tmp_path):
    asker = ScriptedAsker(
        None,  # domain: take the default (the host's IP)
        None,  # admin email: default
        "S3cret-Admin-pw",
        "sk-openai-xyz",
        "",  # admin password, OpenAI key, no Anthropic key
        "",  # no Tailscale key
        True,
        False,
        True,  # jupyterhub yes: its privilege accepted with it
        None,
        None,
        None,
        None,  # dify yes, flowise no, milvus, mlflow, n8n: default (no), monitoring: default (yes)
        True,  # proceed
    )
    context = ctx(tmp_path)
    secrets = ask_and_save(context, "192.0.2.7", asker)
    saved = yaml.safe_load((tmp_path / "answers.yaml").read_text())
    assert saved == {
        "domain": "192.0.2.7",
        "ssl_mode": "selfsigned",
        "admin_email": "admin@example.com",
        "services": ["dify", "jupyterhub", "monitoring"],
        "privileged_services": ["jupyterhub"],
    }
    assert "It asks for docker-socket: root on this host." in asker.prompts[8]
    assert not any("TLS" in prompt for prompt in asker.prompts)  # not asked: an IP cannot have another choice
    text = (tmp_path / "answers.yaml").read_text()
    assert "S3cret-Admin-pw" not in text and "sk-openai-xyz" not in text
    assert secrets == {"admin_password": "S3cret-Admin-pw", "openai_api_key": "sk-openai-xyz"}


def test_each_secret_answered_is_returned_under_its_settings_name_and_saved_nowhere(tmp_path, capsys):
    given = {"admin_password": "S3cret-Admin-pw", "openai_api_key": "sk-openai-xyz",
             "anthropic_api_key": "sk-ant-abc", "tailscale_authkey": "tskey-auth-def"}  # fmt: skip
    asker = ScriptedAsker(None, None, *given.values(), *[None] * 7, True)
    assert ask_and_save(ctx(tmp_path), "192.0.2.7", asker) == given
    assert tuple(given) == ASKED_SECRETS  # what `inv settings set` of a secret sends to `render --ask` for
    said = capsys.readouterr().out
    assert f"secrets given: {', '.join(given)}" in said
    text = (tmp_path / "answers.yaml").read_text()
    assert not any(value in text or value in said for value in given.values())


def test_domain_offers_tls_choices_and_invalid_input_is_asked_again(tmp_path, capsys):
    asker = ScriptedAsker(
        "not a domain!",
        "ai.example.org",
        "letsencrypt",
        "bad-email",
        None,
        "",
        "",
        "",
        "",
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
    )
    ask_and_save(ctx(tmp_path), "192.0.2.7", asker)
    saved = yaml.safe_load((tmp_path / "answers.yaml").read_text())
    assert saved["domain"] == "ai.example.org"
    assert saved["ssl_mode"] == "letsencrypt"
    assert saved["admin_email"] == "admin@ai.example.org"  # the default follows the domain
    assert saved["services"] == []
    assert "expected a domain name" in capsys.readouterr().err


def test_an_admin_password_some_app_would_refuse_is_asked_again_with_the_rule(tmp_path, capsys):
    asker = ScriptedAsker(None, None, "password1", "Password1", "Pass-word1", "Pass-word1-ok", "", "", "",
                          *[False] * 7, True)  # fmt: skip
    secrets = ask_and_save(ctx(tmp_path), "192.0.2.7", asker)
    assert secrets["admin_password"] == "Pass-word1-ok"
    errors = capsys.readouterr().err
    assert "an upper-case letter A-Z (n8n, Flowise)" in errors  # password1
    assert "a character that is none of a-z, A-Z, 0-9 (Flowise)" in errors  # Password1
    assert "12 to 64 characters (MLflow at least 12" in errors  # Pass-word1
    assert sum(prompt.startswith("Admin password") for prompt in asker.prompts) == 4


def test_cancel_writes_nothing(tmp_path):
    asker = ScriptedAsker(None, None, "", "", "", "", *[False] * 7, False)
    with pytest.raises(UserError, match="Cancelled"):
        ask_and_save(ctx(tmp_path), "192.0.2.7", asker)
    assert not (tmp_path / "answers.yaml").exists()


def _converse(argv, replies, timeout=180.0):
    """Run argv with a pseudo-terminal as its controlling terminal (as a login shell would), answering each prompt
    (a substring) with its reply in order; return the exit code, the output and the prompts never seen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_PLATFORM_")}
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr and /dev/tty are the terminal
        os.chdir(PROJECT)
        os.execve(argv[0], argv, env)
    output, seen, pending, deadline = "", 0, list(replies), time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096).decode(errors="replace")
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        if pending and pending[0][0] in output[seen:]:
            prompt, reply = pending.pop(0)
            seen = output.index(prompt, seen) + len(prompt)
            time.sleep(0.2)  # let the prompt finish setting up the terminal (getpass turns echo off)
            os.write(fd, (reply + "\r").encode())
    if pending:  # a prompt that never came: the child waits for an answer, do not wait for it
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output, pending


def test_render_asks_at_a_real_terminal(tmp_path):
    answers = tmp_path / "answers.yaml"
    code, output, unanswered = _converse(
        [
            sys.executable,
            "-m",
            "invoke",
            "render",
            "--answers",
            str(answers),
            "--root",
            str(tmp_path / "root"),
            "--out",
            str(tmp_path / "generated"),
        ],
        [
            ("Domain name or IP address", "ai.example.net"),
            ("TLS certificates", "selfsigned"),
            ("Admin email", ""),
            ("Admin password", "Typed-Hidden-99"),
            ("OpenAI API key", ""),
            ("Anthropic API key", ""),
            ("Tailscale auth key", ""),
            ("Enable dify?", "n"),
            ("Enable flowise?", "n"),
            ("Enable jupyterhub?", ""),
            ("Enable milvus?", ""),
            ("Enable mlflow?", ""),
            ("Enable n8n?", "y"),
            ("Enable monitoring?", ""),
            ("Proceed?", "y"),
        ],
    )
    assert unanswered == [], output
    assert code == 0, output
    assert "Typed-Hidden-99" not in output  # typed hidden, never echoed
    saved = yaml.safe_load(answers.read_text())
    assert saved["domain"] == "ai.example.net" and saved["services"] == ["n8n", "monitoring"]
    credentials = (tmp_path / "generated/config/credentials.env").read_text()
    assert "ADMIN_PASSWORD=Typed-Hidden-99" in credentials
    assert "Typed-Hidden-99" not in answers.read_text()


def test_ctrl_d_at_a_real_terminal_cancels_cleanly(tmp_path):
    answers = tmp_path / "answers.yaml"
    code, output, unanswered = _converse(
        [sys.executable, "-m", "invoke", "render", "--answers", str(answers), "--out", str(tmp_path / "generated")],
        [("Domain name or IP address", "\x04")],
    )
    assert unanswered == [] and code == 1, output
    assert "input ended (Ctrl-D)" in output and "Traceback" not in output
    assert not answers.exists() and not (tmp_path / "generated").exists()
