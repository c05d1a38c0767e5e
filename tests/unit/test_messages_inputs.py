"""The words of the inputs' errors (aiplatform/inputs/): each bad input a user can give (answers.yaml, --set, an
environment variable, --answers, a service folder of their own, images.lock, a tier profile, the questionnaire) is
refused with the exact message and fix it was written with. Through `inv` where a user meets it (exit 1, the two
lines `error: MESSAGE` and `  FIX` last on stderr, no traceback), else through the library function the command
calls. A fix or a phrase emptied by mistake fails here."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import pytest

from aiplatform import paths
from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.new_service import answer_problem
from aiplatform.inputs.questionnaire import ask_and_save
from aiplatform.inputs.settings import resolve_settings
from aiplatform.paths import PROFILES_DIR, SERVICES_DIR

from .conftest import Ran, run_inv
from .test_questionnaire import ScriptedAsker
from .test_questionnaire import ctx as questionnaire_context


def _refused(result: Ran, message: str, fix: str) -> None:
    """`inv` exited 1 without a traceback, and its last two lines on stderr are the error and its fix."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-2:] == [f"error: {message}", f"  {fix}"], result.stderr


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An owner's project under tmp_path: the owner's catalog (services/) and the flags pointing at its files."""
    monkeypatch.setattr(paths, "USER_SERVICES_DIR", tmp_path / "services")
    (tmp_path / "answers.yaml").write_text("domain: ''\n")
    return tmp_path


def _flags(home: Path) -> list[str]:
    return ["--answers", str(home / "answers.yaml"), "--out", str(home / "generated"), "--root", str(home / "root")]


# --- answers.yaml: values fine alone that cannot work together -------------------------------------------------------

MODELS = "profile: minimal\nmodels: [llama3.2:3b, nomic-embed-text]\nembedding_model: nomic-embed-text\n"
COMBINATIONS = [
    pytest.param(
        MODELS + "ollama_nodes: [{address: gpu2.lan}, {address: gpu2.lan}]\n",
        "line 4: ollama_nodes[1] (gpu2.lan:11434) repeats ollama_nodes[0] (gpu2.lan:11434).",
        "Give each node once, with its own name.",
        id="node-twice",
    ),
    pytest.param(
        MODELS + "ollama_nodes: [{address: gpu2.lan, name: big}, {address: gpu3.lan, name: big}]\n",
        "line 4: ollama_nodes[1] (gpu3.lan:11434) repeats ollama_nodes[0] (name big).",
        "Give each node once, with its own name.",
        id="name-twice",
    ),
    pytest.param(
        MODELS + "ollama_nodes: [{address: gpu2.lan, name: local}]\n",
        "line 4: ollama_nodes[0] (gpu2.lan:11434): the name 'local' is this host's own Ollama.",
        "Give the node another `name:`.",
        id="node-named-local",
    ),
    pytest.param(
        MODELS + "ollama_nodes: [{address: gpu2.lan, models: [mistral:7b]}]\n",
        "line 4: ollama_nodes[0] (gpu2.lan:11434) serves 'mistral:7b', not one of the platform's models "
        "(llama3.2:3b, nomic-embed-text).",
        "Add it to `models:` or take it off the node's list.",
        id="node-serves-an-unknown-model",
    ),
    pytest.param(
        MODELS + "ollama_local: false\n",
        "line 4: ollama_local is false and there is no ollama_nodes entry: nothing would serve the models.",
        "Add a node (`sudo inv setup --node` on it) or turn ollama_local back on.",
        id="no-ollama-at-all",
    ),
    pytest.param(
        MODELS + "ollama_local: false\nollama_nodes: [{address: gpu2.lan, models: [nomic-embed-text]}]\n",
        "line 5: no node serves llama3.2:3b and ollama_local is false.",
        "List it in a node's `models:` (or leave a node's list empty: all).",
        id="a-model-no-node-serves",
    ),
    pytest.param(
        "domain: 192.0.2.5\nssl_mode: letsencrypt\n",
        "line 2: ssl_mode 'letsencrypt' needs a domain name (Let's Encrypt does not certify IP addresses).",
        "Set `domain:` to a name whose DNS points at this host, or use ssl_mode selfsigned.",
        id="letsencrypt-for-an-ip",
    ),
    pytest.param(
        "domain: ''\nssl_mode: letsencrypt\n",
        "line 2: ssl_mode 'letsencrypt' needs a domain name (Let's Encrypt does not certify a host known only by its "
        "IP).",
        "Set `domain:` to a name whose DNS points at this host, or use ssl_mode selfsigned.",
        id="letsencrypt-without-a-domain",
    ),
    pytest.param(
        "ollama_bind: 127.0.0.1\n",
        "line 1: ollama_bind 127.0.0.1 is loopback: containers reach the host's Ollama through the Docker bridge, so "
        "LiteLLM and Open WebUI would see no models.",
        "Use 0.0.0.0 (setup adds a firewall rule that keeps the port to this host and Docker) or the bridge address, "
        "e.g. 172.17.0.1.",
        id="ollama-on-loopback",
    ),
]


@pytest.mark.parametrize(("text", "message", "fix"), COMBINATIONS)
def test_settings_that_cannot_work_together_are_refused_with_their_fix(answers, text, message, fix):
    """Nodes, TLS and Ollama's address: `inv settings` names the line and says what to change."""
    path = answers(text)
    _refused(run_inv("settings", "--answers", str(path)), f"{path} {message}", fix)


