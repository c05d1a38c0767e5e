"""The rendered LiteLLM configuration run by the real LiteLLM proxy (tests/real_litellm.py): what the owner opens."""

from __future__ import annotations

import httpx

from tests.real_litellm import litellm_proxy
from tests.standins.ollama_api import OllamaStandIn


def test_api_docs_answer_at_docs(rendered, tmp_path):
    # The platform's promise: http://localhost:4000/docs shows LiteLLM's API. LiteLLM serves Swagger at / unless
    # DOCS_URL says otherwise; the rendered container environment says /docs.
    with OllamaStandIn() as ollama, litellm_proxy(rendered, tmp_path, ollama.url) as url:
        docs = httpx.get(f"{url}/docs", timeout=10)
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        root = httpx.get(f"{url}/", timeout=10)
        assert root.status_code == 200 and "swagger" not in root.text.lower()
