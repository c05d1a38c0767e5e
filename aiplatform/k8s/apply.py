"""Applying generated/k8s/ to a cluster: `kubectl kustomize` builds it, the objects go to the server one tier at a
time (TIER_ORDER, the compose deploy's order) by server-side apply, each tier waited for (wait.py) before the next,
and what the tool made that the render no longer has is pruned at the end.

Objects without a tier label (the namespace, a generator's shared Secret or ConfigMap) go first, as "shared".
Prune deletes only objects that carry both the tool's labels (part-of and managed-by ai-platform), live in its
namespace, have no owner (what a controller made goes with its owner: a Service's EndpointSlices, a Job's pods) and
are not in the render; PersistentVolumeClaims are never deleted (their data stays, as `inv remove` keeps it) but
named. A dry run builds and prints the plan and the commands, and touches no cluster: `inv diff --target k8s` is
the preview against the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiplatform.commands import INV
from aiplatform.errors import UserError
from aiplatform.k8s.kubectl import Kubectl, resource
from aiplatform.k8s.labels import MANAGED_BY, NAME, NAMESPACE, PART_OF, PLATFORM, TIER_LABEL, TIER_ORDER
from aiplatform.k8s.wait import ref, wait_tier

SHARED = "shared"
OWNED_SELECTOR = f"{PART_OF}={PLATFORM},{MANAGED_BY}={PLATFORM}"
KEPT_KINDS = ("PersistentVolumeClaim", "Namespace")  # never pruned: data, and everything in it
# The namespaced types prune looks at besides those in the render (a type the render no longer has at all).
PRUNABLE = (
    "deployment.apps",
    "statefulset.apps",
    "daemonset.apps",
    "job.batch",
    "cronjob.batch",
    "service",
    "configmap",
    "secret",
    "persistentvolumeclaim",
    "networkpolicy.networking.k8s.io",
    "endpointslice.discovery.k8s.io",
    "serviceaccount",
    "ingress.networking.k8s.io",
    "poddisruptionbudget.policy",
)
DEFAULT_TIMEOUT = 600


@dataclass
class Tier:
    name: str
    objects: list[dict[str, Any]]


@dataclass
class Plan:
    tiers: list[Tier]

    @property
    def objects(self) -> list[dict[str, Any]]:
        return [obj for tier in self.tiers for obj in tier.objects]


@dataclass
class Result:
    applied: list[str] = field(default_factory=list)  # tiers
    pruned: list[str] = field(default_factory=list)  # type/name
    kept: list[str] = field(default_factory=list)  # PVCs the render no longer has, left with their data


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """What identifies an object: its type (group-qualified), namespace and name."""
    meta = obj.get("metadata", {})
    return resource(obj), str(meta.get("namespace") or ""), str(meta.get("name", ""))


def make_plan(objects: list[dict[str, Any]], source: Path) -> Plan:
    """The objects grouped by tier: shared first, then TIER_ORDER. An unknown tier is the render's error."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        tier = _labels(obj).get(TIER_LABEL, SHARED)
        if tier not in TIER_ORDER and tier != SHARED:
            raise UserError(
                f"{source}: {ref(obj)} has {TIER_LABEL}={tier!r}; expected one of {', '.join(TIER_ORDER)}.",
                f"Render again with `{INV} render --target k8s` (edited by hand, or from another version?).",
            )
        grouped.setdefault(tier, []).append(obj)
    return Plan([Tier(name, grouped[name]) for name in (SHARED, *TIER_ORDER) if name in grouped])


def plan_lines(plan: Plan) -> list[str]:
    """The plan as text: each tier and its objects, with the service they belong to."""
    lines = []
    for tier in plan.tiers:
        lines.append(f"tier {tier.name}: {len(tier.objects)} object(s)")
        for obj in tier.objects:
            service = _labels(obj).get(NAME, "")
            lines.append(f"  {ref(obj)}" + (f"  ({service})" if service else ""))
    return lines


def owned(obj: dict[str, Any]) -> bool:
    """Made by this tool, in its namespace, by nobody else: prune may consider it."""
    labels, meta = _labels(obj), obj.get("metadata", {})
    return (
        labels.get(PART_OF) == PLATFORM
        and labels.get(MANAGED_BY) == PLATFORM
        and meta.get("namespace") == NAMESPACE
        and not meta.get("ownerReferences")
    )


def stale(kubectl: Kubectl, plan: Plan) -> tuple[list[str], list[str]]:
    """What prune would delete, and the PVCs it keeps: the tool's objects on the cluster the render does not have."""
    wanted = {key(obj)[0::2] for obj in plan.objects}  # (type, name): the render's objects have the namespace set
    kinds = sorted({*PRUNABLE, *(resource(obj) for obj in plan.objects if obj.get("kind") not in KEPT_KINDS)})
    found = [obj for obj in kubectl.get(kinds, OWNED_SELECTOR) if owned(obj) and key(obj)[0::2] not in wanted]
    delete = sorted(ref(obj) for obj in found if obj.get("kind") not in KEPT_KINDS)
    keep = sorted(ref(obj) for obj in found if obj.get("kind") in KEPT_KINDS)
    return delete, keep


def deploy(
    kubectl: Kubectl,
    plan: Plan,
    timeout: float,
    progress: Callable[[str], None],
    wait: Callable[..., None] = wait_tier,
) -> Result:
    """Apply each tier and wait for it; then prune. A tier that does not become ready raises (later tiers untouched,
    nothing pruned). In a dry run only the apply commands are printed."""
    result = Result()
    names = [tier.name for tier in plan.tiers]
    for index, tier in enumerate(plan.tiers):
        progress(f"tier {tier.name}: applying {len(tier.objects)} object(s)")
        kubectl.apply(tier.objects)
        if kubectl.runner.dry_run:
            continue
        wait(kubectl, tier.name, tier.objects, timeout, progress, later=names[index + 1 :])
        result.applied.append(tier.name)
    if kubectl.runner.dry_run:
        return result
    result.pruned, result.kept = stale(kubectl, plan)
    if result.pruned:
        progress(f"pruning {len(result.pruned)} object(s) the render no longer has")
        kubectl.delete(result.pruned)
    return result


def diff(kubectl: Kubectl, plan: Plan) -> tuple[bool, str]:
    """(differs, kubectl's diff) of the render against the cluster; kubectl's error (exit > 1) is a UserError."""
    answer = kubectl.diff(plan.objects)
    if answer.returncode > 1:
        detail = (answer.stderr or answer.stdout).strip().splitlines()[-15:]
        raise UserError(
            f"`kubectl diff --server-side` failed with exit code {answer.returncode}:\n" + "\n".join(detail),
            "Is the cluster up and is KUBECONFIG set? `kubectl cluster-info` shows which cluster kubectl reaches.",
            exit_code=2,
        )
    return answer.returncode == 1, answer.stdout
