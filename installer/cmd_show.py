"""``inst show NAME...``: details of installed distributions."""

from __future__ import annotations

import argparse
from email.parser import BytesHeaderParser

from installer import app
from installer.context import Context
from installer.errors import InstError
from installer.models import canonical


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One or more distribution names; --files lists RECORD entries."""
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument("--files", action="store_true", help="List the installed files.")


def _requires(meta: object) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    names = []
    for raw in meta.get_all("Requires-Dist") or []:  # type: ignore[attr-defined]
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            continue
        if req.marker is None or "extra" not in str(req.marker):
            names.append(req.name)
    return sorted(set(names), key=str.lower)


def run(ctx: Context) -> int:
    """Print Name, Version, Summary, Location, Requires, Required-by for each NAME."""
    env = app.target_environment(ctx.settings, ctx.environ, ctx.cwd)
    metas = {n: BytesHeaderParser().parsebytes((d.dist_info / "METADATA").read_bytes())
             for n, d in env.installed.items()}
    missing = [n for n in ctx.args.names if canonical(n) not in env.installed]
    for i, raw in enumerate(n for n in ctx.args.names if canonical(n) in env.installed):
        name = canonical(raw)
        dist, meta = env.installed[name], metas[name]
        required_by = sorted(env.installed[o].display_name for o, m in metas.items()
                             if name in {canonical(r) for r in _requires(m)})
        if i:
            ctx.out.result("---")
        for label, value in (
            ("Name", dist.display_name), ("Version", dist.version),
            ("Summary", meta.get("Summary", "")), ("Home-page", meta.get("Home-page", "")),
            ("Author", meta.get("Author", "")), ("License", meta.get("License", "")),
            ("Location", str(dist.dist_info.parent)), ("Installer", dist.installer or ""),
            ("Requires", ", ".join(_requires(meta))), ("Required-by", ", ".join(required_by)),
        ):
            ctx.out.result(f"{label}: {value}")
        if ctx.args.files:
            ctx.out.result("Files:")
            for line in (dist.dist_info / "RECORD").read_text(encoding="utf-8").splitlines():
                if line.strip():
                    ctx.out.result("  " + line.rsplit(",", 2)[0])
    if missing:
        raise InstError(f"not installed: {', '.join(missing)}")
    return 0
