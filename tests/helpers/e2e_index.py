"""Package sets for the end-to-end CLI tests (tests/test_install_e2e.py, tests/test_pip_oracle.py).

``requests_like(index)`` adds a small synthetic "requests" with its four dependencies (and a few
older versions, so upgrades can be seen); ``web_set(index)`` adds ~50 generated projects with a
dependency web rooted at ``web-root``. ``Cli`` runs ``python -m installer`` in a subprocess with a
fixed cwd and environment.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.index_server import SimpleIndex

MAIN = Path(__file__).resolve().parents[2]


def _module(name: str, version: str, body: str = "") -> str:
    return f'__version__ = "{version}"\n{body}'


REQUESTS_INIT = """
import certifi
import charset_normalizer
import idna
import urllib3

def get(url):
    return f"GET {url}"
"""

CHARSET_CLI = """
import sys

def main():
    version = __import__("charset_normalizer").__version__
    print("normalizer " + version + " " + " ".join(sys.argv[1:]))
    return 0
"""

# (name, version, requires, extra wheel kwargs)
REQUESTS_SET: list[tuple[str, str, list[str], dict[str, Any]]] = [
    ("idna", "3.6", [], {}),
    ("idna", "3.7", [], {}),
    ("urllib3", "1.26.18", [], {}),
    ("urllib3", "2.2.1", [], {"requires_python": ">=3.8"}),
    ("certifi", "2024.2.2", [], {}),
    ("charset-normalizer", "3.3.2", [], {}),
    ("requests", "2.31.0",
     ["charset-normalizer<4,>=2", "idna<4,>=2.5", "urllib3<3,>=1.21.1", "certifi>=2017.4.17"],
     {"extras": {"socks": ["PySocks!=1.5.7,>=1.5.6"]}}),
    ("requests", "2.32.0",
     ["charset-normalizer<4,>=2", "idna<4,>=2.5", "urllib3<3,>=1.21.1", "certifi>=2017.4.17"],
     {"extras": {"socks": ["PySocks!=1.5.7,>=1.5.6"]}}),
]


def _files(name: str, version: str) -> dict[str, str]:
    pkg = name.replace("-", "_")
    body = REQUESTS_INIT if name == "requests" else ""
    files = {f"{pkg}/__init__.py": _module(name, version, body)}
    if name == "charset-normalizer":
        files[f"{pkg}/cli.py"] = CHARSET_CLI
    return files


def requests_like(index: SimpleIndex, *, metadata_file: bool = True) -> None:
    """Add requests 2.31.0/2.32.0, idna 3.6/3.7, urllib3 1.26.18/2.2.1, certifi, charset-normalizer
    (with a ``normalizer`` console script) to *index*."""
    for name, version, requires, kw in REQUESTS_SET:
        entry_points = None
        if name == "charset-normalizer":
            entry_points = "[console_scripts]\nnormalizer = charset_normalizer.cli:main\n"
        index.add_wheel(name, version, requires=requires, files=_files(name, version),
                        entry_points=entry_points, metadata_file=metadata_file, **kw)


WEB_SIZE = 50


def web_name(i: int) -> str:
    """The i-th generated project name."""
    return f"web-pkg-{i:02d}"


def web_set(index: SimpleIndex, *, seed: int = 7, metadata_file: bool = True) -> list[str]:
    """~50 projects ``web-pkg-00``..``web-pkg-48`` plus ``web-root`` that requires all of them.

    Each project has 1-3 versions; each version depends on a few higher-numbered projects with
    lower bounds, upper bounds or exclusions that the newest versions satisfy (so a solution
    exists, but older versions are sometimes excluded). Returns the project names.
    """
    rng = random.Random(seed)
    names = [web_name(i) for i in range(WEB_SIZE - 1)]
    for i, name in enumerate(names):
        nversions = rng.randint(1, 3)
        for v in range(1, nversions + 1):
            version = f"{v}.{rng.randint(0, 9)}"
            later = list(range(i + 1, len(names)))
            deps = []
            for j in rng.sample(later, min(len(later), rng.randint(0, 3))):
                deps.append(f"{names[j]}{rng.choice(['', '>=1.0', '<10', '!=0.5', '>=0.1,<99'])}")
            if i % 11 == 3:
                deps.append(f'{names[-1]}; python_version >= "3.8"')
            extras = {"fast": [names[-2]]} if i % 13 == 5 else None
            index.add_wheel(name, version, requires=deps, extras=extras,
                            files={f"{name.replace('-', '_')}/__init__.py":
                                   f'__version__ = "{version}"\n'},
                            metadata_file=metadata_file)
    root_deps = [f"{n}>=1" if i % 3 else n for i, n in enumerate(names)] + [f"{names[5]}[fast]"]
    index.add_wheel("web-root", "1.0", requires=root_deps,
                    files={"web_root/__init__.py": ""}, metadata_file=metadata_file)
    return [*names, "web-root"]


@dataclass
class Cli:
    """Runs ``python -m installer`` with *cwd* and *env* (HOME etc. already in tmp)."""

    cwd: Path
    cache: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def __call__(self, *args: str | Path, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None, input: str | None = None,
                 cache: bool = True) -> subprocess.CompletedProcess[str]:
        full_env = {**self.env, "PYTHONPATH": str(MAIN), **(env or {})}
        argv = [str(a) for a in args]
        if cache and argv and argv[0] not in ("venv", "config"):
            argv += ["--cache-dir", str(self.cache)]
        return subprocess.run([sys.executable, "-m", "installer", *argv],
                              cwd=cwd or self.cwd, env=full_env, input=input, text=True,
                              capture_output=True, timeout=180)

    def ok(self, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        """Like calling it, but fail with the output when the exit code is not 0."""
        proc = self(*args, **kw)
        assert proc.returncode == 0, f"inst {' '.join(map(str, args))} -> {proc.returncode}\n" \
                                     f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        return proc


def run_python(venv: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run *code* with the venv's interpreter."""
    return subprocess.run([str(venv / "bin" / "python"), "-c", code, *args],
                          capture_output=True, text=True, timeout=60)


def pip_cmd(*args: str) -> Sequence[str]:
    """``python -m pip ...`` of the test interpreter."""
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
