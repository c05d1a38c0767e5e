"""What a catalog Dockerfile template adds to the official image with pip (the packages deploy builds in), pinned as
there: the real apps install the same beside the release the image pins."""

from __future__ import annotations

import re

from tests.apps.install import REPO


def image_packages(service: str, template: str) -> list[str]:
    """The requirements of every `pip install` line in templates/services/<service>/<template>."""
    text = (REPO / "templates/services" / service / template).read_text()
    lines = re.findall(r"pip install (.+)", text)
    found = [word for line in lines for word in line.split() if not word.startswith("-")]
    assert found, f"{template} installs no packages"
    return found
