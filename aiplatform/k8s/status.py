"""`inv status --target k8s`: for each service of the render, its workloads' ready/desired on the cluster and its
tier; workloads the tool made that the render no longer has are listed as orphans (the next deploy prunes them).
Read-only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aiplatform.k8s.apply import OWNED_SELECTOR, SHARED, Plan, owned
from aiplatform.k8s.kubectl import Kubectl, resource
from aiplatform.k8s.labels import NAME, TIER_LABEL
from aiplatform.k8s.wait import is_workload, ref, state


@dataclass(frozen=True)
class Row:
    service: str
    tier: str
    workload: str  # deployment.apps/litellm
    ready: str  # "1/1 available", "complete", "not deployed"
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _label(obj: dict[str, Any], name: str, default: str = "") -> str:
    return str((obj.get("metadata", {}).get("labels") or {}).get(name, default))


def k8s_status(kubectl: Kubectl, plan: Plan) -> tuple[list[Row], list[str]]:
    """One row per workload of the render (by service, in tier order), and the orphans' type/name."""
    workloads = [obj for obj in plan.objects if is_workload(obj)]
    kinds = sorted({resource(obj) for obj in workloads} | {"deployment.apps", "statefulset.apps", "job.batch"})
    live = {ref(obj): obj for obj in kubectl.get(kinds, OWNED_SELECTOR)}
    rows = []
    for obj in workloads:
        name = ref(obj)
        found = live.get(name)
        current = state(found) if found else None
        rows.append(
            Row(
                service=_label(obj, NAME, obj.get("metadata", {}).get("name", "")),
                tier=_label(obj, TIER_LABEL, SHARED),
                workload=name,
                ready=current.text if current else "not deployed",
                ok=bool(current and current.ready),
            )
        )
    rendered = {ref(obj) for obj in workloads}
    orphans = sorted(name for name, obj in live.items() if is_workload(obj) and owned(obj) and name not in rendered)
    return rows, orphans


def status_lines(rows: list[Row], orphans: list[str]) -> list[str]:
    width = max([len(row.service) for row in rows] + [7])
    lines = [f"{'service':{width}}  {'tier':10}  {'ready':16}  workload"]
    lines += [f"{row.service:{width}}  {row.tier:10}  {row.ready:16}  {row.workload}" for row in rows]
    lines += [f"orphan: {name} (not in the render: the next `inv deploy --target k8s` prunes it)" for name in orphans]
    return lines
