"""Everything the platform can be told, as one typed model, and the one function that merges its sources.

Sources, lowest first: built-in defaults < tier profile (`profiles/<tier>.yaml`, `settings:`) < `answers.yaml` <
environment (`AI_PLATFORM_<KEY>`) < command-line flags. `resolve_settings` does the merge and remembers where each
value came from, so `inv settings` can show it and every error can name the file, line, variable or flag to fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from aiplatform.commands import INV, SUDO_INV
from aiplatform.errors import UserError
from aiplatform.inputs.catalog import Catalog
from aiplatform.inputs.images import image_problem, mirror_problem
from aiplatform.inputs.profiles import TIERS, Profile, load_profile
from aiplatform.inputs.root import check_root
from aiplatform.inputs.secrets import admin_password_problem
from aiplatform.paths import DEFAULT_ROOT, USER_SERVICES_ENV
from aiplatform.text import CONTROL
from aiplatform.yamlfile import YamlDoc, YamlRefused, load_yaml, parse_yaml

ENV_PREFIX = "AI_PLATFORM_"
PROFILE_CHOICES = ("auto", *TIERS)
# Values that are secrets: masked everywhere, never written to answers.yaml, stored only in credentials.env.
SECRET_KEYS = (
    "admin_password",
    "openai_api_key",
    "anthropic_api_key",
    "tailscale_authkey",
    "backup_passphrase",
    "backup_remote_secret",
)
# Keys a tier profile may not set: they choose the profile or say where things are.
NOT_IN_PROFILE = ("root", "profile", *SECRET_KEYS)

_HOSTNAME = re.compile(r"(?=.{1,253}\Z)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


class OllamaNode(BaseModel):
    """One more host that runs only Ollama (`inv setup --node`): LiteLLM spreads the models it serves over it too."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(description="its host name or IP, as the platform host reaches it")
    port: int = Field(11434, ge=1, le=65535, description="the port its Ollama listens on")
    name: str = Field("", pattern=r"^([a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?)?$", description="default: from the address")
    weight: int = Field(1, ge=1, le=100, description="its share of the requests, against the others' weights")
    models: list[str] = Field(default_factory=list, description="the platform's models it serves (default: all)")
    gpu: bool = Field(True, description="it has an NVIDIA GPU (Prometheus scrapes its GPU exporter)")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip().lower()
        if not (is_ip(value) or (_HOSTNAME.fullmatch(value) and not value.rstrip(".").split(".")[-1].isdigit())):
            raise ValueError("expected a host name or an IP address, like gpu2.lan or 192.168.1.21")
        return value

    @property
    def label(self) -> str:
        """Its name in model ids, scripts and tables."""
        return self.name or re.sub(r"[^a-z0-9]+", "-", self.address).strip("-")

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"


