"""inputs/ by what a command ends up with: the services a choice enables (their dependencies' dependencies too),
answers.yaml as `inv add` / `inv remove` leave it and as YAML 1.1 reads it back, the image reference a lock pins,
the settings the layers merge to, the warnings a domain gets, and the hardware a render uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aiplatform.inputs.answers import with_list, with_values
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.context import Context
from aiplatform.inputs.hardware import format_profile_env, make_report
from aiplatform.inputs.images import locked_image
from aiplatform.inputs.profiles import load_profile
from aiplatform.inputs.root import check_root
from aiplatform.inputs.settings import Settings, letsencrypt_warning
from aiplatform.paths import TEMPLATES_DIR

from .conftest import fake_nvml
from .test_render import ONE_GPU


def test_a_service_brings_its_dependencies_dependencies(tmp_path):
    folder = tmp_path / "services" / "notes"
    folder.mkdir(parents=True)
    spec = {"name": "notes", "description": "x", "tier": "apps", "depends_on": ["n8n"],
            "containers": {"notes": {"image": "a/b:1.0.0"}}}  # fmt: skip
    (folder / "service.yaml").write_text(yaml.safe_dump(spec))
    (folder / "compose.yml.j2").write_text("services: {notes: {}}\n")
    catalog = load_catalog(TEMPLATES_DIR / "services", tmp_path / "services")
    assert not catalog.broken
    enabled = [spec.name for spec in catalog.enabled(["notes"])]
    assert {"notes", "n8n", "postgres"} <= set(enabled) and "dify" not in enabled
    assert enabled.index("postgres") < enabled.index("n8n") < enabled.index("notes")


def test_add_and_remove_change_only_that_service_however_often_it_is_listed(tmp_path):
    path = tmp_path / "answers.yaml"
    text = "# mine\nservices: [n8n, dify, n8n]  # the apps\ndomain: ai.example.com\n"
    removed = with_list(text, path, "services", remove=["n8n"])
    assert yaml.safe_load(removed) == {"services": ["dify"], "domain": "ai.example.com"}
    assert removed.startswith("# mine\n") and "# the apps" in removed
    added = with_list(removed, path, "services", add=["flowise", "dify"])
    assert yaml.safe_load(added)["services"] == ["dify", "flowise"]


@pytest.mark.parametrize("value", ["yes", "off", "1_000", "12:30", "null", "~", "0o17", "2026-01-01"])
def test_a_string_yaml_1_1_would_read_as_something_else_is_written_quoted(tmp_path, value):
    text = with_values("domain: ai.example.com\n", tmp_path / "answers.yaml", {"tailscale_hostname": value})
    assert yaml.safe_load(text) == {"domain": "ai.example.com", "tailscale_hostname": value}


def test_a_lock_pins_a_reference_once_and_never_a_pinned_one():
    digest = "sha256:" + "a" * 64
    assert locked_image("redis:7.4.1", {"redis:7.4.1": digest}) == f"redis:7.4.1@{digest}"
    pinned = f"redis:7.4.1@sha256:{'b' * 64}"
    assert locked_image(pinned, {pinned: digest}) == pinned
    assert locked_image("redis:7.4.2", {"redis:7.4.1": digest}) == "redis:7.4.2"


@pytest.mark.parametrize("root", ["/mnt/data/../etc/ai", "/mnt/ai/..", "relative/ai"])
def test_a_root_that_is_not_a_plain_absolute_folder_is_refused(root):
    with pytest.raises(ValueError, match=r"'\.\.' is not allowed|absolute path"):
        check_root(root)


def test_the_highest_layer_wins_and_is_named_as_the_source(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text("ollama_keep_alive: 7m\nadmin_name: Answers\nredis_maxmemory: 1gb\n")
    ctx = Context(answers=answers, flags={"root": str(tmp_path / "root"), "admin_name": "Flag"},
                  environ={"AI_PLATFORM_REDIS_MAXMEMORY": "2gb", "AI_PLATFORM_ADMIN_NAME": "Env"},
                  nvml=fake_nvml([]), profiles_dir=TEMPLATES_DIR.parent / "profiles")  # fmt: skip
    resolved = ctx.resolved
    got = {key: getattr(resolved.settings, key) for key in ("ollama_keep_alive", "admin_name", "redis_maxmemory")}
    assert got == {"ollama_keep_alive": "7m", "admin_name": "Flag", "redis_maxmemory": "2gb"}
    assert [resolved.sources[k] for k in got] == ["answers", "flag", "env"]
    assert resolved.sources["ollama_num_parallel"] == "profile" and resolved.sources["ollama_origins"] == "default"


@pytest.mark.parametrize("domain", ["ai.lan", "nas.local", "box.home.arpa", "ai.internal", "192.168.1.5", "ai"])
def test_letsencrypt_on_a_name_only_a_lan_resolves_is_warned(domain):
    settings = Settings.model_construct(domain=domain, ssl_mode="letsencrypt")
    assert "Caddy would get no certificate" in (letsencrypt_warning(settings) or "")
    assert letsencrypt_warning(Settings(domain="ai.example.com", ssl_mode="letsencrypt")) is None


def test_a_domain_is_kept_lower_case_without_its_final_dot():
    assert Settings(domain="AI.Example.COM.").domain == "ai.example.com"


def test_the_models_download_size_counts_only_the_models_asked_for():
    profile, _ = load_profile("minimal")
    names = profile.model_names()
    assert len(names) > 1
    assert profile.size_of(names[:1]) == round(profile.models[0].size_gb, 1) < profile.size_of(names)
    assert profile.size_of(["not-in-the-profile"]) == 0


def test_live_hardware_is_measured_even_where_setup_recorded_a_reading(tmp_path):
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    recorded = make_report(ONE_GPU, "performance", ["llama3.2:3b"], 2.0)
    (root / "config" / "hardware-profile.env").write_text(format_profile_env(recorded, "test"))
    flags = {"root": str(root)}
    kept = Context(answers=None, flags=flags, environ={}, nvml=fake_nvml([]))
    live = Context(answers=None, flags=flags, environ={}, nvml=fake_nvml([]), live_hardware=True)
    assert kept.hardware_at(Path(root))[0].gpus and kept.hardware_at(Path(root))[1].endswith("hardware-profile.env")
    assert live.hardware_at(Path(root))[0].gpus == () and live.hardware_at(Path(root))[1] == "measured now"


@pytest.mark.parametrize(
    ("password", "missing"),
    [
        ("äöüÄÖÜ²³-abcdef", ["an upper-case letter A-Z", "a digit 0-9"]),  # Flowise's /[A-Z]/ and /[0-9]/ refuse it
        ("ÄÖÜ-ABCDEF-1234", ["a lower-case letter a-z"]),
        ("Abcdefgh1234ß", []),  # ß is neither a-z, A-Z nor 0-9: Flowise's special character
        ("Abcdefgh12345", ["a character that is none of a-z, A-Z, 0-9"]),
    ],
)
def test_the_admin_password_rules_are_the_apps_ascii_classes(password, missing):
    from aiplatform.inputs.secrets import admin_password_problem

    problem = admin_password_problem(password) or ""
    assert [rule for rule in missing if rule in problem] == missing and (problem == "") == (not missing), problem


@pytest.mark.parametrize(
    "system",
    ["/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt", "/opt",
     "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/var", "/var/lib", "/var/log",
     "/var/tmp", "/snap"],
)  # fmt: skip
def test_a_system_folder_itself_is_never_a_root(system):
    """Said of the folder as given, even where it is a link (/lib to /usr/lib on a merged /usr)."""
    with pytest.raises(ValueError, match=f"^{system} is a system folder or a home"):
        check_root(system)
    assert check_root("/srv/ai-platform") == Path("/srv/ai-platform")


@pytest.mark.parametrize(
    "inside",
    ["/sys/fs/ai", "/proc/ai", "/dev/shm/ai", "/run/ai", "/etc/ai-platform", "/usr/share/ai", "/usr/local/ai",
     "/boot/ai", "/bin/ai", "/sbin/ai", "/lib/ai", "/lib32/ai", "/lib64/ai", "/libx32/ai"],
)  # fmt: skip
def test_no_folder_inside_the_kernels_the_package_managers_or_the_boot_loaders_trees_is_a_root(inside):
    """render writes there as root and cleanup --purge deletes it: never inside /sys, /proc, /etc, /usr and the like."""
    with pytest.raises(ValueError, match="inside"):
        check_root(inside)


@pytest.mark.parametrize(("key", "value", "ok"), [
    ("docker_log_max_size", "100g", True), ("docker_log_max_size", "102400m", True),
    ("docker_log_max_size", "107374182400", True), ("docker_log_max_size", "102401m", False),
    ("docker_log_max_size", "104857601k", False), ("docker_log_max_size", "0m", False),
    ("redis_maxmemory", "4096gb", True), ("redis_maxmemory", "4194304mb", True), ("redis_maxmemory", "4097gb", False),
    ("redis_maxmemory", "4294967297kb", False),
])  # fmt: skip
def test_sizes_count_k_m_and_g_in_powers_of_1024_up_to_their_limits(key, value, ok):
    """As Docker and Redis read them: 100g is the log limit and 4096gb Redis's, whichever unit says it."""
    from pydantic import ValidationError

    if ok:
        assert str(getattr(Settings(**{key: value}), key)).lower() == value
    else:
        with pytest.raises(ValidationError, match="100g" if key == "docker_log_max_size" else "4096gb"):
            Settings(**{key: value})


@pytest.mark.parametrize(("value", "ok"), [("31622400", True), ("31622401", False), ("8784h", True),
                                           ("8785h", False), ("-1", True), ("527040m", True)])  # fmt: skip
def test_ollama_keep_alive_is_at_most_a_year_in_any_unit_a_bare_number_in_seconds(value, ok):
    from pydantic import ValidationError

    if ok:
        assert Settings(ollama_keep_alive=value).ollama_keep_alive == value
    else:
        with pytest.raises(ValidationError, match="at most a year"):
            Settings(ollama_keep_alive=value)
