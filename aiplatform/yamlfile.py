"""Read a YAML mapping from a file with the line of each top-level key, so errors can point at it.

The one way every file an owner writes is read (answers.yaml, the tier profiles, service.yaml, and `--set` or
AI_PLATFORM_* values written as YAML flow): a bounded read of a regular file (a FIFO, a device or a huge file is
refused, never waited on), then PyYAML's safe loader with three limits a hand-written or hostile file meets as a
message naming the file and line: a key given twice in one mapping (YAML would keep the last one silently), more
than MAX_NODES values once aliases are expanded (a "billion laughs" alias bomb), nesting deeper than MAX_DEPTH.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aiplatform.commands import INV
from aiplatform.errors import UserError

MAX_BYTES = 1024 * 1024  # no file the platform reads as settings comes near this
MAX_NODES = 100_000  # values after aliases are expanded (the whole built-in catalog's largest file has ~300)
MAX_DEPTH = 50  # levels of nesting (settings use 3, service.yaml and compose files 6)
MAX_DIGITS = 30  # digits of an integer (Python refuses to read one of more than 4300)


@dataclass
class YamlDoc:
    """A parsed YAML mapping, where it came from, and the line (1-based) of each key, by its dotted path."""

    path: Path
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)
    text: str = ""  # the file as read

    def where(self, key: str | None = None) -> str:
        """`path line N` for a key path ("ollama_nodes.0.weight") when its line is known, else the line of the
        deepest key above it the file has (a value the model reshaped has no line), else just the path."""
        parts = (key or "").split(".")
        known = (self.lines.get(".".join(parts[:n])) for n in range(len(parts), 0, -1))
        line = next((line for line in known if line), None)
        return f"{self.path} line {line}" if line else str(self.path)


def validation_error(doc: YamlDoc, exc: ValidationError, fix: str) -> UserError:
    """The first pydantic error of a model read from `doc`, as a UserError naming the file, line and key."""
    error = exc.errors()[0]
    loc = ".".join(str(part) for part in error["loc"])
    return UserError(f"{doc.where(loc)}: key {loc or '(top)'!r}: {error['msg']}.", fix)


def read_text(path: Path, fix: str = "", limit: int = MAX_BYTES) -> str:
    """The text of `path`, a regular UTF-8 file of at most `limit` bytes; anything else is a UserError naming it.
    Opened without blocking and checked before reading: a FIFO or a device is refused, never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found.", fix) from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror}).", fix) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{path}: not a regular file (a FIFO, a device or a folder): it is not read.", fix)
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise UserError(f"{path}: cannot read it ({exc.strerror}).", fix) from None
    if len(data) > limit:
        raise UserError(f"{path}: larger than {limit // 1024} KiB: not a file the platform reads.", fix)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text.", fix) from None


def load_yaml(path: Path, fix: str = "") -> YamlDoc:
    """Parse `path` as a YAML mapping; syntax errors and non-mappings become a UserError naming file and line."""
    fix = fix or f"Fix {path}, then run `{INV} settings` to check it."
    text = read_text(path, fix)
    node, data = parse_yaml(text, str(path), fix)
    if data is None:
        return YamlDoc(path, {}, text=text)
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise UserError(f"{path}: expected a mapping of key: value at the top level, got {type(data).__name__}.", fix)
    return YamlDoc(path, {str(k): v for k, v in data.items()}, dict(_key_lines(node)), text)


def parse_yaml(text: str, source: str, fix: str = "") -> tuple[yaml.Node | None, Any]:
    """The document's node and data, read by SafeLoader with its limits; any problem is a UserError naming `source`
    (a file, a variable, a template) and the line."""
    try:
        return _parse(text)
    except _Refused as exc:
        raise YamlRefused(f"{source} line {exc.line}: {exc.problem}.", fix) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source} line {mark.line + 1} column {mark.column + 1}" if mark else source
        problem = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark:
            problem = f"{exc.context} (line {exc.context_mark.line + 1}): {problem}"
        raise UserError(f"{where}: YAML syntax error: {problem}.", fix) from None
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: YAML syntax error: {exc}.", fix) from None
    except RecursionError:  # only the pure-Python parser recurses; libyaml stops at 1000 levels itself
        raise YamlRefused(f"{source}: nested deeper than {MAX_DEPTH} levels.", fix) from None


class YamlRefused(UserError):
    """Valid YAML refused by a limit: a duplicate key, an alias bomb, too deep, too long a number."""


class _Refused(Exception):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line, self.problem = line, problem


class SafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml's parser when PyYAML has it: the catalog's files are read on every command)
    refusing a key given twice in one mapping and an integer of more than MAX_DIGITS digits. Use it through
    parse_yaml (which also bounds the size and depth) or yaml.load(text, Loader=SafeLoader)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges are meant to be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
                seen[key] = key_node.start_mark.line + 1
            except TypeError:
                continue  # an unhashable key: the constructor below names it
            if first is not None:
                raise _Refused(key_node.start_mark.line + 1, f"the key {key!r} is given twice in one mapping (first "
                               f"on line {first}); YAML would silently keep only the last one")  # fmt: skip
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(char.isdigit() for char in str(node.value))
        if digits > MAX_DIGITS:
            raise _Refused(node.start_mark.line + 1, f"a number of {digits} digits (at most {MAX_DIGITS})")
        return super().construct_yaml_int(node)  # type: ignore[no-any-return]


SafeLoader.add_constructor("tag:yaml.org,2002:int", SafeLoader.construct_yaml_int)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    loader = SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_size(node)
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def _check_size(root: yaml.Node) -> None:
    """Refuse a document of more than MAX_NODES values once its aliases are expanded, deeper than MAX_DEPTH, or
    holding itself. Walks the node graph (each node once, however many aliases name it), so a bomb costs nothing."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values under it with aliases expanded, depth)
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        children = _children(node)
        if finished:
            count = 1 + sum(sizes[id(child)][0] for child in children)
            depth = 1 + max((sizes[id(child)][1] for child in children), default=0)
            line = node.start_mark.line + 1
            if count > MAX_NODES:
                raise _Refused(line, f"more than {MAX_NODES:,} values once its aliases (*name) are expanded")
            if depth > MAX_DEPTH:
                raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
            sizes[id(node)] = (count, depth)
            active.discard(id(node))
        elif id(node) in active:
            raise _Refused(node.start_mark.line + 1, "an alias (*name) inside the value it names")
        elif id(node) not in sizes:
            active.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _key_lines(node: yaml.Node, prefix: str = ""):  # type: ignore[no-untyped-def]
    # Dotted key paths ("settings.ollama_keep_alive", "ollama_nodes.0.weight": a list's items by index) with the
    # line each key or item is on.
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield f"{prefix}{index}", item.start_mark.line + 1
            yield from _key_lines(item, f"{prefix}{index}.")
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                yield f"{prefix}{key.value}", key.start_mark.line + 1
                yield from _key_lines(value, f"{prefix}{key.value}.")
