"""Render the validation scenarios once per session; each test feeds one artifact to the real tool that reads it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aiplatform.generated.build import render_command
from aiplatform.inputs.context import Context

from ..unit.conftest import fake_nvml

# (flags, GPUs): defaults on this machine; everything on with a domain, Let's Encrypt and both API keys;
# an IP with self-signed TLS on the performance tier with a GPU and two more Ollama nodes (LiteLLM's pool, their
# Prometheus jobs).
SCENARIOS = {
    "defaults": ({}, None),
    "everything-domain-letsencrypt": (
        {
            "domain": "ai.example.com",
            "ssl_mode": "letsencrypt",
            "admin_email": "owner@example.com",
            "services": ["dify", "n8n", "flowise", "monitoring", "mlflow", "jupyterhub", "milvus"],
            "privileged_services": ["jupyterhub"],
            "openai_api_key": "sk-validate-openai",
            "anthropic_api_key": "sk-ant-validate",
        },
        None,
    ),
    "ip-selfsigned-performance-gpu": (
        {
            "domain": "192.168.10.20",
            "ssl_mode": "selfsigned",
            "profile": "performance",
            "ollama_nodes": [
                {"address": "192.168.10.21"},
                {"address": "gpu3.lan", "port": 11500, "models": ["llama3.1:8b"], "weight": 2},
            ],
        },
        [("NVIDIA RTX 4090", 24564)],
    ),
    # A root systemd and compose must take literally (spaces, quotes, an unknown specifier, `$`), no TLS, and
    # LiteLLM's cache on.
    "odd-root-no-tls-cache": (
        {"root_name": 'my ai "root" 100%z $HOME', "ssl_mode": "none", "litellm_cache": True},
        None,
    ),
}


def require(tool: str) -> str:
    """The tool's path; missing is a failure (the session installs it with tests/tools/install-tools)."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run `tests/tools/install-tools` (nox -s validate does).")
    return path


@pytest.fixture(scope="session", params=sorted(SCENARIOS))
def rendered(request, tmp_path_factory) -> Path:
    return render_scenario(request.param, tmp_path_factory.mktemp(request.param))


def render_scenario(name: str, base: Path) -> Path:
    """The generated/ tree of one of SCENARIOS, rendered under `base`."""
    flags, gpus = dict(SCENARIOS[name][0]), SCENARIOS[name][1]
    root = base / flags.pop("root_name", "root")
    ctx = Context(
        answers=base / "answers.yaml",
        flags={"root": str(root), **flags},
        environ={},
        nvml=fake_nvml(gpus) if gpus is not None else True,
        live_hardware=True,
    )
    out = base / "generated"
    render_command(ctx, out, interactive=False)
    return out
