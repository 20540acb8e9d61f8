"""Layered configuration: discover and parse the layers, merge them purely, keep provenance.

Precedence, lowest to highest (the one rule, applied by :func:`merge`):

    default < ambient env (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE, *_PROXY, NO_PROXY)
    < site files (XDG_CONFIG_DIRS: first directory highest) < user file < project file
    < --config-file / INST_CONFIG_FILE < INST_* env vars < command-line flags

Within one layer a ``[<command>]`` table beats ``[global]``; across layers a higher layer always
wins, whatever table it used. A list from a higher layer replaces a lower one.

Only :func:`load_settings` and the ``discover_*`` helpers touch the file system and the
environment; :func:`merge` is a pure function of the layers.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from installer._record import field, record
from installer._types import Origin, OriginKind, Setting
from installer.errors import ConfigError, ConfigErrors, redact_text
from installer.options import BY_ENV, BY_KEY, COMMANDS, META_ENV, OPTIONS, Option, options_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FILE_NAME = "inst.toml"
SECTIONS: tuple[str, ...] = ("global", *COMMANDS)
#: Unknown keys and tables warned about one by one per file; the rest are only counted.
MAX_UNKNOWN = 20
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_INDEX_FIELDS = {"name": "str", "url": "url", "cert": "path", "client-cert": "path"}

Sections = Mapping[str, Mapping[str, tuple[object, Origin]]]


@record
class Layer:
    """One configuration source. ``sections`` maps table -> key -> (typed value, origin).

    Env, flag, ambient and default layers put everything in ``"global"``; the ``[[index]]``
    array of a file is stored as the key ``"index"`` of ``"global"``. ``skipped`` is True for
    discovered files that ``--no-config`` turned off.
    """

    kind: OriginKind
    path: Path | None
    exists: bool
    sections: Sections = field(default_factory=dict)
    skipped: bool = False


class Settings:
    """The merged, effective settings of one command, each with its origin and shadowed values."""

    def __init__(self, settings: Mapping[str, Setting], command: str | None = None) -> None:
        self._settings = dict(settings)
        self.command = command

    def __getitem__(self, key: str) -> Any:
        return self._settings[key].value

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def __contains__(self, key: object) -> bool:
        return key in self._settings

    def get(self, key: str, default: Any = None) -> Any:
        """The effective value of *key*, or *default* when the key is unknown."""
        return self._settings[key].value if key in self._settings else default

    def setting(self, key: str) -> Setting:
        """The effective value of *key* with its origin and the values it shadows."""
        return self._settings[key]

    def origin(self, key: str) -> Origin:
        """Where the effective value of *key* came from."""
        return self._settings[key].origin

    def __repr__(self) -> str:
        return f"Settings(command={self.command!r}, {len(self)} keys)"


@record(frozen=False)
class LoadResult:
    """What :func:`load_settings` found: merged settings, the layers, and warnings to show."""

    settings: Settings
    layers: list[Layer]
    warnings: list[str]


# --- merging (pure) ----------------------------------------------------------------------------


def candidates(layers: Sequence[Layer], key: str,
               command: str | None) -> list[tuple[object, Origin]]:
    """Every (value, origin) for *key*, highest precedence first (see the module docstring)."""
    found: list[tuple[object, Origin]] = []
    for layer in reversed(layers):
        if layer.skipped:
            continue
        tables = [command, "global"] if command and command != "global" else ["global"]
        for table in tables:
            entry = layer.sections.get(table, {}).get(key)
            if entry is not None:
                found.append(entry)
    return found


def merge(layers: Sequence[Layer], command: str | None) -> Settings:
    """Merge *layers* (lowest precedence first) into the settings *command* runs with.

    Pure: no I/O. A key no layer sets gets the option's default with a ``default`` origin.
    """
    merged: dict[str, Setting] = {}
    for option in OPTIONS:
        found = candidates(layers, option.key, command)
        if not found:
            found = [(option.default, Origin("default"))]
        (value, origin), rest = found[0], tuple(found[1:])
        merged[option.key] = Setting(option.key, value, origin, rest)
    return Settings(merged, command)


# --- values ------------------------------------------------------------------------------------


class _Bad(Exception):
    """A value does not fit its type; ``expected`` says what would."""

    def __init__(self, expected: str, where: tuple[object, ...] = (), got: object = None) -> None:
        super().__init__(expected)
        self.expected, self.where, self.got = expected, where, got


def expected_text(option: Option) -> str:
    """How error messages describe the values *option* accepts."""
    if option.type == "enum":
        return "one of " + ", ".join(f'"{c}"' for c in option.choices)
    return {
        "bool": "true or false", "int": "an integer", "float": "a number (seconds)",
        "str": "a string", "path": "a path (string)", "url": "an http, https or file URL",
        "list[str]": "a list of strings", "list[path]": "a list of paths (strings)",
        "list[url]": "a list of http, https or file URLs",
        "indexes": "a list of [[index]] tables with name and url",
    }[option.type]


def _check_url(text: str) -> str:
    from urllib.parse import urlsplit  # lazily: start-up time

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "file") or (
        parts.scheme != "file" and not parts.netloc
    ):
        raise _Bad("an http, https or file URL")
    return text


_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?")


def _check_host(text: str) -> None:
    """trusted-host turns verification off, so only exact names are accepted: ``*``, other
    wildcards, URLs and paths are refused rather than silently never (or always) matching."""
    if not _HOST.fullmatch(text.strip()):
        raise _Bad("an exact host or host:port (no wildcards, no scheme)")


def normalize_path(text: str, base: Path | None) -> str:
    """Expand ``~``; resolve a relative path against *base* (a file's folder, or the cwd)."""
    expanded = os.path.expanduser(text)
    if base is not None and not os.path.isabs(expanded):
        return os.path.normpath(os.path.join(base, expanded))
    return expanded


def _scalar(kind: str, raw: object, base: Path | None, option: Option) -> object:
    if kind == "bool" and isinstance(raw, bool):
        return raw
    if kind == "int" and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if kind == "float" and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if kind in ("str", "path", "url", "enum") and isinstance(raw, str):
        if kind == "path":
            if not raw.strip():  # "" would silently mean the file's folder or the cwd
                raise _Bad("a non-empty path")
            return normalize_path(raw, base)
        if kind == "url":
            return _check_url(raw)
        if kind == "enum" and raw not in option.choices:
            raise _Bad(expected_text(option))
        return raw
    raise _Bad(expected_text(option))


def _index_entry(raw: object, base: Path | None, i: int) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise _Bad("an [[index]] table with name and url", (i,), raw)
    entry: dict[str, str] = {}
    for name, value in raw.items():
        kind = _INDEX_FIELDS.get(name)
        if kind is None:
            raise _Bad("only name, url, cert and client-cert", (i, name), name)
        if not isinstance(value, str):
            raise _Bad("a string", (i, name), value)
        try:
            entry[name] = normalize_path(value, base) if kind == "path" else (
                _check_url(value) if kind == "url" else value)
        except _Bad as exc:
            raise _Bad(exc.expected, (i, name), value) from None
    missing = [k for k in ("name", "url") if k not in entry]
    if missing:
        raise _Bad(f"an [[index]] table with name and url (missing {missing[0]})", (i,), raw)
    return entry


def convert(option: Option, raw: object, base: Path | None) -> object:
    """Check a TOML value against *option*'s type and return it typed (raises on mismatch)."""
    if option.type == "indexes":
        if not isinstance(raw, list):
            raise _Bad(expected_text(option))
        return [_index_entry(item, base, i) for i, item in enumerate(raw)]
    if option.is_list:
        if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
            raise _Bad(expected_text(option))
        kind, items = option.type[5:-1], []
        for i, item in enumerate(raw):
            try:
                items.append(_scalar(kind, item, base, option))
                if option.key == "trusted-host":
                    _check_host(item)
            except _Bad as exc:
                raise _Bad(exc.expected, (i,), item) from None
        return items
    return _scalar(option.type, raw, base, option)


def parse_bool(text: str) -> bool:
    """1/0/true/false/yes/no/on/off, any case; ValueError otherwise."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected one of 1, 0, true, false, yes, no, on, off")


def coerce_text(option: Option, text: str, *, base: Path | None = None) -> object:
    """Turn an env var or flag string into *option*'s type; ValueError("expected ...").

    Lists split on whitespace; relative paths resolve against *base* when given.
    """
    try:
        if option.type == "bool":
            return parse_bool(text)
        if option.type == "int":
            return int(text.strip())
        if option.type == "float":
            return float(text.strip())
        if option.type == "indexes":
            raise _Bad(expected_text(option))
        if option.is_list:
            return coerce_list(option, text.split(), base=base)
        return convert(option, text, base)
    except _Bad as exc:
        raise ValueError(f"expected {exc.expected}") from None
    except ValueError as exc:
        if str(exc).startswith("expected"):
            raise
        raise ValueError(f"expected {expected_text(option)}") from None


def coerce_list(option: Option, items: Sequence[str], *, base: Path | None = None) -> object:
    """Strings (command-line VALUEs, split env text) -> a list option's value; ValueError."""
    try:
        return convert(option, list(items), base)
    except _Bad as exc:
        got = f", got {_toml_string(exc.got)}" if isinstance(exc.got, str) else ""
        raise ValueError(f"expected {exc.expected}{got}") from None


def _toml_string(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{out}"'


def format_value(value: object) -> str:
    """A TOML literal for *value* (``None`` as ``(unset)``), with URL credentials masked."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(redact_text(value))
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k} = {format_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return _toml_string(redact_text(str(value)))


def describe_settings(settings: Settings, command: str | None) -> list[str]:
    """One line per option *command* reads: ``key = value  (from origin)``."""
    options = options_for(command) if command else OPTIONS
    width = max((len(o.key) for o in options), default=0)
    lines = []
    for option in options:
        setting = settings.setting(option.key)
        value, origin = format_value(setting.value), describe_origin(setting.origin)
        lines.append(f"{option.key:<{width}} = {value}  ({origin})")
    return lines


def describe_origin(origin: Origin) -> str:
    """``default`` or ``from <file:line [table]>`` / ``from env X`` / ``from flag --x``."""
    return "default" if origin.kind == "default" else f"from {origin}"


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
                        f"[{self._name(section)}]" + _did_you_mean(_closest_key(key)))
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
        except _Bad as exc:
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


def _closest_key(key: str) -> str | None:
    from installer.options import closest_key

    return closest_key(key)


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


def load_file(path: Path, kind: OriginKind, *, pyproject: bool = False,
              warnings: list[str] | None = None) -> Layer:
    """A file layer; raises ConfigErrors with every problem of the file; appends warnings."""
    if not path.is_file():
        return Layer(kind, path, False)
    parsed = parse_config_text(read_text(path), str(path), kind, pyproject=pyproject)
    if parsed.errors:
        raise ConfigErrors(parsed.errors)
    if warnings is not None:
        warnings.extend(parsed.warnings)
    return Layer(kind, path, True, parsed.sections)


def has_tool_inst(pyproject: Path) -> bool:
    """True when *pyproject* has a ``[tool.inst]`` table (an unreadable file with one: error)."""
    if not pyproject.is_file():
        return False
    text = read_text(pyproject)
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


# --- environment layers ------------------------------------------------------------------------

_AMBIENT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cert", ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")),
    ("proxy", ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")),
    ("no-proxy", ("NO_PROXY", "no_proxy")),
)


def ambient_layer(environ: Mapping[str, str], cwd: Path) -> Layer:
    """Variables other tools read too, mapped to ``cert``, ``proxy`` and ``no-proxy``."""
    found: dict[str, tuple[object, Origin]] = {}
    for key, names in _AMBIENT:
        for name in names:
            text = environ.get(name, "").strip()
            if not text:
                continue
            value: object = text
            if key == "cert":
                value = normalize_path(text, cwd)
            elif key == "no-proxy":
                value = [h for h in re.split(r"[,\s]+", text) if h]
            found[key] = (value, Origin("ambient", name=name))
            break
    return Layer("ambient", None, bool(found), {"global": found})


def env_layer(environ: Mapping[str, str], cwd: Path) -> tuple[Layer, list[str]]:
    """``INST_*`` variables; raises ConfigErrors naming every bad variable; returns warnings."""
    found: dict[str, tuple[object, Origin]] = {}
    errors: list[ConfigError] = []
    warnings: list[str] = []
    for name in sorted(environ):
        if not name.startswith("INST_") or name in META_ENV:
            continue
        option = BY_ENV.get(name)
        if option is None:
            close = _closest_key(name[5:].lower().replace("_", "-"))
            hint = f" (did you mean {BY_KEY[close].env_var}?)" if close else ""
            warnings.append(f"unknown environment variable {name}{hint}")
            continue
        text = environ[name]
        if not text.strip() and not option.is_list:
            continue
        try:
            found[option.key] = (coerce_text(option, text, base=cwd), Origin("env", name=name))
        except ValueError as exc:
            got = "" if ", got " in str(exc) else f", got {_toml_string(redact_text(text))}"
            errors.append(ConfigError(f"environment variable {name}: {exc}{got}",
                                      key=option.key))
    if errors:
        raise ConfigErrors(errors)
    return Layer("env", None, bool(found), {"global": found}), warnings


def default_layer() -> Layer:
    """Every option's built-in default."""
    values = {o.key: (o.default, Origin("default")) for o in OPTIONS}
    return Layer("default", None, True, {"global": values})


def flag_layer(flags: Mapping[str, tuple[object, str]], cwd: Path) -> Layer:
    """Command-line flags: key -> (typed value, spelling); relative paths against *cwd*."""
    found: dict[str, tuple[object, Origin]] = {}
    for key, (value, spelling) in flags.items():
        option = BY_KEY[key]
        if option.type == "path" and isinstance(value, str):
            value = normalize_path(value, cwd)
        elif option.type == "list[path]" and isinstance(value, list):
            value = [normalize_path(v, cwd) for v in value]
        found[key] = (value, Origin("flag", name=spelling))
    return Layer("flag", None, bool(found), {"global": found})


# --- loading -----------------------------------------------------------------------------------


def _meta(config_file: str | None, no_config: bool,
          environ: Mapping[str, str]) -> tuple[str | None, str, bool]:
    source = "--config-file"
    if config_file is None and environ.get("INST_CONFIG_FILE", "").strip():
        config_file, source = environ["INST_CONFIG_FILE"].strip(), "INST_CONFIG_FILE"
    if not no_config and environ.get("INST_NO_CONFIG", "").strip():
        try:
            no_config = parse_bool(environ["INST_NO_CONFIG"])
        except ValueError as exc:
            raise ConfigErrors([ConfigError(
                f"environment variable INST_NO_CONFIG: {exc}, got "
                f"{_toml_string(environ['INST_NO_CONFIG'])}")]) from None
    return config_file, source, no_config


def discover_file_layers(cwd: Path, environ: Mapping[str, str], *, no_config: bool,
                         warnings: list[str]) -> list[Layer]:
    """Site (lowest first), user and project layers; skipped ones kept for ``config debug``."""
    layers: list[Layer] = []
    project = find_project_file(cwd)
    if project and project.masked:
        warnings.append(f"{project.path} wins over [tool.inst] in {project.masked}; "
                        "the pyproject settings are ignored")
    specs: list[tuple[OriginKind, Path, bool]] = [
        ("site", p, False) for p in reversed(site_config_files(environ))]
    specs.append(("user", user_config_file(environ), False))
    if project:
        specs.append(("project", project.path, project.pyproject))
    else:
        specs.append(("project", Path(), False))
    for kind, path, pyproject in specs:
        if path == Path():
            layers.append(Layer(kind, None, False, skipped=no_config))
        elif no_config:
            layers.append(Layer(kind, path, path.is_file(), skipped=True))
        else:
            layers.append(load_file(path, kind, pyproject=pyproject, warnings=warnings))
    return layers


def load_layers(*, cwd: Path, environ: Mapping[str, str],
                flags: Mapping[str, tuple[object, str]] | None = None,
                config_file: str | None = None, no_config: bool = False,
                warnings: list[str] | None = None) -> list[Layer]:
    """Every layer, lowest precedence first (see the module docstring)."""
    warnings = [] if warnings is None else warnings
    config_file, source, no_config = _meta(config_file, no_config, environ)
    layers = [default_layer(), ambient_layer(environ, cwd)]
    layers += discover_file_layers(cwd, environ, no_config=no_config, warnings=warnings)
    if config_file is not None:
        path = Path(normalize_path(config_file, cwd))
        if not path.is_file():
            raise ConfigErrors([ConfigError(f"{source}: config file not found: {path}")])
        layers.append(load_file(path, "config-file", pyproject=path.name == "pyproject.toml",
                                warnings=warnings))
    else:
        layers.append(Layer("config-file", None, False))
    env, env_warnings = env_layer(environ, cwd)
    warnings.extend(env_warnings)
    layers += [env, flag_layer(flags or {}, cwd)]
    return layers


def load_settings(command: str | None, *, cwd: Path, environ: Mapping[str, str],
                  flags: Mapping[str, tuple[object, str]], config_file: str | None,
                  no_config: bool) -> LoadResult:
    """Read every layer and merge them for *command*.

    ``config_file``/``no_config`` come from the command line; when they are None/False,
    ``INST_CONFIG_FILE``/``INST_NO_CONFIG`` from *environ* are used. Raises ConfigErrors.
    """
    warnings: list[str] = []
    layers = load_layers(cwd=cwd, environ=environ, flags=flags, config_file=config_file,
                         no_config=no_config, warnings=warnings)
    return LoadResult(merge(layers, command), layers, warnings)