# --- answers.yaml: a value its key does not take ---------------------------------------------------------------------

BAD_VALUES = [
    ("ollama_bind: localhost\n", "'ollama_bind'", "expected an IP address to bind, like 0.0.0.0 or 127.0.0.1",
     "'localhost'"),
    ("ollama_keep_alive: 9000h\n", "'ollama_keep_alive'",
     "expected at most a year (8760h); -1 keeps a model loaded for ever", "'9000h'"),
    ("redis_maxmemory: 5000gb\n", "'redis_maxmemory'", "expected a size up to 4096gb, like 256mb or 2gb", "'5000gb'"),
    ("docker_address_pool: 172.20.0.0/33\n", "'docker_address_pool'",
     "expected a network in CIDR form, like 172.20.0.0/14", "'172.20.0.0/33'"),
    ("images: {litellm: ghcr.io/berriai/litellm}\n", "'images'",
     "images.litellm: 'ghcr.io/berriai/litellm' is not pinned: no tag means :latest",
     "{'litellm': 'ghcr.io/berriai/litellm'}"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "key", "rule", "got"), BAD_VALUES, ids=[t.split(":")[0] for t, *_ in BAD_VALUES])
def test_a_value_its_key_does_not_take_is_refused_with_the_rule(answers, text, key, rule, got):
    """The rule a value breaks is said in full, with the line, the key and the value given."""
    path = answers(text)
    fix = f"Edit {path} (or `{INV} settings set KEY=VALUE`, or `{INV} render --ask` to answer the questions again), "
    fix += f"then run `{INV} settings`."
    _refused(run_inv("settings", "--answers", str(path)), f"{path} line 1: key {key}: {rule}; got {got}.", fix)


def test_an_admin_password_some_app_refuses_names_every_rule_it_breaks_and_not_the_password():
    """From the environment: each broken rule with the apps that make it; the value stays ****."""
    password = "Ä" * 40 + "Aa-"  # 43 characters, 83 bytes as UTF-8, no digit
    result = run_inv("settings", "--answers", str(Path(__file__).parent / "empty-answers.yaml"),
                     env={"AI_PLATFORM_ADMIN_PASSWORD": password})  # fmt: skip
    message = (
        "environment variable AI_PLATFORM_ADMIN_PASSWORD: key 'admin_password': the admin password needs at most 72 "
        "bytes as UTF-8 (bcrypt, Open WebUI); a digit 0-9 (n8n, Dify, Flowise); got ****."
    )
    _refused(result, message, "Change or unset AI_PLATFORM_ADMIN_PASSWORD (`unset AI_PLATFORM_ADMIN_PASSWORD`).")
    assert password not in result.stderr


def test_a_missing_answers_file_names_the_flag_to_check():
    """`--answers` naming no file is an error (the default answers.yaml may be absent, a given one may not)."""
    _refused(run_inv("settings", "--answers", "/nonexistent/typo.yaml"), "/nonexistent/typo.yaml: file not found.",
             "Check the path given to --answers.")  # fmt: skip


