"""When the reader of stdout goes away (`inv --help deploy | head`), stop quietly as Unix tools do: exit 141
(128 + SIGPIPE), no traceback. Python's own default (SIGPIPE ignored, so a write raises BrokenPipeError) prints one.
Not SIGPIPE's default action instead: that would also kill inv on a socket an app's server closed mid-request."""

from __future__ import annotations

import os
import sys
from typing import Any


def quiet_on_broken_pipe() -> None:
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, traceback: Any) -> None:
        if issubclass(kind, BrokenPipeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
            os._exit(141)
        previous(kind, value, traceback)

    sys.excepthook = hook
