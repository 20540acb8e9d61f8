"""The terminal progress block: a bar per active download and an overall bar."""

from __future__ import annotations

import io

from installer.progress import BarReporter


def _screen(raw: str) -> list[str]:
    """Replay the ANSI output (cursor-up-to-line-start, erase) onto a list of lines."""
    lines: list[str] = []
    row = 0
    i = 0
    while i < len(raw):
        if raw.startswith("\033[", i):
            end = i + 2
            while not raw[end].isalpha():
                end += 1
            arg, op = raw[i + 2:end], raw[end]
            if op == "F":
                row -= int(arg or 1)
            elif op == "J":
                del lines[row:]
            elif op == "K" and row < len(lines):
                lines[row] = ""
            i = end + 1
            continue
        if raw[i] == "\n":
            row += 1
        else:
            while len(lines) <= row:
                lines.append("")
            lines[row] += raw[i]
        i += 1
    return [line for line in lines[:row + 1] if line]


def test_bars_per_download_and_overall() -> None:
    out = io.StringIO()
    rep = BarReporter(3, out, min_interval=0)
    rep.on_start("a-1.0-py3-none-any.whl", 2 * 1024 * 1024)
    rep.on_start("b-1.0-py3-none-any.whl", None)
    rep.on_advance("a-1.0-py3-none-any.whl", 1024 * 1024)
    screen = _screen(out.getvalue())
    assert screen[0].startswith("  a-1.0-py3-none-any.whl")
    assert screen[0].endswith("[##########----------] 1.0/2.0 MiB")
    assert screen[1].endswith("0.0 MiB") and "b-1.0" in screen[1]
    assert screen[2] == ("Downloading [------------------------------] 0/3 files, 1.0 MiB")
    rep.on_done("a-1.0-py3-none-any.whl")
    screen = _screen(out.getvalue())
    assert len(screen) == 2 and "b-1.0" in screen[0] and "1/3 files" in screen[1]


def test_block_is_erased_after_the_last_download() -> None:
    out = io.StringIO()
    rep = BarReporter(1, out, min_interval=0)
    rep.on_start("a.whl", 10)
    rep.on_advance("a.whl", 10)
    rep.on_done("a.whl")
    assert _screen(out.getvalue()) == []


def test_redraws_are_throttled() -> None:
    out = io.StringIO()
    now = [0.0]
    rep = BarReporter(2, out, min_interval=1.0, clock=lambda: now[0])
    rep.on_start("a.whl", 100)
    size = len(out.getvalue())
    for _ in range(50):
        rep.on_advance("a.whl", 1)
    assert len(out.getvalue()) == size  # within the interval: nothing redrawn
    now[0] = 2.0
    rep.on_advance("a.whl", 1)
    assert len(out.getvalue()) > size  # after it: one redraw
