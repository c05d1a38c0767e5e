"""The stand-in images (tests/integration/standins/images.py) run as the user of the upstream image they stand for:
the recipe, read without an engine (the images themselves are built and run by the integration session)."""

from __future__ import annotations

import pytest

from tests.integration.standins.images import (
    BASE_PACKAGES,
    catalog_containers,
    dockerfile,
    needed_packages,
    upstream_user,
)


@pytest.mark.parametrize(
    ("container", "user", "lines"),
    [
        # langgenius/dify-api 1.13.x: useradd -r -u 1001 (no home made), WORKDIR /app/api, USER dify: its one-shot too,
        # so the catalog's chown must say `user: 0:0` as with the real image.
        ("dify-api", "dify", ["--uid 1001 --gid 1001 --home-dir /home/dify --no-create-home", "WORKDIR /app/api"]),
        ("dify-worker", "dify", ["--uid 1001", "WORKDIR /app/api"]),
        ("dify-permissions", "dify", ["--uid 1001"]),
        ("dify-web", "dify", ["--uid 1001 --gid 1001 --home-dir /home/dify --create-home"]),
        # grafana/grafana 12: uid 472 in root's group, its folders 777, the GF_PATHS_* it writes by.
        (
            "grafana",
            "grafana",
            ["--uid 472 --gid 0", "chmod -R 777 /var/lib/grafana", "GF_PATHS_DATA=/var/lib/grafana"],
        ),
        ("n8n", "node", ["--uid 1000", "chown -R 1000:1000 /home/node/.n8n", "WORKDIR /home/node"]),
        ("flowise", "node", ["--uid 1000 --gid 1000 --home-dir /home/node --create-home"]),
        ("flowise-permissions", "node", ["--uid 1000"]),
    ],
)
def test_a_stand_in_runs_as_its_upstream_images_user(container, user, lines):
    recipe = dockerfile(catalog_containers()[container])
    assert recipe.splitlines().count(f"USER {user}") == 1
    for line in lines:
        assert line in recipe, line


@pytest.mark.parametrize("container", ["open-webui", "litellm", "qdrant", "jupyterhub", "mlflow", "milvus", "cadvisor"])
def test_the_images_that_run_as_root_upstream_stay_root(container):
    assert "\nUSER " not in dockerfile(catalog_containers()[container])


def test_the_user_follows_the_image_whatever_its_registry_and_tag():
    assert upstream_user("docker.n8n.io/n8nio/n8n:2.41.7").uid == 1000
    assert upstream_user("n8nio/n8n").uid == 1000
    assert upstream_user("registry.example:5000/grafana/grafana:12.4.10").uid == 472
    assert upstream_user("ghcr.io/open-webui/open-webui:v0.11.4") is None


def _needs(*containers: str) -> set[str]:
    catalog = catalog_containers()
    return set(needed_packages([catalog[name] for name in containers]))


def test_a_slim_base_keeps_what_its_containers_run_and_drops_the_rest():
    core = _needs("caddy", "litellm", "open-webui", "postgres", "postgres-init", "qdrant", "redis")
    # the vm's core tier: real Postgres and Redis, Python for the HTTP stand-ins, the healthchecks' curl and wget
    assert {"postgresql-15", "postgresql-client-15", "redis-server", "redis-tools", "python3", "curl", "wget"} <= core
    assert not core & {"nodejs", "prometheus", "prometheus-node-exporter", "etcd-server", "etcd-client", "caddy"}
    assert core < set(BASE_PACKAGES)
    # n8n's healthcheck runs node; milvus' etcd its etcdctl; monitoring's real Prometheus and node-exporter
    assert "nodejs" in _needs("n8n") and "nodejs" not in _needs("flowise")
    assert {"etcd-server", "etcd-client"} <= _needs("milvus-etcd")
    assert {"prometheus", "prometheus-node-exporter"} <= _needs("prometheus", "node-exporter")
    assert "postgresql-15" not in _needs("redis")


def test_an_image_of_a_slim_build_is_from_the_base_it_is_given():
    recipe = dockerfile(catalog_containers()["redis"], base="aiplatform-standin/base-slim:abc")
    assert recipe.startswith("FROM aiplatform-standin/base-slim:abc\n")
