"""Config files: TOML parsing with line numbers, validation of one file, discovery.

Part of the configuration package (see :mod:`installer.config`, which builds layers from the
results and re-exports the public names).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from installer._record import record
from installer._types import Origin, OriginKind
from installer.configvalues import BadValue, convert, format_value
from installer.errors import ConfigError, ConfigErrors
from installer.options import BY_KEY, COMMANDS, closest_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FILE_NAME = "inst.toml"
SECTIONS: tuple[str, ...] = ("global", *COMMANDS)
#: Unknown keys and tables warned about one by one per file; the rest are only counted.
MAX_UNKNOWN = 20

# --- TOML reading and line numbers -------------------------------------------------------------

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_KEY_LINE = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")


def _key_parts(text: str) -> tuple[str, ...]:
    parts = re.findall(_KEY_PART, text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def key_lines(text: str) -> dict[tuple[object, ...], int]:
    """Best-effort line numbers of tables and keys: ``("global", "cert") -> 3``.

    tomllib gives no positions, so scan the text: table headers, ``[[array]]`` headers (the
    n-th one is ``("index", n)``) and ``key =`` lines, dotted keys included.
    """
    lines: dict[tuple[object, ...], int] = {}
    counts: dict[tuple[str, ...], int] = {}
    table: tuple[object, ...] = ()
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        key = _KEY_LINE.match(line) if header is None else None
        if header:
            parts = _key_parts(header.group(2))
            if header.group(1) == "[[":
                counts[parts] = counts.get(parts, -1) + 1
                lines.setdefault(parts, number)
                table = (*parts, counts[parts])
            else:
                table = parts
            lines.setdefault(table, number)
        elif key:
            lines.setdefault((*table, *_key_parts(key.group(1))), number)
            rest = line[key.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
    return lines


def line_of(lines: Mapping[tuple[object, ...], int], path: tuple[object, ...]) -> int | None:
    """The line of *path*, else of its nearest enclosing table or key."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def parse_toml(text: str, path: str) -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes ``ConfigError`` at ``path:line:col``."""
    try:
        if sys.version_info >= (3, 11):
            import tomllib

            return tomllib.loads(text)
        import tomlkit  # pragma: no cover - Python 3.10 only

        return dict(tomlkit.parse(text).unwrap())  # pragma: no cover
    except RecursionError as exc:  # hostile nesting ([[[[...]]]] or {a={a=...}}) (issue 6)
        raise ConfigErrors([
            ConfigError("invalid TOML: arrays or tables nested too deeply", path=path)
        ]) from exc
    except ValueError as exc:
        message = str(exc)
        pos = _TOML_POS.search(message)
        line = int(pos.group(1)) if pos else getattr(exc, "line", None)
        col = int(pos.group(2)) if pos else getattr(exc, "col", None)
        if _TOML_END.search(message):
            line, col = text.count("\n") + 1, len(text.rsplit("\n", 1)[-1]) + 1
        message = _TOML_END.sub("", _TOML_POS.sub("", message))
        message = message[:1].lower() + message[1:]
        raise ConfigErrors([
            ConfigError(f"invalid TOML: {message}", path=path, line=line, col=col)
        ]) from exc


# --- files -------------------------------------------------------------------------------------


@record(frozen=False)
class ParsedFile:
    """The typed sections of one file plus every problem found in it."""

    sections: dict[str, dict[str, tuple[object, Origin]]]
    errors: list[ConfigError]
    warnings: list[str]


def _closest_section(name: str) -> str | None:
    import difflib

    match = difflib.get_close_matches(name, [*SECTIONS, "index"], n=1, cutoff=0.6)
    return match[0] if match else None


def _did_you_mean(name: str | None) -> str:
    return f" (did you mean {name!r}?)" if name else ""


