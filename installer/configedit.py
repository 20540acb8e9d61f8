"""Safe edits of configuration files: locked, validated, atomic, formatting kept.

Every write follows the same steps (issue 2, "Bad input and safety"):

1. take an exclusive lock on a sibling ``.<name>.lock`` file, so concurrent writers queue up
   and each one re-reads the file the previous one wrote (no lost keys);
2. parse the current text with tomlkit, which keeps comments, order and formatting;
3. change the one key, keep CRLF line endings when the file uses them;
4. re-parse and validate the new text with :mod:`installer.config`; on problems nothing is
   written;
5. write a temp file in the same folder, fsync it, give it the old file's mode, ``os.replace``.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.items
from tomlkit.exceptions import TOMLKitError

from installer import fsutil
from installer.config import ParsedFile, parse_config_text, parse_toml, read_text
from installer.errors import ConfigError, ConfigErrors


def lock_path(path: Path) -> Path:
    """The sibling lock file that serializes writers of *path*."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for *path* (creates its folder and lock file as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(path), "a+b") as handle:
        _lock(handle.fileno())
        try:
            yield
        finally:
            _unlock(handle.fileno())


if sys.platform == "win32":  # pragma: no cover - Windows
    import msvcrt

    def _lock(fd: int) -> None:
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                time.sleep(0.02)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _has_bom(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(3) == codecs.BOM_UTF8
    except OSError:
        return False


def atomic_write(path: Path, text: str, *, bom: bool = False) -> None:
    """Write *text* to *path* via a temp file in the same folder, fsync and ``os.replace``.

    The file keeps its mode; a new file gets the usual mode for the umask. With *bom*, the
    text is written after a UTF-8 byte order mark (kept when the file had one).
    """
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = _new_file_mode()
    data = (codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8")
    fsutil.atomic_write(path, data, mode=mode)
    fsutil.fsync_dir(path.parent, strict=True)


def _uses_crlf(text: str) -> bool:
    return "\r\n" in text


def _with_line_endings(text: str, crlf: bool) -> str:
    return re.sub(r"(?<!\r)\n", "\r\n", text) if crlf else text


def validate_text(path: Path, text: str, *, pyproject: bool) -> ParsedFile:
    """Parse and validate *text* as the content of *path*; raises ConfigErrors on problems."""
    parsed = parse_config_text(text, str(path), pyproject=pyproject)
    if parsed.errors:
        raise ConfigErrors(parsed.errors)
    return parsed


def _load_document(path: Path) -> tuple[tomlkit.TOMLDocument, str]:
    text = read_text(path) if path.exists() else ""
    parse_toml(text, str(path))  # precise path:line:col errors before tomlkit sees it
    try:
        return tomlkit.parse(text), text
    except TOMLKitError as exc:  # pragma: no cover - tomllib accepted it
        raise ConfigErrors([ConfigError(f"invalid TOML: {exc}", path=str(path))]) from exc


def _table(container: Any, name: str, create: bool, *, super_table: bool = False) -> Any:
    if name in container:
        found = container[name]
        if not isinstance(found, (dict, tomlkit.items.Table, tomlkit.items.InlineTable)):
            raise ConfigErrors([ConfigError(f"{name}: expected a table, cannot edit a key in it")])
        return found
    if not create:
        return None
    table = tomlkit.table(is_super_table=super_table)
    container[name] = table
    return container[name]


def _section(doc: tomlkit.TOMLDocument, section: str, *, pyproject: bool, create: bool) -> Any:
    root: Any = doc
    if pyproject:
        root = _table(doc, "tool", create, super_table=True)
        root = _table(root, "inst", create, super_table=True) if root is not None else None
        if root is None:
            return None
    return _table(root, section, create)


def _edit(path: Path, pyproject: bool, change: Any) -> tuple[bool, list[str]]:
    """Run ``change(doc) -> bool`` under the lock and write the result when it changed."""
    with locked(path):
        doc, old_text = _load_document(path)
        if not change(doc):
            return False, []
        new_text = _with_line_endings(tomlkit.dumps(doc), _uses_crlf(old_text))
        parsed = validate_text(path, new_text, pyproject=pyproject)
        atomic_write(path, new_text, bom=_has_bom(path))
        return True, parsed.warnings


def _put(table: Any, key: str, value: object) -> None:
    """Set *key*; a new key goes right after the table's last key, before trailing comments."""
    container = getattr(table, "value", None)
    body = getattr(container, "body", None)
    if key in table or not isinstance(table, tomlkit.items.Table) or not body:
        table[key] = value
        return
    keys = [k for k, _ in body if k is not None]
    try:
        container._insert_after(keys[-1], key, tomlkit.item(value))  # type: ignore[union-attr]
    except (AttributeError, IndexError, TOMLKitError):  # older/newer tomlkit: append instead
        table[key] = value


def set_key(path: Path, section: str, key: str, value: object, *,
            pyproject: bool = False) -> list[str]:
    """Set ``[section] key = value`` in *path* (``[tool.inst.<section>]`` for a pyproject).

    Creates the file, its folders and the table as needed; returns the file's warnings.
    """
    def change(doc: tomlkit.TOMLDocument) -> bool:
        _put(_section(doc, section, pyproject=pyproject, create=True), key, value)
        return True

    return _edit(path, pyproject, change)[1]


def unset_key(path: Path, section: str, key: str, *, pyproject: bool = False) -> bool:
    """Remove ``key`` from ``[section]`` of *path*; False when it was not there."""
    if not path.exists():
        return False

    def change(doc: tomlkit.TOMLDocument) -> bool:
        table = _section(doc, section, pyproject=pyproject, create=False)
        if table is None or key not in table:
            return False
        del table[key]
        return True

    return _edit(path, pyproject, change)[0]


def replace_text(path: Path, text: str, *, pyproject: bool = False,
                 expected_old: str | None = None) -> list[str]:
    """Validate *text* and atomically make it the content of *path* (for ``config edit``).

    With *expected_old*, refuse (ConfigErrors) when the file changed meanwhile.
    """
    with locked(path):
        current = read_text(path) if path.exists() else ""
        if expected_old is not None and current != expected_old:
            raise ConfigErrors([ConfigError(
                "the file changed while it was being edited; nothing was written",
                path=str(path))])
        parsed = validate_text(path, text, pyproject=pyproject)
        atomic_write(path, text)
        return parsed.warnings
