"""The rules an answer to cookiecutter-service's questions must follow: one definition, used by the template's hook
(plain `cookiecutter cookiecutter-service`) and by `inv add --new`, which checks each answer as it is given.

The hook imports this module with whatever Python runs cookiecutter, so it needs only the standard library and
images.py (the catalog's own image rule). Answers are data: nothing here, nor in the hook, pastes them into code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiplatform.inputs.images import image_problem

NAME = re.compile(r"[a-z][a-z0-9-]{0,40}")
LABEL = re.compile(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?")
CONTAINER_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")
MAX_DESCRIPTION = 200


def _name(value: str) -> str | None:
    return None if NAME.fullmatch(value) else "lower-case letters, digits and dashes, starting with a letter"


def _description(value: str) -> str | None:
    if not value.strip():
        return "one sentence, not empty"
    if len(value) > MAX_DESCRIPTION:
        return f"one sentence of at most {MAX_DESCRIPTION} characters"
    if any(not char.isprintable() for char in value):
        return "one line of printable text (no line breaks or control characters)"
    if any(char in value for char in "{}"):
        return "no braces: { and } are template syntax here"
    return None


def _image(value: str) -> str | None:
    problem = image_problem(value)
    return f"{value!r} {problem}" if problem else None


def _port(value: str) -> str | None:
    return None if value.isdigit() and 1 <= int(value) <= 65535 else "a port number from 1 to 65535"


def _label(value: str) -> str | None:
    return None if LABEL.fullmatch(value) else "one DNS label (lower-case letters, digits, dashes; no spaces or dots)"


def _path(value: str) -> str | None:
    return None if CONTAINER_PATH.fullmatch(value) else "a path starting with / (letters, digits, . _ ~ / -)"


RULES: dict[str, Callable[[str], str | None]] = {
    "name": _name,
    "description": _description,
    "image": _image,
    "port": _port,
    "host_port": _port,
    "health_path": _path,
    "subdomain": _label,
    "ip_port": _port,
    "data_path": _path,
}


@dataclass
class Question:
    key: str
    text: str  # the template's own wording (__prompts__)
    default: str  # may be a Jinja expression of earlier answers ("{{ cookiecutter.name }}")
    choices: dict[str, str]  # value -> what it means; empty for a free answer


def answer_problem(key: str, value: object, choices: list[str] | None = None) -> str | None:
    """Why `value` cannot answer question `key` ("key: the rule"), or None when it can."""
    text = str(value)
    if choices is not None:
        return None if text in choices else f"{key}: one of {', '.join(choices)}"
    rule = RULES.get(key)
    problem = rule(text) if rule else None
    return f"{key}: {problem}" if problem else None


def answer_problems(answers: dict[str, object], template: Path) -> list[str]:
    """Every rule the answers break, in the template's question order."""
    return [
        problem
        for question in questions(template)
        if question.key in answers
        and (problem := answer_problem(question.key, answers[question.key], list(question.choices) or None))
    ]


def questions(template: Path) -> list[Question]:
    """The template's questions (cookiecutter.json), in order, with their wording and choices."""
    config = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    prompts = config.get("__prompts__", {})
    found = []
    for key, default in config.items():
        if key.startswith("_"):
            continue
        said = prompts.get(key, key)
        if isinstance(default, list):
            meaning = said if isinstance(said, dict) else {}
            text = meaning.get("__prompt__", key) if meaning else str(said)
            found.append(Question(key, text, str(default[0]), {str(c): str(meaning.get(c, c)) for c in default}))
        else:
            found.append(Question(key, str(said), str(default), {}))
    return found
