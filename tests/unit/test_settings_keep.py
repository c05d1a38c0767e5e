"""Settings kept and read back: `inv settings get / set / unset` (answers.yaml edited in place, comments kept,
nothing written on a bad key or value, secrets refused), `inv render --ask` (the questionnaire again, the current
answers as defaults), `--set` said to be one-shot, and the warning for letsencrypt on a name only a LAN knows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from aiplatform.inputs.answers import with_values
from aiplatform.inputs.context import Context
from aiplatform.inputs.questionnaire import ask_and_save
from aiplatform.inputs.settings import internal_domain
from aiplatform.paths import PROFILES_DIR

from .conftest import fake_nvml, run_inv
from .test_questionnaire import ScriptedAsker, _converse

OWNER_FILE = """\
# My platform's answers (hand-written)

domain: ai.example.com   # the public name
# TLS: Caddy's own CA until DNS is ready
ssl_mode: selfsigned

services: [n8n]  # the apps I use
models:
  - llama3.2:3b
  - nomic-embed-text
# keep the embedding model in the list above
admin_name: Boss
"""


def inv_settings(tmp_path, answers: Path, *words: str, env: dict | None = None):
    return run_inv("settings", "--answers", str(answers), "--out", str(tmp_path / "generated"), *words, env=env)


# --- set ----------------------------------------------------------------------------------------------------------


def test_set_changes_only_the_lines_of_its_keys(tmp_path, answers):
    path = answers(OWNER_FILE)
    result = inv_settings(
        tmp_path, path, "set", "domain=ai.example.org", "services=dify,n8n", "ollama_num_parallel=4", "litellm_cache=on"
    )
    assert result.returncode == 0, result.stderr
    assert path.read_text() == OWNER_FILE.replace(
        "domain: ai.example.com   # the public name", "domain: ai.example.org   # the public name"
    ).replace("services: [n8n]  # the apps I use", "services: [dify, n8n] # the apps I use") + (
        "ollama_num_parallel: 4\nlitellm_cache: true\n"  # new keys at the end, typed as YAML's own
    )
    said = result.stdout + result.stderr
    assert "domain = ai.example.org" in said and "(was ai.example.com)" in said
    assert "inv render" in said and "inv diff" in said and "deploy" in said  # what applies it


def test_set_then_settings_shows_it_from_answers(tmp_path, answers):
    path = answers(OWNER_FILE)
    assert inv_settings(tmp_path, path, "set", "admin_email=me@example.org").returncode == 0
    data = json.loads(inv_settings(tmp_path, path, "--json").stdout)["settings"]
    assert data["admin_email"] == {"value": "me@example.org", "source": "answers"}


def test_set_creates_the_answers_file(tmp_path):
    path = tmp_path / "answers.yaml"
    result = inv_settings(tmp_path, path, "set", "ssl_mode=none")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(path.read_text()) == {"ssl_mode": "none"}
    assert path.read_text().startswith("# ")  # says what the file is


def test_set_the_same_value_changes_nothing(tmp_path, answers):
    path = answers(OWNER_FILE)
    before = path.stat().st_mtime_ns
    result = inv_settings(tmp_path, path, "set", "ssl_mode=selfsigned")
    assert result.returncode == 0 and "already" in result.stdout
    assert path.stat().st_mtime_ns == before and path.read_text() == OWNER_FILE


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["ssl_mode=bogus"], ["ssl_mode", "'letsencrypt', 'selfsigned' or 'none'", "got 'bogus'"]),
        (["domian=ai.example.org"], ["unknown key 'domian'", "Did you mean domain?"]),
        (["ollama_port=99999"], ["ollama_port", "less than or equal to 65535"]),
        (["domain=ai.example.org", "services=nope"], ["unknown service 'nope'", "Optional services:"]),
        (["ssl_mode=letsencrypt", "domain=192.0.2.7"], ["letsencrypt", "needs a domain name"]),
        (["embedding_model=other"], ["embedding_model 'other' is not one of the models"]),
        (["domain"], ["expected KEY=VALUE"]),
        ([], ["needs KEY=VALUE"]),
    ],
    ids=["choice", "unknown-key", "range", "catalog", "combination", "cross-key", "no-equals", "nothing"],
)
def test_a_bad_key_or_value_leaves_answers_untouched(tmp_path, answers, words, expected):
    path = answers(OWNER_FILE)
    before = path.stat().st_mtime_ns
    result = inv_settings(tmp_path, path, "set", *words)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert path.read_text() == OWNER_FILE and path.stat().st_mtime_ns == before


def test_a_bad_value_is_refused_even_when_a_variable_hides_it(tmp_path, answers):
    """AI_PLATFORM_SSL_MODE overrides the key, so the merged settings would never see the bad value: it is checked
    alone too, before it could sit in answers.yaml and break the first render without the variable."""
    path = answers(OWNER_FILE)
    result = inv_settings(tmp_path, path, "set", "ssl_mode=bogus", env={"AI_PLATFORM_SSL_MODE": "none"})
    assert result.returncode == 1 and "got 'bogus'" in result.stderr
    assert path.read_text() == OWNER_FILE


def test_a_value_a_variable_overrides_is_kept_with_a_warning(tmp_path, answers):
    path = answers(OWNER_FILE)
    result = inv_settings(tmp_path, path, "set", "ssl_mode=none", env={"AI_PLATFORM_SSL_MODE": "selfsigned"})
    assert result.returncode == 0, result.stderr
    assert "AI_PLATFORM_SSL_MODE overrides ssl_mode" in result.stderr
    assert yaml.safe_load(path.read_text())["ssl_mode"] == "none"


def test_a_secret_is_refused_with_the_command_that_keeps_it(tmp_path, answers):
    path = answers(OWNER_FILE)
    result = inv_settings(tmp_path, path, "set", "admin_password=Very-Secret-Pass-99")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "secret" in result.stderr and "credentials.env" in result.stderr
    assert "render --ask" in result.stderr and "AI_PLATFORM_ADMIN_PASSWORD" in result.stderr
    assert "Very-Secret-Pass-99" not in result.stdout + result.stderr
    assert path.read_text() == OWNER_FILE


def test_set_a_list_of_maps_as_yaml_flow(tmp_path, answers):
    path = answers(OWNER_FILE)
    result = inv_settings(tmp_path, path, "set", "ollama_nodes=[{address: gpu2.example.org, weight: 2}]")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(path.read_text())["ollama_nodes"] == [{"address": "gpu2.example.org", "weight": 2}]


# --- unset --------------------------------------------------------------------------------------------------------


def test_unset_takes_out_the_key_and_keeps_the_comments_around_it(tmp_path, answers):
    path = answers(OWNER_FILE)
    result = inv_settings(tmp_path, path, "unset", "models", "domain")
    assert result.returncode == 0, result.stderr
    assert path.read_text() == OWNER_FILE.replace("domain: ai.example.com   # the public name\n", "").replace(
        "models:\n  - llama3.2:3b\n  - nomic-embed-text\n", ""
    )
    again = inv_settings(tmp_path, path, "unset", "domain")
    assert again.returncode == 0 and "nothing to change" in again.stdout


def test_unset_refuses_what_would_break_the_rest(tmp_path, answers):
    text = "domain: ai.example.com\nssl_mode: letsencrypt\n"
    path = answers(text)
    result = inv_settings(tmp_path, path, "unset", "domain")
    assert result.returncode == 1 and "needs a domain name" in result.stderr
    assert path.read_text() == text


# --- get ----------------------------------------------------------------------------------------------------------


def test_get_prints_the_value_and_where_it_comes_from(tmp_path, answers):
    path = answers(OWNER_FILE)
    result = inv_settings(tmp_path, path, "get", "domain")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ai.example.com\n"  # alone on stdout: $(inv settings get domain)
    assert f"domain: answers ({path} line 3)" in result.stderr
    result = inv_settings(tmp_path, path, "get", "ssl_mode", "admin_email", env={"AI_PLATFORM_SSL_MODE": "none"})
    assert result.stdout == "none\nadmin@example.com\n"
    assert "ssl_mode: env (AI_PLATFORM_SSL_MODE)" in result.stderr
    assert "admin_email: default (built-in default)" in result.stderr


def test_get_json_and_secrets_masked(tmp_path, answers):
    path = answers(OWNER_FILE)
    result = inv_settings(
        tmp_path, path, "get", "services", "openai_api_key", "--json", env={"AI_PLATFORM_OPENAI_API_KEY": "sk-hidden-1"}
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["services"] == {"value": ["n8n"], "source": "answers", "where": f"{path} line 7"}
    assert data["openai_api_key"] == {"value": "****", "source": "env", "where": "AI_PLATFORM_OPENAI_API_KEY"}
    assert "sk-hidden-1" not in result.stdout + result.stderr
    env = {"AI_PLATFORM_PROFILE": "standard"}
    from_profile = inv_settings(tmp_path, path, "get", "ollama_num_parallel", "--json", env=env)
    assert from_profile.returncode == 0, from_profile.stderr
    assert json.loads(from_profile.stdout)["ollama_num_parallel"] == {  # the profile file that holds it
        "value": 2, "source": "profile", "where": str(PROFILES_DIR / "standard.yaml")}  # fmt: skip


def test_get_an_unknown_key_or_action(tmp_path, answers):
    path = answers(OWNER_FILE)
    result = inv_settings(tmp_path, path, "get", "domian")
    assert result.returncode == 1 and "Did you mean domain?" in result.stderr and "Traceback" not in result.stderr
    result = inv_settings(tmp_path, path, "domain")
    assert result.returncode == 1 and "settings get domain" in result.stderr


# --- with_values: the splice itself -------------------------------------------------------------------------------


def test_with_values_quotes_what_yaml_1_1_would_read_otherwise():
    text = with_values("domain: a.example.com\n", Path("answers.yaml"), {"admin_name": "yes", "models": ["on"]})
    assert yaml.safe_load(text) == {"domain": "a.example.com", "admin_name": "yes", "models": ["on"]}


def test_with_values_keeps_a_flow_mapping_file_readable():
    text = with_values("{domain: a.example.com}\n", Path("answers.yaml"), {"ssl_mode": "none"})
    assert yaml.safe_load(text) == {"domain": "a.example.com", "ssl_mode": "none"}


# --- render: --set is one-shot, --ask asks again --------------------------------------------------------------


def test_render_says_set_is_not_kept(tmp_path, answers):
    path = answers("services: []\n")
    args = ["render", "--no-input", "--answers", str(path), "--out", str(tmp_path / "g"), "--root", str(tmp_path / "r")]
    result = run_inv(*args, "--set", "admin_name=Boss")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("not kept") == 1 and "--set admin_name" in result.stderr
    assert "settings set" in result.stderr
    assert "not kept" not in run_inv(*args).stderr


def test_set_help_says_it_is_not_kept():
    result = run_inv("--help", "render")
    assert "not kept" in " ".join(result.stdout.split()) and "settings set" in result.stdout


def test_render_ask_needs_a_terminal(tmp_path, answers):
    path = answers(OWNER_FILE)
    result = run_inv("render", "--ask", "--answers", str(path), "--out", str(tmp_path / "g"))
    assert result.returncode == 1 and "terminal" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "g").exists()


class DefaultsAsker(ScriptedAsker):
    """A ScriptedAsker that records the default each question offered."""

    def __init__(self, *answers):
        super().__init__(*answers)
        self.defaults: list[object] = []

    def text(self, prompt, default):
        self.defaults.append(default)
        return super().text(prompt, default)

    def choice(self, prompt, choices, default):
        self.defaults.append(default)
        return super().choice(prompt, choices, default)

    def confirm(self, prompt, default):
        self.defaults.append(default)
        return super().confirm(prompt, default)


def context(path: Path, tmp_path: Path) -> Context:
    return Context(answers=path, flags={"root": str(tmp_path / "root")}, environ={}, nvml=fake_nvml([]))


def test_asked_again_the_current_answers_are_the_defaults(tmp_path, answers):
    path = answers(OWNER_FILE.replace("services: [n8n]", "services: [dify, n8n]"))
    asker = DefaultsAsker(None, None, None, "", "", "", "", *[None] * 7, True)
    secrets = ask_and_save(context(path, tmp_path), "192.0.2.7", asker)
    assert asker.defaults[:3] == ["ai.example.com", "selfsigned", "admin@example.com"]
    services = [
        default for prompt, default in zip(asker.prompts[7:], asker.defaults[3:], strict=True) if "Enable" in prompt
    ]
    assert services == [True, False, False, False, False, True, False]  # dify, ... n8n on; monitoring was off
    assert "Admin password for every app (empty: keep the current one)" in asker.prompts
    assert secrets == {}  # every secret left empty: the current ones stay
    # every default taken: the file is as it was, byte for byte
    assert path.read_text() == OWNER_FILE.replace("services: [n8n]", "services: [dify, n8n]")


def test_asked_again_only_the_answered_keys_change(tmp_path, answers):
    path = answers(OWNER_FILE)
    asker = DefaultsAsker("ai.example.org", "none", None, "", "", "", "", *[None] * 6, True, True)
    ask_and_save(context(path, tmp_path), "192.0.2.7", asker)
    text = path.read_text()
    assert "domain: ai.example.org   # the public name\n" in text and "ssl_mode: none\n" in text
    assert "services: [n8n, monitoring] # the apps I use" in text
    for line in OWNER_FILE.splitlines():
        if not line.startswith(("domain:", "ssl_mode:", "services:")):
            assert line in text.splitlines(), line


def test_render_ask_at_a_real_terminal_offers_the_old_answers(tmp_path, answers):
    path = answers(OWNER_FILE)
    code, output, unanswered = _converse(
        [
            sys.executable,
            "-m",
            "invoke",
            "render",
            "--ask",
            "--answers",
            str(path),
            "--root",
            str(tmp_path / "root"),
            "--out",
            str(tmp_path / "generated"),
        ],
        [
            ("Domain name or IP address", ""),
            ("TLS certificates", ""),
            ("Admin email", ""),
            ("Admin password", ""),
            ("OpenAI API key", ""),
            ("Anthropic API key", ""),
            ("Tailscale auth key", ""),
            *[(f"Enable {name}?", "") for name in ("dify", "flowise", "jupyterhub", "milvus", "mlflow", "n8n")],
            ("Enable monitoring?", "y"),
            ("Proceed?", "y"),
        ],
    )
    assert unanswered == [] and code == 0, output
    assert "(ai.example.com)" in output and "(selfsigned)" in output  # rich shows the default in brackets
    assert path.read_text() == OWNER_FILE.replace("[n8n]  #", "[n8n, monitoring] #")
    assert (tmp_path / "generated/config/credentials.env").exists()


# --- letsencrypt on a name only the LAN knows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "internal"),
    [
        ("ai.lan", True),
        ("nas.local", True),
        ("ai.corp.internal", True),
        ("box.home.arpa", True),
        ("gpu-box", True),
        ("192.168.1.10", True),
        ("", True),
        ("ai.example.com", False),
        ("platform.lan-party.org", False),
    ],
)
def test_internal_domain(domain, internal):
    assert (internal_domain(domain) is not None) is internal


def test_questionnaire_warns_of_letsencrypt_for_an_internal_name(tmp_path, capsys):
    asker = DefaultsAsker("ai.lan", "letsencrypt", False, None, "", "", "", "", *[False] * 7, True)
    ask_and_save(context(tmp_path / "answers.yaml", tmp_path), "192.0.2.7", asker)
    err = capsys.readouterr().err
    assert "ai.lan ends in .lan" in err and "ports 80 and 443" in err
    assert asker.defaults[1] == "selfsigned"  # offered first for a LAN name
    assert yaml.safe_load((tmp_path / "answers.yaml").read_text())["ssl_mode"] == "selfsigned"  # not confirmed


def test_questionnaire_keeps_letsencrypt_for_a_public_name_without_warning(tmp_path, capsys):
    asker = DefaultsAsker("ai.example.org", "letsencrypt", None, "", "", "", "", *[False] * 7, True)
    ask_and_save(context(tmp_path / "answers.yaml", tmp_path), "192.0.2.7", asker)
    assert "Let's Encrypt" not in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "answers.yaml").read_text())["ssl_mode"] == "letsencrypt"


def test_render_and_settings_set_warn_of_letsencrypt_for_an_internal_name(tmp_path, answers):
    path = answers("domain: ai.lan\nservices: []\n")
    result = inv_settings(tmp_path, path, "set", "ssl_mode=letsencrypt")
    assert result.returncode == 0, result.stderr
    assert "ai.lan ends in .lan" in result.stderr and "ports 80 and 443" in result.stderr
    rendered = run_inv("render", "--no-input", "--answers", str(path), "--out", str(tmp_path / "g"),
                       "--root", str(tmp_path / "r"))  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    assert "ai.lan ends in .lan" in rendered.stderr