def test_a_set_map_with_a_key_twice_is_refused_with_the_shape_to_give():
    """`--set images={a: x, a: y}`: YAML would keep the last one silently; the fix shows the two flow shapes."""
    result = run_inv("settings", "--answers", str(Path(__file__).parent / "empty-answers.yaml"),
                     "--set", "images={litellm: a:1.0.0, litellm: b:1.0.0}")  # fmt: skip
    message = (
        "command-line flag --set images=... line 1: the key 'litellm' is given twice in one mapping (first on line "
        "1); YAML would silently keep only the last one."
    )
    _refused(result, message, "Write it as plain YAML flow, each key once, like [a, b] or {name: value}.")


# --- images.lock -----------------------------------------------------------------------------------------------------


def test_a_lockfile_inv_upgrade_did_not_write_is_refused_by_render(home):
    """A digest that is not sha256:<64 hex>: render stops, says what the file should map, and how to get one back."""
    lock = home / "images.lock"
    lock.write_text('{"images": {"redis:7.4.1": "latest"}}')
    result = run_inv("render", "--no-input", *_flags(home))
    _refused(result, f"{lock} is not a lockfile `inv upgrade` wrote (not image -> sha256 digest).",
             f"Delete it (render then uses the tags) or run `{SUDO_INV} upgrade` again.")  # fmt: skip
    assert not (home / "generated").exists()


# --- the owner's catalog: `inv add` names the folder's problem and its fix -------------------------------------------

SPEC = "name: {name}\ndescription: Notes.\ntier: apps\n{extra}containers:\n  {name}:\n    image: example/notes:1.0.0\n"


def _folder(home: Path, name: str, extra: str = "", compose: bool = True) -> Path:
    """A service folder of the owner's catalog: service.yaml (with `extra` keys) and, unless told, compose.yml.j2."""
    folder = home / "services" / name
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text(SPEC.format(name=name, extra=extra))
    if compose:
        (folder / "compose.yml.j2").write_text(f"services:\n  {name}: {{}}\n")
    return folder


def test_an_unknown_service_points_at_the_list(home):
    """`inv add nosuch`: every service the catalog has, and where the addable ones are listed."""
    services = ", ".join(load_catalog(SERVICES_DIR).services)
    _refused(run_inv("add", "nosuch", "--dry-run", *_flags(home)),
             f"unknown service 'nosuch'. Services: {services}.", "`inv add` lists what can be added.")  # fmt: skip


def test_a_service_folder_without_its_compose_template_is_refused(home):
    """service.yaml alone is not a service: the folder is named and compose.yml.j2 asked for."""
    folder = _folder(home, "notes", compose=False)
    _refused(run_inv("add", "notes", "--dry-run", *_flags(home)),
             f"the service 'notes' cannot be used: {folder}: compose.yml.j2 is missing.",
             "Every service folder needs one.")  # fmt: skip


def test_a_folder_named_as_a_built_in_service_is_told_to_rename(home):
    """The built-in catalog is read first: the owner's folder of the same name is the one to rename."""
    shutil.copytree(SERVICES_DIR / "mlflow", home / "services" / "mlflow")
    message = (
        f"the service 'mlflow' cannot be used: {home / 'services' / 'mlflow'}: a service named 'mlflow' is already in "
        f"{SERVICES_DIR / 'mlflow'}."
    )
    _refused(run_inv("add", "mlflow", "--dry-run", *_flags(home)), message, "Rename the folder.")


@pytest.mark.parametrize(
    ("extra", "problem", "fix"),
    [
        pytest.param("depends_on: [notes]\n", "depends_on names the service itself ('notes').",
                     "Remove it from depends_on.", id="depends-on-itself"),
        pytest.param("depends_on: [ghost]\n", "depends_on names 'ghost', which is not in the catalog ({services}).",
                     "Fix the service folder or re-create it with `cookiecutter cookiecutter-service`.",
                     id="depends-on-a-stranger"),
        pytest.param("", "host port 4000 is already taken by 'litellm'.",
                     "Pick a free one (each service needs its own host port and ip_port).", id="port-taken"),
    ],
)  # fmt: skip
def test_a_folder_that_clashes_with_the_catalog_is_refused_with_its_fix(home, extra, problem, fix):
    """What a folder asks of the others (a dependency, a host port) is checked; the folder's file is named."""
    folder = _folder(home, "notes", extra)
    if not extra:  # litellm's port
        spec = folder / "service.yaml"
        spec.write_text(spec.read_text() + "    publish: ['127.0.0.1:4000:4000']\n")
    services = ", ".join([*sorted(load_catalog(SERVICES_DIR).services), "notes"])  # the folders as they are read
    message = f"the service 'notes' cannot be used: {folder / 'service.yaml'}: {problem.format(services=services)}"
    _refused(run_inv("add", "notes", "--dry-run", *_flags(home)), message, fix)


