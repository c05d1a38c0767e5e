"""tests/standins/ollama_api.py's chat, generate, embed and show endpoints and its knobs, over real sockets: the
shapes Ollama's docs/api.md gives, checked with httpx and with the official `ollama` client."""

from __future__ import annotations

import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import ollama
import pytest

from tests.standins.ollama_api import OllamaStandIn

MODELS = ["llama3", "nomic-embed-text"]
QUESTION = "why is the sky blue?"


def post(server: OllamaStandIn, path: str, body: dict, timeout: float = 10) -> httpx.Response:
    # LiteLLM sends its JSON as application/octet-stream: the stand-in must read it all the same
    content = json.dumps(body).encode()
    return httpx.post(
        server.url + path, content=content, headers={"Content-Type": "application/octet-stream"}, timeout=timeout
    )


def ndjson(response: httpx.Response) -> list[dict]:
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines() if line]


def chat_body(model: str = "llama3", stream: bool = False, content: str = QUESTION) -> dict:
    messages = [{"role": "system", "content": "be brief", "images": []}, {"role": "user", "content": content}]
    return {"model": model, "messages": messages, "options": {"temperature": 0.3}, "stream": stream}


@pytest.fixture
def server():
    with OllamaStandIn(models=MODELS) as running:
        yield running


def test_chat_without_streaming_answers_one_object(server):
    response = post(server, "/api/chat", chat_body())
    assert response.status_code == 200
    answer = response.json()
    assert answer["model"] == "llama3" and answer["created_at"].endswith("Z")
    assert answer["message"] == {"role": "assistant", "content": f"stand-in reply from llama3 to: {QUESTION}"}
    assert answer["done"] is True and answer["done_reason"] == "stop"
    assert answer["prompt_eval_count"] == 7  # words of both messages
    assert answer["eval_count"] == len(answer["message"]["content"].split())
    durations = ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"]
    assert all(isinstance(answer[key], int) and answer[key] > 0 for key in durations)
    assert answer["total_duration"] >= answer["load_duration"] + answer["eval_duration"]
    assert [(call.endpoint, call.model, call.stream) for call in server.chats] == [("/api/chat", "llama3", False)]
    assert server.chats[0].body["options"] == {"temperature": 0.3}
    assert ("POST", "/api/chat") in server.requests


def test_chat_streams_ndjson_pieces_then_a_final_object(server):
    whole = post(server, "/api/chat", chat_body())
    lines = ndjson(post(server, "/api/chat", chat_body(stream=True)))
    *pieces, final = lines
    assert len(pieces) > 3
    assert all(line["done"] is False and line["model"] == "llama3" for line in pieces)
    assert all(line["message"]["role"] == "assistant" and line["message"]["content"] for line in pieces)
    assert "".join(line["message"]["content"] for line in pieces) == whole.json()["message"]["content"]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    assert final["eval_count"] == len(pieces) and final["prompt_eval_count"] == 7
    assert [call.stream for call in server.chats] == [False, True]


def test_stream_is_the_default(server):
    body = chat_body()
    del body["stream"]
    assert ndjson(post(server, "/api/chat", body))[-1]["done"] is True
    assert server.chats[0].stream is True


def test_reply_is_cut_and_json_when_a_format_is_asked(server):
    answer = post(server, "/api/chat", chat_body(content="x" * 200)).json()["message"]["content"]
    assert answer == "stand-in reply from llama3 to: " + "x" * 60 + "..."
    body = {**chat_body(), "format": "json"}
    assert json.loads(post(server, "/api/chat", body).json()["message"]["content"]) == {
        "reply": f"stand-in reply from llama3 to: {QUESTION}"
    }


def test_chat_without_messages_loads_the_model(server):
    assert post(server, "/api/chat", {"model": "llama3", "messages": []}).json()["done_reason"] == "load"
    unload = post(server, "/api/chat", {"model": "llama3", "messages": [], "keep_alive": 0}).json()
    assert unload["done_reason"] == "unload" and unload["message"]["content"] == ""


def test_generate_answers_in_response(server):
    answer = post(server, "/api/generate", {"model": "llama3", "prompt": QUESTION, "stream": False}).json()
    assert answer["response"] == f"stand-in reply from llama3 to: {QUESTION}" and "message" not in answer
    assert answer["done"] is True and answer["context"] and answer["prompt_eval_count"] == 5
    *pieces, final = ndjson(post(server, "/api/generate", {"model": "llama3", "prompt": QUESTION}))
    assert "".join(line["response"] for line in pieces) == answer["response"]
    assert final["response"] == "" and final["done"] is True and final["eval_count"] == len(pieces)
    assert post(server, "/api/generate", {"model": "llama3"}).json()["done_reason"] == "load"


