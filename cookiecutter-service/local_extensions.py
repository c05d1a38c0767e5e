"""Loaded by cookiecutter in its own process (cookiecutter.json's `_extensions`), before any question.

When the template's hook refuses the answers it has already said why, in one paragraph, and where the answers are
kept; cookiecutter then logs the refusal with a traceback of its own code (`logger.exception` in its hooks module),
which reads like a crash. This keeps that log to one line: the refusal, without the traceback.
"""

from __future__ import annotations

import logging

from jinja2 import Environment
from jinja2.ext import Extension


class _RefusedAnswers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and type(record.exc_info[1]).__name__ == "FailedHookException":
            record.msg, record.args = "Nothing was made: the answers above break the template's rules.", ()
            record.exc_info, record.exc_text = None, None
        return True


class RefusedAnswersWithoutTraceback(Extension):
    """A Jinja extension only for its side effect on cookiecutter's hooks logger (no tags, no filters)."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        logger = logging.getLogger("cookiecutter.hooks")
        if not any(isinstance(f, _RefusedAnswers) for f in logger.filters):
            logger.addFilter(_RefusedAnswers())
