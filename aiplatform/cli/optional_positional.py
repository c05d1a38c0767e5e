"""Positional arguments of invoke tasks as a user expects them: optional ones (`inv add` and `inv add mlflow` both
valid), and `--help` that is never taken for one (`inv remove --help` is `inv --help remove`).

invoke treats every positional argument as required: its parser eats the next word for one that has no value yet,
and at the end of the task's words it refuses one still without a value. `OptionalPositional` keeps the first rule
and drops the second: when the task's words are over and it got none, it takes the empty string. The first rule
also ate `--help` (`unknown service '--help'`), as did a flag waiting for its value (`inv render --answers --help`):
a help flag is now the help flag wherever it stands. This is the one
place that reaches into invoke's parser (ParseMachine.handle and complete_context, invoke 2.x/3.x).

`RestPositional` is the last positional argument of a task that takes any number of words (`inv settings set
a=1 b=2`): once the positional arguments before it have their values, each further word that is neither a flag
nor a task name is added to its list, where invoke would say "No idea what 'b=2' is!".
"""

from __future__ import annotations

from typing import Any

from invoke.parser.argument import Argument
from invoke.parser.parser import ParseMachine


class OptionalPositional(Argument):
    """A positional argument that may be left out (its value is then "")."""


class RestPositional(Argument):
    """The words after a task's other positional arguments, as a list (empty when none)."""


_complete = ParseMachine.complete_context
_handle = ParseMachine.handle


def _complete_context(self: Any) -> None:
    for argument in self.context.positional_args if self.context else []:
        if isinstance(argument, OptionalPositional) and argument.value is None:
            argument.set_value("", cast=False)
    _complete(self)


def _is_help(self: Any, token: str) -> bool:
    """`token` is the core --help/-h flag given after a task's name, where invoke would eat it as a positional."""
    if not (self.context and self.initial) or token in self.context.flags or self.current_state == "unknown":
        return False
    if not (self.context.missing_positional_args or self.waiting_for_flag_value):
        return False
    return token in self.initial.flags and self.initial.flags[token].name == "help"  # a Lexicon: .get skips -h


def _rest(self: Any, token: str) -> Any:
    """The task's RestPositional that takes `token`: a word invoke would refuse as unknown, once the positional
    arguments before it have values."""
    context = self.context
    if context is None or self.current_state == "unknown" or self.waiting_for_flag_value:
        return None
    if token in context.flags or token in context.inverse_flags or context.missing_positional_args:
        return None
    if token in self.contexts or (self.initial and token in self.initial.flags):
        return None
    return next((arg for arg in context.positional_args if isinstance(arg, RestPositional)), None)


def _handle_token(self: Any, token: str) -> None:
    if _is_help(self, token):
        self.initial.flags[token].value = self.context.name  # what invoke does for --help after a task's flags
        for argument in self.context.missing_positional_args:
            argument.set_value("", cast=False)  # help is printed instead of running: no "missing argument" error
        self.flag = None  # nor "flag needed value" for a flag it followed (`inv render --answers --help`)
        return
    rest = _rest(self, token)
    if rest is not None:
        rest.set_value(token)  # a list: appended
        return
    _handle(self, token)


ParseMachine.complete_context = _complete_context  # type: ignore[method-assign]
ParseMachine.handle = _handle_token  # type: ignore[method-assign]
