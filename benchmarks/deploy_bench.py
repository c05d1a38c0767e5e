"""Deploy benchmark: how close `inv deploy` gets to the ideal start-up time of the platform, on a real Docker engine.

The core services (no monitoring) are rendered with stand-in images whose health takes a set time: Postgres starts
3 s late (aiplatform-standin/postgres:bench, also used for postgres-init), LiteLLM answers healthy 2 s after it
starts (aiplatform-standin/litellm:bench), every other container is its `test` stand-in. The rendered healthchecks
are used unchanged. Measured, each from a clean engine (`inv cleanup --yes --purge` in between):

- deploy: the whole `inv deploy --out <out> --yes` process;
- ideal critical path: each container started alone (`docker compose up -d --wait --no-deps <container>`, once what
  it depends on is up), timed; oneshots count for their run time; the longest depends_on chain of those times;
- the original scripts' way: one compose file at a time in tier order, `up -d` its containers, then poll
  `docker inspect` until they are healthy before the next file;
- no-change redeploy: `inv deploy` again on the running platform: its time, and that it recreated nothing.

Figures only: nothing here fails on time; it exits non-zero only when something is broken (a deploy failed, a
container did not become healthy, a no-change redeploy recreated something). It needs a Docker engine, the `test`
stand-ins (`python -m tests.integration.standins.build --variants test`) and a disposable host: it refuses to run
while any ai-platform container exists, and removes everything it created.
"""

from __future__ import annotations

import argparse
import graphlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))  # tests.integration.standins is not installed

from aiplatform.engine.deploy import apply_files  # noqa: E402
from aiplatform.engine.docker import MANAGED, NETWORKS  # noqa: E402
from aiplatform.engine.docker import PROJECT as COMPOSE_PROJECT  # noqa: E402
from aiplatform.engine.project import Project, load_project  # noqa: E402
from aiplatform.generated.stamp import read_stamp  # noqa: E402
from tests.integration.standins.images import build_variant, images_override  # noqa: E402

HEALTH_INTERVAL = 5  # seconds: the rendered healthchecks' interval
POLL = 0.2  # seconds between `docker inspect` polls in the one-file-at-a-time run


class Broken(Exception):
    """Something failed that is not a matter of time: the benchmark stops and exits 1."""


def run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise Broken(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def inv(*args: str) -> tuple[float, str]:
    """One `inv` process: (wall seconds, its output)."""
    started = time.perf_counter()
    output = run([sys.executable, "-m", "invoke", *args], f"inv {' '.join(args)}")
    return time.perf_counter() - started, output


def timed(argv: list[str], what: str) -> float:
    started = time.perf_counter()
    run(argv, what)
    return time.perf_counter() - started


def stand_in_images() -> dict[str, str]:
    """The `test` stand-ins, with Postgres 3 s late and LiteLLM healthy 2 s after it starts."""
    images = images_override("test")
    inspect = [subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
               for image in images.values()]  # fmt: skip
    if any(done.returncode for done in inspect):
        raise Broken("stand-ins missing: run python -m tests.integration.standins.build --variants test")
    postgres = build_variant("postgres", "bench", start_delay=3)
    litellm = build_variant("litellm", "bench", healthy_after=2)
    return {**images, "postgres": postgres, "postgres-init": postgres, "litellm": litellm}


def platform_containers() -> list[str]:
    return run(["docker", "ps", "-aq", "--filter", f"label={MANAGED}"], "docker ps").split()


def teardown(root: Path) -> None:
    """Remove every platform container, network, volume and the root (the next measurement starts clean)."""
    inv("cleanup", "--yes", "--purge", "--root", str(root))


def prepare(out: Path, root: Path) -> Project:
    """What deploy does before `compose up`, done by hand: the root's files and the two networks."""
    apply_files(out, root)
    for name, internal in NETWORKS.items():
        labels = ["--label", MANAGED, "--label", f"com.docker.compose.project={COMPOSE_PROJECT}"]
        run(["docker", "network", "create", *labels, *(["--internal"] if internal else []), name], "network create")
    return load_project(root)


def compose(project: Project) -> list[str]:
    files = [arg for path in project.compose_files for arg in ("-f", str(path))]
    envs = [arg for path in project.env_files for arg in ("--env-file", str(path))]
    return ["docker", "compose", "-p", COMPOSE_PROJECT, *files, *envs]


def start_order(project: Project) -> list[str]:
    return list(graphlib.TopologicalSorter({n: c.depends_on for n, c in project.containers.items()}).static_order())


def alone_times(project: Project) -> dict[str, float]:
    """Each container's time to healthy (oneshots: to exit 0), started alone once its dependencies are up."""
    times = {}
    for name in start_order(project):
        if project.containers[name].oneshot:  # `up --wait` reports an exited oneshot as a failure: wait for exit 0
            started = time.perf_counter()
            run([*compose(project), "up", "-d", "--no-deps", name], f"compose up {name}")
            code = run(["docker", "wait", f"ai-platform-{name}"], f"docker wait {name}").strip()
            if code != "0":
                raise Broken(f"{name} exited {code}")
            times[name] = time.perf_counter() - started
        else:
            times[name] = timed([*compose(project), "up", "-d", "--wait", "--no-deps", name], f"compose up {name}")
    return times


def critical_path(project: Project, times: dict[str, float]) -> tuple[float, list[str]]:
    """The longest depends_on chain, each container counting for its own time: (seconds, chain)."""
    finish: dict[str, tuple[float, list[str]]] = {}
    for name in start_order(project):
        before = max((finish[dep] for dep in project.containers[name].depends_on), default=(0.0, []))
        finish[name] = (before[0] + times[name], [*before[1], name])
    return max(finish.values())


def settled(project: Project, names: list[str]) -> bool:
    """True when all `names` are healthy (oneshots: exited 0); a failed one raises Broken."""
    fmt = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.ExitCode}}"
    ready = True
    for name in names:
        status, *health, code = run(["docker", "inspect", "-f", fmt, f"ai-platform-{name}"], "inspect").split()
        if project.containers[name].oneshot:
            if status == "exited" and code != "0":
                raise Broken(f"{name} exited {code}")
            ready &= status == "exited"
        elif status != "running" or health == ["unhealthy"]:
            raise Broken(f"{name} is {status} {' '.join(health)}")
        else:
            ready &= health in ([], ["healthy"])
    return ready


