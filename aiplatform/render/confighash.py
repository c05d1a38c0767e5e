"""The config-hash label of a container: its compose definition, its volumes and the config files it mounts.

Render writes it; status recomputes it from generated/ as it is now, so a hand edit there shows up as drift.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from aiplatform.generated.files import Tree
from aiplatform.inputs.catalog import ServiceSpec, bind_source

LABEL = "ai-platform"


def config_hash_of(container: dict[str, Any], volumes: dict[str, Any], files: Tree) -> str:
    """A container's config-hash label: its compose definition (without this label), its service's volumes and the
    config files it mounts. Per container, so a changed init script recreates postgres-init, not Postgres."""
    digest = hashlib.sha256(json.dumps([container, volumes], sort_keys=True).encode())
    for path, file in sorted(files.items()):
        digest.update(path.encode() + b"\0" + file.data + b"\0" + oct(file.mode).encode())
    return digest.hexdigest()[:16]


def owned_files(spec: ServiceSpec, tree: Tree) -> Tree:
    """The files of `tree` that belong to `spec`: its `files:` (`{name}` patterns match any database name) and the
    Dockerfiles of the images deploy builds for it."""
    patterns = [re.compile(re.escape(f.path).replace(re.escape("{name}"), "[^/]+") + "$") for f in spec.files]
    builds = {build_file(name) for name in spec.containers}
    return {path: file for path, file in tree.items() if path in builds or any(p.match(path) for p in patterns)}


def mounted_files(container: dict[str, Any], files: Tree, root: Path) -> Tree:
    """The files of `files` (paths relative to the root) that the container bind-mounts, directly or in a folder."""
    mounts = []
    for volume in container.get("volumes", []):
        source = Path(bind_source(volume))  # the long syntax too
        if source.is_absolute() and source.is_relative_to(root):
            mounts.append(source.relative_to(root).as_posix())
    return {path: file for path, file in files.items() if any(path == m or path.startswith(m + "/") for m in mounts)}


def build_file(container: str) -> str:
    """Where render writes the Dockerfile of an image deploy builds for `container`."""
    return f"docker/build/{container}/Dockerfile"


def hashed_files(name: str, reloads: bool, container: dict[str, Any], files: Tree, root: Path) -> Tree:
    """The files a container's config hash covers: those it mounts — unless it re-reads them itself (`reload`:
    deploy reloads it instead of recreating it) — and the Dockerfile its image is built from."""
    found = {} if reloads else mounted_files(container, files, root)
    if build_file(name) in files:
        found[build_file(name)] = files[build_file(name)]
    return found


def expected_hashes(spec: ServiceSpec, compose: dict[str, Any], tree: Tree, root: Path) -> dict[str, str]:
    """Recompute each container's config hash from generated/ as it is now (a hand edit there changes it)."""
    owned = owned_files(spec, tree)
    hashes = {}
    for name, container in (compose.get("services") or {}).items():
        plain = copy.deepcopy(container)
        (plain.get("labels") or {}).pop(f"{LABEL}.config-hash", None)
        reloads = name in spec.containers and bool(spec.containers[name].reload)
        files = hashed_files(name, reloads, plain, owned, root)
        hashes[name] = config_hash_of(plain, compose.get("volumes") or {}, files)
    return hashes