def test_embed_a_string_and_a_list(server):
    one = post(server, "/api/embed", {"model": "nomic-embed-text", "input": "hello world"}).json()
    assert one["model"] == "nomic-embed-text" and one["prompt_eval_count"] == 2
    assert one["total_duration"] > 0 and one["load_duration"] > 0
    [vector] = one["embeddings"]
    assert len(vector) == 8 and math.isclose(sum(v * v for v in vector), 1.0)
    many = post(server, "/api/embed", {"model": "nomic-embed-text", "input": ["hello world", "b", "c"]}).json()
    assert len(many["embeddings"]) == 3 and many["prompt_eval_count"] == 4
    assert many["embeddings"][0] == vector  # deterministic: the same text gives the same vector
    assert many["embeddings"][1] != many["embeddings"][2]
    other_model = post(server, "/api/embed", {"model": "llama3", "input": "hello world"}).json()["embeddings"][0]
    assert other_model != vector
    assert post(server, "/api/embed", {"model": "nomic-embed-text", "input": []}).json()["embeddings"] == []
    assert [(call.endpoint, call.stream) for call in server.chats[:2]] == [("/api/embed", False)] * 2
    assert server.chats[1].body["input"] == ["hello world", "b", "c"]


def test_embedding_dimension_knob_and_the_older_endpoint():
    with OllamaStandIn(models=MODELS, embedding_dimension=32) as server:
        [vector] = post(server, "/api/embed", {"model": "nomic-embed-text", "input": "hi"}).json()["embeddings"]
        assert len(vector) == 32
        asked = post(server, "/api/embed", {"model": "nomic-embed-text", "input": "hi", "dimensions": 4}).json()
        assert len(asked["embeddings"][0]) == 4
        older = post(server, "/api/embeddings", {"model": "nomic-embed-text", "prompt": "hi"}).json()
        assert older == {"embedding": vector}
        bad = post(server, "/api/embed", {"model": "nomic-embed-text", "input": [1, 2]})
        assert bad.status_code == 400 and bad.json() == {"error": "invalid input type"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", chat_body("nosuch")),
        ("/api/chat", chat_body("nosuch", stream=True)),
        ("/api/generate", {"model": "nosuch", "prompt": "hi"}),
        ("/api/embed", {"model": "nosuch", "input": "hi"}),
        ("/api/embeddings", {"model": "nosuch", "prompt": "hi"}),
    ],
)
def test_a_model_not_present_is_not_found_as_ollama_says(server, path, body):
    response = post(server, path, body)
    assert response.status_code == 404
    assert response.json() == {"error": 'model "nosuch" not found, try pulling it first'}
    assert [(call.endpoint, call.model) for call in server.chats] == [(path, "nosuch")]


def test_a_pulled_model_can_chat():
    with OllamaStandIn() as server:
        assert post(server, "/api/chat", chat_body("phi3")).status_code == 404
        assert post(server, "/api/pull", {"model": "phi3", "stream": False}).json() == {"status": "success"}
        assert post(server, "/api/chat", chat_body("phi3:latest")).status_code == 200


def test_show_a_present_model_and_not_an_absent_one(server):
    for body in ({"model": "llama3"}, {"name": "llama3:latest"}):  # LiteLLM sends "name"
        response = post(server, "/api/show", body)
        assert response.status_code == 200
        shown = response.json()
        assert {"modelfile", "parameters", "template", "details", "model_info"} <= shown.keys()
        assert shown["details"]["format"] == "gguf" and shown["model_info"]["llama.context_length"] == 8192
    missing = post(server, "/api/show", {"name": "chat"})
    assert missing.status_code == 404 and missing.json() == {"error": "model 'chat' not found"}
    assert post(server, "/api/show", {}).status_code == 400


def test_fail_chat_answers_500_for_that_model_only():
    with OllamaStandIn(models=MODELS, fail_chat={"llama3:latest"}) as server:
        failed = post(server, "/api/chat", chat_body("llama3"))
        assert failed.status_code == 500 and "error" in failed.json() and "message" not in failed.json()
        assert post(server, "/api/generate", {"model": "llama3", "prompt": "x"}).status_code == 500
        assert post(server, "/api/chat", chat_body("nomic-embed-text")).status_code == 200
        assert post(server, "/api/embed", {"model": "llama3", "input": "x"}).status_code == 200
        assert [call.model for call in server.chats] == ["llama3", "llama3", "nomic-embed-text", "llama3"]


