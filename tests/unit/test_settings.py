"""Settings: one merge with a source per value, and a clear message for every kind of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aiplatform.errors import UserError
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.settings import resolve_settings
from aiplatform.paths import PROFILES_DIR, SERVICES_DIR

from .conftest import run_inv

CATALOG = load_catalog(SERVICES_DIR)
EMPTY = Path(__file__).parent / "empty-answers.yaml"  # an answers file with nothing in it


def resolve(answers=None, environ=None, flags=None, profiles_dir=PROFILES_DIR, tier="minimal"):
    return resolve_settings(
        answers=answers,
        environ=environ or {},
        flags=flags or {},
        catalog=CATALOG,
        detect_tier=lambda root: tier,
        profiles_dir=profiles_dir,
    )


@pytest.fixture
def profiles(tmp_path):
    target = tmp_path / "profiles"
    shutil.copytree(PROFILES_DIR, target)
    return target


LAYERS = ["default", "profile", "answers", "env", "flag"]


@pytest.mark.parametrize("highest", LAYERS)
def test_precedence_highest_layer_wins(tmp_path, profiles, highest):
    # ollama_keep_alive can be set by every layer; set it in each layer up to `highest`, the highest must win.
    key, values = (
        "ollama_keep_alive",
        {"default": "5m", "profile": "11m", "answers": "22m", "env": "33m", "flag": "44m"},
    )
    upto = LAYERS[: LAYERS.index(highest) + 1]
    minimal = profiles / "minimal.yaml"
    text = minimal.read_text().replace("  ollama_keep_alive: 5m\n", "")
    if "profile" in upto:
        text = text.replace("settings:\n", f"settings:\n  {key}: {values['profile']}\n")
    minimal.write_text(text)
    answers = tmp_path / "answers.yaml"
    answers.write_text(f"{key}: {values['answers']}\n" if "answers" in upto else "domain: ai.example.com\n")
    environ = {"AI_PLATFORM_OLLAMA_KEEP_ALIVE": values["env"]} if "env" in upto else {}
    flags = {key: values["flag"]} if "flag" in upto else {}
    resolved = resolve(answers, environ, flags, profiles)
    assert resolved.settings.ollama_keep_alive == values[highest]
    assert resolved.sources[key] == highest


def test_inv_settings_names_the_source_of_each_value(tmp_path, answers):
    path = answers("domain: ai.example.com\nservices: [n8n]\n")
    result = run_inv(
        "settings",
        "--json",
        "--answers",
        str(path),
        "--set",
        "admin_name=Boss",
        env={"AI_PLATFORM_SSL_MODE": "none", "AI_PLATFORM_OPENAI_API_KEY": "sk-test-not-shown"},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["settings"]
    assert data["domain"] == {"value": "ai.example.com", "source": "answers"}
    assert data["services"] == {"value": ["n8n"], "source": "answers"}
    assert data["ssl_mode"] == {"value": "none", "source": "env"}
    assert data["admin_name"] == {"value": "Boss", "source": "flag"}
    assert data["models"]["source"] == "profile"
    assert data["admin_email"]["source"] == "default"
    assert data["openai_api_key"] == {"value": "****", "source": "env"}
    assert "sk-test-not-shown" not in result.stdout + result.stderr


def test_env_lists_and_maps(tmp_path):
    resolved = resolve(
        environ={"AI_PLATFORM_SERVICES": "dify, n8n", "AI_PLATFORM_IMAGES": "litellm=mirror/litellm:1.2"}
    )
    assert resolved.settings.services == ["dify", "n8n"]
    assert resolved.settings.images == {"litellm": "mirror/litellm:1.2"}


def test_profile_flag_picks_the_profile_layer():
    resolved = resolve(flags={"profile": "performance"})
    assert resolved.tier == "performance"
    assert "codellama:13b" in resolved.settings.models
    assert resolved.detected_tier is None


# --- bad input: each case through the real command, exit 1, a message naming file/line/key, no traceback ----------

BAD_ANSWERS = [
    ("domain: [unclosed\n", ["line 2", "YAML syntax error"]),
    ("domian: ai.example.com\n", ["line 1", "unknown key 'domian'", "Did you mean domain", "Known keys:"]),
    ("ollama_port: eleven\n", ["line 1", "'ollama_port'", "valid integer", "'eleven'"]),
    ("services: dify\n", ["line 1", "'services'", "valid list"]),
    ("admin_email: not-an-email\n", ["line 1", "'admin_email'", "email"]),
    ("ssl_mode: letsencript\n", ["line 1", "'ssl_mode'", "'letsencrypt'", "'selfsigned'", "'none'"]),
    ("domain: exa mple.com\n", ["line 1", "'domain'", "expected a domain name"]),
    ("services: [dify, wordpress]\n", ["line 1", "unknown service 'wordpress'", "Optional services: dify"]),
    ("services: [litellm]\n", ["core service, always on"]),
    ("profile: ultra\n", ["line 1", "profile 'ultra' is not a tier", "auto, minimal, standard, performance"]),
    ("images: {nginx: nginx:1.27}\n", ["line 1", "'nginx'", "Containers:"]),
    ("openai_api_key: sk-abc\n", ["line 1", "secret", "AI_PLATFORM_OPENAI_API_KEY"]),
    ("- just\n- a list\n", ["expected a mapping"]),
    ("domain: 192.0.2.5\nssl_mode: letsencrypt\n", ["line 2", "needs a domain name"]),
    ("ollama_bind: 127.0.0.1\n", ["line 1", "loopback", "0.0.0.0"]),
    ("images: {litellm: ''}\n", ["line 1", "images.litellm", "not an image reference"]),
    ("images: {litellm: 'ghcr.io/berriai/litellm:latest'}\n", ["line 1", "images.litellm", "pinned"]),
]


@pytest.mark.parametrize(("text", "expected"), BAD_ANSWERS, ids=[t.split(":")[0][:20] for t, _ in BAD_ANSWERS])
def test_bad_answers_give_one_clear_message(answers, text, expected):
    path = answers("# answers\n" + text if "unclosed" in text else text)
    result = run_inv("settings", "--answers", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, result.stderr
    assert "sk-abc" not in result.stderr


def test_bad_environment_variable_is_named():
    result = run_inv("settings", "--answers", str(EMPTY), env={"AI_PLATFORM_SSL_MODE": "maybe"})
    assert result.returncode == 1
    assert "environment variable AI_PLATFORM_SSL_MODE" in result.stderr
    assert "unset AI_PLATFORM_SSL_MODE" in result.stderr


def test_unknown_environment_key_is_named():
    result = run_inv("settings", "--answers", str(EMPTY), env={"AI_PLATFORM_DOMIAN": "x.org"})
    assert result.returncode == 1
    assert "AI_PLATFORM_DOMIAN" in result.stderr and "unknown key 'domian'" in result.stderr


def test_bad_flag_is_named():
    result = run_inv("settings", "--answers", str(EMPTY), "--profile", "ultra")
    assert result.returncode == 1
    assert "--profile" in result.stderr and "auto, minimal, standard, performance" in result.stderr
    bad = run_inv("settings", "--answers", str(EMPTY), "--set", "nonsense")
    assert bad.returncode == 1 and "expected key=value" in bad.stderr


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("settings:", "settings:\n  ollama_port: many"), ["minimal.yaml line", "valid integer"]),
        (lambda t: t.replace("settings:", "settings:\n  colour: blue"), ["minimal.yaml line", "unknown key 'colour'"]),
        (lambda t: t.replace("settings:", "settings:\n  root: /srv"), ["cannot be set in a tier profile"]),
        (
            lambda t: t.replace("  - name: llama3.2:3b\n    size_gb: 2.0", "  - name: llama3.2:3b\n    size_gb: big"),
            ["minimal.yaml line", "models.0.size_gb"],
        ),
        (lambda t: t + "  bad: [\n", ["minimal.yaml line", "YAML syntax error"]),
    ],
)
def test_bad_profile_file(profiles, edit, expected):
    path = profiles / "minimal.yaml"
    path.write_text(edit(path.read_text()))
    with pytest.raises(UserError) as caught:
        resolve(profiles_dir=profiles)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message, message
    assert str(path) in message


def test_absent_default_answers_file_is_fine_but_an_explicit_one_is_an_error():
    assert resolve(answers=Path("/nonexistent/answers.yaml")).answers_path is None
    result = run_inv("settings", "--answers", "/nonexistent/typo.yaml")
    assert result.returncode == 1 and "/nonexistent/typo.yaml: file not found" in result.stderr
    assert "Traceback" not in result.stderr
