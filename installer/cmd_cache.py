"""``inst cache dir|info|clean``."""

from __future__ import annotations

import argparse

from installer import app
from installer.context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands dir, info and clean."""
    sub = parser.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    sub.add_parser("dir", help="Print the cache folder.")
    sub.add_parser("info", help="Sizes and entry counts per kind of cache entry.")
    sub.add_parser("clean", help="Delete every cache entry.")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def run(ctx: Context) -> int:
    """Run the chosen cache action."""
    from installer.cache import Cache

    root = app.cache_root(ctx.settings)
    action = ctx.args.cache_command
    if action == "dir":
        ctx.out.result(str(root))
        return 0
    cache = Cache(root)
    if action == "info":
        ctx.out.result(f"cache: {root}")
        for kind in cache.info():
            ctx.out.result(f"{kind.kind:<9} {kind.entries:>6} entries  {kind.files:>7} files  "
                           f"{_size(kind.size):>10}  {kind.path}")
        return 0
    freed = cache.clean()
    ctx.out.info(f"Removed {_size(freed)} from {root}")
    return 0