def file_by_file(project: Project, services: list[str]) -> float:
    """The original scripts' way: each compose file's containers up, then wait for their health, then the next."""
    started = time.perf_counter()
    for service in services:
        names = project.containers_of([service])
        run([*compose(project), "up", "-d", *names], f"compose up {service}")
        deadline = time.perf_counter() + project.default_timeout()
        while not settled(project, names):
            if time.perf_counter() > deadline:
                raise Broken(f"{service} did not become healthy in {project.default_timeout()} s")
            time.sleep(POLL)
    return time.perf_counter() - started


def counts(output: str) -> tuple[int, int, float]:
    """(created, recreated, compose up seconds) from the last line of `inv deploy`."""
    match = re.search(r"(\d+) created, (\d+) recreated, \d+ unchanged.*\(([\d.]+) s\)", output)
    if not match:
        raise Broken(f"no 'N created, N recreated' line in the output of inv deploy:\n{output}")
    return int(match[1]), int(match[2]), float(match[3])


def bench(base: Path) -> int:
    root, out, answers = base / "root", base / "generated", base / "answers.yaml"
    answers.write_text(yaml.safe_dump({"services": [], "images": stand_in_images()}))
    inv("render", "--no-input", "--answers", str(answers), "--root", str(root), "--out", str(out))
    stamp = read_stamp(out)
    services = stamp.services if stamp else []

    deploy, output = inv("deploy", "--out", str(out), "--yes")
    created, _, up = counts(output)
    again, output = inv("deploy", "--out", str(out), "--yes")
    created_again, recreated_again, _ = counts(output)
    teardown(root)

    project = prepare(out, root)
    times = alone_times(project)
    path, chain = critical_path(project, times)
    teardown(root)

    project = prepare(out, root)
    scripts = file_by_file(project, services)
    teardown(root)

    print(f"deploy: inv deploy from a clean engine, {created} containers created: {deploy:.1f} s")
    print(f"  of which `compose up --wait`: {up:.1f} s; process start, preflight, plan, files: {deploy - up:.1f} s")
    print(f"ideal critical path: {path:.1f} s  ({' → '.join(f'{n} {times[n]:.1f} s' for n in chain)})")
    print(f"  each container timed alone; this includes Docker's healthcheck interval ({HEALTH_INTERVAL} s: the first")
    print("  check runs 5 s after a container starts), inherent to any orchestration that waits for health")
    print("  alone: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items()))
    print(f"original scripts' way: one compose file at a time ({', '.join(services)}): {scripts:.1f} s")
    print(f"no-change redeploy: {again:.1f} s, {created_again} created, {recreated_again} recreated")
    print()
    rows = [
        ("deploy (inv deploy, clean engine)", f"{deploy:.1f} s", ""),
        ("ideal critical path", f"{path:.1f} s", ""),
        ("ratio deploy / critical path", f"{deploy / path:.2f}", "≤ 1.3"),
        ("one compose file at a time", f"{scripts:.1f} s", f"> deploy ({deploy:.1f} s)"),
        ("no-change redeploy", f"{again:.1f} s", "< 3 s, 0 created, 0 recreated"),
    ]
    print(f"{'measure':<36} {'figure':>8}   aim")
    for name, figure, aim in rows:
        print(f"{name:<36} {figure:>8}   {aim}")
    if created_again or recreated_again:
        print(f"BUG: a no-change redeploy created {created_again} and recreated {recreated_again} containers")
        return 1
    return 0


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    if platform_containers():
        sys.exit("ai-platform containers exist on this engine: the benchmark needs a clean one (inv cleanup first)")
    base = Path(tempfile.mkdtemp(prefix="aip-deploy-bench-"))
    try:
        code = bench(base)
    except Broken as exc:
        print(f"deploy benchmark broken: {exc}", file=sys.stderr)
        code = 1
    finally:
        subprocess.run(
            [sys.executable, "-m", "invoke", "cleanup", "--yes", "--purge", "--root", str(base / "root")],
            cwd=PROJECT, capture_output=True, check=False,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
