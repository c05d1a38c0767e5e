"""The service catalog: one folder per service under templates/services/<name>/, read and checked here.

A folder holds `service.yaml` (the metadata below), `compose.yml.j2` and the config templates the service owns.
Adding a service never needs Python: `cookiecutter cookiecutter-service` makes such a folder, and this module is
the contract it must meet (pinned images, 127.0.0.1-only ports except the proxy, known tiers and dependencies).
"""

from __future__ import annotations

import graphlib
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aiplatform.commands import INV
from aiplatform.errors import UserError
from aiplatform.inputs.images import image_problem
from aiplatform.paths import SERVICES_DIR
from aiplatform.text import CONTROL
from aiplatform.yamlfile import load_yaml, validation_error

TIER_ORDER = ("infra", "ai", "apps", "monitoring", "proxy")
_NAME = r"^[a-z][a-z0-9-]*$"
_ENV_NAME = r"^[A-Z][A-Z0-9_]*$"
_UPSTREAM = r"^[a-z][a-z0-9-]*:[0-9]{1,5}$"
ADMIN_PASSWORD = "ADMIN_PASSWORD"  # the platform's own secret: every service's admin may sign in with it


def _upstream(value: str) -> str:
    if not re.fullmatch(_UPSTREAM, value):
        raise ValueError(f"upstream {value!r} must be container:port, like open-webui:8080")
    return value


Upstream = Annotated[str, AfterValidator(_upstream)]  # a container of the platform and the port it listens on
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")  # mounting one is the docker-socket privilege


def bind_source(volume: object) -> str:
    """What a compose `volumes:` entry mounts from: `source` of the long syntax, the part before `:` of the short one
    (a host path for a bind mount, a volume's name for a named one; a `${VAR:-default}` in it is kept whole)."""
    if isinstance(volume, dict):
        return str(volume.get("source", ""))
    found = _SHORT_SOURCE.match(str(volume))
    return found.group(0) if found else ""


_SHORT_SOURCE = re.compile(r"(?:\$\{[^}]*\}|[^:])*")  # up to the first `:` outside a variable


# Privileges a container may declare in service.yaml (render sets them; a template may not): the whole host's
# devices and kernel, its process table, its network stack, the Docker engine (root-equivalent), the host's IPC,
# hostname, cgroup or user namespace; and, with a value: one capability (cap:NAME), one device (device:/dev/X, as
# compose's `devices:` entry), one device cgroup rule (device-rule:RULE), one security option
# (security-opt:VALUE) or one host path mounted read-write (host-path:/PATH; a read-only one is named under the
# container's `host_paths:` instead).
PRIVILEGES = ("privileged", "host-pid", "host-network", "docker-socket", "host-ipc", "host-uts", "host-cgroup",
              "host-userns")  # fmt: skip
_VALUED_PRIVILEGE = re.compile(
    r"cap:[A-Z_]+|device:/dev/[^\s:]+(:/dev/[^\s:]+)?(:[rwm]+)?|device-rule:[abc] (\d+|\*):(\d+|\*) [rwm]+"
    r"|security-opt:[a-z-]+[:=]\S+|host-path:/\S*"
)
# Those that are root on the host: a service that declares one runs only once its owner accepted it. A device is,
# except the kernel's log (read by cAdvisor); a security option that lifts a confinement is.
ROOT_EQUIVALENT = ("privileged", "host-network", "docker-socket", "host-userns")
_ROOT_EQUIVALENT_PREFIXES = ("host-path:", "device:", "device-rule:")
_HARMLESS = ("device:/dev/kmsg",)


def is_root_equivalent(privilege: str) -> bool:
    """Whether a privilege of service.yaml amounts to root on the host."""
    if privilege in ROOT_EQUIVALENT:
        return True
    if privilege.startswith("security-opt:"):
        return "unconfined" in privilege or "disable" in privilege
    return privilege.startswith(_ROOT_EQUIVALENT_PREFIXES) and privilege not in _HARMLESS


