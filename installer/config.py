"""Layered configuration: discover and parse the layers, merge them purely, keep provenance.

Precedence, lowest to highest (the one rule, applied by :func:`merge`):

    default < ambient env (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE, *_PROXY, NO_PROXY)
    < site files (XDG_CONFIG_DIRS: first directory highest) < user file < project file
    < --config-file / INST_CONFIG_FILE < INST_* env vars < command-line flags

Within one layer a ``[<command>]`` table beats ``[global]``; across layers a higher layer always
wins, whatever table it used. A list from a higher layer replaces a lower one.

Only :func:`load_settings` and the ``discover_*`` helpers touch the file system and the
environment; :func:`merge` is a pure function of the layers. Value checking lives in
:mod:`installer.configvalues`, file parsing and discovery in :mod:`installer.configfile`; their
public names are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from installer._record import field, record
from installer._types import Origin, OriginKind, Setting
from installer.configfile import FILE_NAME as FILE_NAME
from installer.configfile import MAX_UNKNOWN as MAX_UNKNOWN
from installer.configfile import SECTIONS as SECTIONS
from installer.configfile import ParsedFile as ParsedFile
from installer.configfile import ProjectFile as ProjectFile
from installer.configfile import find_project_file as find_project_file
from installer.configfile import has_tool_inst as has_tool_inst
from installer.configfile import key_lines as key_lines
from installer.configfile import line_of as line_of
from installer.configfile import parse_config_text as parse_config_text
from installer.configfile import parse_toml as parse_toml
from installer.configfile import read_text as read_text
from installer.configfile import site_config_files as site_config_files
from installer.configfile import user_config_file as user_config_file
from installer.configvalues import coerce_list as coerce_list
from installer.configvalues import coerce_text as coerce_text
from installer.configvalues import convert as convert
from installer.configvalues import expected_text as expected_text
from installer.configvalues import format_value as format_value
from installer.configvalues import normalize_path as normalize_path
from installer.configvalues import parse_bool as parse_bool
from installer.configvalues import toml_string
from installer.errors import ConfigError, ConfigErrors, redact_text
from installer.options import BY_ENV, BY_KEY, META_ENV, OPTIONS, closest_key, options_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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


# --- describing settings -----------------------------------------------------------------------


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


# --- file layers -------------------------------------------------------------------------------


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
            close = closest_key(name[5:].lower().replace("_", "-"))
            hint = f" (did you mean {BY_KEY[close].env_var}?)" if close else ""
            warnings.append(f"unknown environment variable {name}{hint}")
            continue
        text = environ[name]
        if not text.strip() and not option.is_list:
            continue
        try:
            found[option.key] = (coerce_text(option, text, base=cwd), Origin("env", name=name))
        except ValueError as exc:
            got = "" if ", got " in str(exc) else f", got {toml_string(redact_text(text))}"
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
                f"{toml_string(environ['INST_NO_CONFIG'])}")]) from None
    return config_file, source, no_config


def discover_file_layers(cwd: Path, environ: Mapping[str, str], *, no_config: bool,
                         warnings: list[str]) -> list[Layer]:
    """Site (lowest first), user and project layers; skipped ones kept for ``config debug``."""
    layers: list[Layer] = []
    # Under no-config the project file is not looked for: finding one may mean parsing a
    # pyproject.toml (tomllib alone is ~8 ms) for a layer that is skipped anyway.
    project = None if no_config else find_project_file(cwd)
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
