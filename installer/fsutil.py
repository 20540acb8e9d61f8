"""Crash-safe file writes shared by the cache, the HTTP cache and config editing.

Bottom layer: imports nothing from ``installer``; ``tempfile`` is imported only when writing.
"""

from __future__ import annotations

import contextlib
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


def fsync_dir(path: Path, *, strict: bool = False) -> None:
    """Flush *path*'s directory entries, so a rename into it survives a crash.

    Best effort: an ``OSError`` is ignored unless *strict*. A no-op on Windows, where a
    directory cannot be opened.
    """
    if os.name == "nt":  # pragma: no cover - Windows
        return
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if strict:
            raise


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write *data* to *path* via a synced temp file in the same folder and ``os.replace``.

    Readers see the old or the new content, never part of it. The folder is created when
    missing (but not fsynced: see :func:`fsync_dir`). *mode* is given to the file before the
    rename; None leaves the temp file's 0o600. On any error the temp file is removed.
    """
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:16]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def path_from_file_url(url: str) -> Path:
    """The local path of a ``file:`` URL, percent-decoded once.

    Not ``urllib.request.url2pathname``: importing urllib.request pulls in http.client and ssl
    (~15 ms), which a no-op install otherwise never needs.
    """
    from pathlib import Path
    from urllib.parse import unquote, urlsplit

    path = urlsplit(url).path
    if os.name == "nt":  # pragma: no cover - drive letters and backslashes
        import nturl2path

        return Path(nturl2path.url2pathname(path))
    return Path(unquote(path))