class Settings(BaseModel):
    """The merged settings. Keys are the answers.yaml keys; AI_PLATFORM_<KEY upper-cased> sets one from the env."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    root: Path = Field(DEFAULT_ROOT, description="the platform root on the host")
    profile: Literal["auto", "minimal", "standard", "performance"] = Field(
        "auto", description="tier profile; auto picks it from the hardware"
    )
    domain: str = Field("", description="domain name or IP the platform is reached at; empty = the host's IP")
    ssl_mode: Literal["letsencrypt", "selfsigned", "none"] = Field("selfsigned", description="how Caddy serves TLS")
    admin_email: str = Field("admin@example.com", description="admin account and Let's Encrypt email")
    admin_name: str = Field("Admin", min_length=1, max_length=30, description="admin display name")
    admin_password: SecretStr | None = Field(None, description="admin password; unset = generated once")
    services: list[str] = Field(["monitoring"], description="optional services to run (`inv add` lists them)")
    models: list[str] = Field(default_factory=list, description="Ollama models to pull and serve")
    embedding_model: str = Field("nomic-embed-text", description="which of the models serves embeddings")
    privileged_services: list[str] = Field(
        default_factory=list,
        description="services allowed the root-equivalent privileges they declare (add --allow-privileged)",
    )
    images: dict[str, str] = Field(default_factory=dict, description="image per container, overriding the catalog")
    registry_mirror: str = Field("", description="prefix put before every catalog image (private registry)")
    openai_api_key: SecretStr | None = Field(None, description="adds OpenAI models to LiteLLM")
    anthropic_api_key: SecretStr | None = Field(None, description="adds Anthropic models to LiteLLM")
    ollama_bind: str = Field("0.0.0.0", description="address the host's Ollama listens on")
    ollama_port: int = Field(11434, ge=1, le=65535, description="Ollama's port")
    ollama_origins: list[str] = Field(["*"], description="OLLAMA_ORIGINS: browser origins allowed")
    ollama_keep_alive: str = Field(
        "5m", description="how long a model stays loaded (OLLAMA_KEEP_ALIVE): up to 8760h; -1 for ever"
    )
    ollama_num_parallel: int = Field(1, ge=1, le=64, description="OLLAMA_NUM_PARALLEL")
    ollama_max_loaded_models: int = Field(1, ge=1, le=64, description="OLLAMA_MAX_LOADED_MODELS")
    ollama_flash_attention: bool = Field(False, description="OLLAMA_FLASH_ATTENTION")
    ollama_expose_lan: bool = Field(False, description="let other hosts reach Ollama (no firewall rule)")
    docker_address_pool: str = Field("172.20.0.0/14", description="Docker default-address-pools base")
    docker_address_pool_size: int = Field(24, ge=8, le=30, description="Docker default-address-pools size")
    docker_log_max_size: str = Field("10m", description="json-file log rotation size: up to 100g")
    docker_log_max_file: int = Field(3, ge=1, le=100, description="json-file logs kept")
    litellm_cache: bool = Field(False, description="cache identical LiteLLM requests in Redis (with litellm_cache_ttl)")
    litellm_cache_ttl: int = Field(600, ge=1, le=31_536_000, description="seconds a cached LiteLLM answer is kept")
    redis_maxmemory: str = Field(
        "512mb", description="Redis memory limit, up to 4096gb; cache keys are evicted first (volatile-lru)"
    )
    jupyter_notebook_image: str = Field(
        "quay.io/jupyter/minimal-notebook:2024-12-23", description="each JupyterHub user's notebook"
    )
    ollama_local: bool = Field(True, description="this host's Ollama serves the models too (off: a host without GPU)")
    ollama_nodes: list[OllamaNode] = Field(
        default_factory=list, description="more Ollama hosts LiteLLM spreads the models over (inv setup --node)"
    )
    tailscale_authkey: SecretStr | None = Field(None, description="joins this host to a tailnet (setup, configure)")
    tailscale_hostname: str = Field("ai-platform", description="this host's name on the tailnet")
    tailscale_serve_litellm: bool = Field(False, description="also serve LiteLLM's API on the tailnet (port 8443)")
    backup_keep: int = Field(7, ge=1, le=1000, description="backups kept in <root>/backups (the oldest go first)")
    backup_encrypt: bool = Field(False, description="encrypt each backup file with gpg (AES256, BACKUP_PASSPHRASE)")
    backup_passphrase: SecretStr | None = Field(None, description="the backups' passphrase; unset = generated once")
    backup_remote_type: str = Field(
        "", pattern=r"^[a-z0-9]*$", description="rclone backend backups are copied to: drive, s3, webdav, ... (off)"
    )
    backup_remote_path: str = Field("ai-platform-backups", description="the folder on the remote")
    backup_remote_options: dict[str, str] = Field(
        default_factory=dict, description="the remote's non-secret rclone options, e.g. {scope: drive}"
    )
    backup_remote_secret: SecretStr | None = Field(
        None, description="the remote's service-account JSON, token, password or key"
    )
    backup_remote_secret_option: str = Field(
        "", pattern=r"^[a-z0-9_]*$", description="the rclone option the secret fills (default: the usual one)"
    )
    backup_remote_keep: int = Field(14, ge=1, le=1000, description="backups kept on the remote")

    @field_validator("*", mode="before")
    @classmethod
    def _printable(cls, value: Any, info: ValidationInfo) -> Any:
        # Every value ends up in a file other programs parse (systemd units, compose files, env files, the
        # Caddyfile): a newline or another control character would change what that file says.
        if info.field_name == "backup_remote_secret":
            value = one_line_json(value)
        for text in _texts(value):
            if CONTROL.search(text):
                raise ValueError("control characters (newline, tab, ...) are not allowed")
        return value

    @field_validator("root", mode="before")
    @classmethod
    def _root_given(cls, value: Any) -> Any:
        if not str(value).strip():
            raise ValueError("expected a folder like /mnt/data/ai-platform, got an empty path")
        return value

    @field_validator("root")
    @classmethod
    def _root(cls, value: Path) -> Path:
        return check_root(value)  # absolute, no control characters, not a system folder: one rule for every task

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("[") and value.endswith("]") and is_ip(value[1:-1]):
            value = value[1:-1]  # an IPv6 address as a URL writes it; render adds the brackets where they belong
        if "%" in value:
            raise ValueError("an IPv6 address with a zone (%eth0) cannot be part of a URL: give a global address")
        if value and not is_ip(value):
            labels = value.rstrip(".").split(".")
            if not _HOSTNAME.fullmatch(value) or labels[-1].isdigit():
                raise ValueError(
                    "expected a domain name like ai.example.com or an IP address like 192.168.1.10"
                    + (" (this looks like an IPv4 address but is not one)" if re.fullmatch(r"[\d.]+", value) else "")
                )
        return value.rstrip(".").lower()

    @field_validator("admin_email")
    @classmethod
    def _email(cls, value: str) -> str:
        # What every consumer takes as is: Caddy's `email` line, the apps' sign-up forms (no quotes or braces).
        if not re.fullmatch(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+", value):
            raise ValueError("expected an email of letters, digits and . _ % + - like admin@example.com")
        return value

    @field_validator("ollama_bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        if not is_ip(value):
            raise ValueError("expected an IP address to bind, like 0.0.0.0 or 127.0.0.1")
        return value

    @field_validator("ollama_keep_alive")
    @classmethod
    def _duration(cls, value: str) -> str:
        match = re.fullmatch(r"(-?\d{1,12})([smh]?)", value, re.IGNORECASE)
        if not match:
            raise ValueError("expected a number with an optional unit, like 5m, 1h or -1")
        if int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2].lower()] > 366 * 86400:
            raise ValueError("expected at most a year (8760h); -1 keeps a model loaded for ever")
        return value

    @field_validator("docker_log_max_size")
    @classmethod
    def _log_size(cls, value: str) -> str:
        if not re.fullmatch(r"\d{1,12}[bkmg]?", value, re.IGNORECASE) or not 0 < _bytes(value) <= 100 * 1024**3:
            raise ValueError("expected a size from 1 byte to 100g, like 10m")
        return value

    @field_validator("admin_password")
    @classmethod
    def _admin_password(cls, value: SecretStr | None) -> SecretStr | None:
        problem = admin_password_problem(value.get_secret_value()) if value and value.get_secret_value() else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("tailscale_hostname")
    @classmethod
    def _tailnet_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", value):
            raise ValueError("expected one DNS label: lower-case letters, digits and dashes, like ai-platform")
        return value

    @field_validator("redis_maxmemory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not re.fullmatch(r"\d{1,12}(kb|mb|gb)", value, re.IGNORECASE) or _bytes(value) > 4096 * 1024**3:
            raise ValueError("expected a size up to 4096gb, like 256mb or 2gb")
        return value.lower()

    @field_validator("ollama_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(r"[^\s,\"'\\]+", origin):
                raise ValueError(
                    f"origin {origin!r}: expected one origin like http://localhost:3000 or * (no spaces, "
                    "commas or quotes)"
                )
        return value

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        for model in value:
            _model_name(model)
        return value

    @field_validator("embedding_model")
    @classmethod
    def _embedding(cls, value: str) -> str:
        return _model_name(value) if value else value

    @field_validator("jupyter_notebook_image")
    @classmethod
    def _notebook(cls, value: str) -> str:
        problem = image_problem(value)
        if problem:
            raise ValueError(f"{value!r} {problem}")
        return value

    @field_validator("images")
    @classmethod
    def _images(cls, value: dict[str, str]) -> dict[str, str]:
        for name, image in value.items():
            problem = image_problem(image)
            if problem:
                raise ValueError(f"images.{name}: {image!r} {problem}")
        return value

    @field_validator("registry_mirror")
    @classmethod
    def _mirror(cls, value: str) -> str:
        problem = mirror_problem(value)
        if problem:
            raise ValueError(f"{value!r} {problem}")
        return value

    @field_validator("docker_address_pool")
    @classmethod
    def _network(cls, value: str) -> str:
        try:
            ipaddress.ip_network(value)
        except ValueError:
            raise ValueError("expected a network in CIDR form, like 172.20.0.0/14") from None
        return value

    def is_ip_domain(self) -> bool:
        return is_ip(self.domain)

    def public(self) -> dict[str, Any]:
        """JSON-safe values with secrets masked (`****`, or null when unset)."""
        data = self.model_dump(mode="json")
        for key in SECRET_KEYS:
            data[key] = "****" if data[key] else None
        return data


def default(key: str) -> Any:
    """A setting's default, for code that reads master.env written before the setting existed."""
    return Settings.model_fields[key].default


