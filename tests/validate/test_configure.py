"""configure against the real LiteLLM proxy (tests/real_litellm.py, no database: see there) with the Ollama stand-in
behind it, and the apps' protocol stand-ins (tests/configure_platform.py): the first run configures everything and
the chat goes through LiteLLM for real, the second run changes nothing."""

from __future__ import annotations

import pytest

from aiplatform.configure.run import run_configure
from aiplatform.envfile import format_env, read_env
from aiplatform.host.runner import Runner
from tests.configure_platform import MODELS, apps, deploy_files, facts_for, stand_ins
from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import OllamaStandIn, free_port

unused_url = apps.unused_url


def test_first_run_configures_everything_second_run_changes_nothing(tmp_path):
    out, root = deploy_files(tmp_path)
    secrets = read_env(root / "config/credentials.env")
    with (
        OllamaStandIn(models=MODELS) as ollama,
        litellm_proxy(out, tmp_path / "litellm", ollama.url) as litellm,
        stand_ins(root, litellm) as services,
    ):
        first = run_configure(facts_for(root, services), Runner(echo=lambda _: None), lambda step: None)
        table = {(s.service, s.step): s for s in first.steps}
        assert first.ok, [s for s in first.steps if s.result == "FAILED"]
        skipped = [(s.service, s.step) for s in first.steps if s.result == "skipped"]
        assert skipped == [("tailscale", "tailnet joined"), ("tailscale", "Open WebUI served")]  # no key given
        assert "no Tailscale auth key" in table[("tailscale", "tailnet joined")].detail
        made = {(s.service, s.step) for s in first.changed}
        assert {
            ("litellm", "key for open-webui"),
            ("dify", "first-run setup"),
            ("dify", "model provider plugin"),
            ("dify", "LiteLLM models"),
            ("n8n", "owner account"),
            ("n8n", "API key for the platform"),
            ("n8n", "LiteLLM credential"),
            ("flowise", "admin account"),
            ("flowise", "LiteLLM credential"),
            ("open-webui", "default model"),
        } <= made
        # what the rendered environment set at the first start is found done: Open WebUI's admin and connection
        assert table[("open-webui", "LiteLLM connection")].result == "already done"
        # the chat and the embedding went through the real LiteLLM to the Ollama stand-in
        chat = table[("litellm", "chat through LiteLLM → Ollama")]
        assert chat.result == "ok" and "llama3.2:3b: HTTP 200" in chat.detail and "tokens/s" in chat.detail
        calls = [(c.endpoint, c.model) for c in ollama.chats]
        assert calls == [("/api/chat", "llama3.2:3b"), ("/api/embed", "nomic-embed-text")]
        # each app has its own key, registered in LiteLLM under its alias
        keys = services.apps["litellm"].state["keys"]
        aliases = sorted(k["key_alias"] for k in keys.values())
        assert aliases == ["ai-platform-dify", "ai-platform-flowise", "ai-platform-n8n", "ai-platform-open-webui"]
        assert (root / "config/credentials.env").stat().st_mode & 0o777 == 0o600
        assert read_env(root / "config/credentials.env")["N8N_API_KEY"]  # kept: n8n shows it only once

        second = run_configure(facts_for(root, services), Runner(echo=lambda _: None), lambda step: None)
        assert second.ok and not second.changed, [(s.service, s.step) for s in second.changed]
        assert {s.result for s in second.steps} == {"already done", "ok", "skipped"}
        assert {(s.service, s.step) for s in second.steps if s.result == "already done"} >= made
    assert secrets["LITELLM_MASTER_KEY"] not in "".join(s.detail for s in first.steps + second.steps)


@pytest.mark.parametrize(
    ("case", "fragment", "fix"),
    [
        ("not pulled", "the model llama3.2:3b is not pulled", "setup --models llama3.2:3b"),
        ("litellm cannot reach ollama", "LiteLLM cannot reach Ollama", "doctor"),
        ("ollama down", "Ollama does not answer on this host", "doctor"),
        ("node down", "from the Ollama nodes", "doctor` checks each node"),
    ],
)
def test_a_failed_chat_names_the_hop_that_failed(tmp_path, case, fragment, fix):
    """What the real LiteLLM answers when Ollama lacks the model, when LiteLLM cannot reach an Ollama that answers
    on the host, when no Ollama answers, and when the host runs none and its node is down: configure names the hop."""
    nodes = {"ollama_local": False, "ollama_nodes": [{"address": "127.0.0.1", "port": free_port(), "name": "gpu2"}]}
    out, root = deploy_files(tmp_path, **(nodes if case == "node down" else {}))
    with OllamaStandIn(models=[] if case == "not pulled" else MODELS) as ollama:
        behind = ollama.url if case == "not pulled" else unused_url()  # where LiteLLM's containers find Ollama
        on_host = unused_url() if case == "ollama down" else ollama.url  # what configure asks directly
        master = read_env(root / "config/master.env")
        (root / "config/master.env").write_text(format_env({**master, "OLLAMA_PORT": on_host.rsplit(":", 1)[1]}))
        with litellm_proxy(out, tmp_path / "litellm", behind) as litellm, stand_ins(root, litellm) as services:
            report = run_configure(facts_for(root, services), Runner(echo=lambda _: None), lambda s: None, ["litellm"])
    chat = {s.step: s for s in report.steps}["chat through LiteLLM → Ollama"]
    assert chat.result == "FAILED" and fragment in chat.detail, chat.detail
    assert fix in chat.fix, chat.fix
