"""Change answers.yaml as its owner would by hand: one key at a time, every comment, blank line and the order of the
other keys kept (ruamel.yaml's round trip). `inv add` and `inv remove` change `services:` (and
`privileged_services:`) this way."""

from __future__ import annotations

import io
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from aiplatform.commands import INV
from aiplatform.errors import UserError

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
    try:
        data = yaml.load(text) if text.strip() else None
    except YAMLError as exc:
        raise UserError(f"{path}: YAML syntax error: {exc}.", f"Fix {path}, then run `{INV} settings`.") from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise UserError(f"{path}: expected a mapping of key: value at the top level.", f"Fix {path}.")
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
