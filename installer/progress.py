"""Download progress on a terminal: a bar per active download and an overall bar.

CLI layer only (core modules report through the ``ProgressReporter`` protocol of
:mod:`installer.download`). Redraws a block of lines in place with ANSI cursor movement,
throttled so a fast local index doesn't spend its time drawing.
"""

from __future__ import annotations

import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

_MIB = 1024 * 1024


def _bar(fraction: float, width: int = 20) -> str:
    filled = max(0, min(width, int(width * fraction)))
    return "#" * filled + "-" * (width - filled)


class BarReporter:
    """Per-download bars (the first *max_lines* active ones) above an overall bar."""

    def __init__(self, total_files: int, stream: TextIO, *, max_lines: int = 6,
                 min_interval: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        self.total_files, self.stream, self.max_lines = total_files, stream, max_lines
        self.min_interval, self.clock = min_interval, clock
        self.lock = threading.Lock()  # called from the download worker threads
        self.active: dict[str, list[int]] = {}  # name -> [bytes so far, total or -1]
        self.done = 0
        self.bytes = 0
        self.drawn = 0  # lines currently on screen
        self.last = -1.0

    def on_start(self, name: str, total: int | None) -> None:
        """A download began."""
        with self.lock:
            self.active[name] = [0, total if total is not None else -1]
            self._draw(force=True)

    def on_advance(self, name: str, nbytes: int) -> None:
        """Bytes arrived for *name*."""
        with self.lock:
            self.bytes += nbytes
            if name in self.active:
                self.active[name][0] += nbytes
            self._draw()

    def on_done(self, name: str) -> None:
        """A download ended (finished or failed); the block is erased after the last one."""
        with self.lock:
            self.done += 1
            self.active.pop(name, None)
            if self.done >= self.total_files:
                self._erase()
            else:
                self._draw(force=True)

    def lines(self) -> list[str]:
        """The block as it would be drawn now."""
        out = []
        for name, (got, total) in list(self.active.items())[: self.max_lines]:
            size = f"{got / _MIB:.1f}/{total / _MIB:.1f} MiB" if total > 0 else \
                f"{got / _MIB:.1f} MiB"
            frac = got / total if total > 0 else 0.0
            out.append(f"  {name[:40]:<40} [{_bar(frac)}] {size}")
        overall = self.done / max(self.total_files, 1)
        out.append(f"Downloading [{_bar(overall, 30)}] {self.done}/{self.total_files} files, "
                   f"{self.bytes / _MIB:.1f} MiB")
        return out

    def _draw(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last < self.min_interval:
            return
        self.last = now
        block = self.lines()
        text = f"\033[{self.drawn}F" if self.drawn else ""
        text += "".join(f"\033[K{line}\n" for line in block)
        if len(block) < self.drawn:  # clear lines left over from a taller block
            extra = self.drawn - len(block)
            text += "\033[K\n" * extra + f"\033[{extra}F"
        self.stream.write(text)
        self.stream.flush()
        self.drawn = len(block)

    def _erase(self) -> None:
        if self.drawn:
            self.stream.write(f"\033[{self.drawn}F\033[J")
            self.stream.flush()
        self.drawn = 0
