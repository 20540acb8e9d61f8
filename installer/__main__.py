"""``python -m installer`` and the ``inst`` console script.

Kept tiny: ``inst --version`` answers without importing the CLI (argparse, the option table).
"""

from __future__ import annotations

import sys


def main() -> int:
    """Entry point of the ``inst`` console script."""
    if sys.argv[1:] == ["--version"]:
        from installer import __version__

        print(f"inst {__version__}")
        return 0
    from installer.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