def test_latency_is_added_before_every_answer():
    with OllamaStandIn(models=MODELS, latency=0.4) as server:
        for path, body in [("/api/chat", chat_body()), ("/api/embed", {"model": "llama3", "input": "x"})]:
            started = time.monotonic()
            assert post(server, path, body).status_code == 200
            assert time.monotonic() - started >= 0.4
        answer = post(server, "/api/chat", chat_body()).json()
        assert answer["total_duration"] >= 400_000_000
    with OllamaStandIn(models=MODELS) as server:  # without the knob: no wait
        started = time.monotonic()
        post(server, "/api/chat", chat_body())
        assert time.monotonic() - started < 0.4


@pytest.mark.parametrize(("count", "parallel"), [(5, 0), (64, 0), (6, 2)])
def test_requests_are_answered_in_parallel_up_to_the_limit(count, parallel):
    """Counted, not timed (a loaded machine slows a timed test): how many answers were worked on at once."""
    with OllamaStandIn(models=MODELS, latency=0.5, parallel=parallel) as server:
        started = time.monotonic()
        with ThreadPoolExecutor(count) as pool:
            statuses = list(
                pool.map(lambda i: post(server, "/api/chat", chat_body(content=f"q{i}")).status_code, range(count))
            )
        elapsed = time.monotonic() - started
    assert statuses == [200] * count
    assert elapsed >= 0.5 * count / (parallel or count)  # each waited its latency, in turns of `parallel`
    assert 2 <= server.most_at_once <= (parallel or count)  # never one after the other, never over the limit
    assert sorted(call.body["messages"][-1]["content"] for call in server.chats) == sorted(
        f"q{i}" for i in range(count)
    )


def test_stop_refuses_connections_and_restart_serves_on_the_same_port():
    server = OllamaStandIn(models=MODELS).start()
    try:
        url = server.url
        assert post(server, "/api/chat", chat_body()).status_code == 200
        server.stop()
        with pytest.raises(httpx.ConnectError):
            post(server, "/api/chat", chat_body())
        server.restart()
        assert server.url == url
        assert post(server, "/api/chat", chat_body()).status_code == 200
        server.restart()  # also from a running server
        assert httpx.get(url + "/api/tags", timeout=5).json()["models"][0]["name"] == "llama3:latest"
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/api/version", timeout=5)


def test_stop_drops_answers_still_waiting_and_streaming():
    server = OllamaStandIn(models=MODELS, latency=3).start()
    outcome: list[object] = []

    def ask() -> None:
        try:
            outcome.append(post(server, "/api/chat", chat_body()))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=ask)
    waiting.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.stop()
    waiting.join(timeout=5)
    assert time.monotonic() - started < 1.5
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.RemoteProtocolError)

    server = OllamaStandIn(models=MODELS, line_delay=0.2).start()
    with httpx.stream("POST", server.url + "/api/chat", json=chat_body(stream=True), timeout=10) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines))["done"] is False
        server.stop()
        with pytest.raises(httpx.RemoteProtocolError):  # the stream is cut: no final line, no end of chunks
            list(lines)


def test_the_official_ollama_client_reads_the_answers(server):
    client = ollama.Client(host=server.url)
    messages = [{"role": "user", "content": QUESTION}]
    whole = client.chat(model="llama3", messages=messages)
    assert whole.message.role == "assistant" and whole.message.content == f"stand-in reply from llama3 to: {QUESTION}"
    assert whole.done and whole.done_reason == "stop" and whole.eval_count == len(whole.message.content.split())
    parts = list(client.chat(model="llama3", messages=messages, stream=True))
    assert "".join(part.message.content for part in parts) == whole.message.content
    assert [part.done for part in parts] == [False] * (len(parts) - 1) + [True]
    embedded = client.embed(model="nomic-embed-text", input=["a", "b"])
    assert len(embedded.embeddings) == 2 and all(len(vector) == 8 for vector in embedded.embeddings)
    assert client.generate(model="llama3", prompt=QUESTION).response == whole.message.content
    assert client.show("llama3").modelinfo["llama.context_length"] == 8192
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="nosuch", messages=messages)
    assert missing.value.status_code == 404 and missing.value.error == 'model "nosuch" not found, try pulling it first'
    assert [(call.endpoint, call.stream) for call in server.chats] == [
        ("/api/chat", False),
        ("/api/chat", True),
        ("/api/embed", False),
        ("/api/generate", False),
        ("/api/chat", False),
    ]
