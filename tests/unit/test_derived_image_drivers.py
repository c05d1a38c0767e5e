"""The Python apps whose image deploy derives to add Postgres' driver name that driver in every database URL they are
given: SQLAlchemy 2.1 made psycopg 3 the driver of a bare `postgresql://`, which these images do not install (the real
JupyterHub 5.5.4 with SQLAlchemy 2.1 failed to start on `No module named 'psycopg'`, tests/apps/test_jupyterhub.py)."""

from __future__ import annotations

import re

import pytest

from aiplatform.render.tree import render_tree

from .test_render import _compose, _with


@pytest.mark.parametrize("service", ["mlflow", "jupyterhub"])
def test_every_postgres_url_names_the_driver_the_image_installs(service):
    tree = render_tree(_with([service]))
    dockerfile = tree[f"docker/build/{service}/Dockerfile"].data.decode()
    assert re.search(r"pip install .*\bpsycopg2-binary==", dockerfile)
    texts = [str(value) for value in _compose(tree, service)[service]["environment"].values()]
    texts += [file.data.decode() for path, file in tree.items() if path.startswith(f"config/{service}/")]
    urls = [url for text in texts for url in re.findall(r"postgres(?:ql)?(?:\+\w+)?://\S+", text)]
    assert urls, f"{service} is given no Postgres URL"
    assert all(url.startswith("postgresql+psycopg2://") for url in urls), urls
