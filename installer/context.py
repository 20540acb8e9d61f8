"""What a command handler receives: parsed arguments, merged settings, and output."""

from __future__ import annotations

from installer._record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

    from installer.output import Output


@record(frozen=False)
class Context:
    """Everything a command needs; built by ``cli`` once per run.

    ``settings`` is a :class:`installer.config.Settings` (typed as Any here to keep this module
    free of imports); ``layers`` the configuration layers it was merged from.
    """

    command: str
    args: argparse.Namespace
    settings: Any
    layers: list[Any]
    environ: Mapping[str, str]
    cwd: Path
    out: Output
