"""Read a YAML mapping from a file with the line of each top-level key, so errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aiplatform.errors import UserError


@dataclass
class YamlDoc:
    """A parsed YAML mapping, where it came from, and the line (1-based) of each top-level key."""

    path: Path
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, key: str | None = None) -> str:
        """`path line N` for a key when the line is known, else just the path."""
        line = self.lines.get(key or "")
        return f"{self.path} line {line}" if line else str(self.path)


def validation_error(doc: YamlDoc, exc: ValidationError, fix: str) -> UserError:
    """The first pydantic error of a model read from `doc`, as a UserError naming the file, line and key."""
    error = exc.errors()[0]
    loc = ".".join(str(part) for part in error["loc"])
    top = str(error["loc"][0]) if error["loc"] else ""
    return UserError(f"{doc.where(loc if loc in doc.lines else top)}: key {loc or '(top)'!r}: {error['msg']}.", fix)


def load_yaml(path: Path, fix: str = "") -> YamlDoc:
    """Parse `path` as a YAML mapping; syntax errors and non-mappings become a UserError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found.", fix) from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text.", fix) from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror}).", fix) from None
    try:
        node, data = _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path} line {mark.line + 1} column {mark.column + 1}" if mark else str(path)
        problem = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark:
            problem = f"{exc.context} (line {exc.context_mark.line + 1}): {problem}"
        raise UserError(f"{where}: YAML syntax error: {problem}.", fix) from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: YAML syntax error: {exc}.", fix) from None
    if data is None:
        return YamlDoc(path, {})
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise UserError(f"{path}: expected a mapping of key: value at the top level, got {type(data).__name__}.", fix)
    return YamlDoc(path, {str(k): v for k, v in data.items()}, dict(_key_lines(node)))


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node (for its keys' lines) and its data, parsed once, by libyaml when PyYAML has it (the
    catalog's files are read on every command: the pure-Python parser was most of `inv render`'s time)."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _key_lines(node: yaml.MappingNode, prefix: str = ""):  # type: ignore[no-untyped-def]
    # Dotted key paths ("settings.ollama_keep_alive") with the line each key is on.
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        name = f"{prefix}{key.value}"
        yield name, key.start_mark.line + 1
        if isinstance(value, yaml.MappingNode):
            yield from _key_lines(value, name + ".")
