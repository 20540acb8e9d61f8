"""The command line: parse argv, load settings, run one command, turn errors into exit codes.

This is the only module (with the ``cmd_*`` handlers it dispatches to, through ``Output``) that
prints and exits. The option-table flags are generated from :mod:`installer.options`; each
command module adds only its own positional arguments. Only the invoked command's module is
imported, so ``inst --version`` and ``inst config get`` stay fast.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from pathlib import Path

from installer import __version__
from installer.errors import EXIT_USAGE, ConfigErrors, InstError, UsageError
from installer.options import COMMANDS, Option, options_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn

SUMMARIES: dict[str, str] = {
    "install": "Install packages into the target environment.",
    "download": "Resolve and download wheels into a folder, hash-checked.",
    "uninstall": "Remove installed distributions.",
    "list": "List installed distributions.",
    "freeze": "Print installed distributions as requirements.",
    "show": "Show details of installed distributions.",
    "venv": "Create a virtual environment (without pip).",
    "cache": "Inspect or clean the cache.",
    "config": "Read and edit configuration: list, get, set, unset, edit, validate, debug.",
    "debug": "Diagnose problems: `inst debug tls URL` explains the TLS trust in effect.",
}

MODULES = {name: f"installer.cmd_{name}" for name in COMMANDS}


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized without importing :mod:`shutil` (~2 ms of every run:
    argparse makes a formatter for each ``add_argument`` call)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


@functools.cache
def _columns() -> int:
    """The terminal width as ``shutil.get_terminal_size`` finds it (COLUMNS, then the tty);
    looked up once per run, not once per argument."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage raises UsageError instead of exiting from deep inside."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", hint=f"see `{self.prog} --help`")


def _dest(option: Option) -> str:
    return "opt_" + option.key.replace("-", "_")


def add_option_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Add the flags of every option-table entry that applies to *command*."""
    group = parser.add_argument_group("settings (also in config files and INST_* variables)")
    for option in options_for(command):
        flag = option.flag_name
        if flag is None:
            continue
        names = [flag] + ([option.short] if option.short else [])
        dest = _dest(option)
        help_ = option.help + (f" [env: {option.env_var}]" if option.env_var else "")
        if option.type == "bool":
            group.add_argument(*names, dest=dest, action="store_const", const="true",
                               default=argparse.SUPPRESS, help=help_)
            if not option.key.startswith("no-"):
                group.add_argument(f"--no-{option.key}", dest=dest, action="store_const",
                                   const="false", default=argparse.SUPPRESS,
                                   help=argparse.SUPPRESS)
        elif option.key in ("quiet", "verbose"):
            group.add_argument(*names, dest=dest, action="count", default=argparse.SUPPRESS,
                               help=help_)
        elif option.is_list:
            group.add_argument(*names, dest=dest, action="append", default=argparse.SUPPRESS,
                               metavar=option.key.upper().replace("-", "_"), help=help_)
        else:
            group.add_argument(*names, dest=dest, default=argparse.SUPPRESS,
                               choices=option.choices or None,
                               metavar=None if option.choices else option.type.upper(),
                               help=help_)


def add_meta_flags(parser: argparse.ArgumentParser) -> None:
    """Flags every command takes: which config files to read, and --show-settings."""
    group = parser.add_argument_group("configuration")
    group.add_argument("--config-file", metavar="PATH", default=argparse.SUPPRESS,
                       help="Read one more config file, above the project file "
                            "[env: INST_CONFIG_FILE].")
    group.add_argument("--no-config", action="store_true", default=argparse.SUPPRESS,
                       help="Skip the site, user and project files [env: INST_NO_CONFIG].")
    group.add_argument("--show-settings", action="store_true", default=argparse.SUPPRESS,
                       help="Print the settings this command would use, with their origin, "
                            "and exit.")


def build_parser(command: str | None, argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for ``inst``; only *command*'s subparser is fully built (start-up speed),
    and of its own subcommands only the one named in *argv* gets the settings flags."""
    parser = _Parser(prog="inst", description="A Python package installer driven by "
                     "configuration files.", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"inst {__version__}")
    add_meta_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # Running a known command needs no sibling parsers (~0.5 ms each); help and usage errors,
    # which list the commands, get them all.
    names: tuple[str, ...] = (*COMMANDS, "help")
    if command in COMMANDS and "-h" not in argv and "--help" not in argv:
        names = (command,)
    for name in names:
        summary = SUMMARIES.get(name, "Show help for a command.")
        p = sub.add_parser(name, help=summary, description=summary, allow_abbrev=False)
        if name == "help":
            p.add_argument("topic", nargs="?", metavar="COMMAND")
        elif name == command:
            importlib.import_module(MODULES[name]).add_arguments(p)
            for target in (p, *_nested_parsers(p, argv)):
                add_option_flags(target, name)
                add_meta_flags(target)
    return parser


