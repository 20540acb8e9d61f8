"""What is installed in an environment: its ``*.dist-info`` folders and their RECORDs
(PEP 376/627), read fresh each time, and a consistency check of the files against them.

Public API::

    installed_distributions(env) -> list[InstalledDist]
    check_environment(env) -> list[str]
    record_rows(dist) -> list[tuple[str, str, str]] | None
    record_paths(dist) -> list[str]
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import os
from pathlib import Path

from installer.environment import read_any_dist_info
from installer.journal import TXN_PREFIX
from installer.models import Environment, InstalledDist, state_root
from installer.plan import within


def env_roots(env: Environment) -> list[str]:
    """The real paths of the folders that make up the environment (its state root and the
    scheme folders, which may lie elsewhere through symlinks)."""
    roots = {os.path.realpath(state_root(env))}
    keys = ("purelib", "platlib", "scripts", "data")
    roots.update(os.path.realpath(env.paths[k]) for k in keys)
    return sorted(roots)


def site_dirs(env: Environment) -> list[str]:
    """purelib and platlib (once when they are the same folder), normalized."""
    out: list[str] = []
    for key in ("purelib", "platlib"):
        path = os.path.normpath(env.paths[key])
        if path not in out:
            out.append(path)
    return out


def inside_env(path: str, roots: list[str]) -> bool:
    """True when *path* (not following its last component) lies inside the environment."""
    real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    return any(within(real, root) for root in roots)


def installed_distributions(env: Environment) -> list[InstalledDist]:
    """Every ``*.dist-info`` in the environment's site dirs, read now (not a cached snapshot)."""
    out: list[InstalledDist] = []
    for site in site_dirs(env):
        with contextlib.suppress(OSError):
            for child in sorted(Path(site).iterdir()):
                if child.name.endswith(".dist-info") and child.is_dir():
                    out.append(read_any_dist_info(child))
    return out


def record_rows(dist: InstalledDist) -> list[tuple[str, str, str]] | None:
    """(path, hash, size) of each RECORD row; None when the RECORD cannot be read."""
    try:
        text = (dist.dist_info / "RECORD").read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    rows = []
    for row in csv.reader(io.StringIO(text)):
        if row and row[0]:
            rows.append((row[0], row[1] if len(row) > 1 else "", row[2] if len(row) > 2 else ""))
    return rows


def record_paths(dist: InstalledDist) -> list[str]:
    """The normalized absolute path of each file in *dist*'s RECORD."""
    site = str(dist.dist_info.parent)
    return [os.path.normpath(os.path.join(site, p)) for p, _h, _s in record_rows(dist) or []]


def file_hash(path: str, algo: str = "sha256") -> tuple[str, int]:
    """(RECORD-style ``algo=digest``, size) of the file at *path*."""
    h = hashlib.new(algo)
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return f"{algo}=" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode(), size


def check_environment(env: Environment) -> list[str]:
    """Problems in the environment: a dist-info without RECORD, a RECORD file that is missing
    or whose hash/size differs, a leftover transaction. Empty when consistent."""
    problems: list[str] = []
    roots = env_roots(env)
    problems += [f"unfinished transaction {p}" for p in state_root(env).glob(TXN_PREFIX + "*")]
    for dist in installed_distributions(env):
        rows = record_rows(dist)
        if rows is None:
            problems.append(f"{dist.display_name} {dist.version}: no RECORD")
            continue
        for rel, digest, size in rows:
            path = os.path.normpath(os.path.join(dist.dist_info.parent, rel))
            if not digest or not inside_env(path, roots):
                continue
            try:
                actual, actual_size = file_hash(path, digest.partition("=")[0])
            except (OSError, ValueError):
                problems.append(f"{dist.display_name}: missing {rel}")
                continue
            if actual != digest or (size and int(size) != actual_size):
                problems.append(f"{dist.display_name}: {rel} does not match RECORD")
    return problems
