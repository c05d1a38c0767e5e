"""Waiting for one tier of the cluster: its Deployments, StatefulSets and DaemonSets rolled out and Available, its
Jobs complete. Bounded: past the deadline (or at a failed Job) a UserError names each workload that is not ready,
its last condition and its last events, and says that later tiers were not applied.

The readiness rules are kubectl rollout status's: the controller has seen the newest spec (observedGeneration),
every replica is updated and ready, a Deployment says Available=True, a StatefulSet's current revision is the update
revision. Polls `kubectl get` (read-only); the clock and the sleep are arguments so tests run in no time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiplatform.commands import SUDO_INV
from aiplatform.errors import UserError
from aiplatform.k8s.kubectl import Kubectl, resource
from aiplatform.k8s.labels import tier_selector

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
POLL_SECONDS = 3.0


@dataclass(frozen=True)
class State:
    ready: bool
    failed: bool
    text: str  # "1/1 available", "0/1 ready", "complete", "failed: BackoffLimitExceeded ..."


def is_workload(obj: dict[str, Any]) -> bool:
    return obj.get("kind") in WORKLOAD_KINDS


def ref(obj: dict[str, Any]) -> str:
    """`deployment.apps/litellm`: how kubectl names one object."""
    return f"{resource(obj)}/{obj.get('metadata', {}).get('name', '')}"


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) or [] if c.get("type") == kind), {})


def last_condition(obj: dict[str, Any]) -> str:
    """The newest condition of an object as `Type=Status Reason: message`, or '' when it has none."""
    conditions = obj.get("status", {}).get("conditions", []) or []
    if not conditions:
        return ""
    last = max(conditions, key=lambda c: str(c.get("lastTransitionTime") or c.get("lastUpdateTime") or ""))
    text = f"{last.get('type')}={last.get('status')} {last.get('reason', '')}".strip()
    return f"{text}: {last['message']}" if last.get("message") else text


def state(obj: dict[str, Any]) -> State:
    """Whether a workload (as the cluster answers it) is ready, failed for good, and how to say where it is."""
    kind, spec, status = obj.get("kind"), obj.get("spec", {}), obj.get("status", {}) or {}
    seen = status.get("observedGeneration", 0) >= obj.get("metadata", {}).get("generation", 0)
    if kind == "Job":
        if _condition(obj, "Failed").get("status") == "True":
            return State(False, True, f"failed: {last_condition(obj)}")
        done = _condition(obj, "Complete").get("status") == "True"
        return State(done, False, "complete" if done else f"running ({status.get('active', 0)} active)")
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled", 0)
        ready = status.get("numberReady", 0)
        ok = seen and status.get("updatedNumberScheduled", 0) == want and ready == want
        return State(ok, False, f"{ready}/{want} ready")
    want = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    updated = status.get("updatedReplicas", 0) >= want
    if kind == "StatefulSet":
        current = status.get("currentRevision") == status.get("updateRevision")
        return State(seen and updated and ready >= want and current, False, f"{ready}/{want} ready")
    available = _condition(obj, "Available").get("status") == "True"
    ok = seen and updated and available and ready >= want and status.get("availableReplicas", 0) >= want
    return State(ok, False, f"{ready}/{want} available" if ok else f"{ready}/{want} ready")


def _events_of(name: str, events: list[dict[str, Any]], count: int = 3) -> list[str]:
    """The last events of a workload and of what it made (its pods: NAME-..., NAME-0)."""
    mine = [e for e in events if (e.get("involvedObject", {}).get("name", "") + "-").startswith(name + "-")]
    mine.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return [
        f"{e.get('type', '')} {e.get('reason', '')} {e.get('involvedObject', {}).get('kind', '').lower()}/"
        f"{e.get('involvedObject', {}).get('name', '')}: {str(e.get('message', '')).strip()}"
        for e in mine[-count:]
    ]


def wait_tier(
    kubectl: Kubectl,
    tier: str,
    expected: list[dict[str, Any]],
    timeout: float,
    progress: Callable[[str], None],
    later: list[str],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until every workload of `expected` (the render's, of this tier) is ready; else a UserError."""
    names = {ref(obj) for obj in expected if is_workload(obj)}
    if not names:
        return
    kinds = sorted({resource(obj) for obj in expected if is_workload(obj)})
    deadline, shown = clock() + timeout, dict[str, str]()
    while True:
        found = {ref(obj): obj for obj in kubectl.get(kinds, tier_selector(tier)) if ref(obj) in names}
        states = {name: state(found[name]) if name in found else State(False, False, "not created") for name in names}
        for name in sorted(names):
            if shown.get(name) != states[name].text:
                shown[name] = states[name].text
                progress(f"{tier}: {name} {states[name].text}")
        failed = sorted(name for name, st in states.items() if st.failed)
        waiting = sorted(name for name, st in states.items() if not st.ready)
        if not waiting:
            return
        if failed or clock() >= deadline:
            raise _not_ready(kubectl, tier, failed or waiting, found, states, timeout, later)
        sleep(POLL_SECONDS)


def _not_ready(
    kubectl: Kubectl,
    tier: str,
    names: list[str],
    found: dict[str, dict[str, Any]],
    states: dict[str, State],
    timeout: float,
    later: list[str],
) -> UserError:
    events = kubectl.events()
    lines = []
    for name in names:
        obj = found.get(name, {})
        detail = last_condition(obj) if obj and obj.get("kind") != "Job" else ""
        lines.append(f"  {name}: {states[name].text}" + (f"; last condition {detail}" if detail else ""))
        lines += [f"    event: {event}" for event in _events_of(name.partition("/")[2], events)]
    failed = any(states[name].failed for name in names)
    head = (
        f"Tier {tier}: a Job failed."
        if failed
        else f"Tier {tier} did not become Available within {timeout:g} s (`--timeout` sets how long a tier may take)."
    )
    stop = f" Later tiers ({', '.join(later)}) were not applied." if later else ""
    first = names[0]
    return UserError(
        head + stop + "\n" + "\n".join(lines),
        f"Look closer with `kubectl -n {kubectl.namespace} describe {first}` and `kubectl -n {kubectl.namespace} "
        f"logs {first}`; once fixed, `{SUDO_INV} deploy --target k8s` again.",
    )
