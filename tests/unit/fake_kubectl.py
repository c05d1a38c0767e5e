"""A stand-in for kubectl (not the real one, and no cluster): put first on PATH by tests/unit/test_k8s_apply.py as an
executable named `kubectl`. It records every call (argv, stdin) as a JSON line to $FAKE_KUBECTL_LOG and answers from
a scripted state in $FAKE_KUBECTL_STATE (JSON), which it updates as a cluster would:

- `kustomize DIR`: prints state["build"] (the render's objects, YAML);
- `apply ... -f -`: stores the objects of stdin in state["cluster"] (a workload starts not ready);
- `get TYPES -n NS -l SELECTOR -o json` (TYPES comma-separated, `events` alone): the cluster's objects of those types
  in NS whose labels match; a workload is ready once it was asked for state["ready_after"][type/name] times (default
  1; "never": never ready; "fail": a Job that failed);
- `delete -n NS --ignore-not-found TYPE/NAME...`: removes them;
- `diff ...`: exits state["diff"]["code"] with its "out" on stdout and "err" on stderr;
- `wait ...` and `rollout status ...`: exit 0 (the tool polls `get` instead; answered in case).
"""

from __future__ import annotations

import json
import os
import sys

import yaml


def resource(obj):
    group = str(obj.get("apiVersion", "v1")).rpartition("/")[0]
    kind = str(obj.get("kind", "")).lower()
    return f"{kind}.{group}" if group else kind


def ref(obj):
    return f"{resource(obj)}/{obj['metadata']['name']}"


def matches(obj, selector):
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def option(args, name):
    return args[args.index(name) + 1] if name in args else None


def with_status(obj, asked, rule):
    """The object as the cluster would answer: a workload's status after `asked` reads, by its rule."""
    obj = json.loads(json.dumps(obj))
    kind = obj.get("kind")
    ready = rule not in ("never", "fail") and asked >= int(rule)
    obj["metadata"]["generation"] = 1
    replicas = obj.get("spec", {}).get("replicas", 1)
    if kind == "Job":
        if rule == "fail":
            cond = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit"}]  # fmt: skip
        else:
            cond = [{"type": "Complete", "status": "True"}] if ready else []
        obj["status"] = {"conditions": cond, "active": 0 if ready else 1}
    elif kind in ("Deployment", "StatefulSet"):
        count = replicas if ready else 0
        obj["status"] = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": count,
                         "updatedReplicas": replicas, "availableReplicas": count,
                         "currentRevision": "r1", "updateRevision": "r1"}  # fmt: skip
        if kind == "Deployment":
            obj["status"]["conditions"] = [
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Available", "status": "True" if ready else "False",
                 "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                 "message": "Deployment has minimum availability." if ready
                 else "Deployment does not have minimum availability.",
                 "lastTransitionTime": "2026-01-01T00:00:05Z"},
            ]  # fmt: skip
    return obj


def main() -> int:
    args = sys.argv[1:]
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
        log.write(json.dumps({"argv": args, "stdin": stdin}) + "\n")
    path = os.environ["FAKE_KUBECTL_STATE"]
    with open(path) as file:
        state = json.load(file)
    cluster, asked = state.setdefault("cluster", []), state.setdefault("asked", {})
    verb = args[0] if args else ""
    code = 0
    if verb == "kustomize":
        sys.stdout.write(state["build"])
    elif verb == "apply":
        for obj in yaml.safe_load_all(stdin):
            if obj:
                cluster[:] = [o for o in cluster if ref(o) != ref(obj)] + [obj]
                asked[ref(obj)] = 0
                print(f"{ref(obj)} serverside-applied")
    elif verb == "get" and args[1] == "events":
        print(json.dumps({"items": state.get("events", [])}))
    elif verb == "get":
        types, namespace, selector = args[1].split(","), option(args, "-n"), option(args, "-l") or ""
        items = []
        for obj in cluster:
            here = obj.get("metadata", {}).get("namespace") == namespace
            if resource(obj) in types and here and matches(obj, selector):
                asked[ref(obj)] = asked.get(ref(obj), 0) + 1
                items.append(with_status(obj, asked[ref(obj)], state.get("ready_after", {}).get(ref(obj), 1)))
        print(json.dumps({"items": items}))
    elif verb == "delete":
        names = [a for a in args[1:] if "/" in a]
        cluster[:] = [o for o in cluster if ref(o) not in names]
        for name in names:
            print(f"{name} deleted")
    elif verb == "diff":
        answer = state.get("diff", {"code": 0})
        sys.stdout.write(answer.get("out", ""))
        sys.stderr.write(answer.get("err", ""))
        code = answer["code"]
    elif verb not in ("wait", "rollout"):
        sys.stderr.write(f"fake kubectl: {verb!r} is not scripted\n")
        code = 2
    with open(path, "w") as file:
        json.dump(state, file)
    return code


if __name__ == "__main__":
    sys.exit(main())
