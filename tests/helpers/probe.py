"""Run ``inst`` in a subprocess and see what it did inside: which threads it started and which
of some modules it imported (tests/test_app_warm.py, tests/test_prefetch.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from tests.helpers.e2e_index import MAIN, Cli

# inst runs in-process (main() returns, so the record can be written afterwards).
_SCRIPT = """
import json, sys, threading
started = []
_start = threading.Thread.start
def start(self):
    started.append(self.name)
    _start(self)
threading.Thread.start = start
out, watched, sys.argv = sys.argv[1], json.loads(sys.argv[2]), ["inst", *sys.argv[3:]]
from installer.__main__ import main
code = main()
with open(out, "w") as f:
    json.dump({"code": code, "threads": started,
               "modules": [m for m in watched if m in sys.modules]}, f)
"""


@dataclass(frozen=True)
class Seen:
    """What one run did: exit code, names of the threads it started, watched modules it
    imported."""

    code: int
    threads: list[str]
    modules: list[str]


def probe(cli: Cli, *args: str, modules: Sequence[str] = ()) -> Seen:
    """Run ``inst ARGS --cache-dir <cli.cache>`` in *cli*'s folder and environment."""
    out = cli.cwd / "probe.json"
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(out), json.dumps(list(modules)),
                           *args, "--cache-dir", str(cli.cache)], cwd=cli.cwd,
                          env={**cli.env, "PYTHONPATH": str(MAIN)}, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return Seen(**json.loads(out.read_text()))
