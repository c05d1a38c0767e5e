"""What runs compared with generated/: state, health, image, ports, URL and drift per container, plus orphans.

Drift means the running container was made from another configuration than generated/ holds now: its config-hash
label differs from the hash recomputed from generated/'s files (so a hand edit there shows up too). Orphans carry the
platform's label but are no longer in generated/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aiplatform.backup.manifest import describe_last
from aiplatform.engine.docker import ContainerInfo, Docker
from aiplatform.engine.project import load_project
from aiplatform.generated.diff import diff_trees
from aiplatform.generated.files import read_tree
from aiplatform.generated.stamp import read_stamp
from aiplatform.host.nodes import NodeState, node_states
from aiplatform.inputs.catalog import Catalog
from aiplatform.render.confighash import expected_hashes


@dataclass
class Row:
    container: str
    service: str
    state: str
    healthy: bool
    image: str = ""
    ports: list[str] = field(default_factory=list)
    url: str = ""
    drift: bool = False

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class StatusReport:
    rows: list[Row]
    orphans: list[ContainerInfo]
    root_differs: list[str]
    backup: tuple[str, str] = ("warn", "no backup yet")  # (ok | warn | fail, the last backup in one line)
    nodes: list[NodeState] = field(default_factory=list)  # the Ollama nodes LiteLLM spreads the models over

    @property
    def healthy(self) -> bool:
        return all(row.healthy for row in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "services": [row.as_dict() for row in self.rows],
            "orphans": [{"name": c.name, "service": c.service, "state": c.state} for c in self.orphans],
            "root_differs_from_generated": self.root_differs,
            "last_backup": {"status": self.backup[0], "detail": self.backup[1]},
            "nodes": [node.as_dict() for node in self.nodes],
        }


def platform_status(out: Path, root: Path, catalog: Catalog, docker: Docker) -> StatusReport:
    project = load_project(out)
    tree = read_tree(out)
    stamp = read_stamp(out)
    urls = stamp.urls if stamp else {}
    expected: dict[str, str] = {}
    for path in project.compose_files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        first: dict[str, Any] = next(iter((doc.get("services") or {}).values()), {})
        service = str((first.get("labels") or {}).get("ai-platform.service", ""))
        if service in catalog.services:
            expected.update(expected_hashes(catalog.services[service], doc, tree, root))
    running = {c.container: c for c in docker.containers()}
    rows = []
    for name, spec in project.containers.items():
        current = running.pop(name, None)
        url = urls.get(name, {})
        if current is None:
            rows.append(Row(name, spec.service, "missing", False, url=url.get("local", "")))
            continue
        if spec.oneshot:
            healthy = current.settled(oneshot=True)
            state = "done" if healthy else f"{current.state} (exit {current.exit_code})"
        else:
            healthy = current.settled(oneshot=False)
            state = current.state + (f", {current.health}" if current.health else "")
        drift = current.config_hash != expected.get(name, spec.config_hash)
        rows.append(Row(name, spec.service, state, healthy, current.image, current.ports, url.get("local", ""), drift))
    orphans = [c for c in running.values() if c.managed]
    differs = [f"{item.status} {item.path}" for item in diff_trees(out, root).files] if root.is_dir() else []
    return StatusReport(rows, orphans, differs, describe_last(root), node_states(out))
