"""``inst freeze``: installed distributions as requirement lines."""

from __future__ import annotations

import argparse
import json

from installer import app
from installer.context import Context
from installer.models import InstalledDist


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments beyond the settings (``--python``)."""


def requirement_line(dist: InstalledDist) -> str:
    """``name==version``, or ``name @ URL`` for a distribution installed from a URL (PEP 610)."""
    try:
        direct = json.loads((dist.dist_info / "direct_url.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        direct = None
    if isinstance(direct, dict) and isinstance(direct.get("url"), str):
        from installer.errors import redact_url

        return f"{dist.display_name} @ {redact_url(direct['url'])}"
    return f"{dist.display_name}=={dist.version}"


def run(ctx: Context) -> int:
    """Print one line per installed distribution, sorted by name."""
    env = app.target_environment(ctx.settings, ctx.environ, ctx.cwd)
    for name in sorted(env.installed):
        ctx.out.result(requirement_line(env.installed[name]))
    return 0
