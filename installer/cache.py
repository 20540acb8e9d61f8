"""The content-addressed cache: downloaded wheels and unpacked, verified wheel trees.

Layout under the cache root (names are stable; other modules and users rely on them)::

    wheels/sha256/<ab>/<cd>/<hex>/<filename>   a wheel, stored under its own sha256
    unpacked/<hex>/tree/...                    the wheel's files, as in the archive
    unpacked/<hex>/verified.json               marker, written last, after verification
    tmp/                                       temp files and dirs (same filesystem as entries)
    http-v1/                                   pages and metadata (owned by httpcache)

Every entry is created in ``tmp/`` and moved into place with one rename, so a reader never sees a
half-written entry. A hit is re-verified (the wheel's sha256, or the unpacked tree's sizes and
mtimes against its marker); a corrupted entry is deleted and reported as a miss.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from installer._record import record
from installer.fsutil import fsync_dir
from installer.models import canonical as _canonical

MARKER = "verified.json"
_HEX = frozenset("0123456789abcdef")


@record(frozen=True)
class KindInfo:
    """Size and entry count of one part of the cache."""

    kind: str
    path: Path
    entries: int
    files: int
    size: int


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    import hashlib  # hashlib, shutil, tempfile: lazily, a no-op install makes a Cache only

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _check_hex(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise ValueError(f"not a lowercase hex sha256: {sha256!r}")
    return sha256


def _safe_filename(filename: str) -> str:
    if not filename or "/" in filename or "\\" in filename or filename in (".", "..") \
            or "\x00" in filename:
        raise ValueError(f"unsafe file name: {filename!r}")
    return filename


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class Cache:
    """The wheel cache rooted at *root* (``platformdirs.user_cache_path("inst")`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root = str(self.root)

    # -- layout -----------------------------------------------------------------------------
    @property
    def tmp_dir(self) -> Path:
        """Where temp files live; on the same filesystem as the entries."""
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def wheel_dir(self, sha256: str) -> Path:
        """The folder that holds the wheel whose sha256 is *sha256*."""
        hexd = _check_hex(sha256)
        return self.root / "wheels" / "sha256" / hexd[:2] / hexd[2:4] / hexd

    def unpacked_dir(self, sha256: str) -> Path:
        """The folder of the unpacked tree of the wheel whose sha256 is *sha256*."""
        return self.root / "unpacked" / _check_hex(sha256)

    # -- wheels -----------------------------------------------------------------------------
    def get_wheel(self, sha256: str, filename: str) -> Path | None:
        """The cached wheel, re-verified by hash; None (and the entry deleted) when bad."""
        path = self.wheel_dir(sha256) / _safe_filename(filename)
        try:
            if not path.is_file():
                return None
            if sha256_of(path) == sha256:
                return path
        except OSError:
            pass
        _rmtree(path.parent)
        return None

    def get_wheel_for_install(self, sha256: str, filename: str) -> Path | None:
        """Like :meth:`get_wheel`, but when a verified unpacked tree of this wheel exists
        (the installer links from the tree, never reading the wheel again) the wheel's bytes
        are not re-hashed: one stat instead of reading the whole file on every warm install."""
        return self.installable_wheel(sha256, filename) or self.get_wheel(sha256, filename)

    def installable_wheel(self, sha256: str, filename: str) -> Path | None:
        """The cached wheel when a verified unpacked tree of it exists (no hashing: see
        :meth:`get_wheel_for_install`), else None; :meth:`get_wheel` decides the rest."""
        hexd, join = _check_hex(sha256), os.path.join  # strings: a Path per step cost more
        path = join(self._root, "wheels", "sha256", hexd[:2], hexd[2:4], hexd,
                    _safe_filename(filename))
        if os.path.isfile(path) and os.path.isfile(join(self._root, "unpacked", hexd, MARKER)):
            return Path(path)
        return None

    def unpacked_metadata(self, sha256: str, project: str) -> bytes | None:
        """The ``METADATA`` of *project* from the verified unpacked tree of wheel *sha256*,
        or None (no tree, several or no matching ``.dist-info``, or the file changed after
        the tree was verified: newer than its marker). The unpacker checked it against the
        wheel's RECORD, so it is the wheel's own METADATA, read without opening the ZIP."""
        try:
            folder = os.path.join(self._root, "unpacked", _check_hex(sha256))
            tree = os.path.join(folder, "tree")
            verified = os.stat(os.path.join(folder, MARKER)).st_mtime_ns
            found = [n for n in os.listdir(tree) if n.endswith(".dist-info")
                     and _canonical(n.partition("-")[0]) == project]
            if len(found) != 1:
                return None
            with open(os.path.join(tree, found[0], "METADATA"), "rb") as f:
                if os.fstat(f.fileno()).st_mtime_ns > verified:
                    return None
                return f.read()
        except (OSError, ValueError):  # ValueError: not a hex sha256, so not in the cache
            return None

    def find_wheel(self, sha256: str) -> Path | None:
        """Any cached, verified wheel with this sha256, whatever its file name."""
        folder = self.wheel_dir(sha256)
        with contextlib.suppress(OSError):
            for child in sorted(folder.iterdir()):
                if child.is_file():
                    return self.get_wheel(sha256, child.name)
        return None

    def add_wheel(self, src: Path, sha256: str, filename: str) -> Path:
        """Move the verified temp file *src* (in :attr:`tmp_dir`) into the cache; returns path."""
        folder = self.wheel_dir(sha256)
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / _safe_filename(filename)
        os.replace(src, dest)
        fsync_dir(folder)
        return dest

    @contextlib.contextmanager
    def temp_file(self, suffix: str = ".part") -> Iterator[Path]:
        """A fresh temp file path in :attr:`tmp_dir`; removed on exit unless moved away."""
        import tempfile

        fd, name = tempfile.mkstemp(dir=self.tmp_dir, suffix=suffix)
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # -- unpacked trees ---------------------------------------------------------------------
    def get_unpacked(self, sha256: str) -> tuple[Path, dict[str, Any]] | None:
        """(tree, marker data) of a verified unpacked wheel; None (entry deleted) when bad.

        The marker lists every file with its size and mtime; a file that was changed in place
        (e.g. through a hard link from an environment) makes the entry invalid.
        """
        folder = self.unpacked_dir(sha256)
        marker = folder / MARKER
        if not marker.is_file():
            if folder.exists():
                _rmtree(folder)
            return None
        try:
            data = json.loads(marker.read_text("utf-8"))
            if _tree_matches(folder / "tree", data["files"]):
                return folder / "tree", data
        except (OSError, ValueError, KeyError, TypeError):
            pass
        _rmtree(folder)
        return None

    def put_unpacked(
        self, sha256: str, build: Callable[[Path], Mapping[str, Any]]
    ) -> tuple[Path, dict[str, Any]]:
        """Create the unpacked tree: ``build(tmp_tree)`` fills and verifies it and returns
        marker data; the marker is written last, then the folder is renamed into place.
        The marker's ``files`` (relative path -> [size, mtime_ns]) come from a walk of the
        tree unless ``build`` returned them (every file it wrote, from ``os.fstat``).

        If ``build`` raises, nothing is left behind. If another process won the race, its
        entry is used.
        """
        import tempfile

        staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=self.tmp_dir))
        try:
            tree = staging / "tree"
            tree.mkdir()
            data = dict(build(tree))
            if "files" not in data:  # build may list what it wrote (saves a walk)
                data["files"] = _tree_state(tree)
            (staging / MARKER).write_text(json.dumps(data, sort_keys=True), "utf-8")
            final = self.unpacked_dir(sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:
                existing = self.get_unpacked(sha256)
                if existing is not None:
                    return existing
                os.rename(staging, final)
            return final / "tree", data
        finally:
            if staging.exists():
                _rmtree(staging)

    # -- info / clean -----------------------------------------------------------------------
    def info(self) -> list[KindInfo]:
        """Sizes and counts per kind: wheels, unpacked, http, tmp."""
        kinds = [
            ("wheels", self.root / "wheels", 4),
            ("unpacked", self.root / "unpacked", 1),
            ("http", self.root / "http-v1", 0),
            ("tmp", self.root / "tmp", 0),
        ]
        return [_kind_info(kind, path, depth) for kind, path, depth in kinds]

    def clean(self) -> int:
        """Delete every cache entry (all kinds); returns the number of bytes freed."""
        freed = sum(k.size for k in self.info())
        for name in ("wheels", "unpacked", "http-v1", "tmp"):
            _rmtree(self.root / name)
        return freed


def _tree_state(tree: Path) -> dict[str, list[int]]:
    state: dict[str, list[int]] = {}
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            state[os.path.relpath(full, tree).replace(os.sep, "/")] = [st.st_size, st.st_mtime_ns]
    return state


def _tree_matches(tree: Path, expected: Mapping[str, list[int]]) -> bool:
    base = str(tree) + os.sep
    lstat = os.lstat
    for rel, (size, mtime_ns) in expected.items():
        st = lstat(base + rel)  # plain strings: a Path per file cost more than the lstat
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            return False
    return True


def _kind_info(kind: str, path: Path, depth: int) -> KindInfo:
    entries = files = size = 0
    if path.is_dir():
        base = len(path.parts)
        for dirpath, _dirs, names in os.walk(path):
            if depth and len(Path(dirpath).parts) - base == depth:
                entries += 1
            for name in names:
                with contextlib.suppress(OSError):
                    size += os.lstat(os.path.join(dirpath, name)).st_size
                    files += 1
    return KindInfo(kind, path, entries if depth else files, files, size)
