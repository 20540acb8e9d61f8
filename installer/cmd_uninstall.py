"""``inst uninstall NAME... [-y]``: remove distributions by their RECORD, atomically."""

from __future__ import annotations

import argparse
import sys

from installer import app
from installer.context import Context
from installer.errors import InstError
from installer.models import canonical


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """NAME... and -y."""
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument("-y", "--yes", action="store_true", help="Do not ask for confirmation.")


def run(ctx: Context) -> int:
    """Confirm (on a terminal, without -y), then remove in one transaction."""
    from installer.txn import uninstall

    env = app.recovered(app.target_environment(ctx.settings, ctx.environ, ctx.cwd), ctx.out)
    present = [env.installed[canonical(n)] for n in ctx.args.names
               if canonical(n) in env.installed]
    for name in ctx.args.names:
        if canonical(name) not in env.installed:
            ctx.out.warn(f"{name} is not installed")
    if not present:
        return 0
    if not ctx.args.yes and sys.stdin.isatty():
        listing = ", ".join(f"{d.display_name}=={d.version}" for d in present)
        answer = input(f"Uninstall {listing}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise InstError("aborted; nothing was removed")
    result = uninstall(env, [d.name for d in present], on_wait=ctx.out.info)
    for warning in result.warnings:
        ctx.out.warn(warning)
    for dist in result.removed:
        ctx.out.info(f" - {dist.display_name}=={dist.version}")
    return 0
