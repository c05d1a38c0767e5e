"""Ollama pool benchmark: requests per second through the real LiteLLM proxy with one Ollama node and with two, and
what LiteLLM adds to each request's time.

Each node is the Ollama stand-in (tests/standins/ollama_api.py, not Ollama: no registry ships it) with a fixed
per-request latency and one request worked on at a time (as OLLAMA_NUM_PARALLEL=1), so a node's capacity is
1/latency requests per second and a second node should double it. The LiteLLM config is the one render writes for
`ollama_local: false` and one or two `ollama_nodes` (tests/real_litellm.py runs the proxy from PyPI, the image's
release, without its database). Printed: requests/s with one node and with two, their ratio (the aim is >= 1.8),
and the median time of one request through LiteLLM minus the median of the same request sent to Ollama directly.

Figures only: nothing here fails on time. Run: `python benchmarks/pool_bench.py` (nox -s bench installs LiteLLM).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from aiplatform.envfile import read_env  # noqa: E402
from tests.real_litellm import litellm_proxy, render_pool  # noqa: E402
from tests.standins.ollama_api import OllamaStandIn, free_port  # noqa: E402

MODELS = ["llama3.2:3b", "nomic-embed-text"]
BODY = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hello"}], "stream": False}


def render(folder: Path, ports: list[int]) -> Path:
    nodes = [{"address": "127.0.0.1", "port": port, "name": f"n{i}"} for i, port in enumerate(ports)]
    return render_pool(folder, nodes, MODELS, local=False, host_ip="127.0.0.1")


def throughput(url: str, key: str, requests: int, concurrency: int) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=120, headers=headers) as client:

        def one(_: int) -> int:
            return client.post(f"{url}/v1/chat/completions", json=BODY).status_code

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            statuses = list(pool.map(one, range(requests)))
        return requests / (time.monotonic() - started), sum(status != 200 for status in statuses)


def median_seconds(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.monotonic()
        call()
        times.append(time.monotonic() - started)
    return statistics.median(times)


def _added_latency(url: str, key: str, ollama: str) -> float:
    headers = {"Authorization": f"Bearer {key}"}
    via = median_seconds(lambda: httpx.post(f"{url}/v1/chat/completions", json=BODY, headers=headers, timeout=60), 20)
    direct = median_seconds(lambda: httpx.post(f"{ollama}/api/chat", json=BODY, timeout=60), 20)
    return via - direct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds each node takes per request")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    rates = {}
    added = 0.0
    for count in (1, 2):
        ports = [free_port() for _ in range(count)]
        nodes = [OllamaStandIn(models=MODELS, port=p, latency=args.latency, parallel=1).start() for p in ports]
        try:
            with tempfile.TemporaryDirectory(prefix="pool-bench-") as scratch:
                out = render(Path(scratch), ports)
                key = read_env(out / "config/credentials.env")["LITELLM_MASTER_KEY"]
                with litellm_proxy(out, Path(scratch) / "litellm", "http://127.0.0.1:9") as url:
                    throughput(url, key, 2 * args.concurrency, args.concurrency)  # warm up
                    rate, failed = throughput(url, key, args.requests, args.concurrency)
                    rates[count] = rate
                    print(f"{count} node(s): {rate:.2f} requests/s ({args.requests} requests, {args.concurrency} at "
                          f"a time, {args.latency:g} s per request per node, {failed} failed)")  # fmt: skip
                    if count == 1:
                        added = _added_latency(url, key, nodes[0].url)
        finally:
            for node in nodes:
                node.stop()
    print(f"ratio 2 nodes / 1 node: {rates[2] / rates[1]:.2f} (aim: >= 1.8)")
    print(f"LiteLLM adds {added * 1000:.0f} ms per request (median of 20, through LiteLLM minus Ollama directly)")


if __name__ == "__main__":
    main()
