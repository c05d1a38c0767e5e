"""Tier profiles (`profiles/<tier>.yaml`): the default models with their download sizes, and the settings a tier sets.

A profile's `settings:` block is one layer of the settings merge (above built-in defaults, below answers.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiplatform.errors import UserError
from aiplatform.paths import PROFILES_DIR
from aiplatform.yamlfile import YamlDoc, load_yaml, validation_error

TIERS = ("minimal", "standard", "performance")


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    size_gb: float = Field(ge=0)
    embedding: bool = False


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    models: list[ModelEntry] = Field(min_length=1)
    settings: dict[str, Any] = Field(default_factory=dict)

    def model_names(self) -> list[str]:
        return [model.name for model in self.models]

    def embedding_model(self) -> str:
        return next((model.name for model in self.models if model.embedding), "")

    def size_of(self, names: list[str]) -> float:
        sizes = {model.name: model.size_gb for model in self.models}
        return round(sum(sizes.get(name, 0.0) for name in names), 1)


def load_profile(tier: str, profiles_dir: Path = PROFILES_DIR) -> tuple[Profile, YamlDoc]:
    """The profile for `tier`, validated; an unknown tier or a bad file is a UserError naming file, line and key."""
    if tier not in TIERS:
        raise UserError(
            f"Unknown tier {tier!r}: expected one of {', '.join(TIERS)} (or auto).",
            "Pass --profile with one of those, or set `profile:` in answers.yaml.",
        )
    doc = load_yaml(profiles_dir / f"{tier}.yaml", fix=f"Restore {profiles_dir / tier}.yaml from git.")
    try:
        return Profile.model_validate(doc.data), doc
    except ValidationError as exc:
        fix = "A profile holds `description`, `models` (name, size_gb, embedding) and `settings`."
        raise validation_error(doc, exc, fix) from None