def one_line_json(value: Any) -> Any:
    """A multi-line JSON secret (a service-account key file as Google's console downloads it) on one line, meaning
    the same: whitespace between JSON's tokens means nothing, and a line break inside a string is written \\n. So it is
    kept in credentials.env as one shell-quoted line that bash, compose and this library read alike, and rclone gets
    the same JSON. Any other value with a line break is refused as not JSON (the value itself is never shown)."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str) or not CONTROL.search(text):
        return value
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ValueError(
            "a line break or another control character, and it is not JSON: a service-account or token JSON may "
            "span lines, any other secret is one line"
        ) from None
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)


def _bytes(size: str) -> int:
    """`10m`, `512mb`, `2g` as bytes (k, m, g are 1024's powers, as Docker and Redis read them)."""
    match = re.fullmatch(r"(\d+)([a-z]*)", size.lower())
    assert match is not None  # the validators' patterns come first
    return int(match[1]) << 10 * "bkmg".index(match[2][:1] or "b")


def _texts(value: Any) -> list[str]:
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, (str, Path)):
        return [str(value)]
    if isinstance(value, dict):
        return [str(k) for k in value] + [text for item in value.values() for text in _texts(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _texts(item)]
    return []


def _model_name(model: str) -> str:
    # Ollama's names: registry/namespace/model:tag; they go into LiteLLM's config, master.env and Ollama's API.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/-]*", model):
        raise ValueError(f"model {model!r}: expected an Ollama model name like llama3.2:3b")
    return model


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# Names no public DNS answers for (RFC 6761, RFC 8375, ICANN's .internal) and the usual home-router suffixes.
INTERNAL_SUFFIXES = (".lan", ".local", ".localdomain", ".internal", ".home.arpa", ".home", ".intranet", ".corp",
                     ".private", ".localhost", ".test", ".invalid", ".example")  # fmt: skip


LETSENCRYPT_NEEDS = (
    "Let's Encrypt certifies only a public name whose DNS A/AAAA record points at this host, with ports 80 and 443 "
    "reachable from the internet"
)


def internal_domain(domain: str) -> str | None:
    """Why `domain` cannot be reached from the internet by that name (an IP, no dot, an internal suffix), or None."""
    name = domain.strip().rstrip(".").lower()
    if not name:
        return "no domain is set (the host is known only by its IP)"
    if is_ip(name):
        return f"{name} is an IP address"
    if "." not in name:
        return f"{name} has no dot: a local host name"
    suffix = next((s for s in INTERNAL_SUFFIXES if name.endswith(s)), None)
    return f"{name} ends in {suffix}, a name only a local network resolves" if suffix else None


def letsencrypt_warning(settings: Settings) -> str | None:
    """A warning when TLS is letsencrypt for a domain that looks internal: Let's Encrypt would never certify it."""
    reason = internal_domain(settings.domain) if settings.ssl_mode == "letsencrypt" else None
    if reason is None:
        return None
    return (
        f"ssl_mode is letsencrypt but {reason}: {LETSENCRYPT_NEEDS}, so Caddy would get no certificate. For a "
        f"platform on a local network use `{INV} settings set ssl_mode=selfsigned`."
    )


LIST_KEYS = {
    name for name, info in Settings.model_fields.items() if getattr(info.annotation, "__origin__", None) is list
}
DICT_KEYS = {
    name for name, info in Settings.model_fields.items() if getattr(info.annotation, "__origin__", None) is dict
}


@dataclass
class Layer:
    """One source of settings: its name (default/profile/answers/env/flag), its values and how to point at a key."""

    source: str
    values: dict[str, Any]
    where: Callable[[str], str]
    fix: Callable[[str], str]


@dataclass
class PendingAnswers:
    """answers.yaml as `inv settings set` / `unset` would leave it, checked before it is written: all its values, and
    the keys the command changes with how to name them (`inv settings set domain=...`); errors about the others
    name the file's line."""

    values: dict[str, Any]
    given: dict[str, str]


@dataclass
class Resolved:
    """Merged settings, the source of each value, and the tier they resolved to."""

    settings: Settings
    sources: dict[str, str]
    tier: str
    profile: Profile
    detected_tier: str | None = None
    answers_path: Path | None = None

    def table(self, stored: Mapping[str, str] | None = None) -> list[tuple[str, Any, str]]:
        """(key, masked value, source) for every setting. A secret no source gives but credentials.env holds
        (`stored`: its keys, e.g. typed in the questionnaire once) shows as `****` from "credentials"."""
        public = self.settings.public()
        rows = []
        for key in Settings.model_fields:
            value, source = public[key], self.sources[key]
            if key in SECRET_KEYS and value is None and stored and key.upper() in stored:
                value, source = "****", f"credentials ({stored[key.upper()]})"
            rows.append((key, value, source))
        return rows


def resolve_settings(
    *,
    answers: Path | None,
    environ: Mapping[str, str],
    flags: Mapping[str, Any],
    catalog: Catalog,
    detect_tier: Callable[[Path], str],
    profiles_dir: Path | None = None,
    answers_must_exist: bool = False,
    remembered: Mapping[str, Any] | None = None,
    remembered_from: str = "the previous render",
    pending: PendingAnswers | None = None,
) -> Resolved:
    """Merge settings from every source, lowest first: built-in defaults < what the previous render recorded
    (`remembered`: only the root) < tier profile < answers.yaml < environment (AI_PLATFORM_<KEY>) < command-line
    flags. The highest source that sets a key wins.

    The root and profile keys are resolved first (the profile picks which file is the second layer); `auto` asks
    `detect_tier(root)`. Every error is a UserError naming the file and line, variable or flag that holds the value.
    `pending` stands for the answers file's values as `inv settings set` would write them.
    """
    if answers_must_exist and answers is not None and not answers.exists():
        raise UserError(f"{answers}: file not found.", "Check the path given to --answers.")
    exists = answers is not None and answers.exists()
    answers_layer = _answers_layer(answers, pending) if answers is not None and (exists or pending) else None
    env_layer = _env_layer(environ)
    flag_layer = _flag_layer(flags)
    kept = _remembered_layer(remembered, remembered_from) if remembered else None
    upper = [layer for layer in (kept, answers_layer, env_layer, flag_layer) if layer is not None]
    for layer in upper:
        _check_keys(layer)
    if pending and answers_layer:  # checked alone too: a variable or flag above it would hide a bad value
        try:
            Settings.model_validate({key: answers_layer.values[key] for key in pending.given if key in pending.values})
        except ValidationError as exc:
            raise _explain(exc, [answers_layer]) from None

    profile_layer = _highest(upper, "profile")
    profile_name = profile_layer.values["profile"] if profile_layer else "auto"
    if profile_name not in PROFILE_CHOICES:
        assert profile_layer is not None
        raise UserError(
            f"{profile_layer.where('profile')}: profile {profile_name!r} is not a tier: expected one of "
            f"{', '.join(PROFILE_CHOICES)}.",
            profile_layer.fix("profile"),
        )
    root_layer = _highest(upper, "root")
    root = Path(str(root_layer.values["root"])).expanduser() if root_layer else DEFAULT_ROOT
    detected = detect_tier(root) if profile_name == "auto" else None
    tier = detected or profile_name
    profile, doc = load_profile(tier, profiles_dir) if profiles_dir else load_profile(tier)
    layers = [_profile_layer(profile, doc), *upper]
    for layer in layers[:1]:
        _check_keys(layer, forbidden=NOT_IN_PROFILE)

    merged: dict[str, Any] = {}
    sources = dict.fromkeys(Settings.model_fields, "default")
    for layer in layers:
        for key, value in layer.values.items():
            merged[key] = value
            sources[key] = layer.source
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise _explain(exc, layers) from None
    _check_catalog(settings, catalog, layers)
    _check_combinations(settings, layers)
    if settings.embedding_model and settings.embedding_model not in settings.models:
        # blame the higher of the two layers involved: that is where the user's change is
        layer = [item for item in layers if {"models", "embedding_model"} & set(item.values)][-1]
        key = "embedding_model" if "embedding_model" in layer.values else "models"
        raise UserError(
            f"{layer.where(key)}: embedding_model {settings.embedding_model!r} is not one of the models "
            f"({', '.join(settings.models) or 'none'}).",
            layer.fix(key),
        )
    return Resolved(settings, sources, tier, profile, detected, answers if answers_layer else None)


def _highest(layers: list[Layer], key: str) -> Layer | None:
    found = [layer for layer in layers if key in layer.values]
    return found[-1] if found else None


def _answers_layer(path: Path, pending: PendingAnswers | None = None) -> Layer:
    fix_text = (
        f"Edit {path} (or `{INV} settings set KEY=VALUE`, or `{INV} render --ask` to answer the questions again), "
        f"then run `{INV} settings`."
    )
    doc = load_yaml(path, fix=fix_text) if path.exists() or pending is None else YamlDoc(path, {})
    if pending is None:
        return Layer("answers", doc.data, lambda key: doc.where(key), lambda key: fix_text)
    given = pending.given
    return Layer(
        "answers",
        pending.values,
        lambda key: given.get(key.split(".")[0]) or doc.where(key),
        lambda key: f"{path} was not changed. " + (f"Give {key} another value." if key in given else fix_text),
    )


def _remembered_layer(values: Mapping[str, Any], where: str) -> Layer:
    # A root given once (--root, AI_PLATFORM_ROOT) stays the root of later commands until another one is given.
    kept = {key: value for key, value in values.items() if key == "root"}
    return Layer(
        "previous render",
        kept,
        lambda key: f"{where} (the {key} it was rendered for)",
        lambda key: f"Give --{key} (or `{key}:` in answers.yaml) to change it.",
    )


def _profile_layer(profile: Profile, doc: YamlDoc) -> Layer:
    values = {"models": profile.model_names(), "embedding_model": profile.embedding_model(), **profile.settings}
    fix_text = f"Fix {doc.path} (it is part of the project: `git diff` shows what changed)."
    return Layer(
        "profile",
        values,
        lambda key: doc.where(f"settings.{key}") if key in profile.settings else doc.where(key),
        lambda key: fix_text,
    )


def _env_layer(environ: Mapping[str, str]) -> Layer:
    values: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == USER_SERVICES_ENV:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        values[key] = _parse_text(key, raw, f"environment variable {name}")
    return Layer(
        "env",
        values,
        lambda key: f"environment variable {ENV_PREFIX}{key.upper()}",
        lambda key: f"Change or unset {ENV_PREFIX}{key.upper()} (`unset {ENV_PREFIX}{key.upper()}`).",
    )


def _flag_layer(flags: Mapping[str, Any]) -> Layer:
    values = {
        key: _parse_text(key, value, f"command-line flag {flag_name(key)}") if isinstance(value, str) else value
        for key, value in flags.items()
    }
    return Layer(
        "flag",
        values,
        lambda key: f"command-line flag {flag_name(key)}",
        lambda key: f"Fix the value given to {flag_name(key)}.",
    )


def flag_name(key: str) -> str:
    return f"--{key.replace('_', '-')}" if key in ("root", "profile") else f"--set {key}=..."


def _parse_text(key: str, raw: str, source: str) -> Any:
    """Environment and --set values are text: lists are comma-separated, maps are `name=value` pairs; a list or map
    may also be written as YAML flow, like [{address: gpu2.lan}] (the only way to give ollama_nodes)."""
    if key in LIST_KEYS | DICT_KEYS and raw.strip()[:1] in ("[", "{"):
        try:
            return parse_yaml(raw, source, "Write it as plain YAML flow, each key once, like [a, b] or {name: value}.")[
                1
            ]
        except YamlRefused:  # a duplicate key, an alias bomb, too deep
            raise
        except UserError:  # else the model names the value it cannot take, and its source
            pass
    if key in LIST_KEYS:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if key in DICT_KEYS:
        pairs = [item.strip() for item in raw.split(",") if item.strip()]
        return {name.strip(): value.strip() for name, _, value in (pair.partition("=") for pair in pairs)}
    return raw


def parse_value(key: str, raw: str) -> Any:
    """A value given as text (`inv settings set KEY=VALUE`), read as --set and the environment read theirs."""
    return _parse_text(key, raw, f"`{INV} settings set {key}=...`")


def check_known(key: str, where: str, fix: str) -> None:
    """The unknown-key error answers.yaml and --set give (with the closest keys), for a key named elsewhere."""
    _check_keys(Layer("command", {key: None}, lambda _: where, lambda _: fix))


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`--set key=value` flags as a dict; a missing `=` is a UserError."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected key=value, like --set domain=ai.example.com.")
        values[key.strip()] = value
    return values


