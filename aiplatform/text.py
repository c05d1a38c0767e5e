"""Text an owner gives that ends up in a file or a command line other programs parse (systemd units, compose and env
files, the Caddyfile, archive member names, rclone's arguments): a control character there would change what it says.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # newline, tab, escape, DEL, ...
