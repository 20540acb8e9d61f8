"""End-to-end helpers for the reliability suite: run the real CLI, check what it left behind.

    out = inst_install(venv, cache, "--index-url", url, "--cert", ca, "demo")
    assert cache_leftovers(cache, bad=[b"..."]) == []     # no bad file, no *.part
    assert tree_digest(venv) == before

``inst`` runs as ``sys.executable -m installer`` in a subprocess, with the test's scrubbed
environment (HOME, XDG_* are temp folders), exactly as a user would run it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Small network settings so faults end fast: read/connect timeout 1 s, 2 retries.
FAST = ("--timeout", "1", "--retries", "2")


def inst(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m installer ARGS`` (text output captured)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "installer", *args], cwd=cwd or ROOT,
                          env=full, text=True, capture_output=True, timeout=timeout,
                          check=False)


def inst_install(venv: Path, cache: Path, *args: str, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``inst install --python VENV --cache-dir CACHE ARGS``."""
    return inst("install", "--python", str(venv), "--cache-dir", str(cache), *args,
                cwd=cwd, env=env, timeout=timeout)


def errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The ``error:`` lines of a run (colour is off: stderr is not a terminal)."""
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def cache_leftovers(cache: Path, bad: Iterable[bytes] = ()) -> list[str]:
    """Files in *cache* that must not be there: any whose sha256 is that of one of *bad*
    (the whole file, or the body of an http-v1 entry after its JSON header line), and any
    temp file (``*.part``, ``*.tmp``, anything left in ``tmp/``)."""
    bad_digests = {hashlib.sha256(b).hexdigest() for b in bad}
    found: list[str] = []
    if not cache.exists():
        return found
    for dirpath, _dirs, files in os.walk(cache):
        for name in files:
            path = Path(dirpath) / name
            rel = str(path.relative_to(cache))
            if name.endswith((".part", ".tmp")) or rel.startswith("tmp" + os.sep):
                found.append(f"temp file {rel}")
                continue
            data = path.read_bytes()
            bodies = [data]
            if rel.startswith("http-v1" + os.sep + "pages"):
                bodies.append(data.partition(b"\n")[2])
            if any(hashlib.sha256(b).hexdigest() in bad_digests for b in bodies):
                found.append(f"bad content {rel}")
    return found


def outside_digest(root: Path, skip: Iterable[Path]) -> dict[str, str]:
    """sha256 of every file under *root* except the *skip* subtrees (to prove that nothing
    outside the target was written)."""
    skipped = [str(p) for p in skip]
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in skipped]
        for name in files:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                out[full] = "link " + os.readlink(full)
                continue
            with open(full, "rb") as f:
                out[full] = hashlib.sha256(f.read()).hexdigest()
    return out
