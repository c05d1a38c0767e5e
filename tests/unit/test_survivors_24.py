"""Outcomes the mutation benchmark (benchmarks/mutants.py, seed 24) found no test asserting: each test here failed
with one of its surviving one-line bugs applied and passes without it. Each is judged by what an owner sees: the
URLs `inv info` gives, the call configure names when LiteLLM's key API fails, where backup reaches Qdrant, the error
`inv backup` gives, what `inv settings get` prints."""

from __future__ import annotations

import re

import pytest
import yaml

from aiplatform.backup import qdrant, take
from aiplatform.configure.info import platform_info
from aiplatform.configure.run import run_configure
from aiplatform.envfile import format_env, read_env
from aiplatform.errors import UserError
from aiplatform.generated.build import render_command
from aiplatform.host.runner import Result, Runner
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.secrets import CREDENTIALS_HEADER
from aiplatform.paths import MASTER_ENV, SERVICES_DIR
from tests.configure_platform import deploy_files, facts_for, litellm_like, stand_ins

from .conftest import run_inv
from .engine_standin import EngineDocker, RecordedRunner, deployed
from .test_render import _ctx
from .test_survivors_21 import _applied

QUIET = Runner(echo=lambda _: None)
TAILNET = "ai-platform.tail1234.ts.net"


# --- inv info: LiteLLM on the tailnet only when it is served there ----------------------------------------------------


@pytest.mark.parametrize("served", [True, False])
def test_inv_info_gives_litellms_tailnet_url_only_when_configure_serves_it(tmp_path, served):
    """configure serves LiteLLM on the tailnet (:8443) only with tailscale_serve_litellm; Open WebUI always (:443)."""
    render_command(_ctx(tmp_path, tailscale_serve_litellm=served), tmp_path / "generated", interactive=False)
    info = platform_info(tmp_path / "generated", tmp_path / "root", load_catalog(SERVICES_DIR), False, TAILNET)
    urls = {item.service: item.urls for item in info.services}
    assert urls["open-webui"]["tailnet"] == f"https://{TAILNET}"
    if served:
        assert urls["litellm"]["tailnet"] == f"https://{TAILNET}:8443"
        assert info.litellm_base["tailnet"] == f"https://{TAILNET}:8443/v1"
    else:
        assert "tailnet" not in urls["litellm"] and "tailnet" not in info.litellm_base


# --- configure: a failing key API names the call ------------------------------------------------------------------


@pytest.fixture
def deployed_files(tmp_path):
    _, root = deploy_files(tmp_path)
    with litellm_like() as litellm:
        yield root, litellm


def _configure(root, services):
    report = run_configure(facts_for(root, services), QUIET, lambda step: None, ["litellm"])
    return report, {(s.service, s.step): s for s in report.steps}


def test_a_failed_key_lookup_names_get_key_info(deployed_files):
    """LiteLLM answers the key lookup with neither the key nor "not found" (a 500): the step names the call to look for
    in `docker logs ai-platform-litellm`."""
    root, litellm = deployed_files
    with stand_ins(root, litellm.url, litellm={"fail": {"GET /key/info": 500}}) as services:
        report, table = _configure(root, services)
    step = table[("litellm", "key for n8n")]
    assert step.result == "FAILED" and not report.ok, step
    assert step.detail.startswith("LiteLLM: GET /key/info answered HTTP 500"), step


def test_a_failed_delete_of_a_key_holding_the_alias_names_post_key_delete(deployed_files):
    """Another key holds the service's alias (a regenerated credentials.env): configure deletes it first, and when
    LiteLLM refuses, the step names that call."""
    root, litellm = deployed_files
    with stand_ins(root, litellm.url) as services:
        assert _configure(root, services)[0].ok
        credentials = read_env(root / "config/credentials.env")
        credentials["LITELLM_KEY_N8N"] = "sk-regenerated-" + "0" * 24  # the old key keeps the alias in LiteLLM
        (root / "config/credentials.env").write_text(format_env(credentials, CREDENTIALS_HEADER))
        services.apps["litellm"].server.RequestHandlerClass.settings["fail"] = {"POST /key/delete": 500}
        report, table = _configure(root, services)
    step = table[("litellm", "key for n8n")]
    assert step.result == "FAILED" and not report.ok, step
    assert step.detail.startswith("LiteLLM: POST /key/delete answered HTTP 500"), step


