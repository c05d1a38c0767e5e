"""The labels every object of the Kubernetes target carries, shared by the renderer and by deploy/diff/status.

Deploy applies the tree one tier at a time (TIER_ORDER, the compose deploy's order) by selecting on TIER_LABEL,
and prunes what carries MANAGED_BY's label but the render no longer has.
"""

from __future__ import annotations

from aiplatform.inputs.catalog import TIER_ORDER

NAMESPACE = "ai-platform"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
NAME = "app.kubernetes.io/name"
TIER_LABEL = "ai-platform/tier"
PLATFORM = "ai-platform"  # the value of PART_OF and MANAGED_BY

# The labels kustomization.yaml puts on every object (and into every selector it owns).
COMMON_LABELS = {PART_OF: PLATFORM, MANAGED_BY: PLATFORM}
# What `kubectl ... -l` selects to find every object the tool made.
MANAGED_SELECTOR = f"{MANAGED_BY}={PLATFORM}"

__all__ = ["COMMON_LABELS", "MANAGED_BY", "MANAGED_SELECTOR", "NAME", "NAMESPACE", "PART_OF", "PLATFORM",
           "TIER_LABEL", "TIER_ORDER", "service_labels", "tier_selector"]  # fmt: skip


def service_labels(service: str, tier: str) -> dict[str, str]:
    """Every label of one service's objects: the common ones, its name and its deploy tier."""
    if tier not in TIER_ORDER:
        raise ValueError(f"unknown tier {tier!r}; one of {', '.join(TIER_ORDER)}")
    return {**COMMON_LABELS, NAME: service, TIER_LABEL: tier}


def tier_selector(tier: str) -> str:
    """The `kubectl -l` selector of one tier's objects."""
    return f"{MANAGED_SELECTOR},{TIER_LABEL}={tier}"