def _check_keys(layer: Layer, forbidden: tuple[str, ...] = ()) -> None:
    known = list(Settings.model_fields)
    for key in layer.values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=2)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise UserError(
                f"{layer.where(key)}: unknown key {key!r}.{hint} Known keys: {', '.join(known)}.", layer.fix(key)
            )
        if key in forbidden:
            raise UserError(f"{layer.where(key)}: {key!r} cannot be set in a tier profile.", layer.fix(key))
        if layer.source == "answers" and key in SECRET_KEYS:
            raise UserError(
                f"{layer.where(key)}: {key!r} is a secret and answers.yaml is not protected.",
                f"Remove it from answers.yaml and set {ENV_PREFIX}{key.upper()} for one run of `{INV} render` "
                "(it is then kept in config/credentials.env, mode 0600), or answer the questionnaire.",
            )


def _explain(exc: ValidationError, layers: list[Layer]) -> UserError:
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else ""
    layer = _highest(layers, key) or layers[0]
    named = key + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"][1:])
    got = error.get("input")
    shown = "****" if key in SECRET_KEYS else repr(got)
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    message += _range(error["loc"])  # a numeric setting's error says its range, whatever was wrong with the value
    where = layer.where(".".join(map(str, error["loc"])) if layer.source == "answers" else key)  # a node's own line
    return UserError(f"{where}: key {named!r}: {message}; got {shown}.", layer.fix(key))


