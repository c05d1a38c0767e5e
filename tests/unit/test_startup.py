"""Start-up cost: `import tasks`, `inv --list` and `inv --help TASK` load invoke and a few small modules of the
package, never rich, pydantic, the catalog, the renderer or the Docker client (a task imports what it needs when it
runs). Checked by what a fresh interpreter has in sys.modules; the timings are in `nox -s bench`
(benchmarks/startup_bench.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import PROJECT

# Packages and modules that only a running task may load: the libraries that cost start-up time, and the package's
# modules that import them (a small module of the package, like aiplatform.paths, may be imported at the top).
HEAVY = (
    "rich",
    "pydantic",
    "pydantic_core",
    "psutil",
    "pynvml",
    "jinja2",
    "httpx",
    "ruamel",
    "python_on_whales",
    "aiplatform.inputs.catalog",
    "aiplatform.inputs.settings",
    "aiplatform.inputs.context",
    "aiplatform.inputs.hardware",
    "aiplatform.render",
    "aiplatform.generated",
    "aiplatform.engine",
    "aiplatform.manage",
    "aiplatform.configure",
    "aiplatform.backup",
    "aiplatform.cli.tables",
    "aiplatform.cli.prompts",
    "aiplatform.cli.console",
)

SCRIPT = """
import contextlib, io, json, sys
from invoke import Collection, Program
import tasks
argv = sys.argv[1:]
if argv:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            Program(namespace=Collection.from_module(tasks), binary="inv").run(["inv", *argv])
        except SystemExit:
            pass
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(*argv: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *argv], cwd=PROJECT, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", [(), ("--list",), ("--help", "render"), ("add", "--help")], ids=" ".join)
def test_naming_the_tasks_loads_no_heavy_module(argv):
    heavy = [m for m in _loaded(*argv) if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert not heavy, f"`inv {' '.join(argv)}` imported {heavy}: import them inside the task or function that uses them"


def test_the_output_modules_load_when_a_task_prints(capsys):
    from aiplatform.cli import console, tables

    console.out.print(tables.info_table.__doc__.split(":")[0])  # the names resolve to the real modules
    assert "Each service's URLs" in capsys.readouterr().out
