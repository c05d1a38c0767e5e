"""Render benchmark: how long `inv render` takes, and how render time grows with the size of the catalog.

Measured, in one run (no Docker needed):

- the whole `inv render --no-input` process on this machine's defaults (`python -m invoke render ...` from the
  project dir, so interpreter start, imports, hardware detection and writing are included), each run into an empty
  out dir: best and median of N runs;
- a re-render with no change into the same out dir: process time and the files it wrote (created + changed from
  the summary line "Files: X created, Y changed, Z unchanged"; anything but 0 is a bug and exits 1);
- `render.render_tree(platform)` in-process for the full catalog (every optional service on, a fixed Hardware,
  placeholder secrets): median of ~20 runs;
- the same with 10, 50 and 100 extra synthetic services (copies of templates/services/flowise/ with unique names,
  secrets, databases, routes and ports) in a temp copy of templates/: median of ~10 runs each.

Figures only: nothing here fails on time. Run: `python benchmarks/render_bench.py` from the project dir.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.hardware import Hardware
from aiplatform.inputs.settings import Settings
from aiplatform.paths import TEMPLATES_DIR
from aiplatform.render.platform import Platform, wanted_secrets
from aiplatform.render.tree import render_tree

PROJECT = Path(__file__).resolve().parents[1]
HARDWARE = Hardware(8, "Bench CPU", 32, "/mnt", 500, 1000, "SSD", (), "no NVIDIA GPU found")
SUMMARY = re.compile(r"Files: (\d+) created, (\d+) changed, (\d+) unchanged")
TEMPLATE_SERVICE = "flowise"  # a simple optional service: one container, a database, secrets, a route, a port


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def inv_render(tmp: Path) -> tuple[float, str]:
    """One `inv render --no-input` process: (seconds, its output); a failed render ends the benchmark."""
    argv = [sys.executable, "-m", "invoke", "render", "--no-input", "--answers", str(tmp / "absent.yaml")]
    argv += ["--root", str(tmp / "root"), "--out", str(tmp / "generated")]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"inv render failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds, done.stdout


def platform_for(templates: Path) -> Platform:
    """Every optional service of the catalog at `templates` on, fixed hardware, placeholder secrets."""
    catalog = load_catalog(templates / "services")
    settings = Settings(services=list(catalog.optional), models=["llama3.2:3b", "nomic-embed-text"])
    shell = Platform(settings, "standard", catalog, HARDWARE, "192.0.2.10", {}, templates_dir=templates)
    secrets = {s.name: f"SECRET-{s.name}-value" for s in wanted_secrets(shell)}
    return Platform(settings, "standard", catalog, HARDWARE, "192.0.2.10", secrets, templates_dir=templates)


def add_synthetic_services(services_dir: Path, count: int) -> None:
    """`count` copies of the template service, every name, secret, database, subdomain and port made unique."""
    source = TEMPLATES_DIR / "services" / TEMPLATE_SERVICE
    for index in range(count):
        name = f"bench{index:03d}"  # letters and digits only: valid as a service, container, database and subdomain
        folder = services_dir / name
        folder.mkdir()
        for path in source.iterdir():
            text = path.read_text()
            text = text.replace("127.0.0.1:3001:3000", f"127.0.0.1:{30000 + index}:3000")
            text = text.replace("ip_port: 7443", f"ip_port: {20000 + index}")
            text = text.replace(TEMPLATE_SERVICE.upper(), name.upper()).replace(TEMPLATE_SERVICE, name)
            (folder / path.name).write_text(text.replace(TEMPLATE_SERVICE.capitalize(), name.capitalize()))


def median_ms(platform: Platform, runs: int) -> tuple[float, int]:
    """Median render_tree time in ms over `runs` (after one warm-up), and the number of files it renders."""
    files = len(render_tree(platform))
    return statistics.median(timed(lambda: render_tree(platform)) for _ in range(runs)) * 1000, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="inv render processes timed (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aip-render-bench-") as name:
        tmp = Path(name)
        fresh = []
        for _ in range(args.runs):
            shutil.rmtree(tmp / "generated", ignore_errors=True)
            fresh.append(inv_render(tmp)[0])
        again, output = inv_render(tmp)
        match = SUMMARY.search(output)
        if not match:
            sys.exit(f"no 'Files: ...' summary line in the output of inv render:\n{output}")
        written = int(match[1]) + int(match[2])

        full_ms, full_files = median_ms(platform_for(TEMPLATES_DIR), 20)
        growth = []
        for extra in (10, 50, 100):
            templates = tmp / f"templates-{extra}"
            shutil.copytree(TEMPLATES_DIR, templates)
            add_synthetic_services(templates / "services", extra)
            platform = platform_for(templates)
            services = len(platform.catalog.enabled(platform.settings.services))
            ms, files = median_ms(platform, 10)
            growth.append((extra, services, files, ms))

    print(f"inv render (whole process, this machine's defaults, empty out dir), {args.runs} runs:")
    print(f"  best {min(fresh):.2f} s, median {statistics.median(fresh):.2f} s    aim < 1 s")
    print("inv render again, nothing changed:")
    print(f"  {again:.2f} s, {written} files written ({match[3]} unchanged)    aim: 0 files written")
    services = len(platform_for(TEMPLATES_DIR).catalog.services)
    print(f"render_tree in-process, full catalog ({services} services, {full_files} files), median of 20:")
    print(f"  {full_ms:.1f} ms    aim < 100 ms")
    print("render_tree in-process with extra catalog services, median of 10:")
    print(f"  {'extra':>5} {'services':>8} {'files':>6} {'ms':>8} {'ms/service':>10}")
    for extra, count, files, ms in growth:
        print(f"  {extra:>5} {count:>8} {files:>6} {ms:>8.1f} {ms / count:>10.2f}")
    if written:
        sys.exit(f"BUG: a re-render with no change wrote {written} files (expected 0)")


if __name__ == "__main__":
    main()
