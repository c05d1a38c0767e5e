"""What the tasks print and ask: the consoles, tables and summaries, and the questions at a terminal.

`console`, `prompts` and `tables`, named from this package (`from aiplatform.cli import tables`), are imported when
one of their names is first read: tasks.py names them at its top, and `inv --list` or `inv --help TASK` never pays
for rich, the catalog and what they import. (Not importlib.util.LazyLoader: invoke's Collection.from_module runs
isinstance() on every name of tasks.py, which would load such a module at once.)
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _OnFirstUse(ModuleType):
    """Stands for the submodule of its name until a name of it is read or set; then imports it and passes it on."""

    def _module(self) -> ModuleType:
        return importlib.import_module(self.__name__)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module(), name)

    def __setattr__(self, name: str, value: Any) -> None:  # a test's monkeypatch reaches the real module
        if name.startswith("__"):
            super().__setattr__(name, value)
        else:
            setattr(self._module(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._module(), name)


console = _OnFirstUse(f"{__name__}.console")
prompts = _OnFirstUse(f"{__name__}.prompts")
tables = _OnFirstUse(f"{__name__}.tables")
