"""A platform reached at an IPv6 address: the real Caddy (the pinned release the validate session installs) reads
the rendered Caddyfile as one site per route on that address and the route's own port, and asks its CA for a
certificate of that address alone. Written without brackets (`https://2001:db8::1:443`) Caddy took the port for part
of the host and certified a name `2001:db8::1:4443`; the unit side is in tests/unit/test_hostile_input.py."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from aiplatform.generated.build import render_platform
from aiplatform.inputs.context import Context

from ..unit.conftest import fake_nvml
from .conftest import require

ADDRESS = "2001:db8::1"
SERVICES = ["n8n", "mlflow", "monitoring"]


@pytest.mark.parametrize("ssl_mode", ["selfsigned", "none"])
def test_caddy_serves_each_route_at_the_ipv6_address_and_its_port(tmp_path, ssl_mode):
    ctx = Context(
        answers=None,
        flags={"root": str(tmp_path / "root"), "domain": ADDRESS, "ssl_mode": ssl_mode, "services": SERVICES},
        environ={},
        nvml=fake_nvml([]),
    )
    rendered = render_platform(ctx, tmp_path / "generated", host_ip="192.0.2.10")
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_bytes(rendered.tree["config/caddy/Caddyfile"].data)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = subprocess.run([require("caddy"), "adapt", "--config", str(caddyfile), "--adapter", "caddyfile"],
                            capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    served = {}
    for server in config["apps"]["http"]["servers"].values():
        hosts = {host for route in server["routes"] for match in route.get("match", []) for host in match["host"]}
        assert hosts == {ADDRESS}, server
        served.update(dict.fromkeys(server["listen"], hosts))
    routes = [spec.route for spec in rendered.platform.catalog.enabled(SERVICES) if spec.route]
    ports = {80 if ssl_mode == "none" and route.ip_port == 443 else route.ip_port for route in routes}
    wanted = {f":{port}" for port in ports}
    assert len(wanted) == 5
    assert set(served) == wanted
    subjects = [s for policy in config["apps"].get("tls", {}).get("automation", {}).get("policies", [])
                for s in policy.get("subjects", [])]  # fmt: skip
    assert subjects == ([ADDRESS] if ssl_mode == "selfsigned" else [])