class _FileParser:
    """Validates one parsed file, collecting every error and warning."""

    def __init__(self, text: str, path: str, kind: OriginKind, prefix: tuple[str, ...]) -> None:
        self.lines = key_lines(text)
        self.path, self.kind, self.prefix = path, kind, prefix
        self.base = Path(path).parent
        self.result = ParsedFile({}, [], [])
        self.unknown = 0

    def _warn_unknown(self) -> bool:
        """Count an unknown key or table; True while it should still be warned about one by
        one (a huge or hostile file must not cost a million did-you-mean searches)."""
        self.unknown += 1
        return self.unknown <= MAX_UNKNOWN

    def _where(self, *parts: object) -> str:
        line = line_of(self.lines, (*self.prefix, *parts))
        return f"{self.path}:{line}" if line else self.path

    def _name(self, section: str) -> str:
        return ".".join((*self.prefix, section))

    def run(self, root: Mapping[str, Any]) -> ParsedFile:
        for name, value in root.items():
            if name == "index":
                self._value("global", "index", value, ("index",))
            elif name in SECTIONS and isinstance(value, Mapping):
                self._section(name, value)
            elif name in SECTIONS:
                self._error((name,), f"{self._name(name)}: expected a table, got "
                            f"{format_value(value)}", self._name(name))
            elif name in BY_KEY:
                self.result.warnings.append(
                    f"{self._where(name)}: key {name!r} outside a table is ignored "
                    f"(put it under [{self._name('global')}])")
            elif self._warn_unknown():
                self.result.warnings.append(
                    f"{self._where(name)}: unknown table {self._name(name)!r}"
                    + _did_you_mean(_closest_section(name)))
        if self.unknown > MAX_UNKNOWN:
            self.result.warnings.append(
                f"{self.path}: {self.unknown - MAX_UNKNOWN} more unknown keys or tables "
                "not shown")
        return self.result

    def _section(self, section: str, table: Mapping[str, Any]) -> None:
        for key, value in table.items():
            option = BY_KEY.get(key)
            if option is None:
                if self._warn_unknown():
                    self.result.warnings.append(
                        f"{self._where(section, key)}: unknown key {key!r} in "
                        f"[{self._name(section)}]" + _did_you_mean(closest_key(key)))
                continue
            if section != "global" and section not in option.commands:
                self.result.warnings.append(
                    f"{self._where(section, key)}: {key!r} has no effect in "
                    f"[{self._name(section)}] (inst {section} does not read it)")
            self._value(section, key, value, (section, key))

    def _value(self, section: str, key: str, raw: object, where: tuple[object, ...]) -> None:
        option = BY_KEY[key]
        dotted = f"{self._name(section)}.{key}" if where[0] != "index" else self._name("index")
        try:
            value = convert(option, raw, self.base)
        except BadValue as exc:
            got = exc.got if exc.where else raw
            for part in exc.where:
                dotted += f"[{part}]" if isinstance(part, int) else f".{part}"
            shown = "a table" if isinstance(got, Mapping) else format_value(got)
            if exc.where and exc.where[-1] == got:
                shown = repr(got)
            self._error((*where, *exc.where), f"{dotted}: expected {exc.expected}, got {shown}",
                        dotted)
            return
        line = line_of(self.lines, (*self.prefix, *where))
        origin = Origin(self.kind, self.path, line, section=self._name(section))
        self.result.sections.setdefault(section, {})[key] = (value, origin)

    def _error(self, where: tuple[object, ...], message: str, key: str) -> None:
        line = line_of(self.lines, (*self.prefix, *where))
        self.result.errors.append(ConfigError(message, path=self.path, line=line, key=key))


