"""An optional positional argument for invoke tasks (`inv add` and `inv add mlflow` both valid).

invoke treats every positional argument as required: its parser eats the next word for one that has no value yet,
and at the end of the task's words it refuses one still without a value. `OptionalPositional` keeps the first rule
and drops the second: when the task's words are over and it got none, it takes the empty string. This is the one
place that reaches into invoke's parser (ParseMachine.complete_context, invoke 2.x/3.x).
"""

from __future__ import annotations

from typing import Any

from invoke.parser.argument import Argument
from invoke.parser.parser import ParseMachine


class OptionalPositional(Argument):
    """A positional argument that may be left out (its value is then "")."""


_complete = ParseMachine.complete_context


def _complete_context(self: Any) -> None:
    for argument in self.context.positional_args if self.context else []:
        if isinstance(argument, OptionalPositional) and argument.value is None:
            argument.set_value("", cast=False)
    _complete(self)


ParseMachine.complete_context = _complete_context  # type: ignore[method-assign]
