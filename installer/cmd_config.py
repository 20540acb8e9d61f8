"""``inst config``: list, get, set, unset, edit, validate and debug the layered settings.

Kept light on imports so ``inst config get`` starts fast: tomlkit (through
:mod:`installer.configedit`) is imported only by the subcommands that write.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from installer import config
from installer._types import LAYER_ORDER, Origin, Setting
from installer.config import Layer, format_value, merge
from installer.context import Context
from installer.errors import ConfigError, ConfigErrors, InstError, UsageError, redact_text
from installer.options import BY_KEY, OPTIONS, Option, closest_key

SUBCOMMANDS = ("list", "get", "set", "unset", "edit", "validate", "debug")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``inst config`` subcommands (dest ``config_command``)."""
    sub = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    p = sub.add_parser("list", help="effective values as section.key = value")
    p.add_argument("--show-origin", action="store_true", help="show where each value came from")
    p.add_argument("--json", action="store_true", help="JSON output with origins")
    p.add_argument("--all", action="store_true", help="include values left at their default")
    p = sub.add_parser("get", help="print the effective value of section.key")
    p.add_argument("key", metavar="KEY")
    p.add_argument("--json", action="store_true", help="JSON output with the origin")
    p = sub.add_parser("set", help="set section.key in a config file")
    p.add_argument("key", metavar="KEY")
    p.add_argument("values", metavar="VALUE", nargs="+", help="several values make a list")
    _add_scope(p)
    p = sub.add_parser("unset", help="remove section.key from a config file")
    p.add_argument("key", metavar="KEY")
    _add_scope(p)
    p = sub.add_parser("edit", help="open a config file in $VISUAL/$EDITOR, validate after")
    _add_scope(p)
    p = sub.add_parser("validate", help="check config files (all discovered ones, or PATH)")
    p.add_argument("path", metavar="PATH", nargs="?")
    p = sub.add_parser("debug", help="every layer, and per key the winner and what it shadows")
    p.add_argument("key", metavar="KEY", nargs="?")


