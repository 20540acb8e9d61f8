"""``inst venv [PATH]``: create a virtual environment without pip, so a newcomer can start."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from installer.context import Context
from installer.errors import InstError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """PATH (default .venv) and --clear."""
    parser.add_argument("path", nargs="?", default=".venv", help="Where to create it.")
    parser.add_argument("--clear", action="store_true",
                        help="Delete an existing environment at PATH first.")


def base_interpreter(python: str | None) -> str:
    """The interpreter the new environment is based on: ``--python`` if it is one, else ours.

    A ``python`` setting that names a venv folder (meant as an install target) is followed to
    its interpreter, so ``inst venv`` still works in a project that sets ``python = ".venv"``.
    """
    if not python:
        return getattr(sys, "_base_executable", sys.executable)
    path = Path(python)
    if path.is_dir():
        for candidate in (path / "bin" / "python", path / "Scripts" / "python.exe"):
            if candidate.exists():
                return str(candidate)
    return python


def run(ctx: Context) -> int:
    """Create the environment with the target's stdlib ``venv`` module, without pip."""
    target = (ctx.cwd / ctx.args.path).absolute()
    if (target / "pyvenv.cfg").exists() and not ctx.args.clear:
        raise InstError(f"a virtual environment already exists at {target}",
                        hint="use --clear to replace it, or pick another PATH")
    if target.exists() and not (target / "pyvenv.cfg").exists() and (
            not target.is_dir() or any(target.iterdir())):
        raise InstError(f"{target} exists and is not an empty folder or a virtual environment")
    python = base_interpreter(ctx.settings["python"])
    cmd = [python, "-m", "venv", "--without-pip", str(target)]
    if ctx.args.clear:
        cmd.insert(3, "--clear")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise InstError(f"cannot run {python}: {exc.strerror}") from exc
    if proc.returncode != 0:
        raise InstError(f"creating {target} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    ctx.out.info(f"Created virtual environment at {ctx.args.path}")
    ctx.out.info(f"Activate with: source {Path(ctx.args.path) / 'bin' / 'activate'}")
    return 0
