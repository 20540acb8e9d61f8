"""Terminal output for the CLI layer: the only place (with ``cli``) that writes to the screen.

Core modules never print; they take a reporter callback or return values. Commands get an
:class:`Output` through their context.
"""

from __future__ import annotations

import os
import sys

from installer._record import field, record
from installer.errors import redact_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO


@record(frozen=False)
class Output:
    """Writes results to stdout and messages to stderr, honouring quiet, verbose and color."""

    quiet: int = 0
    verbose: int = 0
    color: str = "auto"  # auto | always | never
    progress: bool = True
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    warnings: list[str] = field(default_factory=list)

    @property
    def is_tty(self) -> bool:
        """True when stderr is a terminal (progress bars go there)."""
        return self.stderr.isatty()

    @property
    def use_color(self) -> bool:
        """Color on when forced, or automatic on a terminal without NO_COLOR."""
        if self.color == "always":
            return True
        if self.color == "never":
            return False
        return self.is_tty and "NO_COLOR" not in os.environ

    @property
    def show_progress(self) -> bool:
        """Progress bars only on a terminal, not with -q, and not when turned off."""
        return self.progress and self.quiet == 0 and self.is_tty

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.use_color else text

    def result(self, text: str = "") -> None:
        """A command's actual output (stdout); printed even with -q."""
        print(redact_text(text), file=self.stdout)

    def info(self, text: str) -> None:
        """A status line on stderr, hidden by -q."""
        if self.quiet == 0:
            print(redact_text(text), file=self.stderr)

    def detail(self, text: str) -> None:
        """Extra information shown with -v."""
        if self.verbose > 0:
            print(redact_text(text), file=self.stderr)

    def warn(self, text: str) -> None:
        """A warning on stderr (shown unless -qq); each distinct warning once per run."""
        text = redact_text(text)
        if text in self.warnings:
            return
        self.warnings.append(text)
        if self.quiet < 2:
            print(self._paint("warning:", "33;1") + " " + text, file=self.stderr)

    def error(self, text: str, hint: str | None = None) -> None:
        """An error (always shown) and an optional hint line."""
        print(self._paint("error:", "31;1") + " " + redact_text(text), file=self.stderr)
        if hint:
            print(self._paint("hint:", "36;1") + " " + redact_text(hint), file=self.stderr)
