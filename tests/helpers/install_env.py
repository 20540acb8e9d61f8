"""Helpers for install tests: real venvs, tree digests, a RECORD check."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from installer.environment import query_environment
from installer.models import Environment


def make_venv(path: Path) -> Environment:
    """Create ``python -m venv --without-pip`` at *path* and return its Environment."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return query_environment(path / "bin" / "python", None)


def clone_venv(template: Path, path: Path) -> Environment:
    """Copy a template venv (faster than creating one) and return its Environment."""
    shutil.copytree(template, path, symlinks=True)
    return query_environment(path / "bin" / "python", None)


def tree_digest(root: Path) -> dict[str, str]:
    """path -> (type, mode, content hash or link target) for everything under *root*."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if os.path.islink(full):
                out[rel] = f"link {os.readlink(full)}"
            elif os.path.isdir(full):
                out[rel] = f"dir {st.st_mode:o}"
            else:
                with open(full, "rb") as f:
                    out[rel] = f"file {st.st_mode:o} {hashlib.sha256(f.read()).hexdigest()}"
    return out
