"""Run an install in a separate process (for kill -9, Ctrl-C and concurrency tests).

Usage: python -m tests.helpers.install_run VENV_PYTHON CACHE WHEEL...
Prints the lock-wait message (if any) to stderr and "done" on success.
"""

from __future__ import annotations

import sys
from pathlib import Path

from installer.cache import Cache
from installer.environment import query_environment
from installer.txn import install_wheels


def main(argv: list[str]) -> int:
    python, cache, *wheels = argv
    env = query_environment(Path(python), None)
    install_wheels(env, [(Path(w), True, None) for w in wheels], cache=Cache(Path(cache)),
                   on_wait=lambda msg: print(msg, file=sys.stderr, flush=True))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