def _range(loc: tuple[Any, ...]) -> str:
    """The range a setting, or an Ollama node's key, is declared with (its Field's ge and le: every numeric one), as
    words; "" for others."""
    node_key = len(loc) == 3 and loc[0] == "ollama_nodes"
    model, name = (OllamaNode, loc[2]) if node_key else (Settings, loc[0] if loc else "")
    info = model.model_fields.get(str(name))
    found = {name: getattr(item, name) for item in (info.metadata if info else []) for name in ("ge", "le")
             if hasattr(item, name)}  # fmt: skip
    return f" (a whole number from {found['ge']} to {found['le']})" if len(found) == 2 else ""


def _check_nodes(settings: Settings, layers: list[Layer]) -> None:
    layer = _highest(layers, "ollama_nodes") or _highest(layers, "ollama_local") or layers[0]
    seen: dict[str, int] = {}
    for index, node in enumerate(settings.ollama_nodes):
        entry = f"ollama_nodes[{index}] ({node.address}:{node.port})"
        for key in (f"{node.address}:{node.port}", f"name {node.label}"):
            if key in seen:
                raise UserError(f"{layer.where('ollama_nodes')}: {entry} repeats ollama_nodes[{seen[key]}] ({key}).",
                                "Give each node once, with its own name.")  # fmt: skip
            seen[key] = index
        if node.label == "local":
            raise UserError(f"{layer.where('ollama_nodes')}: {entry}: the name 'local' is this host's own Ollama.",
                            "Give the node another `name:`.")  # fmt: skip
        unknown = [m for m in node.models if m not in settings.models]
        if unknown:
            raise UserError(
                f"{layer.where('ollama_nodes')}: {entry} serves {', '.join(map(repr, unknown))}, not one of the "
                f"platform's models ({', '.join(settings.models)}).",
                "Add it to `models:` or take it off the node's list.",
            )
    if not settings.ollama_local and not settings.ollama_nodes:
        raise UserError(f"{layer.where('ollama_local')}: ollama_local is false and there is no ollama_nodes entry: "
                        "nothing would serve the models.", f"Add a node (`{SUDO_INV} setup --node` on it) or turn "
                        "ollama_local back on.")  # fmt: skip
    served = {m for n in settings.ollama_nodes for m in (n.models or settings.models)}
    if not settings.ollama_local and (missing := [m for m in settings.models if m not in served]):
        raise UserError(f"{layer.where('ollama_nodes')}: no node serves {', '.join(missing)} and ollama_local is "
                        "false.", "List it in a node's `models:` (or leave a node's list empty: all).")  # fmt: skip