def _add_scope(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    for name, text in (("user", "the user file (default)"), ("site", "the site file"),
                       ("project", "the project's inst.toml or pyproject [tool.inst]")):
        group.add_argument(f"--{name}", dest="scope", action="store_const", const=name, help=text)
    group.add_argument("--file", dest="scope_file", metavar="PATH", help="this file")


def run(ctx: Context) -> int:
    """Dispatch ``inst config SUBCOMMAND``."""
    sub = getattr(ctx.args, "config_command", None)
    handlers = {"list": _list, "get": _get, "set": _set, "unset": _unset, "edit": _edit,
                "validate": _validate, "debug": _debug}
    if sub not in handlers:
        raise UsageError("inst config needs a subcommand: " + ", ".join(SUBCOMMANDS))
    return handlers[sub](ctx)


# --- shared helpers ----------------------------------------------------------------------------


def _layers(ctx: Context) -> list[Layer]:
    if ctx.layers:
        return list(ctx.layers)
    warnings: list[str] = []
    layers = config.load_layers(
        cwd=ctx.cwd, environ=ctx.environ, config_file=getattr(ctx.args, "config_file", None),
        no_config=bool(getattr(ctx.args, "no_config", False)), warnings=warnings)
    for warning in warnings:
        ctx.out.warn(warning)
    return layers


def parse_key(text: str) -> tuple[str, Option]:
    """``section.key`` -> (section, option); UsageError with a did-you-mean otherwise."""
    section, dot, key = text.partition(".")
    if not dot:
        section, key = "global", text
    if section not in config.SECTIONS:
        import difflib

        close = difflib.get_close_matches(section, config.SECTIONS, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}.{key}'?)" if close else ""
        raise UsageError(f"unknown section {section!r} in {text!r}{hint}",
                         hint="sections are global and the command names")
    option = BY_KEY.get(key)
    if option is None:
        close_key = closest_key(key)
        hint = f" (did you mean '{section}.{close_key}'?)" if close_key else ""
        raise UsageError(f"unknown key {text!r}{hint}")
    if section != "global" and section not in option.commands:
        raise UsageError(f"{key!r} has no effect in [{section}]: inst {section} does not read it",
                         hint="commands that read it: " + ", ".join(option.commands))
    return section, option


def _command(section: str) -> str | None:
    return None if section == "global" else section


def _redacted(value: object) -> object:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value


def _origin_json(origin: Origin) -> dict[str, object]:
    data = {"kind": origin.kind, "path": origin.path, "line": origin.line, "name": origin.name,
            "section": origin.section}
    return {k: v for k, v in data.items() if v is not None}


def _setting_json(name: str, setting: Setting) -> dict[str, object]:
    return {
        "key": name, "value": _redacted(setting.value), "origin": _origin_json(setting.origin),
        "shadowed": [{"value": _redacted(v), "origin": _origin_json(o)}
                     for v, o in setting.shadowed],
    }


def _raw_lines(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [v if isinstance(v, str) else format_value(v) for v in value]
    if isinstance(value, str):
        return [value]
    return [format_value(value)]


# --- list / get / debug ------------------------------------------------------------------------


def _listed(layers: Sequence[Layer], show_all: bool) -> list[tuple[str, Setting]]:
    rows: list[tuple[str, Setting]] = []
    settings = merge(layers, None)
    rows += [(f"global.{o.key}", settings.setting(o.key)) for o in OPTIONS
             if show_all or settings.origin(o.key).kind != "default"]
    for section in config.SECTIONS[1:]:
        keys = {k for layer in layers if not layer.skipped
                for k in layer.sections.get(section, {})}
        if keys:
            merged = merge(layers, section)
            rows += [(f"{section}.{o.key}", merged.setting(o.key)) for o in OPTIONS
                     if o.key in keys]
    return rows


def _list(ctx: Context) -> int:
    rows = _listed(_layers(ctx), bool(getattr(ctx.args, "all", False)))
    if ctx.args.json:
        import json

        ctx.out.result(json.dumps([_setting_json(n, s) for n, s in rows], indent=2))
        return 0
    for name, setting in rows:
        line = f"{name} = {format_value(setting.value)}"
        if ctx.args.show_origin:
            line += f"  ({config.describe_origin(setting.origin)})"
        ctx.out.result(line)
    return 0


def _get(ctx: Context) -> int:
    section, option = parse_key(ctx.args.key)
    setting = merge(_layers(ctx), _command(section)).setting(option.key)
    if ctx.args.json:
        import json

        ctx.out.result(json.dumps(_setting_json(f"{section}.{option.key}", setting), indent=2))
        return 0
    for line in _raw_lines(setting.value):
        ctx.out.result(line)
    return 1 if setting.value is None else 0


def _layer_line(number: int, layer: Layer) -> str:
    head = f"{number:>2}. {layer.kind:<12}"
    if layer.path is not None:
        state = "skipped (--no-config)" if layer.skipped else (
            "exists" if layer.exists else "not found")
        return f"{head}{layer.path}  ({state})"
    if layer.kind == "default":
        return f"{head}built-in defaults"
    if layer.kind == "project":
        state = "skipped (--no-config)" if layer.skipped else "none found"
        return f"{head}(no inst.toml or pyproject.toml with [tool.inst] upward: {state})"
    if layer.kind == "config-file":
        return f"{head}(no --config-file or INST_CONFIG_FILE)"
    names = [origin.name or "" for table in layer.sections.values()
             for _, origin in table.values()]
    return head + (", ".join(names) if names else "(nothing set)")


def _debug(ctx: Context) -> int:
    layers = _layers(ctx)
    ctx.out.result("layers, lowest precedence first:")
    for number, layer in enumerate(layers, start=1):
        ctx.out.result(_layer_line(number, layer))
    if ctx.args.key:
        section, option = parse_key(ctx.args.key)
        options: Iterable[Option] = [option]
    else:
        section, options = "global", OPTIONS
    ctx.out.result("")
    ctx.out.result(f"settings ({'[global]' if section == 'global' else 'inst ' + section}):")
    settings = merge(layers, _command(section))
    for opt in options:
        setting = settings.setting(opt.key)
        ctx.out.result(f"{section}.{opt.key} = {format_value(setting.value)}  "
                       f"({config.describe_origin(setting.origin)})")
        for value, origin in setting.shadowed:
            ctx.out.result(f"    shadows {format_value(value)}  "
                           f"({config.describe_origin(origin)})")
    return 0


# --- writing -----------------------------------------------------------------------------------


def target_file(ctx: Context) -> tuple[Path, bool]:
    """The file set/unset/edit write: (path, is a pyproject with [tool.inst])."""
    path_text = getattr(ctx.args, "scope_file", None)
    scope = getattr(ctx.args, "scope", None) or "user"
    if path_text:
        path = Path(config.normalize_path(path_text, ctx.cwd))
        return path, path.name == "pyproject.toml"
    if scope == "site":
        return config.site_config_files(ctx.environ)[0], False
    if scope == "project":
        found = config.find_project_file(ctx.cwd)
        if found is None:
            return ctx.cwd / config.FILE_NAME, False
        return found.path, found.pyproject
    return config.user_config_file(ctx.environ), False


def _stored_path(text: str, ctx: Context, target: Path) -> str:
    """What to write for a path value: absolute or ``~`` as given; relative made file-relative."""
    if text.startswith("~") or os.path.isabs(text):
        return text
    absolute = Path(os.path.normpath(ctx.cwd / text))
    folder = target.parent.resolve()
    try:
        return absolute.resolve().relative_to(folder).as_posix()
    except ValueError:
        return str(absolute)


def typed_value(option: Option, section: str, values: Sequence[str], ctx: Context,
                target: Path) -> object:
    """Check the command-line VALUEs against *option* and return what goes in the file."""
    name = f"{section}.{option.key}"
    if option.type == "indexes":
        raise UsageError(f"{name} holds [[index]] tables; change them with `inst config edit`")
    if not option.is_list and len(values) != 1:
        raise UsageError(f"{name} takes one value, got {len(values)}")
    try:
        if option.is_list:
            checked = config.coerce_list(option, values, base=ctx.cwd)
        else:
            checked = config.coerce_text(option, values[0], base=ctx.cwd)
    except ValueError as exc:
        message = str(exc) if ", got " in str(exc) else f"{exc}, got {format_value(values[0])}"
        raise ConfigError(f"{name}: {message}", key=name) from None
    if option.type == "path":
        return _stored_path(values[0], ctx, target)
    if option.type == "list[path]":
        return [_stored_path(v, ctx, target) for v in values]
    return checked


def _warn_if_shadowed(ctx: Context, section: str, option: Option, kind: str) -> None:
    if not ctx.layers:
        return
    origin = merge(ctx.layers, _command(section)).origin(option.key)
    if LAYER_ORDER.index(origin.kind) > LAYER_ORDER.index(kind):
        ctx.out.warn(f"{section}.{option.key} is overridden by {origin} for now")


def _set(ctx: Context) -> int:
    from installer import configedit

    section, option = parse_key(ctx.args.key)
    path, pyproject = target_file(ctx)
    value = typed_value(option, section, ctx.args.values, ctx, path)
    for warning in configedit.set_key(path, section, option.key, value, pyproject=pyproject):
        ctx.out.warn(warning)
    table = f"tool.inst.{section}" if pyproject else section
    ctx.out.info(f"set {section}.{option.key} = {format_value(value)} in [{table}] of {path}")
    _warn_if_shadowed(ctx, section, option, _scope_kind(ctx))
    return 0


def _scope_kind(ctx: Context) -> str:
    if getattr(ctx.args, "scope_file", None):
        return "config-file"
    return getattr(ctx.args, "scope", None) or "user"


def _unset(ctx: Context) -> int:
    from installer import configedit

    section, option = parse_key(ctx.args.key)
    path, pyproject = target_file(ctx)
    if not configedit.unset_key(path, section, option.key, pyproject=pyproject):
        raise InstError(f"{section}.{option.key} is not set in {path}")
    ctx.out.info(f"removed {section}.{option.key} from {path}")
    return 0


def _edit(ctx: Context) -> int:
    from installer import configedit

    editor = ctx.environ.get("VISUAL") or ctx.environ.get("EDITOR")
    if not editor:
        raise UsageError("no editor: set $VISUAL or $EDITOR")
    path, pyproject = target_file(ctx)
    original = config.read_text(path) if path.exists() else ""
    import shlex
    import subprocess
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix="inst-", suffix="-" + path.name)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(original)
    status = subprocess.call([*shlex.split(editor), tmp])
    if status != 0:
        raise InstError(f"the editor exited with status {status}; {path} was not changed",
                        hint=f"your edited copy is at {tmp}")
    with open(tmp, encoding="utf-8", newline="") as handle:
        edited = handle.read()
    if edited == original:
        os.unlink(tmp)
        ctx.out.info(f"no changes to {path}")
        return 0
    try:
        warnings = configedit.replace_text(path, edited, pyproject=pyproject,
                                           expected_old=original if path.exists() else None)
    except ConfigErrors as exc:
        exc.hint = f"{path} was not changed; your edited copy is at {tmp}"
        raise
    os.unlink(tmp)
    for warning in warnings:
        ctx.out.warn(warning)
    ctx.out.info(f"saved {path}")
    return 0


# --- validate ----------------------------------------------------------------------------------


def _files_to_validate(ctx: Context) -> list[tuple[Path, bool]]:
    if ctx.args.path:
        path = Path(config.normalize_path(ctx.args.path, ctx.cwd))
        if not path.is_file():
            raise ConfigErrors([ConfigError(f"config file not found: {path}")])
        return [(path, path.name == "pyproject.toml")]
    files = [(p, False) for p in reversed(config.site_config_files(ctx.environ))]
    files.append((config.user_config_file(ctx.environ), False))
    try:
        project = config.find_project_file(ctx.cwd)
    except ConfigErrors as exc:
        files += [(Path(e.path), True) for e in exc.errors if e.path]
        project = None
    if project:
        files.append((project.path, project.pyproject))
    extra = getattr(ctx.args, "config_file", None) or ctx.environ.get("INST_CONFIG_FILE")
    found = [(p, py) for p, py in files if p.is_file()]
    if extra:
        found.append((Path(config.normalize_path(extra, ctx.cwd)), False))
    return found


def _check_file(path: Path, pyproject: bool) -> tuple[list[ConfigError], list[str]]:
    if not path.is_file():
        return [ConfigError(f"config file not found: {path}")], []
    try:
        parsed = config.parse_config_text(config.read_text(path), str(path), pyproject=pyproject)
    except ConfigErrors as exc:
        return exc.errors, []
    return parsed.errors, parsed.warnings


def _validate(ctx: Context) -> int:
    errors: list[ConfigError] = []
    warnings: list[str] = []
    for path, pyproject in _files_to_validate(ctx):
        file_errors, file_warnings = _check_file(path, pyproject)
        errors += file_errors
        warnings += file_warnings
        if not file_errors and not file_warnings:
            ctx.out.result(f"ok: {path}")
    if not ctx.args.path:
        env_errors, env_warnings = _check_env(ctx)
        errors += env_errors
        warnings += env_warnings
    for warning in warnings:
        ctx.out.warn(warning)
    for error in errors:
        ctx.out.error(error.message)
    if errors:
        return 2
    return 1 if warnings else 0


def _check_env(ctx: Context) -> tuple[list[ConfigError], list[str]]:
    try:
        _, warnings = config.env_layer(ctx.environ, ctx.cwd)
    except ConfigErrors as exc:
        return exc.errors, []
    errors = []
    no_config = ctx.environ.get("INST_NO_CONFIG", "").strip()
    if no_config:
        try:
            config.parse_bool(no_config)
        except ValueError as exc:
            errors.append(ConfigError(f"environment variable INST_NO_CONFIG: {exc}, got "
                                      f"{format_value(no_config)}"))
    return errors, warnings
