"""``inst list [--format columns|json|freeze] [--outdated]``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from installer import app
from installer.context import Context
from installer.models import Environment, InstalledDist, Link


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--format and --outdated."""
    parser.add_argument("--format", choices=("columns", "json", "freeze"), default="columns")
    parser.add_argument("--outdated", action="store_true",
                        help="Only distributions with a newer version on the index.")


def _latest(ctx: Context, env: Environment, dists: list[InstalledDist]) -> dict[str, str]:
    """Newest installable version on the configured indexes, per installed distribution."""
    with app.finder_session(ctx.settings, ctx.out.warn, ctx.cwd) as finder:
        finder.prefetch([d.name for d in dists])
        found = {d.name: newest(finder.links(d.name), env, pre=bool(ctx.settings["pre"]))
                 for d in dists}
    return {name: version for name, version in found.items() if version}


def newest(links: list[Link], env: Environment, *, pre: bool) -> str | None:
    """The newest version among *links* with a wheel this environment can install."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import Version

    tags = set(env.tags)
    python = Version(env.python_version)
    best: Version | None = None
    for link in links:
        if not link.is_wheel or link.yanked is not None:
            continue
        try:
            _name, version, _build, wheel_tags = parse_wheel_filename(link.filename)
            if link.requires_python and python not in SpecifierSet(link.requires_python):
                continue
        except (InvalidWheelFilename, InvalidSpecifier):
            continue
        if (version.is_prerelease and not pre) or not any(str(t) in tags for t in wheel_tags):
            continue
        best = version if best is None or version > best else best
    return str(best) if best else None


def run(ctx: Context) -> int:
    """List installed distributions (optionally only outdated ones) in the chosen format."""
    env = app.target_environment(ctx.settings, ctx.environ, ctx.cwd)
    dists = [env.installed[n] for n in sorted(env.installed)]
    latest: dict[str, str] = {}
    if ctx.args.outdated:
        from packaging.version import Version

        latest = _latest(ctx, env, dists)
        dists = [d for d in dists
                 if d.name in latest and Version(latest[d.name]) > Version(d.version)]
    if ctx.args.format == "json":
        rows: list[dict[str, Any]] = [
            {"name": d.display_name, "version": d.version} for d in dists]
        for row, d in zip(rows, dists, strict=True):
            if d.name in latest:
                row["latest_version"] = latest[d.name]
        ctx.out.result(json.dumps(rows))
    elif ctx.args.format == "freeze":
        for d in dists:
            ctx.out.result(f"{d.display_name}=={d.version}")
    else:
        _columns(ctx, dists, latest)
    return 0


def _columns(ctx: Context, dists: list[InstalledDist], latest: dict[str, str]) -> None:
    header = ["Package", "Version"] + (["Latest"] if latest else [])
    rows = [[d.display_name, d.version] + ([latest.get(d.name, "")] if latest else [])
            for d in dists]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        ctx.out.result("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
