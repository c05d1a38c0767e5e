"""The settings reference of docs/settings.md, made from the settings' own model: every key with its default, its
range and its meaning, and the same for an Ollama node's keys. A unit test keeps the page equal to what this makes;
`python -m aiplatform.inputs.reference` writes it there after a setting changes.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from aiplatform.inputs.profiles import TIERS, load_profile
from aiplatform.inputs.settings import SECRET_KEYS, OllamaNode, Settings
from aiplatform.paths import PROJECT_DIR

PAGE = PROJECT_DIR / "docs" / "settings.md"
BEGIN = "<!-- {} table: made by `python -m aiplatform.inputs.reference` from the model; edit the model, not this -->"
END = "<!-- end of {} table -->"


def _tier_keys() -> set[str]:
    """The keys a tier profile sets (their default is the tier's), the models and the embedding model included."""
    keys = {"models", "embedding_model"}
    for tier in TIERS:
        keys |= set(load_profile(tier)[0].settings)
    return keys


def _default(name: str, info: FieldInfo, tier_keys: set[str]) -> str:
    if name in tier_keys:
        return "the tier's"
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value in (None, "", [], {}):
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`[{', '.join(map(str, value))}]`"
    return f"`{value}`"


def _range(info: FieldInfo) -> str:
    """The values a key takes: a Literal's choices, a number's bounds, a text's length or pattern."""
    if typing.get_origin(info.annotation) is typing.Literal:
        return ", ".join(f"`{choice}`" for choice in typing.get_args(info.annotation))

    def bound(kind: type, attribute: str) -> str:
        found = [getattr(rule, attribute) for rule in info.metadata if isinstance(rule, kind)]
        return f"{found[0]:_}".replace("_", ",") if found else ""

    low, high = bound(annotated_types.Ge, "ge"), bound(annotated_types.Le, "le")
    if low or high:
        return f"{low}–{high}"
    low, high = bound(annotated_types.MinLen, "min_length"), bound(annotated_types.MaxLen, "max_length")
    if low or high:
        return f"{low}–{high} characters"
    patterns = [rule.pattern for rule in info.metadata if getattr(rule, "pattern", None)]
    return f"`{patterns[0]}`" if patterns else ""


def table(model: type[BaseModel]) -> str:
    """The Markdown table of `model`'s keys: key, default, range, meaning (a secret says so)."""
    tier_keys = _tier_keys() if model is Settings else set()
    rows = ["| key | default | range | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        secret = " **secret**" if model is Settings and name in SECRET_KEYS else ""
        rows.append(f"| `{name}` | {_default(name, info, tier_keys)} | {_range(info)} | {info.description}{secret} |")
    return "\n".join(rows)


TABLES: dict[str, type[BaseModel]] = {"settings": Settings, "ollama node": OllamaNode}


def page(text: str) -> str:
    """`text` (docs/settings.md) with each table between its markers made anew."""
    for label, model in TABLES.items():
        begin, end = BEGIN.format(label), END.format(label)
        head, found, rest = text.partition(begin + "\n")
        _, found_end, tail = rest.partition(end)
        if not (found and found_end):
            raise SystemExit(f"{PAGE}: no `{begin}` ... `{end}` block for the {label} table.")
        text = f"{head}{begin}\n{table(model)}\n{end}{tail}"
    return text


def main(path: Path = PAGE) -> None:
    path.write_text(page(path.read_text()))
    print(f"wrote the settings tables of {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else PAGE)
