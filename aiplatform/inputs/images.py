"""The one rule for image references, used by the catalog (service.yaml) and the settings (`images:`,
`registry_mirror`) alike: a reference in Docker's grammar, nothing compose would interpolate, and pinned.

Pinned means a digest, or a tag that names one build: not a moving word (latest, main, stable, ...), not a bare major
version (`16`, `16-alpine`). A tag of the owner's own making (`test`, `2026-11-local`) counts as pinned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aiplatform.commands import SUDO_INV
from aiplatform.errors import UserError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE = re.compile(
    rf"^(?:(?:(?=[^/]*[.:]){_DOMAIN}|localhost)/)?{_COMPONENT}(?:/{_COMPONENT})*(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
MIRROR = re.compile(rf"^{_DOMAIN}(?:/{_COMPONENT})*/?$")

# Tags that move to another build over time, and the OS / flavour words that only qualify one.
MOVING = {
    "latest",
    "main",
    "master",
    "stable",
    "edge",
    "nightly",
    "dev",
    "develop",
    "devel",
    "beta",
    "alpha",
    "rc",
    "next",
    "canary",
    "current",
    "lts",
    "release",
    "unstable",
    "testing",
}
FLAVOURS = {"alpine", "slim", "debian", "ubuntu", "bookworm", "bullseye", "buster", "trixie", "jammy", "noble", "focal"}


def image_problem(image: str) -> str | None:
    """Why `image` is not a pinned reference the platform can write into a compose file, or None when it is."""
    if "$" in image:
        return "contains `$`, which compose would interpolate (a secret could end up in `image:`)"
    match = REFERENCE.match(image)
    if match is None:
        return "is not an image reference (registry/name:tag, lower-case name)"
    tag, digest = match.group("tag"), match.group("digest")
    if digest:
        return None
    if not tag:
        return "is not pinned: no tag means :latest"
    if re.search(r"\d+\.\d+|\d{4}-\d{2}-\d{2}|\d{8}", tag):  # a release number or a build date: one build
        return None
    words = [word for word in re.split(r"[-_]", tag.lower()) if word]
    moving = [word for word in words if word in MOVING]
    if moving:
        return f"is not pinned: tag {tag!r} moves ({moving[0]!r} points at a new build over time)"
    if all(re.fullmatch(r"v?\d+", word) or word in FLAVOURS for word in words):
        return f"is not pinned: tag {tag!r} names no release (a major version or a flavour only; pin one like 16.14)"
    return None


def mirror_problem(mirror: str) -> str | None:
    """Why `mirror` cannot be put in front of an image reference (registry host[:port][/path]), or None."""
    if "$" in mirror:
        return "contains `$`, which compose would interpolate"
    if mirror and not MIRROR.match(mirror):
        return "is not a registry address like registry.local:5000 or registry.local/mirror"
    return None


LOCKFILE = "images.lock"  # {"images": {"name:tag": "sha256:..."}}: written by `inv upgrade`, read by render
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def read_lock(path: Path) -> dict[str, str]:
    """image reference -> the digest it was pulled at; a file not written by `inv upgrade` is a UserError."""
    if not path.is_file():
        return {}
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
        if not all(isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v) for k, v in images.items()):
            raise ValueError("not image -> sha256 digest")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(
            f"{path} is not a lockfile `inv upgrade` wrote ({exc}).",
            f"Delete it (render then uses the tags) or run `{SUDO_INV} upgrade` again.",
        ) from None
    return dict(images)


def format_lock(images: dict[str, str]) -> bytes:
    return (json.dumps({"images": dict(sorted(images.items()))}, indent=2) + "\n").encode()


def locked_image(image: str, locked: dict[str, str]) -> str:
    """`image@sha256:...` when the lockfile holds a digest for exactly this reference, else the reference."""
    digest = locked.get(image)
    return f"{image}@{digest}" if digest and "@" not in image else image