def test_a_dependency_cycle_is_refused_on_both_its_services(home):
    """a waits for b, b for a: neither can be deployed first; each names the cycle and the way out."""
    fix = "A service cannot wait for one that waits for it: remove one of these depends_on entries."
    folders = {"a": _folder(home, "a", "depends_on: [b]\n"), "b": _folder(home, "b", "depends_on: [a]\n")}
    for name, folder in folders.items():
        cycle = "depends_on makes a cycle: a → b → a."  # found from a, the first of the two read
        message = f"the service {name!r} cannot be used: {folder / 'service.yaml'}: {cycle}"
        _refused(run_inv("add", name, "--dry-run", *_flags(home)), message, fix)


def test_a_service_yaml_of_the_wrong_shape_points_at_an_example(home):
    """A value pydantic refuses (a healthcheck not starting with CMD): the key, the rule, and where to look."""
    folder = _folder(home, "notes")
    spec = folder / "service.yaml"
    spec.write_text(spec.read_text() + "    healthcheck: [curl, -f, http://localhost/]\n")
    message = (
        f"the service 'notes' cannot be used: {spec} line 7: key 'containers.notes.healthcheck': Value error, "
        "healthcheck must be a list starting with CMD or CMD-SHELL."
    )
    fix = "See an existing service.yaml under templates/services/ for the expected shape."
    _refused(run_inv("add", "notes", "--dry-run", *_flags(home)), message, fix)


# --- a tier profile -----------------------------------------------------------------------------------------------


def test_a_profile_of_the_wrong_shape_says_what_a_profile_holds(tmp_path):
    """A broken profiles/<tier>.yaml: the file and key, and the three keys a profile is made of."""
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES_DIR, profiles)
    path = profiles / "minimal.yaml"
    path.write_text(path.read_text().replace("size_gb: 2.0", "size_gb: big", 1))
    with pytest.raises(UserError) as refused:
        resolve_settings(answers=None, environ={}, flags={}, catalog=load_catalog(SERVICES_DIR),
                         detect_tier=lambda root: "minimal", profiles_dir=profiles)  # fmt: skip
    assert refused.value.message.startswith(f"{path} line "), refused.value.message
    assert "key 'models.0.size_gb'" in refused.value.message
    assert refused.value.fix == "A profile holds `description`, `models` (name, size_gb, embedding) and `settings`."


# --- the questionnaire -------------------------------------------------------------------------------------------


def test_saying_no_at_the_end_of_the_questionnaire_writes_nothing(tmp_path):
    """'Proceed?' answered no: cancelled, answers.yaml not made, and how to start over."""
    asker = ScriptedAsker(None, None, "", "", "", "", *[False] * 7, False)
    with pytest.raises(UserError) as refused:
        ask_and_save(questionnaire_context(tmp_path), "192.0.2.7", asker)
    assert (refused.value.message, refused.value.fix) == (
        "Cancelled: nothing was written.",
        f"Run `{INV} render` again to answer anew.",
    )
    assert not (tmp_path / "answers.yaml").exists()


