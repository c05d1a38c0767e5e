"""Several Ollama hosts behind the real LiteLLM proxy (tests/real_litellm.py): the rendered configs with two and three
nodes load in LiteLLM's own loader with every deployment kept, and with two Ollama stand-ins (a fixed latency, one
request at a time each, as OLLAMA_NUM_PARALLEL=1) the requests spread over both; stopping one mid-run loses no
request (each is retried on the other), LiteLLM's health check (one token per chat model) then marks it down, and it
serves again once back."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import Counter

import httpx
import pytest
import yaml

from aiplatform.envfile import read_env
from aiplatform.host.nodes import node_states
from tests.real_litellm import litellm_proxy, render_pool
from tests.standins.ollama_api import OllamaStandIn, free_port

MODELS = ["llama3.2:3b", "nomic-embed-text"]


@pytest.mark.parametrize("count", [2, 3])
def test_litellms_loader_keeps_every_deployment(tmp_path, count, monkeypatch):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from litellm.proxy.proxy_server import ProxyConfig

    nodes = [{"address": f"10.0.0.{n}"} for n in range(1, count)]
    out = render_pool(tmp_path, nodes, MODELS)
    config = yaml.safe_load((out / "config/litellm/config.yaml").read_text())
    config["general_settings"].pop("database_url")
    config["general_settings"]["background_health_checks"] = False  # no event loop task left behind
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    for key, value in read_env(out / "config/credentials.env").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:11434")
    router, model_list, _ = asyncio.run(ProxyConfig().load_config(router=None, config_file_path=str(path)))
    assert len(model_list) == len(MODELS) * count  # none dropped by the loader
    assert router.routing_strategy == "simple-shuffle" and router.enable_weighted_failover
    ids = sorted(d["model_info"]["id"] for d in router.get_model_list())
    assert ids == sorted(f"{m}@{n}" for m in MODELS for n in ["local", *[f"10-0-0-{i}" for i in range(1, count)]])


def _chat(url: str, key: str, model: str = "llama3.2:3b", retries: list | None = None) -> tuple[int, str]:
    answer = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hello"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    if retries is not None:
        retries.append(answer.headers.get("x-litellm-attempted-retries"))
    return answer.status_code, answer.headers.get("x-litellm-model-id", "")


def _unhealthy(url: str, key: str) -> set[str]:
    health = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
    return {e.get("model_id", "") for e in health.get("unhealthy_endpoints", [])}


def test_two_stand_in_nodes_share_the_load_and_fail_over(tmp_path):
    a_port, b_port = free_port(), free_port()
    nodes = [{"address": "127.0.0.1", "port": port, "name": name} for name, port in (("a", a_port), ("b", b_port))]
    out = render_pool(tmp_path, nodes, MODELS, local=False)
    key = read_env(out / "config/credentials.env")["LITELLM_MASTER_KEY"]
    with (
        OllamaStandIn(models=MODELS, port=a_port, latency=0.1, parallel=1) as a,
        OllamaStandIn(models=MODELS, port=b_port, latency=0.1, parallel=1) as b,
        litellm_proxy(out, tmp_path / "litellm", "http://127.0.0.1:9") as url,
    ):
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            first = list(pool.map(lambda _: _chat(url, key), range(24)))
        served = Counter(model_id for status, model_id in first)
        assert {status for status, _ in first} == {200}
        assert served["llama3.2:3b@a"] >= 6 and served["llama3.2:3b@b"] >= 6, served  # both take a share

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            running = [pool.submit(_chat, url, key) for _ in range(30)]
            time.sleep(0.5)
            b.stop()  # mid-run: answers b was working on are dropped, its port refuses
            during = [f.result() for f in running]
        assert [s for s, _ in during if s != 200] == [], Counter(during)  # every request answered, by a
        assert len(b.chats) > 0 and during[-1][1] == "llama3.2:3b@a"

        deadline = time.monotonic() + 40  # the next background health check (every 15 s) marks b down
        while "llama3.2:3b@b" not in _unhealthy(url, key) and time.monotonic() < deadline:
            time.sleep(1)
        assert "llama3.2:3b@b" in _unhealthy(url, key)
        chats = [c.body for c in a.chats if c.endpoint == "/api/chat"]
        checks = [c for c in chats if c["messages"][-1]["content"] != "hello"]  # LiteLLM's own, not the test's
        assert checks and {c.get("options", {}).get("num_predict") for c in checks} == {1}  # one token per check
        embeds = [c.body for c in a.chats if c.endpoint == "/api/embed"]  # the embedding model's check: no token
        assert embeds and all("options" not in c or "num_predict" not in c["options"] for c in embeds)
        states = {n.name: n for n in node_states(out, litellm_url=url)}  # what doctor and status show
        assert states["a"].reachable and states["a"].down_in_litellm is False and states["a"].version == "0.6.5"
        assert not states["b"].reachable and states["b"].down_in_litellm is True
        retried: list = []
        after = [_chat(url, key, retries=retried) for _ in range(8)]
        assert {m for _, m in after} == {"llama3.2:3b@a"} and set(retried) == {"0"}  # b is not even tried

        b.restart()
        deadline = time.monotonic() + 40
        while "llama3.2:3b@b" in _unhealthy(url, key) and time.monotonic() < deadline:
            time.sleep(1)
        back = Counter(m for _, m in (_chat(url, key) for _ in range(16)))
        assert back["llama3.2:3b@b"] > 0, back  # in the pool again
        pinned = {_chat(url, key, "llama3.2:3b@b")[1] for _ in range(3)}
        assert pinned == {"llama3.2:3b@b"}  # the model id pins a request to one node (configure's per-node chat)


def test_configure_chats_once_on_each_node_pinned_to_it(tmp_path):
    from aiplatform.configure.litellm import PROMPT
    from aiplatform.configure.run import run_configure
    from aiplatform.host.runner import Runner
    from tests.configure_platform import MODELS as PLATFORM_MODELS
    from tests.configure_platform import deploy_files, facts_for, stand_ins

    ports = {"a": free_port(), "b": free_port()}
    nodes = [{"address": "127.0.0.1", "port": port, "name": name} for name, port in ports.items()]
    out, root = deploy_files(tmp_path, ollama_nodes=nodes)
    with (
        OllamaStandIn(models=PLATFORM_MODELS) as local,
        OllamaStandIn(models=PLATFORM_MODELS, port=ports["a"]) as a,
        OllamaStandIn(models=PLATFORM_MODELS, port=ports["b"]) as b,
        litellm_proxy(out, tmp_path / "litellm", local.url) as litellm,
        stand_ins(root, litellm) as services,
    ):
        quiet = Runner(echo=lambda _: None)
        report = run_configure(facts_for(root, services), quiet, lambda step: None, ["litellm"])
        table = {s.step: s for s in report.steps}
        for host, ollama in (("local", local), ("a", a), ("b", b)):
            step = table[f"chat on {host} (pinned)"]
            assert step.result == "ok" and f"llama3.2:3b@{host}: HTTP 200 in" in step.detail, step
            asked = [c for c in ollama.chats if c.body.get("messages", [{}])[-1].get("content") == PROMPT]
            assert asked, f"the pinned chat did not reach {host}"
        b.stop()
        again = {s.step: s for s in run_configure(facts_for(root, services), quiet, lambda s: None, ["litellm"]).steps}
        assert again["chat on b (pinned)"].result == "FAILED" and "the node b did not answer" in again[
            "chat on b (pinned)"].detail  # fmt: skip
        assert again["chat on a (pinned)"].result == "ok"
