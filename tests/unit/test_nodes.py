"""More Ollama hosts behind the one LiteLLM: the `ollama_nodes` setting and what render makes of it (each model once
per host that serves it, the router settings of a pool, Prometheus' targets, each node's firewall script). LiteLLM
loading these configs for real, and failing over between two Ollama stand-ins, is tests/validate/test_ollama_pool.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from aiplatform.envfile import parse_env
from aiplatform.errors import UserError
from aiplatform.generated.build import render_platform
from aiplatform.inputs.context import Context

from .conftest import fake_nvml

MODELS = ["llama3.2:3b", "nomic-embed-text", "qwen2.5:7b"]


def _ctx(tmp_path, answers: dict) -> Context:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump({"models": MODELS, **answers}))
    return Context(answers=path, flags={"root": str(tmp_path / "root")}, environ={}, nvml=fake_nvml([]))


def _render(tmp_path, answers: dict):
    return render_platform(_ctx(tmp_path, answers), tmp_path / "generated", host_ip="192.0.2.10").tree


TWO = [{"address": "192.0.2.21"}, {"address": "gpu3.lan", "port": 11500, "weight": 3, "models": ["qwen2.5:7b"]}]


def _deployments(tree) -> dict[str, list[tuple[str, str, int | None]]]:
    config = yaml.safe_load(tree["config/litellm/config.yaml"].data)
    found: dict[str, list] = {}
    for entry in config["model_list"]:
        params, info = entry["litellm_params"], entry.get("model_info", {})
        found.setdefault(entry["model_name"], []).append((info.get("id"), params["api_base"], params.get("weight")))
    return found


def test_each_model_is_listed_once_per_host_that_serves_it(tmp_path):
    tree = _render(tmp_path, {"ollama_nodes": TWO})
    deployments = _deployments(tree)
    assert deployments["llama3.2:3b"] == [
        ("llama3.2:3b@local", "os.environ/OLLAMA_BASE_URL", 1),
        ("llama3.2:3b@192-0-2-21", "http://192.0.2.21:11434", 1),
    ]
    assert deployments["qwen2.5:7b"] == [
        ("qwen2.5:7b@local", "os.environ/OLLAMA_BASE_URL", 1),
        ("qwen2.5:7b@192-0-2-21", "http://192.0.2.21:11434", 1),
        ("qwen2.5:7b@gpu3-lan", "http://gpu3.lan:11500", 3),
    ]
    config = yaml.safe_load(tree["config/litellm/config.yaml"].data)
    embed = [e for e in config["model_list"] if e["model_name"] == "nomic-embed-text"]
    assert {e["model_info"]["mode"] for e in embed} == {"embedding"} and len(embed) == 2
    router = config["router_settings"]
    assert router["routing_strategy"] == "simple-shuffle" and router["enable_health_check_routing"] is True
    assert router["enable_weighted_failover"] is True and router["num_retries"] >= 1
    assert config["general_settings"]["background_health_checks"] is True
    chat = next(e for e in config["model_list"] if e["model_name"] == "llama3.2:3b")
    assert chat["model_info"]["health_check_max_tokens"] == 1


def test_without_this_hosts_ollama_only_the_nodes_serve(tmp_path):
    nodes = [*TWO, {"address": "10.0.0.9", "name": "big"}]
    deployments = _deployments(_render(tmp_path, {"ollama_local": False, "ollama_nodes": nodes}))
    ids = [d[0] for d in deployments["qwen2.5:7b"]]
    assert ids == ["qwen2.5:7b@192-0-2-21", "qwen2.5:7b@gpu3-lan", "qwen2.5:7b@big"]
    assert all(base != "os.environ/OLLAMA_BASE_URL" for model in deployments.values() for _, base, _ in model)


def test_without_this_hosts_ollama_open_webui_embeds_through_litellm_never_the_host(tmp_path):
    """Open WebUI's document embeddings go to LiteLLM, which serves the embedding model from the nodes: nothing in its
    environment names this host's Ollama (there is none) or an Ollama at all, and it gets no host-gateway name."""
    tree = _render(tmp_path, {"ollama_local": False, "ollama_nodes": TWO})
    container = yaml.safe_load(tree["docker/docker-compose.open-webui.yml"].data)["services"]["open-webui"]
    env = container["environment"]
    assert "host.docker.internal" not in json.dumps(container) and "11434" not in json.dumps(env)
    assert not [name for name in env if "OLLAMA" in name and name != "ENABLE_OLLAMA_API"]
    assert env["ENABLE_OLLAMA_API"] == "false"
    assert (env["RAG_EMBEDDING_ENGINE"], env["RAG_OPENAI_API_BASE_URL"]) == ("openai", "http://litellm:4000/v1")
    assert env["RAG_OPENAI_API_KEY"] == "${LITELLM_KEY_OPEN_WEBUI}"
    served = _deployments(tree)[env["RAG_EMBEDDING_MODEL"]]  # LiteLLM lists it under that name, from the node
    assert served == [("nomic-embed-text@192-0-2-21", "http://192.0.2.21:11434", 1)]


