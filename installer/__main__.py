"""``python -m installer`` and the ``inst`` console script.

Kept tiny: ``inst --version`` answers without importing the CLI (argparse, the option table).
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    """Run inst with ``sys.argv``; returns the exit code (for callers in the same process)."""
    if sys.argv[1:] == ["--version"]:
        from installer import __version__

        print(f"inst {__version__}")
        return 0
    from installer.cli import main as cli_main

    return cli_main()


def run() -> None:
    """Entry point of the ``inst`` console script and ``python -m installer``.

    After :func:`main` returns, everything inst started is finished (pools shut down, files
    closed, the environment lock released), so the process ends with ``os._exit`` once the
    output is flushed: tearing down the interpreter (every module, ~100,000 objects after an
    install) cost ~15 ms per run and does nothing a user can see.
    """
    code = main()
    if sys.gettrace() is not None or sys.getprofile() is not None or "coverage" in sys.modules:
        raise SystemExit(code)  # a profiler or coverage writes its data at normal exit
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib would be one more import for `inst --version`
            stream.flush()
        except (OSError, ValueError):  # closed pipe or stream: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