def parse_config_text(text: str, path: str, kind: OriginKind = "config-file", *,
                      pyproject: bool = False) -> ParsedFile:
    """Parse and validate the text of a config file (or the ``[tool.inst]`` of a pyproject).

    Raises :class:`ConfigErrors` for invalid TOML; type errors are collected in the result.
    """
    data = parse_toml(text, path)
    prefix: tuple[str, ...] = ()
    if pyproject:
        prefix = ("tool", "inst")
        tool = data.get("tool", {})
        data = tool.get("inst", {}) if isinstance(tool, Mapping) else {}
        if not isinstance(data, Mapping):
            err = ConfigError("tool.inst: expected a table", path=path,
                              line=line_of(key_lines(text), prefix), key="tool.inst")
            return ParsedFile({}, [err], [])
    return _FileParser(text, path, kind, prefix).run(data)


def read_text(path: Path) -> str:
    """A config file's text; a decode or read error becomes a ConfigError."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigErrors([ConfigError(f"not UTF-8 text ({exc.reason})", path=str(path))]) from exc
    except OSError as exc:
        raise ConfigErrors([ConfigError(f"cannot read: {exc.strerror}", path=str(path))]) from exc


# Every TOML spelling of the key tool.inst (table header, dotted key, inline table) puts the
# key `inst`, bare or quoted, right before ".", "=" or "]". A pyproject without such a token
# (and without escapes that could spell one) cannot have the table and is not parsed:
# importing tomllib alone is ~8 ms, a third of `inst config get`.
_INST_KEY = re.compile(r"""(?<![\w-])(inst|"inst"|'inst')\s*[.=\]]""")


def has_tool_inst(pyproject: Path) -> bool:
    """True when *pyproject* has a ``[tool.inst]`` table (an unreadable file with one: error)."""
    if not pyproject.is_file():
        return False
    text = read_text(pyproject)
    if not _INST_KEY.search(text) and "\\u" not in text and "\\U" not in text:
        return False
    try:
        data = parse_toml(text, str(pyproject))
    except ConfigErrors:
        if "tool.inst" in text:
            raise
        return False
    tool = data.get("tool")
    return isinstance(tool, Mapping) and "inst" in tool


# --- discovery ---------------------------------------------------------------------------------


def _is_xdg_platform() -> bool:
    return sys.platform not in ("win32", "darwin")


def site_config_files(environ: Mapping[str, str]) -> list[Path]:
    """Site files, highest precedence first (Linux: each XDG_CONFIG_DIRS entry, in order)."""
    if _is_xdg_platform():
        dirs = environ.get("XDG_CONFIG_DIRS", "").strip() or "/etc/xdg"
        return [Path(os.path.expanduser(d)) / "inst" / FILE_NAME
                for d in dirs.split(os.pathsep) if d.strip()]
    import platformdirs

    joined = platformdirs.site_config_dir("inst", multipath=True)
    return [Path(d) / FILE_NAME for d in joined.split(os.pathsep) if d]


def user_config_file(environ: Mapping[str, str]) -> Path:
    """The user file (Linux: ``$XDG_CONFIG_HOME/inst/inst.toml``, default ``~/.config``)."""
    if _is_xdg_platform():
        base = environ.get("XDG_CONFIG_HOME", "").strip()
        if not base:
            home = environ.get("HOME") or os.path.expanduser("~")
            base = os.path.join(home, ".config")
        return Path(os.path.expanduser(base)) / "inst" / FILE_NAME
    import platformdirs

    return platformdirs.user_config_path("inst") / FILE_NAME


@record
class ProjectFile:
    """The project file found from a folder upward; ``masked`` is a pyproject it hides."""

    path: Path
    pyproject: bool
    masked: Path | None = None


def find_project_file(cwd: Path) -> ProjectFile | None:
    """The nearest ``inst.toml`` or ``pyproject.toml`` with ``[tool.inst]`` from *cwd* upward."""
    for folder in (cwd, *cwd.parents):
        inst, pyproject = folder / FILE_NAME, folder / "pyproject.toml"
        if inst.is_file():
            masked = pyproject if has_tool_inst(pyproject) else None
            return ProjectFile(inst, False, masked)
        if has_tool_inst(pyproject):
            return ProjectFile(pyproject, True)
    return None
