"""Build the stand-in images: python -m tests.integration.standins.build [CONTAINER...] [--slow SECONDS]."""

from __future__ import annotations

import argparse
import time

from .images import DEFAULT_VARIANTS, build_standins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("containers", nargs="*", help="catalog containers (default: all)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated: test,slow,broken")
    parser.add_argument("--slow", type=float, default=20, help="seconds the slow variant waits (default 20)")
    args = parser.parse_args()
    variants = {**DEFAULT_VARIANTS, "slow": {"healthy_after": args.slow, "start_delay": args.slow}}
    chosen = {name: variants[name] for name in args.variants.split(",")}
    started = time.monotonic()
    refs = build_standins(chosen, containers=args.containers or None)
    for variant, images in refs.items():
        print(f"{variant}: {' '.join(sorted(images.values()))}")
    print(f"total: {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
