"""Start-up benchmark: how long the commands an owner types most take as whole processes, next to `python -c pass`
in the same run (the interpreter's own start, the floor nothing can go under).

Measured (no Docker needed), each the best and median wall time of N runs after one warm-up run, and the best CPU
time (user + system: what the command itself costs, steadier than wall time on a busy machine), with bytecode caching
on as on an owner's machine (PYTHONDONTWRITEBYTECODE is dropped for the children):

- `python -c pass`;
- `python -c "import tasks"`: what every `inv` command pays before it parses its flags;
- `inv --list` and `inv --help render`: nothing but invoke and the names of the tasks;
- `inv render --no-input` into a scratch out dir, with a root whose hardware profile setup recorded (as after
  `inv setup`), and again with none (the hardware measured: psutil and NVML are loaded too).

Aims, from issue 15: `inv --list` < 0.15 s and `inv render` < 0.3 s. Figures only: nothing here fails on time (a
command that fails does end it). Run: `python benchmarks/startup_bench.py` from the project dir.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
INV = [sys.executable, "-m", "invoke"]


def run_times(argv: list[str], runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each of `runs` runs of `argv` (after a warm-up run that also writes the bytecode
    caches)."""
    walls, cpus = [], []
    for index in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode:
            sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        if index:
            walls.append(seconds)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("AI_PLATFORM_")}

    with tempfile.TemporaryDirectory(prefix="aip-startup-bench-") as name:
        tmp = Path(name)
        recorded, measured = tmp / "root", tmp / "bare-root"
        subprocess.run([*INV, "detect", "--write", "--root", str(recorded)], cwd=PROJECT, env=env, check=True,
                       capture_output=True)  # fmt: skip

        def render(root: Path) -> list[str]:
            return [*INV, "render", "--no-input", "--answers", str(tmp / "absent.yaml"), "--root", str(root),
                    "--out", str(tmp / f"generated-{root.name}")]  # fmt: skip

        commands = [
            ("python -c pass", [sys.executable, "-c", "pass"], None),
            ("python -c 'import tasks'", [sys.executable, "-c", "import tasks"], None),
            ("inv --list", [*INV, "--list"], 0.15),
            ("inv --help render", [*INV, "--help", "render"], 0.15),
            ("inv render (hardware recorded)", render(recorded), 0.3),
            ("inv render (hardware measured)", render(measured), 0.3),
        ]
        results = [(label, *run_times(argv, args.runs, env), aim) for label, argv, aim in commands]

    floor = min(results[0][1])
    print(f"Start-up, whole processes, {args.runs} runs each, seconds (load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs; 'over pass' = best minus python -c pass):")  # fmt: skip
    print(f"  {'command':<32} {'best':>6} {'median':>7} {'CPU':>6} {'over pass':>10}  aim (best)")
    for label, walls, cpus, aim in results:
        best = min(walls)
        verdict = "" if aim is None else f"< {aim:.2f} s ({'met' if best < aim else 'NOT met'})"
        print(f"  {label:<32} {best:>6.3f} {statistics.median(walls):>7.3f} {min(cpus):>6.3f} {best - floor:>10.3f}  "
              f"{verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