# --- backup: Qdrant's REST port -------------------------------------------------------------------------------------


class _Answering(Runner):
    """Records each command and answers as Qdrant does to GET /collections."""

    def __init__(self) -> None:
        super().__init__(echo=lambda _: None)
        self.argvs: list[list[str]] = []

    def run(self, argv, **kwargs) -> Result:  # type: ignore[override]
        self.argvs.append([str(part) for part in argv])
        return Result(self.argvs[-1], 0, 'HTTP/1.0 200 OK\r\n\r\n{"result": {"collections": [{"name": "notes"}]}}')


def test_backup_reaches_qdrant_on_the_port_the_catalog_gives_its_container():
    """Inside its container Qdrant's REST API listens on the catalog's port (service.yaml, its healthcheck too): the
    request goes to 127.0.0.1 there, not to gRPC's 6334 or anywhere else."""
    port = load_catalog(SERVICES_DIR).services["qdrant"].containers["qdrant"].port
    runner = _Answering()
    assert qdrant.Qdrant(runner, "key").collections() == ["notes"]
    (argv,) = runner.argvs
    assert argv[:4] == ["docker", "exec", "-i", qdrant.CONTAINER]
    assert re.findall(r"/dev/tcp/([^/\s]+)/(\d+)", argv[-1]) == [("127.0.0.1", str(port))]
    assert port == qdrant.PORT


# --- inv backup: encryption on and no passphrase --------------------------------------------------------------------


def test_backup_encrypted_without_a_passphrase_says_so_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(take, "Docker", EngineDocker)
    platform = deployed(tmp_path, _ctx, [])
    master = platform.root / MASTER_ENV
    master.write_text(master.read_text().replace("BACKUP_ENCRYPT=false", "BACKUP_ENCRYPT=true"))
    assert "BACKUP_PASSPHRASE" not in read_env(platform.root / "config/credentials.env")
    options = take.BackupOptions.for_root(platform.root, tmp_path / "backups")
    assert options.encrypt
    runner = RecordedRunner(echo=lambda _: None, engine=platform.engine)
    with pytest.raises(UserError) as refused:
        take.take_backup(options, platform.catalog, runner, lambda _: None)
    assert refused.value.message == "backup_encrypt is on but credentials.env has no BACKUP_PASSPHRASE."
    assert "render` and `deploy` once" in refused.value.fix
    assert not (tmp_path / "backups").exists()


# --- inv settings get: a list of maps ---------------------------------------------------------------------------------


def test_settings_get_prints_each_ollama_node_as_one_map(tmp_path):
    """Two nodes print as two maps, each readable back as YAML flow (what `settings set` takes), not as one run of
    name=value pairs where one node's end cannot be told from the next one's start."""
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "ollama_nodes:\n  - {address: gpu2.example.org, weight: 2}\n  - {address: 192.0.2.30, models: [llama3.2:3b]}\n"
    )
    ran = run_inv("settings", "--answers", str(answers), "--out", str(tmp_path / "generated"), "get", "ollama_nodes")
    assert ran.returncode == 0, ran.stderr
    nodes = yaml.safe_load(f"[{ran.stdout.strip()}]")
    assert [(node["address"], node["weight"], node["models"]) for node in nodes] == [
        ("gpu2.example.org", 2, []),
        ("192.0.2.30", 1, ["llama3.2:3b"]),
    ], ran.stdout


# --- inv diff: a file the root lacks ----------------------------------------------------------------------------------


def test_inv_diff_shows_a_file_the_root_lacks_as_created_from_dev_null(tmp_path):
    """The owner deleted a file of the root: the diff gives it as one to create, in the form `patch` and `git apply`
    read as a new file (`--- /dev/null`)."""
    out, root = _applied(tmp_path)
    (root / "config/ollama/override.conf").unlink()
    ran = run_inv("diff", "--out", str(out))
    lines = ran.stdout.splitlines()
    at = lines.index("+++ generated/config/ollama/override.conf")
    assert lines[at - 1] == "--- /dev/null", ran.stdout