def _check_combinations(settings: Settings, layers: list[Layer]) -> None:
    """Values fine alone that cannot work together."""
    _check_nodes(settings, layers)
    if settings.ssl_mode == "letsencrypt" and (not settings.domain or is_ip(settings.domain)):
        layer = _highest(layers, "ssl_mode") or layers[0]
        raise UserError(
            f"{layer.where('ssl_mode')}: ssl_mode 'letsencrypt' needs a domain name (Let's Encrypt does not certify "
            f"{'IP addresses' if settings.domain else 'a host known only by its IP'}).",
            "Set `domain:` to a name whose DNS points at this host, or use ssl_mode selfsigned.",
        )
    if ipaddress.ip_address(settings.ollama_bind).is_loopback:
        layer = _highest(layers, "ollama_bind") or layers[0]
        raise UserError(
            f"{layer.where('ollama_bind')}: ollama_bind {settings.ollama_bind} is loopback: containers reach the "
            "host's Ollama through the Docker bridge, so LiteLLM and Open WebUI would see no models.",
            "Use 0.0.0.0 (setup adds a firewall rule that keeps the port to this host and Docker) or the bridge "
            "address, e.g. 172.17.0.1.",
        )


def _check_catalog(settings: Settings, catalog: Catalog, layers: list[Layer]) -> None:
    for name in settings.services:
        if name in catalog.broken:
            layer = _highest(layers, "services") or layers[0]
            message, fix = catalog.broken[name]
            raise UserError(f"{layer.where('services')}: the service {name!r} cannot be used: {message}", fix)
        if name not in catalog.optional:
            layer = _highest(layers, "services") or layers[0]
            core = " (it is a core service, always on)" if name in catalog.services else ""
            raise UserError(
                f"{layer.where('services')}: unknown service {name!r}{core}. Optional services: "
                f"{', '.join(catalog.optional)}.",
                layer.fix("services"),
            )
    for spec in catalog.enabled([name for name in settings.services if name in catalog.services]):
        granted = spec.root_equivalent
        if granted and spec.name not in settings.privileged_services:
            layer = _highest(layers, "services") or layers[0]
            raise UserError(
                f"{layer.where('services')}: the service {spec.name!r} asks for {', '.join(granted)}: that is root on "
                "this host, and it was not accepted.",
                f"Accept it with `{SUDO_INV} add {spec.name} --allow-privileged` (or add {spec.name} to "
                "privileged_services in answers.yaml).",
            )
    for name in settings.privileged_services:
        if name not in catalog.services:
            layer = _highest(layers, "privileged_services") or layers[0]
            raise UserError(
                f"{layer.where('privileged_services')}: unknown service {name!r}. Services: "
                f"{', '.join(catalog.services)}.",
                layer.fix("privileged_services"),
            )
    for name in settings.images:
        if name not in catalog.containers:
            layer = _highest(layers, "images") or layers[0]
            raise UserError(
                f"{layer.where('images')}: images names {name!r}, which is not a container of the catalog. "
                f"Containers: {', '.join(catalog.containers)}.",
                layer.fix("images"),
            )