def test_input_that_ends_before_the_questions_do_cancels_cleanly(tmp_path, monkeypatch):
    """Ctrl-D (end of input) at the terminal's first prompt: cancelled, nothing written, and both ways on."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(UserError) as refused:
        ask_and_save(questionnaire_context(tmp_path), "192.0.2.7")  # the terminal's asker, reading stdin
    assert (refused.value.message, refused.value.fix) == (
        "Cancelled: the input ended (Ctrl-D) before the questions were answered; nothing was written.",
        f"Run `{INV} render` again, or `{INV} render --no-input` to render from defaults and the environment.",
    )
    assert not (tmp_path / "answers.yaml").exists()


# --- `inv add --new`: the rule an answer breaks ------------------------------------------------------------------

RULES = [
    ("name", "Notes", "lower-case letters, digits and dashes, starting with a letter"),
    ("description", "  ", "one sentence, not empty"),
    ("description", "two\nlines", "one line of printable text (no line breaks or control characters)"),
    ("description", "Notes {{ 7*7 }}", "no braces: { and } are template syntax here"),
    ("port", "0", "a port number from 1 to 65535"),
    ("host_port", "65536", "a port number from 1 to 65535"),
    ("ip_port", "https", "a port number from 1 to 65535"),
    ("subdomain", "my.notes", "one DNS label (lower-case letters, digits, dashes; no spaces or dots)"),
    ("health_path", "health", "a path starting with / (letters, digits, . _ ~ / -)"),
    ("data_path", "/data dir", "a path starting with / (letters, digits, . _ ~ / -)"),
]


@pytest.mark.parametrize(("key", "value", "rule"), RULES, ids=[f"{k}-{v!r}" for k, v, _ in RULES])
def test_a_new_services_answer_that_breaks_a_rule_is_told_the_rule(key, value, rule):
    """What `inv add --new` (and the cookiecutter hook) says when an answer is refused: the question and its rule."""
    assert answer_problem(key, value) == f"{key}: {rule}"


# --- the phrases the checks of one value give (each becomes the message of the setting or file it came from) --------


def _phrases() -> list[tuple[str, object, str | None]]:
    from aiplatform.inputs.hardware import read_gpus
    from aiplatform.inputs.images import image_problem, mirror_problem
    from aiplatform.inputs.root import root_problem
    from aiplatform.inputs.secrets import admin_password_problem

    from .conftest import fake_nvml

    needs = "the admin password needs "
    password = admin_password_problem
    return [
        ("image", image_problem("Example/Notes:1.0"), "is not an image reference (registry/name:tag, lower-case name)"),
        ("image", image_problem("example/notes"), "is not pinned: no tag means :latest"),
        ("mirror", mirror_problem("http://mirror"),
         "is not a registry address like registry.local:5000 or registry.local/mirror"),
        ("root", root_problem("/srv/ai\tplatform"), "control characters (newline, tab, ...) are not allowed"),
        ("root", root_problem("/srv/x/../ai-platform"), "'..' is not allowed: give the folder itself"),
        ("gpu", read_gpus(None)[1], "nvidia-ml-py is not installed"),
        ("gpu", read_gpus(fake_nvml(init_error=12))[1], "NVML library not found (no NVIDIA driver installed)"),
        ("gpu", read_gpus(fake_nvml(init_error=4))[1], "no permission to query the NVIDIA driver"),
        ("password", password("Ab1-" * 17), needs + "12 to 64 characters (MLflow at least 12, n8n at most 64)"),
        ("password", password("Ab1-" + "é" * 36), needs + "at most 72 bytes as UTF-8 (bcrypt, Open WebUI)"),
        ("password", password("ABCDEFGH-1234"), needs + "a lower-case letter a-z (Flowise)"),
        ("password", password("abcdefgh-1234"), needs + "an upper-case letter A-Z (n8n, Flowise)"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "index", range(len(_phrases())), ids=[f"{kind}-{i}" for i, (kind, *_) in enumerate(_phrases())]
)
def test_each_check_of_one_value_says_what_is_wrong_in_its_own_words(index):
    """An image, a mirror, a root, the GPU reading, the admin password: the phrase each check gives is the one it was
    written with (an emptied phrase would leave an error that says nothing)."""
    _, said, expected = _phrases()[index]
    assert said == expected


@pytest.mark.parametrize("request_", ["FETCH /api", "GET api/x", "POST  /double-space", "get /lower"])
def test_a_declared_step_whose_request_is_not_method_and_path_is_refused(home, request_):
    """service.yaml `setup:` steps name their request as `METHOD /path`: anything else is refused when the catalog is
    read, naming the file and the key, never sent."""
    folder = home / "services" / "notes"
    shutil.copytree(SERVICES_DIR / "n8n", folder)
    text = (folder / "service.yaml").read_text().replace("name: n8n", "name: notes", 1)
    (folder / "service.yaml").write_text(text.replace("request: POST /rest/owner/setup", f"request: {request_}", 1))
    catalog = load_catalog(SERVICES_DIR, home / "services")
    message, _ = catalog.broken["notes"]
    assert "setup" in message and "request" in message and "String should match pattern" in message, message


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ("files: [{template: app.ini.j2, path: ../../etc/cron.d/x}]\n",
         "expected a relative path of plain names under the root, like config/NAME/app.ini"),
        ("files: [{template: app.ini.j2, path: /etc/cron.d/x}]\n",
         "expected a relative path of plain names under the root, like config/NAME/app.ini"),
        ("files: [{template: app.ini.j2, path: data/notes/app.ini}]\n",
         "expected a path under config/, like config/NAME/app.ini"),
        ("backup: {extra: [../../etc]}\n", "expected a relative path of plain names under data/, like notebooks"),
        ("backup: {extra: ['/']}\n", "expected a relative path of plain names under data/, like notebooks"),
    ],
    ids=["file-up", "file-absolute", "file-outside-config", "extra-up", "extra-absolute"],
)  # fmt: skip
def test_a_path_of_service_yaml_that_leaves_its_folder_is_refused(home, extra, said):
    """render writes each `files:` entry under the root (as root) and backup copies each `backup.extra` folder of
    data/: a path reaching out of them is refused when the catalog is read, naming the file and the key."""
    folder = _folder(home, "notes", extra)
    message, _ = load_catalog(SERVICES_DIR, home / "services").broken["notes"]
    assert message.startswith(f"{folder / 'service.yaml'} line ") and said in message, message


@pytest.mark.parametrize(
    ("extra", "key", "said"),
    [
        ("metrics: [{job: notes, target: notes}]\n", "metrics.0.target", "String should match pattern"),
        ("metrics: [{job: notes, target: 'notes:9000', path: metrics}]\n", "metrics.0.path",
         "String should match pattern"),
        ("containers:\n  notes:\n    image: example/notes:1.0.0\n    publish: ['127.0.0.1:4000']\n",
         "containers.notes.publish.0", "String should match pattern"),
    ],
    ids=["metrics-target", "metrics-path", "publish-without-container-port"],
)  # fmt: skip
def test_a_scrape_target_or_a_published_port_of_the_wrong_shape_is_refused(home, extra, key, said):
    """Prometheus scrapes container:port at a path starting with /; a published port is [IP:]HOST:CONTAINER: anything
    else is refused when the catalog is read (not left to Prometheus or compose at deploy), naming the key."""
    folder = home / "services" / "notes"
    folder.mkdir(parents=True)
    spec = "name: notes\ndescription: Notes.\ntier: apps\n"
    containers = "" if "containers:" in extra else "containers:\n  notes:\n    image: example/notes:1.0.0\n"
    (folder / "service.yaml").write_text(spec + extra + containers)
    (folder / "compose.yml.j2").write_text("services:\n  notes: {}\n")
    message, _ = load_catalog(SERVICES_DIR, home / "services").broken["notes"]
    assert f"key '{key}'" in message and said in message, message


def test_a_login_whose_password_is_none_of_the_services_secrets_is_refused(home):
    """`inv info` shows the login's password from credentials.env: a name the service does not declare (a typo)
    would show nothing, so it is refused, listing the names it may be."""
    declared = "secrets: [{name: NOTES_SECRET, format: token}]\n"
    folder = _folder(home, "notes", declared + "login: {user: admin, password: NOTES_SECRT}\n")
    message, _ = load_catalog(SERVICES_DIR, home / "services").broken["notes"]
    assert message.startswith(f"{folder / 'service.yaml'}") and message.endswith(
        "login: password 'NOTES_SECRT' is none of its secrets (ADMIN_PASSWORD, NOTES_SECRET)."
    ), message
    (folder / "service.yaml").write_text(
        SPEC.format(name="notes", extra="login: {user: a, password: ADMIN_PASSWORD}\n")
    )
    assert "notes" in load_catalog(SERVICES_DIR, home / "services").services
