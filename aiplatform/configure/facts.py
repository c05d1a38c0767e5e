"""What configure works from: the root as deploy left it (master.env, credentials.env, its stamp, its compose files)
and the catalog. Nothing here talks to a service."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiplatform.commands import INV, SUDO_INV
from aiplatform.engine.project import Project, load_project
from aiplatform.envfile import read_env
from aiplatform.errors import UserError
from aiplatform.generated.stamp import Stamp, read_stamp
from aiplatform.inputs.catalog import Catalog, ServiceSpec
from aiplatform.paths import CREDENTIALS_ENV, MASTER_ENV
from aiplatform.yamlfile import load_yaml

LITELLM_BASE = "http://litellm:4000/v1"  # LiteLLM as the apps' containers reach it (the platform network)

LITELLM_CONFIG = Path("config/litellm/config.yaml")


def litellm_key_alias(service: str) -> str:
    return f"ai-platform-{service}"


@dataclass
class Facts:
    root: Path
    stamp: Stamp
    master: dict[str, str]
    secrets: dict[str, str]
    project: Project
    catalog: Catalog
    litellm_models: list[str]  # model_name of every LiteLLM deployment (wildcards left out)
    endpoints: dict[str, str] = field(default_factory=dict)  # container -> URL, instead of its published port

    @property
    def services(self) -> list[str]:
        return list(self.stamp.services)

    def enabled(self, name: str) -> bool:
        return name in self.stamp.services

    def spec(self, name: str) -> ServiceSpec:
        return self.catalog.services[name]

    def local_url(self, container: str) -> str | None:
        """http://127.0.0.1:PORT where the container publishes its port on this host, else None."""
        if container in self.endpoints:
            return self.endpoints[container]
        expected = self.project.containers.get(container)
        for mapping in expected.ports if expected else ():
            parts = mapping.split("/")[0].split(":")
            if len(parts) == 3 and parts[0] == "127.0.0.1":
                return f"http://127.0.0.1:{parts[1]}"
        return None

    @property
    def admin_email(self) -> str:
        return self.master.get("ADMIN_EMAIL", "admin@example.com")

    @property
    def admin_name(self) -> str:
        return self.master.get("ADMIN_NAME", "Admin")

    @property
    def admin_password(self) -> str:
        return self.secret("ADMIN_PASSWORD")

    @property
    def embedding_model(self) -> str:
        return self.master.get("EMBEDDING_MODEL", "")

    @property
    def chat_model(self) -> str:
        """The tier's chat model: the first of the models that is not the embedding model."""
        models = [m for m in self.master.get("DEFAULT_MODELS", "").split(",") if m and m != self.embedding_model]
        return models[0] if models else ""

    def secret(self, name: str) -> str:
        value = self.secrets.get(name)
        if not value:
            raise UserError(
                f"{self.root / CREDENTIALS_ENV} has no {name}.",
                f"Run `{INV} render`, then `{SUDO_INV} deploy` (render generates it), and configure again.",
            )
        return value

    def key_consumers(self) -> list[str]:
        """Enabled services that call LiteLLM with a virtual key of their own."""
        return [name for name in self.services if name in self.catalog.services and self.spec(name).litellm_key]


def load_facts(root: Path, catalog: Catalog) -> Facts:
    """Read what deploy applied to `root`; nothing deployed there is a UserError naming the commands to run."""
    stamp = read_stamp(root)
    if stamp is None or not (root / MASTER_ENV).is_file():
        raise UserError(
            f"Nothing is deployed in {root} (no .aiplatform.json there).",
            f"Run `{INV} render` and `{SUDO_INV} deploy` first (deploy runs configure at its end).",
        )
    config = load_yaml(root / LITELLM_CONFIG).data if (root / LITELLM_CONFIG).is_file() else {}
    names = [entry.get("model_name", "") for entry in config.get("model_list") or []]
    return Facts(
        root=root,
        stamp=stamp,
        master=read_env(root / MASTER_ENV),
        secrets=read_env(root / CREDENTIALS_ENV),
        project=load_project(root),
        catalog=catalog,
        litellm_models=[name for name in dict.fromkeys(names) if name and "*" not in name],
    )