def test_one_host_renders_as_before_no_pool_settings(tmp_path):
    config = yaml.safe_load(_render(tmp_path, {})["config/litellm/config.yaml"].data)
    assert "router_settings" not in config and "background_health_checks" not in config["general_settings"]
    assert all("id" not in e.get("model_info", {}) for e in config["model_list"])


def test_prometheus_scrapes_every_nodes_exporters_and_each_node_has_its_firewall(tmp_path):
    tree = _render(tmp_path, {"ollama_nodes": [*TWO[:1], {**TWO[1], "gpu": False}]})
    prometheus = yaml.safe_load(tree["config/prometheus/prometheus.yml"].data)
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    assert targets["node-192-0-2-21"] == ["192.0.2.21:9100"] and targets["gpu-192-0-2-21"] == ["192.0.2.21:9400"]
    assert targets["node-gpu3-lan"] == ["gpu3.lan:9100"] and "gpu-gpu3-lan" not in targets
    script = tree["scripts/nodes/gpu3-lan/ollama-firewall.sh"]
    text = script.data.decode()
    assert script.mode == 0o755 and "platform=192.0.2.10" in text and "--dport 11500" in text
    assert "--dport 9400" not in text and "--dport 9100" in text
    nodes = json.loads(parse_env(tree["config/master.env"].data.decode())["OLLAMA_NODES"])
    assert [n["name"] for n in nodes] == ["192-0-2-21", "gpu3-lan"] and nodes[1]["models"] == ["qwen2.5:7b"]


@pytest.mark.parametrize(
    ("nodes", "local", "message"),
    [
        ([{"address": "not a host!"}], True, "ollama_nodes[0].address': expected a host name or an IP address"),
        ([{"address": "10.0.0.5"}, {"address": "10.0.0.5"}], True, "ollama_nodes[1] (10.0.0.5:11434) repeats"),
        ([{"address": "10.0.0.5", "models": ["mistral"]}], True, "serves 'mistral', not one of the platform's"),
        ([{"address": "10.0.0.5", "name": "local"}], True, "the name 'local' is this host's own Ollama"),
        ([], False, "nothing would serve the models"),
        ([{"address": "10.0.0.5", "models": ["qwen2.5:7b"]}], False, "no node serves llama3.2:3b, nomic-embed-text"),
        (
            [{"address": "10.0.0.5", "port": 0}],
            True,
            "ollama_nodes[0].port': Input should be greater than or equal to "
            "1 (a whole number from 1 to 65535); got 0.",
        ),
        ([{"address": "10.0.0.5", "weight": "half"}], True, "(a whole number from 1 to 100); got 'half'."),
        ([{"address": "10.0.0.5", "name": "Big"}], True, "ollama_nodes[0].name': String should match pattern"),
    ],
)
def test_a_bad_node_entry_is_named(tmp_path, nodes, local, message):
    with pytest.raises(UserError) as caught:
        _ctx(tmp_path, {"ollama_nodes": nodes, "ollama_local": local}).resolved  # noqa: B018
    assert message in caught.value.message
    assert "answers.yaml" in caught.value.message


def test_doctor_names_each_node_its_missing_models_and_an_unreachable_one(tmp_path):
    from aiplatform.host.nodes import node_checks, node_states
    from tests.standins.ollama_api import OllamaStandIn, free_port

    silent = free_port()
    with OllamaStandIn(models=["llama3.2:3b"]) as node:
        port = int(node.url.rsplit(":", 1)[1])
        nodes = [{"address": "127.0.0.1", "port": port, "name": "gpu2", "gpu": False},
                 {"address": "127.0.0.1", "port": silent, "name": "gpu3", "gpu": False}]  # fmt: skip
        tree = _render(tmp_path, {"ollama_nodes": nodes})
        (tmp_path / "generated/config").mkdir(parents=True)
        (tmp_path / "generated/config/master.env").write_bytes(tree["config/master.env"].data)
        checks = {c.name: c for c in node_checks(node_states(tmp_path / "generated"))}
    assert checks["node gpu2"].status == "warn" and "Ollama 0.6.5" in checks["node gpu2"].detail
    assert "missing nomic-embed-text, qwen2.5:7b" in checks["node gpu2"].detail
    assert "--models nomic-embed-text,qwen2.5:7b" in checks["node gpu2"].fix
    assert checks["node gpu3"].status == "fail" and "does not answer" in checks["node gpu3"].detail