def _nested_parsers(parser: argparse.ArgumentParser,
                    argv: Sequence[str]) -> list[argparse.ArgumentParser]:
    """The sub-subcommand parser named in *argv* (``config set``, ``debug tls``): it takes the
    flags too, so ``inst debug tls URL --cert X`` works as well as ``inst debug --cert X tls
    URL``. Only that one: building ~35 flags into every sibling cost ~10 ms per run."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.extend(sub for name, sub in action.choices.items() if name in argv)
    return found


def _find_command(argv: Sequence[str]) -> str | None:
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--config-file":
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def collect_flags(args: argparse.Namespace, command: str) -> dict[str, tuple[object, str]]:
    """Option values given on the command line, typed: key -> (value, flag spelling)."""
    from installer.config import coerce_text

    flags: dict[str, tuple[object, str]] = {}
    for option in options_for(command):
        raw = getattr(args, _dest(option), None)
        if raw is None:
            continue
        spelling = option.flag_name or f"--{option.key}"
        flags[option.key] = (_coerce_flag(option, raw, spelling, coerce_text), spelling)
    return flags


def _coerce_flag(option: Option, raw: Any, spelling: str, coerce: Any) -> object:
    from installer.config import coerce_list

    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw  # counted flags (-q, -v)
    try:
        if isinstance(raw, list):
            return coerce_list(option, raw) if option.is_list else raw
        return coerce(option, raw)
    except ValueError as exc:
        raise UsageError(f"{spelling}: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``inst`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:
        print(f"inst {__version__}")
        return 0
    from installer.output import Output

    out = Output()
    try:
        return _run(argv, out)
    except ConfigErrors as exc:
        for err in exc.errors:
            out.error(err.message, err.hint)
        return exc.exit_code
    except InstError as exc:
        out.error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        out.error("interrupted")
        return 130


def _run(argv: list[str], out: Any) -> int:
    command = _find_command(argv)
    parser = build_parser(command, argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "help":
        return _help(args.topic)
    return _dispatch(args, out)


def _help(topic: str | None) -> int:
    if topic is None:
        build_parser(None).print_help()
        return 0
    if topic not in COMMANDS:
        raise UsageError(f"unknown command {topic!r}", hint="see `inst --help`")
    parser = build_parser(topic, [topic])
    parser.parse_args([topic, "--help"])  # argparse prints and exits 0
    return 0


def _dispatch(args: argparse.Namespace, out: Any) -> int:
    from installer.config import describe_settings, load_settings
    from installer.context import Context

    command: str = args.command
    flags = collect_flags(args, command)
    try:
        result = load_settings(
            command, cwd=Path.cwd(), environ=os.environ, flags=flags,
            config_file=getattr(args, "config_file", None),
            no_config=bool(getattr(args, "no_config", False)),
        )
    except ConfigErrors:
        # A broken file must not stop the commands that repair or report on it.
        if command != "config" or getattr(args, "config_command", None) not in (
                "set", "unset", "edit", "validate"):
            raise
        from installer.config import LoadResult, merge

        result = LoadResult(merge([], command), [], [])
    settings = result.settings
    out.quiet, out.verbose = int(settings["quiet"]), int(settings["verbose"])
    out.color, out.progress = str(settings["color"]), bool(settings["progress"])
    for warning in result.warnings:
        out.warn(warning)
    if getattr(args, "show_settings", False):
        for line in describe_settings(settings, command):
            out.result(line)
        return 0
    ctx = Context(command=command, args=args, settings=settings, layers=result.layers,
                  environ=os.environ, cwd=Path.cwd(), out=out)
    code: int = importlib.import_module(MODULES[command]).run(ctx)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
