"""The reference tables of the docs, made from the models they describe: every key with its default, its range and its
meaning. docs/settings.md has the settings' keys and an Ollama node's; docs/catalog.md has service.yaml's keys and
those of each part it nests (a container, a route, a setup step...). A unit test keeps the pages equal to what this
makes; `python -m aiplatform.inputs.reference` writes them there after a model changes.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from aiplatform.inputs import catalog
from aiplatform.inputs.profiles import TIERS, load_profile
from aiplatform.inputs.settings import SECRET_KEYS, OllamaNode, Settings
from aiplatform.paths import PROJECT_DIR

BEGIN = "<!-- {} table: made by `python -m aiplatform.inputs.reference` from the model; edit the model, not this -->"
END = "<!-- end of {} table -->"


@dataclass(frozen=True)
class Page:
    """A docs page and its tables (marker label -> model, in the page's order). With `nested`, a key whose values are
    a model of the page names that model's table as its range (the settings page says it in words instead)."""

    path: Path
    tables: dict[str, type[BaseModel]]
    nested: bool = False


PAGES = (
    Page(PROJECT_DIR / "docs" / "settings.md", {"settings": Settings, "ollama node": OllamaNode}),
    Page(
        PROJECT_DIR / "docs" / "catalog.md",
        {
            "service.yaml": catalog.ServiceSpec,
            "container": catalog.ContainerSpec,
            "build": catalog.BuildSpec,
            "secret": catalog.SecretSpec,
            "database": catalog.DatabaseSpec,
            "route": catalog.RouteSpec,
            "path route": catalog.PathRoute,
            "metrics": catalog.MetricsSpec,
            "file": catalog.FileSpec,
            "setup step": catalog.SetupCall,
            "already": catalog.AlreadyAnswer,
            "already_if": catalog.AlreadyIf,
            "login": catalog.LoginSpec,
            "needs": catalog.NeedsSpec,
            "backup": catalog.BackupSpec,
        },
        nested=True,
    ),
)


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
    if isinstance(value, BaseModel):
        return "as below"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`[{', '.join(map(str, value))}]`"
    if name == "mode" and isinstance(value, int):  # a file's mode, written in octal
        return f'`"{value:04o}"`'
    return f"`{value}`"


def _bare(annotation: object) -> object:
    """`X | None` -> X."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    return args[0] if type(None) in typing.get_args(annotation) and len(args) == 1 else annotation


def _one(annotation: object) -> object:
    """The type of one value: X of `X | None`, `list[X]`, `dict[str, X]`."""
    annotation = _bare(annotation)
    return typing.get_args(annotation)[-1] if typing.get_origin(annotation) in (list, dict) else annotation


def _nested(info: FieldInfo, names: dict[type[BaseModel], str]) -> str:
    """`name -> container (below)`, `list of secret (below)`, `route (below)`: a key whose values are a model."""
    model = _one(info.annotation)
    if not (names and isinstance(model, type) and issubclass(model, BaseModel)):
        return ""
    if model not in names:
        raise SystemExit(f"{model.__name__} has no table on the page: add it to reference.PAGES.")
    origin = typing.get_origin(_bare(info.annotation))
    shape = "list of " if origin is list else "name -> " if origin is dict else ""
    return f"{shape}{names[model]} (below)"


def _span(low: str, high: str, unit: str) -> str:
    if low and high:
        return f"{low}–{high}{unit}"
    return f"{low} or more{unit}" if low else f"up to {high}{unit}" if high else ""


def _range(info: FieldInfo, names: dict[type[BaseModel], str]) -> str:
    """The values a key takes: a model's table, a Literal's choices, a number's bounds, a length, a pattern."""
    choices = _one(info.annotation)
    if typing.get_origin(choices) is typing.Literal:
        return ", ".join(f"`{choice}`" for choice in typing.get_args(choices))

    def bound(kind: type, attribute: str) -> str:
        found = [getattr(rule, attribute) for rule in info.metadata if isinstance(rule, kind)]
        return f"{found[0]:_}".replace("_", ",") if found else ""

    unit = " characters" if _bare(info.annotation) is str else ""  # else a list's entries
    found = [
        _nested(info, names),
        _span(bound(annotated_types.Ge, "ge"), bound(annotated_types.Le, "le"), ""),
        _span(bound(annotated_types.MinLen, "min_length"), bound(annotated_types.MaxLen, "max_length"), unit),
        *(f"`{rule.pattern}`" for rule in info.metadata if getattr(rule, "pattern", None)),
    ]
    return "; ".join(part for part in found if part)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a pipe ends the cell, even in `code`


def table(model: type[BaseModel], names: dict[type[BaseModel], str] | None = None) -> str:
    """The Markdown table of `model`'s keys: key, default, range, meaning (a secret says so); `names`: the table of
    each model a key nests (the page's, by model)."""
    tier_keys = _tier_keys() if model is Settings else set()
    rows = ["| key | default | range | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        secret = " **secret**" if model is Settings and name in SECRET_KEYS else ""
        default, values = _default(name, info, tier_keys), _cell(_range(info, names or {}))
        rows.append(f"| `{info.alias or name}` | {default} | {values} | {_cell(str(info.description))}{secret} |")
    return "\n".join(rows)


def page(text: str, where: Page) -> str:
    """`text` (the page `where`'s) with each of its tables between their markers made anew."""
    names = {model: label for label, model in where.tables.items()} if where.nested else {}
    for label, model in where.tables.items():
        begin, end = BEGIN.format(label), END.format(label)
        head, found, rest = text.partition(begin + "\n")
        _, found_end, tail = rest.partition(end)
        if not (found and found_end):
            raise SystemExit(f"{where.path}: no `{begin}` ... `{end}` block for the {label} table.")
        text = f"{head}{begin}\n{table(model, names)}\n{end}{tail}"
    return text


def main(pages: tuple[Page, ...] = PAGES) -> None:
    """Write the tables of every page, once each is made (a page without its markers stops all: none is written)."""
    made = [(each.path, page(each.path.read_text(), each)) for each in pages]
    for path, text in made:
        path.write_text(text)
        print(f"wrote the reference tables of {path}")


if __name__ == "__main__":
    main()