def test_litellm_refusing_its_key_leaves_the_down_nodes_unknown(tmp_path):
    """A LiteLLM that refuses /health (a changed master key) says nothing of the nodes: unknown, not "none down"."""
    import http.server
    import threading

    from aiplatform.host.nodes import _litellm_down

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"error": {"message": "Authentication Error", "code": "401"}}'
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "config").mkdir()
        (tmp_path / "config/credentials.env").write_text("LITELLM_MASTER_KEY=sk-old\n")
        assert _litellm_down(tmp_path, f"http://127.0.0.1:{server.server_port}") is None
    finally:
        server.shutdown()


# --- what doctor and status read of each node (host/nodes.py), through a stand-in for the HTTP answers -------------


class StandinHttp:
    """A stand-in for httpx.get as host/nodes.py calls it: answers by URL from `pages` (status, JSON), raises a
    connection error for any other URL, and records each URL with its Authorization header (and in `proxied`, each
    one asked with the environment's proxy honoured)."""

    def __init__(self, pages: dict[str, tuple[int, object]]) -> None:
        self.pages, self.asked, self.proxied = pages, [], []

    def __call__(self, url, headers=None, timeout=None, trust_env=True):
        import httpx

        self.asked.append((url, (headers or {}).get("Authorization")))
        if trust_env:  # httpx would send it through a proxy the environment names
            self.proxied.append(url)
        if url not in self.pages:
            raise httpx.ConnectError("Connection refused")
        status, body = self.pages[url]
        return httpx.Response(status, json=body, request=httpx.Request("GET", url))


def _declare(folder, nodes, master_key="sk-master-123456"):
    (folder / "config").mkdir(parents=True, exist_ok=True)
    (folder / "config/master.env").write_text(f"OLLAMA_NODES='{json.dumps(nodes)}'\n")
    if master_key:
        (folder / "config/credentials.env").write_text(f"LITELLM_MASTER_KEY={master_key}\n")


NODE_A = {"name": "gpu2", "url": "http://10.0.0.5:11434", "models": ["llama3.2:3b", "nomic-embed-text", "qwen2.5:7b"],
          "gpu": True}  # fmt: skip
NODE_B = {"name": "gpu3", "url": "http://[fd00::7]:11500", "models": ["llama3.2:3b"], "gpu": True}
NODE_C = {"name": "gpu4", "url": "http://10.0.0.9:11434", "models": ["llama3.2:3b"], "gpu": False}


def _pages(health=None):
    tags = [{"name": "llama3.2:3b"}, {"name": "nomic-embed-text:latest"}]  # a model pulled untagged is :latest
    pages = {
        "http://10.0.0.5:11434/api/version": (200, {"version": "0.6.5"}),
        "http://10.0.0.5:11434/api/tags": (200, {"models": tags}),
        "http://10.0.0.5:9400/metrics": (503, {}),
        "http://[fd00::7]:11500/api/version": (200, {"version": "0.7.0"}),
        "http://[fd00::7]:11500/api/tags": (200, {"models": [{"model": "llama3.2:3b"}]}),
        "http://[fd00::7]:9400/metrics": (200, {}),  # an IPv6 node's exporter, in brackets
    }
    if health is not None:
        pages["http://127.0.0.1:4000/health"] = health
    return pages


def test_declared_reads_the_nodes_render_wrote_and_nothing_else(tmp_path):
    from aiplatform.host.nodes import declared

    assert declared(tmp_path) == []  # nothing rendered
    _declare(tmp_path, [NODE_A, NODE_C])
    assert [n["name"] for n in declared(tmp_path)] == ["gpu2", "gpu4"]
    (tmp_path / "config/master.env").write_text("OLLAMA_NODES='not json'\n")
    assert declared(tmp_path) == []


