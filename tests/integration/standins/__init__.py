"""Local stand-in images for the integration tests (see README.md); build them with
`python -m tests.integration.standins.build`."""

from .images import (
    BASE_IMAGE,
    DEFAULT_VARIANTS,
    Container,
    build_base,
    build_standins,
    build_variant,
    catalog_containers,
    image_ref,
    images_override,
)

__all__ = [
    "BASE_IMAGE",
    "DEFAULT_VARIANTS",
    "Container",
    "build_base",
    "build_standins",
    "build_variant",
    "catalog_containers",
    "image_ref",
    "images_override",
]
