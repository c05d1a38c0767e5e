"""Change answers.yaml as its owner would by hand: one key at a time, every comment, blank line and the order of the
other keys kept (ruamel.yaml's round trip). `inv add` and `inv remove` change `services:` (and
`privileged_services:`) this way; `inv settings set` / `unset` and `inv render --ask` replace or remove whole keys
(`with_values`: only the lines of those keys change, byte for byte)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml as yaml_1_1
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from aiplatform.commands import INV
from aiplatform.errors import UserError
from aiplatform.yamlfile import parse_yaml

NEW_FILE = "# Answers of AI Platform (`inv settings` shows the result). Edit freely.\n"


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments and order survive
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def with_list(
    text: str,
    path: Path,
    key: str,
    add: list[str] | None = None,
    remove: list[str] | None = None,
    default: list[str] | None = None,
) -> str:
    """The answers file `text` with `add` appended to the list `key` and `remove` taken out of it; a missing key
    starts from `default` (what its absence meant: the current value)."""
    yaml = _yaml()
    data = _load(yaml, text, path)
    values = data.get(key)
    if values is None:
        values = CommentedSeq(list(default or []))
        data[key] = values
    if not isinstance(values, list):
        raise UserError(f"{path}: `{key}:` must be a list, like {key}: [a, b].", f"Fix {path}.")
    for name in add or []:
        if name not in values:
            values.append(name)
    for name in remove or []:
        while name in values:
            values.remove(name)
    out = io.StringIO()
    yaml.dump(data, out)
    return (NEW_FILE if not text.strip() else "") + out.getvalue()


def _load(yaml: YAML, text: str, path: Path) -> CommentedMap:
    parse_yaml(text, str(path), f"Fix {path}, then run `{INV} settings`.")  # the limits every user file is read with
    try:
        data = yaml.load(text) if text.strip() else None
    except YAMLError as exc:
        raise UserError(f"{path}: YAML syntax error: {exc}.", f"Fix {path}, then run `{INV} settings`.") from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise UserError(f"{path}: expected a mapping of key: value at the top level.", f"Fix {path}.")
    return data


def with_values(text: str, path: Path, values: Mapping[str, Any], remove: Iterable[str] = ()) -> str:
    """The answers file `text` with each key of `values` set (in place when it is there, else appended) and the keys
    of `remove` taken out. Only the lines of those keys change: a key's end-of-line comment stays, a list written
    [a, b] stays in that style, comments and blank lines around it stay where they were."""
    yaml = _yaml()
    data = _load(yaml, text, path)
    gone = [key for key in remove if key in data]
    if not values and not gone:
        return text
    expected = {**{k: v for k, v in _plain(data).items() if k not in gone}, **_plain(values)}
    if data and data.fa.flow_style():  # written {a: b} on one line: no lines of its own to splice
        return _dumped(yaml, text, data, values, gone)
    lines = text.splitlines(keepends=True) if text.strip() else [NEW_FILE]
    if not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    keys = list(data)
    spans = {}
    for index, key in enumerate(keys):
        start = data.lc.key(key)[0]
        end = data.lc.key(keys[index + 1])[0] if index + 1 < len(keys) else len(lines)
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1  # comments and blank lines after a value belong to what follows
        spans[key] = (start, end)
    edits = {key: _entry(yaml, data, key, values[key], spans[key]) for key in values if key in data}
    edits.update(dict.fromkeys(gone, ""))
    for key in sorted(edits, key=lambda k: spans[k][0], reverse=True):
        start, end = spans[key]
        lines[start:end] = [edits[key]]
    added = "".join(_entry(yaml, data, key, value, None) for key, value in values.items() if key not in data)
    result = "".join(lines) + added
    if _plain(yaml_1_1.safe_load(result) or {}) != expected:  # a layout this splice does not know: dump it
        return _dumped(yaml, text, data, values, gone)
    return result


def _plain(data: Any) -> Any:
    """`data` as plain dicts, lists and scalars (for comparing what two texts say)."""
    if isinstance(data, Mapping):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    return data


def _entry(yaml: YAML, data: CommentedMap, key: str, value: Any, span: tuple[int, int] | None) -> str:
    """`key: value` as lines of the file: in the old value's flow style and with its end-of-line comment."""
    old = data.get(key) if span else None
    value = _quoted(value)
    if isinstance(old, (CommentedSeq, CommentedMap)) and old.fa.flow_style() and type(value) is type(old):
        value.fa.set_flow_style()
    out = io.StringIO()
    yaml.dump(CommentedMap([(key, value)]), out)
    text = out.getvalue()
    token = data.ca.items.get(key, [None] * 4)[2] if span else None
    if span and span[1] - span[0] == 1 and text.count("\n") == 1 and token is not None:
        comment = token.value.split("\n")[0]
        if comment.lstrip().startswith("#"):
            line = text.rstrip("\n")
            text = f"{line}{' ' * max(1, token.column - len(line))}{comment.lstrip()}\n"
    return text


def _quoted(value: Any) -> Any:
    """`value` for ruamel to dump, every string PyYAML (YAML 1.1, which reads answers.yaml) would take for something
    else quoted: `yes`, `off`, `1_000`, `12:30`, ..."""
    if isinstance(value, str):
        try:
            same = yaml_1_1.safe_load(value) == value
        except (yaml_1_1.YAMLError, ValueError, OverflowError):  # `2026-13-45`: a date YAML cannot make
            same = False
        if same:
            return value
        # a line break YAML folds (NEL, LS, PS) or a control character survives only escaped, in double quotes
        if any(c in "\x85\u2028\u2029" or not c.isprintable() for c in value):
            return DoubleQuotedScalarString(value)
        return SingleQuotedScalarString(value)
    if isinstance(value, Mapping):
        return CommentedMap((k, _quoted(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return CommentedSeq(_quoted(v) for v in value)
    return value


def _dumped(yaml: YAML, text: str, data: CommentedMap, values: Mapping[str, Any], gone: list[str]) -> str:
    for key in gone:
        del data[key]
    for key, value in values.items():
        data[key] = _quoted(value)
    out = io.StringIO()
    yaml.dump(data, out)
    return (NEW_FILE if not text.strip() else "") + out.getvalue()