def test_node_states_say_version_missing_models_exporter_and_litellms_verdict(tmp_path, monkeypatch):
    from aiplatform.host import nodes

    _declare(tmp_path, [NODE_A, NODE_B, NODE_C])
    unhealthy = [{"model_id": "llama3.2:3b@gpu3"}, {"model_id": "qwen2.5:7b@gpu4"}]
    health = (200, {"healthy_endpoints": [{"model_id": "llama3.2:3b@gpu2"}], "unhealthy_endpoints": unhealthy})
    http = StandinHttp(_pages(health))
    monkeypatch.setattr(nodes.httpx, "get", http)
    states = {s.name: s for s in nodes.node_states(tmp_path)}
    a, b, c = states["gpu2"], states["gpu3"], states["gpu4"]
    assert (a.reachable, a.version, a.missing, a.gpu, a.down_in_litellm) == (
        True, "0.6.5", ["qwen2.5:7b"], "exporter silent", False)  # fmt: skip
    assert (b.reachable, b.version, b.missing, b.gpu, b.down_in_litellm) == (
        True, "0.7.0", [], "exporter answers", True)  # fmt: skip
    assert (c.reachable, c.gpu, c.down_in_litellm) == (False, "", True) and "ConnectError" in c.error
    assert ("http://127.0.0.1:4000/health", "Bearer sk-master-123456") in http.asked
    assert not any(url.startswith("http://10.0.0.9:9400") for url, _ in http.asked)  # no GPU declared: not asked
    checks = {check.name: check for check in nodes.node_checks(list(states.values()))}
    assert checks["node gpu2"].status == "warn" and "missing qwen2.5:7b" in checks["node gpu2"].detail
    assert "--models qwen2.5:7b" in checks["node gpu2"].fix and "GPU exporter silent" in checks["node gpu2"].detail
    assert checks["node gpu3"].status == "warn" and "found it down" in checks["node gpu3"].detail
    assert "Ollama 0.7.0" in checks["node gpu3"].detail and "GPU exporter answers" in checks["node gpu3"].detail
    assert checks["node gpu4"].status == "fail"
    assert "http://10.0.0.9:11434 does not answer" in checks["node gpu4"].detail
    assert "setup --node" in checks["node gpu4"].fix


def test_a_node_with_everything_is_ok_and_litellm_at_another_url_is_asked_there(tmp_path, monkeypatch):
    from aiplatform.host import nodes

    _declare(tmp_path, [{**NODE_A, "models": ["llama3.2:3b", "nomic-embed-text"]}])
    pages = _pages()
    pages["http://litellm.lan:4000/health"] = (200, {"unhealthy_endpoints": []})
    pages["http://10.0.0.5:9400/metrics"] = (200, {})
    monkeypatch.setattr(nodes.httpx, "get", StandinHttp(pages))
    [state] = nodes.node_states(tmp_path, "http://litellm.lan:4000")
    assert state.missing == [] and state.down_in_litellm is False
    [check] = nodes.node_checks([state])
    assert (check.status, check.fix) == ("ok", "") and check.detail == "Ollama 0.6.5; GPU exporter answers"


def test_a_gpu_exporter_that_refuses_is_silent_and_no_node_is_asked_through_a_proxy(tmp_path, monkeypatch):
    from aiplatform.host import nodes

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")  # an office proxy cannot reach the LAN's nodes
    _declare(tmp_path, [{**NODE_C, "gpu": True}])
    pages = {"http://10.0.0.9:11434/api/version": (200, {"version": "0.6.5"}),
             "http://10.0.0.9:11434/api/tags": (200, {"models": [{"name": "llama3.2:3b"}]})}  # fmt: skip
    http = StandinHttp(pages)  # nothing at :9400: the exporter refuses the connection
    monkeypatch.setattr(nodes.httpx, "get", http)
    [state] = nodes.node_states(tmp_path)
    assert (state.reachable, state.gpu) == (True, "exporter silent")
    [check] = nodes.node_checks([state])
    assert check.detail == "Ollama 0.6.5; GPU exporter silent"
    assert "http://10.0.0.9:9400/metrics" in [url for url, _ in http.asked]
    assert http.proxied == []


@pytest.mark.parametrize(
    ("health", "key", "down"),
    [
        (None, "sk-master-123456", None),  # LiteLLM does not answer: unknown
        ((200, ["not", "a", "map"]), "sk-master-123456", None),
        ((200, {"unhealthy_endpoints": [{"model_id": "m@gpu2"}, {"model_id": "plain"}]}), "sk-m-1", True),
        ((200, {}), "sk-master-123456", False),
        ((200, {"unhealthy_endpoints": []}), None, None),  # no credentials.env: LiteLLM is not asked
    ],
)
def test_litellms_health_verdict_per_node(tmp_path, monkeypatch, health, key, down):
    from aiplatform.host import nodes

    _declare(tmp_path, [NODE_A], master_key=key)
    http = StandinHttp(_pages(health))
    monkeypatch.setattr(nodes.httpx, "get", http)
    [state] = nodes.node_states(tmp_path)
    assert state.down_in_litellm is down
    asked_health = [auth for url, auth in http.asked if url.endswith("/health")]
    assert asked_health == ([] if key is None else [f"Bearer {key}"])