AUTH_MISSING = (
    "a service with a `route:` must say who asks for a login on it: `auth: app` (it has its own sign-in and refuses "
    "requests without credentials) or `auth: caddy` (Caddy asks for the platform's admin and password in front of it)"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _pinned_ref(reference: str, what: str) -> str:
    problem = image_problem(reference)
    if problem:
        raise ValueError(f"{what} {reference!r} {problem}")
    return reference


class BuildSpec(_Strict):
    """An image deploy builds FROM the catalog's one (what the upstream image lacks, like a database driver): a
    Dockerfile template of the service's folder, and the tag it gets (pinned like any image)."""

    dockerfile: str = Field(description="the Dockerfile template in the service's folder; it starts FROM `image`")
    tag: str = Field(description="the tag of the image it builds, pinned like any image")

    @field_validator("tag")
    @classmethod
    def _pinned(cls, tag: str) -> str:
        return _pinned_ref(tag, "build tag")


class ContainerSpec(_Strict):
    """One compose service (container) of a catalog service."""

    image: str = Field(description="its image, pinned: a release tag (16.4, a date) or a digest, never `latest`")
    build: BuildSpec | None = Field(
        None, description="deploy builds its image FROM `image` (render writes the Dockerfile)"
    )
    reload: list[str] | None = Field(
        None, description="a command run in it that re-reads its mounted config (instead of a restart)"
    )
    port: int | None = Field(None, ge=1, le=65535, description="the port it listens on in its container")
    publish: list[
        Annotated[str, StringConstraints(pattern=r"^(\d{1,3}(\.\d{1,3}){3}:)?\d{1,5}:\d{1,5}(/(tcp|udp))?$")]
    ] = Field(default_factory=list, description="host ports: `127.0.0.1:HOST:PORT` (only the proxy binds all)")
    healthcheck: list[str] | None = Field(
        None, description="`[CMD, ...]` or `[CMD-SHELL, ...]`: a command that exists in the image"
    )
    health_path: str | None = Field(None, description="the HTTP path the healthcheck asks for")
    health_timeout: int = Field(180, ge=1, le=3600, description="seconds deploy waits for it to become healthy")
    networks: list[Literal["ai-platform", "ai-backend"]] = Field(
        ["ai-platform"], description="networks it joins; `ai-backend` has no way out"
    )
    host_ollama: bool = Field(False, description="reaches the host's Ollama through host.docker.internal")
    oneshot: bool = Field(False, description="runs to completion (exit 0) instead of staying up")
    requires_gpu: bool = Field(False, description="rendered only when the host has an NVIDIA GPU")

    privileges: list[str] = Field(
        default_factory=list,
        description="what it may do beyond a plain container: `host-pid`, `cap:NAME`, ... (listed above)",
    )
    host_paths: list[str] = Field(
        default_factory=list, description="host paths outside the root it may bind-mount, read-only (the mount says so)"
    )

    @field_validator("image")
    @classmethod
    def _pinned(cls, image: str) -> str:
        return _pinned_ref(image, "image")

    @field_validator("privileges")
    @classmethod
    def _privileges(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in PRIVILEGES and not _VALUED_PRIVILEGE.fullmatch(item):
                raise ValueError(
                    f"privilege {item!r}: expected one of {', '.join(PRIVILEGES)}, cap:NAME, device:/dev/X, "
                    "device-rule:RULE, security-opt:VALUE or host-path:/PATH"
                )
        return value

    @field_validator("host_paths")
    @classmethod
    def _host_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/") or re.search(r"[\s:]", path) or "/.." in path:
                raise ValueError(f"host_paths: {path!r} must be an absolute host path (no spaces, colons or ..)")
        return value

    @field_validator("healthcheck")
    @classmethod
    def _health(cls, test: list[str] | None) -> list[str] | None:
        if test is not None and (len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL")):
            raise ValueError("healthcheck must be a list starting with CMD or CMD-SHELL")
        return test


class SecretSpec(_Strict):
    """A secret of the service, generated once in its format and kept in credentials.env."""

    name: str = Field(pattern=_ENV_NAME, description="its name in credentials.env, as templates use it")
    format: Literal["password", "admin_password", "hex32", "hex64", "token", "litellm_key", "base64_32"] = Field(
        description="its kind"
    )
    description: str = Field("", description="what it is for")


class DatabaseSpec(_Strict):
    """A Postgres database with its own user; the password lives in the secret `password`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the database's name")
    user: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="its user, who owns it")
    password: str = Field(pattern=_ENV_NAME, description="the secret that is the user's password (generated)")


class PathRoute(_Strict):
    """A path of a route that goes elsewhere than the service's default upstream, with request headers to set."""

    upstream: Upstream = Field(description="container:port the path goes to, like api:5001")
    headers: dict[str, str] = Field(
        default_factory=dict, description="request headers to set: header -> value (Caddy placeholders allowed)"
    )


class RouteSpec(_Strict):
    """How Caddy reaches the service: `<subdomain>.<domain>` with a domain, `https://<ip>:<ip_port>` with an IP."""

    subdomain: str = Field(
        "", pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$", description="with a domain; empty = the domain itself"
    )
    ip_port: int = Field(ge=1, le=65535, description="the port Caddy serves it on by IP")
    upstream: Upstream = Field(description="container:port Caddy sends requests to, like open-webui:8080")
    paths: dict[str, PathRoute] = Field(
        default_factory=dict,
        description="path (`/api/*`) -> container:port or a path route, tried before `upstream`",
    )

    @field_validator("paths", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        for path in value:
            if not re.fullmatch(r"/[A-Za-z0-9._~/-]*\*?", str(path)):
                raise ValueError(f"path {path!r}: expected a path like /api/*")
        # the short form `/api/*: api:5001` is a route with no headers: one shape, one set of errors for both forms
        return {path: {"upstream": target} if isinstance(target, str) else target for path, target in value.items()}


class MetricsSpec(_Strict):
    """What Prometheus scrapes."""

    job: str = Field(description="the Prometheus job's name")
    target: str = Field(pattern=_UPSTREAM, description="container:port it scrapes")
    path: str = Field("/metrics", pattern=r"^/\S*$", description="the HTTP path of the metrics")


def _relative(value: str, where: str, example: str) -> str:
    """`value` as a relative path of plain names: render or backup joins it to a folder of the root."""
    parts = value.split("/")
    if (
        value.startswith("/")
        or "\\" in value
        or CONTROL.search(value)
        or any(part in ("", ".", "..") or part != part.strip() for part in parts)
    ):
        raise ValueError(f"expected a relative path of plain names under {where}, like {example}")
    return value


class FileSpec(_Strict):
    """A config template the service owns and where it lands in the tree; `each: database` renders one per DB."""

    template: str = Field(description="the config template in the service's folder")
    path: str = Field(description="where it lands under the root (config/...); with `each`, `{name}` is the database")
    mode: int = Field(0o644, description='its file mode, written as an octal string in YAML: "0755"')
    each: Literal["database"] | None = Field(None, description="one file per database of the enabled services")

    @field_validator("mode", mode="before")
    @classmethod
    def _octal(cls, value: object) -> object:
        return int(value, 8) if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _relative(value, "the root", "config/NAME/app.ini").startswith("config/"):
            raise ValueError("expected a path under config/, like config/NAME/app.ini")
        return value


class AlreadyAnswer(_Strict):
    """The answer that means a setup call's work was done before: one of these statuses, with this text in it."""

    status: list[int] = Field(min_length=1, description="the HTTP statuses it may have")
    contains: str = Field("", description="text in the answer (case ignored)")


class AlreadyIf(_Strict):
    """A read-only call asked before a setup call that changes something: when the JSON field `field` (dotted) of
    its 2xx answer equals `equals`, the work was done before and the change is not sent (a dry run can tell too)."""

    request: str = Field(pattern=r"^(GET|POST) /\S*$", description="the read-only call: method and path")
    field: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", description="a JSON field of its 2xx answer"
    )
    equals: str | int | bool = Field(description="the value that means done before (same type: 0 is not false)")


class SetupCall(_Strict):
    """A first-run step that is one HTTP call (see configure/declared.py): which call, what it sends, and which
    answers mean done (it changed something), already done, or ok (a check)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    step: str = Field(min_length=1, description="its name, as configure reports it")
    request: str = Field(pattern=r"^(GET|POST|PUT|PATCH|DELETE) /\S*$", description="the call: method and path")
    container: str | None = Field(None, description="the container asked; default: the first published on 127.0.0.1")
    json_body: Any = Field(
        None, alias="json", description="the JSON body: `{admin_email}`, `{secret:NAME}`, ... are filled in"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="request headers: header -> value")
    basic_auth: tuple[str, str] | None = Field(None, description="`[user, password]` for HTTP basic auth")
    done: list[int] = Field(
        default_factory=list, description="statuses that mean it changed something (`done` or `ok` is required)"
    )
    already: AlreadyAnswer | None = Field(None, description="the answer that means it was done before")
    already_if: AlreadyIf | None = Field(
        None, description="a read-only call asked first; when it says done, the change is not sent"
    )
    ok: list[int] = Field(default_factory=list, description="statuses that mean fine: a check that changes nothing")
    show_answer: bool = Field(False, description="configure shows an excerpt of an `ok` answer")
    fix: str = Field("", description="what to do, shown when the call fails")

    @model_validator(mode="after")
    def _answers(self) -> SetupCall:
        if not (self.done or self.ok):
            raise ValueError(f"setup step {self.step!r}: give `done` (it changes something) or `ok` (a check) statuses")
        return self


class LoginSpec(_Strict):
    """How the owner signs in, for `inv info`: the user (placeholders as in setup calls) and the secret that is the
    password (shown only with --show-secrets)."""

    user: str = Field(description="the user name (placeholders as in setup steps)")
    password: str = Field(
        pattern=_ENV_NAME, description="the secret that is the password (shown with `inv info --show-secrets`)"
    )
    kind: Literal["password", "api_key"] = Field("password", description="what the secret is, as `inv info` names it")
    note: str = Field("", description="a line more for `inv info`, like other users' login")


class NeedsSpec(_Strict):
    """What a service takes from the host when it runs, for the `inv add` menu (rough figures, idle to light use)."""

    ram_gb: float = Field(0.5, ge=0, le=4096, description="GB of RAM it takes")
    disk_gb: float = Field(1, ge=0, le=100_000, description="GB of disk it takes")


class BackupSpec(_Strict):
    """How `inv backup` copies a service consistently: its own dump where it has one, and its files (named volumes
    and folders under data/) with its containers briefly stopped, copied while it runs, or left out — with why."""

    dump: Literal["postgres", "qdrant"] | None = Field(
        None, description="its own dump: each Postgres database, each Qdrant collection's snapshot"
    )
    files: Literal["stop", "live", "skip"] = Field(
        "stop", description="its files copied with its containers stopped, while it runs, or left out"
    )
    skip: list[str] = Field(default_factory=list, description="volumes left out (what the service rebuilds)")
    extra: list[str] = Field(
        default_factory=list, description="folders under data/ no compose file mounts (spawned containers')"
    )
    why: str = Field("", description="the reason `inv backup` gives for what it leaves out")

    @field_validator("extra")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        return [_relative(folder, "data/", "notebooks") for folder in value]


class ServiceSpec(_Strict):
    """A service folder's service.yaml."""

    name: str = Field(pattern=_NAME, description="the service's name, the same as its folder's")
    description: str = Field(description="what it is, one sentence (`inv add` shows it)")
    tier: Literal["infra", "ai", "apps", "monitoring", "proxy"] = Field(
        description="when it is deployed, in this order"
    )
    core: bool = Field(False, description="it always runs; else it is optional (`inv add`)")
    depends_on: list[str] = Field(default_factory=list, description="services it needs, of its own or an earlier tier")
    containers: dict[str, ContainerSpec] = Field(
        min_length=1, description="compose services by name: lower-case, digits, -"
    )
    secrets: list[SecretSpec] = Field(
        default_factory=list, description="secrets generated for it once, kept in credentials.env"
    )
    databases: list[DatabaseSpec] = Field(default_factory=list, description="Postgres databases of its own")
    route: RouteSpec | None = Field(None, description="how Caddy reaches it; none: no web address")
    auth: Literal["app", "caddy"] | None = Field(
        None,
        validate_default=True,
        description="who asks for a login on the route (required with one): its own sign-in, or Caddy's",
    )
    metrics: list[MetricsSpec] = Field(default_factory=list, description="what Prometheus scrapes")
    files: list[FileSpec] = Field(default_factory=list, description="the config templates it owns")
    volumes: list[str] = Field(default_factory=list, description="the named volumes its compose file declares")
    litellm_key: bool = Field(
        False, description="calls LiteLLM with a key of its own: `LITELLM_KEY_<NAME>`, registered by configure"
    )
    setup: list[SetupCall] = Field(default_factory=list, description="first-run steps that are one HTTP call each")
    login: LoginSpec | None = Field(None, description="how the owner signs in, shown by `inv info`")
    needs: NeedsSpec = Field(default_factory=NeedsSpec, description="RAM and disk, shown by the `inv add` menu")
    backup: BackupSpec = Field(default_factory=BackupSpec, description="how `inv backup` copies it")

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("route") is not None and value is None:
            raise ValueError(AUTH_MISSING)
        if info.data.get("route") is None and value is not None:
            raise ValueError("only a service with a `route:` has a login to declare; remove `auth:`")
        return value

    @property
    def root_equivalent(self) -> list[str]:
        """The privileges its containers ask for that amount to root on the host (the owner must accept them)."""
        return sorted({p for c in self.containers.values() for p in c.privileges if is_root_equivalent(p)})

    @model_validator(mode="after")
    def _ports(self) -> ServiceSpec:
        for cname, container in self.containers.items():
            if not re.match(_NAME, cname):
                raise ValueError(f"container name {cname!r} must be lower-case letters, digits and dashes")
            for mapping in container.publish:
                if self.tier != "proxy" and not mapping.startswith("127.0.0.1:"):
                    raise ValueError(
                        f"{cname}: publish {mapping!r} must bind 127.0.0.1 (only the proxy publishes on all interfaces)"
                    )
        return self

    @model_validator(mode="after")
    def _setup_containers(self) -> ServiceSpec:
        for call in self.setup:
            if call.container and call.container not in self.containers:
                raise ValueError(f"setup step {call.step!r}: container {call.container!r} is not one of containers:")
        return self

    @model_validator(mode="after")
    def _login_secret(self) -> ServiceSpec:
        if self.login:
            known = {ADMIN_PASSWORD, *(s.name for s in self.secrets), *(db.password for db in self.databases)}
            if self.login.password not in known:
                raise ValueError(
                    f"login: password {self.login.password!r} is none of its secrets ({', '.join(sorted(known))})"
                )
        return self

    @property
    def tier_index(self) -> int:
        return TIER_ORDER.index(self.tier)


class Catalog(BaseModel):
    """Every service folder, by name, in deploy order (tier, then name): the built-in catalog and the owner's
    (`services/` at the project root, searched after it). A folder that cannot be read, or clashes with another, is
    left out and kept in `broken` with its error: commands that do not use it keep working, enabling it says why."""

    model_config = ConfigDict(frozen=True)

    services: dict[str, ServiceSpec]
    folders: dict[str, Path]  # service -> its folder
    broken: dict[str, tuple[str, str]] = Field(default_factory=dict)  # folder name -> (message, fix)

    @cached_property
    def optional(self) -> list[str]:
        return [name for name, spec in self.services.items() if not spec.core]

    @cached_property
    def containers(self) -> dict[str, str]:
        """container name -> catalog service name."""
        return {c: name for name, spec in self.services.items() for c in spec.containers}

    @cached_property
    def catalog_dirs(self) -> list[Path]:
        """The folders that hold the service folders (templates `services/<name>/...` are looked up in them), built-in
        first."""
        return list(dict.fromkeys(folder.parent for folder in self.folders.values()))

    def require(self, name: str) -> ServiceSpec:
        """The service, or a UserError: its folder's own error when it is broken, else the known names."""
        if name in self.broken:
            message, fix = self.broken[name]
            raise UserError(f"the service {name!r} cannot be used: {message}", fix)
        if name not in self.services:
            raise UserError(
                f"unknown service {name!r}. Services: {', '.join(self.services)}.",
                f"`{INV} add` lists what can be added.",
            )
        return self.services[name]

    def enabled(self, optional: list[str]) -> list[ServiceSpec]:
        """Core services plus the named optional ones, with their dependencies, in deploy order."""
        wanted = {name for name, spec in self.services.items() if spec.core} | set(optional)
        pending = list(wanted)
        while pending:
            for dep in self.services[pending.pop()].depends_on:
                if dep not in wanted:
                    wanted.add(dep)
                    pending.append(dep)
        return [spec for name, spec in self.services.items() if name in wanted]


FOLDER_FIX = "Fix the service folder or re-create it with `cookiecutter cookiecutter-service`."


def load_catalog(*directories: Path) -> Catalog:
    """Read every `<directory>/*/service.yaml` of the built-in catalog and then the owner's (default: both). A folder
    that fails is kept in Catalog.broken with the file, key and problem, and the others are still read."""
    from aiplatform.paths import USER_SERVICES_DIR

    specs: dict[str, ServiceSpec] = {}
    folders: dict[str, Path] = {}
    broken: dict[str, tuple[str, str]] = {}
    for directory in directories or (SERVICES_DIR, USER_SERVICES_DIR):
        for path in sorted(directory.glob("*/service.yaml")):
            name = path.parent.name
            if name in broken:  # the first folder's own error is the one to fix
                continue
            if name in folders:
                broken[name] = (f"{path.parent}: a service named {name!r} is already in {folders[name]}.",
                                "Rename the folder.")  # fmt: skip
                continue
            try:
                specs[name] = _read_folder(path)
                folders[name] = path.parent
            except UserError as exc:
                broken[name] = (exc.message, exc.fix or FOLDER_FIX)
    while True:  # a folder that clashes is left out, and then whatever depended on it
        problems = {**_cycle_problems(specs, folders), **_reference_problems(specs, folders)}
        if not problems:
            break
        for name, problem in problems.items():
            broken[name] = problem
            specs.pop(name)
    ordered = dict(sorted(specs.items(), key=lambda item: (item[1].tier_index, item[0])))
    return Catalog(services=ordered, folders={n: folders[n] for n in ordered}, broken=dict(sorted(broken.items())))


def _read_folder(path: Path) -> ServiceSpec:
    doc = load_yaml(path, fix=FOLDER_FIX)
    try:
        spec = ServiceSpec.model_validate(doc.data)
    except ValidationError as exc:
        fix = "See an existing service.yaml under templates/services/ for the expected shape."
        if exc.errors()[0]["loc"] == ("auth",) and doc.data.get("route") and not doc.data.get("auth"):
            fix = f"Add `auth: app` or `auth: caddy` beside `route:` in {path} (docs/catalog.md says which fits)."
        raise validation_error(doc, exc, fix) from None
    if spec.name != path.parent.name:
        raise UserError(f"{doc.where('name')}: name {spec.name!r} must match its folder {path.parent.name!r}.")
    if not (path.parent / "compose.yml.j2").is_file():
        raise UserError(f"{path.parent}: compose.yml.j2 is missing.", "Every service folder needs one.")
    templates = [f.template for f in spec.files] + [c.build.dockerfile for c in spec.containers.values() if c.build]
    for template in templates:
        if not (path.parent / template).is_file():
            raise UserError(f"{path}: {template!r} is named but not in {path.parent}.")
    return spec


def _reference_problems(specs: dict[str, ServiceSpec], folders: dict[str, Path]) -> dict[str, tuple[str, str]]:
    """What clashes between folders, blamed on the later one (the built-in catalog is read first)."""
    problems: dict[str, tuple[str, str]] = {}
    containers: dict[str, str] = {}
    secrets: dict[str, str] = {}
    ports: dict[str, str] = {}  # "ip:port" or "route:port" -> service that takes it
    tiers = " → ".join(TIER_ORDER)
    for name, spec in specs.items():
        where = folders[name] / "service.yaml"

        def problem(message: str, fix: str = FOLDER_FIX, name: str = name) -> None:
            problems.setdefault(name, (message, fix))

        for dep in spec.depends_on:
            if dep == name:
                problem(f"{where}: depends_on names the service itself ({name!r}).", "Remove it from depends_on.")
            elif dep not in specs:
                problem(f"{where}: depends_on names {dep!r}, which is not in the catalog ({', '.join(specs)}).")
            elif specs[dep].tier_index > spec.tier_index:
                problem(
                    f"{where}: depends_on {dep!r} is in tier {specs[dep].tier!r}, deployed after {spec.tier!r}.",
                    f"A service may depend only on services of its own or an earlier tier ({tiers}).",
                )
        for container in spec.containers:
            if containers.setdefault(container, name) != name:
                problem(f"{where}: container {container!r} is already defined by {containers[container]!r}.")
        for secret in spec.secrets:
            if secrets.setdefault(secret.name, name) != name:
                problem(f"{where}: secret {secret.name} is already owned by {secrets[secret.name]!r}.")
        taken = [f"host port {m.split('/')[0].rsplit(':', 2)[-2]}" for c in spec.containers.values() for m in c.publish]
        if spec.route:
            taken.append(f"route ip_port {spec.route.ip_port}")
        for port in taken:
            if ports.setdefault(port, name) != name:
                problem(
                    f"{where}: {port} is already taken by {ports[port]!r}.",
                    "Pick a free one (each service needs its own host port and ip_port).",
                )
    return problems


def _cycle_problems(specs: dict[str, ServiceSpec], folders: dict[str, Path]) -> dict[str, tuple[str, str]]:
    graph = {name: set(spec.depends_on) & set(specs) for name, spec in specs.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = " → ".join(exc.args[1])
        fix = "A service cannot wait for one that waits for it: remove one of these depends_on entries."
        return {
            name: (f"{folders[name] / 'service.yaml'}: depends_on makes a cycle: {cycle}.", fix)
            for name in set(exc.args[1])
        }
    return {}
