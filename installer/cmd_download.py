"""``inst download -d DIR PACKAGE...``: resolve and download the chosen wheels, hash-checked."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from installer import app
from installer.cache import sha256_of
from installer.cmd_install import (
    add_requirement_arguments,
    download,
    download_cache,
    resolved,
    write_report,
)
from installer.context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """download's own arguments: -d DIR plus the requirement arguments install takes."""
    add_requirement_arguments(parser)
    parser.add_argument("-d", "--dest", default=".", metavar="DIR",
                        help="Where to put the wheels (default: the working directory).")


def run(ctx: Context) -> int:
    """Resolve for the target environment (ignoring what is installed) and copy the wheels."""
    env = app.target_environment(ctx.settings, ctx.environ, ctx.cwd,
                                 fallback=Path(sys.executable))
    dest = ctx.cwd / ctx.args.dest
    with resolved(ctx, env, ignore_installed=True) as (parsed, resolution, finder), \
            download_cache(ctx) as cache:
        write_report(ctx, resolution, env)
        if ctx.args.dry_run:
            names = " ".join(f"{p.display_name}-{p.version}" for p in resolution.pins)
            say = ctx.out.info if ctx.args.report == "-" else ctx.out.result
            say(f"Would download {names}")
            return 0
        files = download(ctx, resolution, finder, parsed, cache)
        dest.mkdir(parents=True, exist_ok=True)
        for got in files:
            _place(got.path, dest / got.link.filename, got.sha256)
            ctx.out.info(f"Saved {Path(ctx.args.dest) / got.link.filename}")
    ctx.out.info(f"Downloaded {len(files)} file{'' if len(files) == 1 else 's'}")
    return 0


def _place(src: Path, target: Path, sha256: str) -> None:
    """Copy atomically (temp + rename) so DIR never holds a half-written wheel; a file that
    is already there is kept only when its hash matches."""
    if target.is_file() and sha256_of(target) == sha256:
        return
    tmp = target.with_name(f".{target.name}.part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, target)
