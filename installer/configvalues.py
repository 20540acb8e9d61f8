"""Config values: check a raw TOML, env var or flag value against its option's type.

Part of the configuration package (see :mod:`installer.config`); pure, no I/O.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from installer.errors import redact_text
from installer.options import Option

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_INDEX_FIELDS = {"name": "str", "url": "url", "cert": "path", "client-cert": "path"}


class BadValue(Exception):
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
        raise BadValue("an http, https or file URL")
    return text


_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?")


def _check_host(text: str) -> None:
    """trusted-host turns verification off, so only exact names are accepted: ``*``, other
    wildcards, URLs and paths are refused rather than silently never (or always) matching."""
    if not _HOST.fullmatch(text.strip()):
        raise BadValue("an exact host or host:port (no wildcards, no scheme)")


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
                raise BadValue("a non-empty path")
            return normalize_path(raw, base)
        if kind == "url":
            return _check_url(raw)
        if kind == "enum" and raw not in option.choices:
            raise BadValue(expected_text(option))
        return raw
    raise BadValue(expected_text(option))


def _index_entry(raw: object, base: Path | None, i: int) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise BadValue("an [[index]] table with name and url", (i,), raw)
    entry: dict[str, str] = {}
    for name, value in raw.items():
        kind = _INDEX_FIELDS.get(name)
        if kind is None:
            raise BadValue("only name, url, cert and client-cert", (i, name), name)
        if not isinstance(value, str):
            raise BadValue("a string", (i, name), value)
        try:
            entry[name] = normalize_path(value, base) if kind == "path" else (
                _check_url(value) if kind == "url" else value)
        except BadValue as exc:
            raise BadValue(exc.expected, (i, name), value) from None
    missing = [k for k in ("name", "url") if k not in entry]
    if missing:
        raise BadValue(f"an [[index]] table with name and url (missing {missing[0]})", (i,), raw)
    return entry


def convert(option: Option, raw: object, base: Path | None) -> object:
    """Check a TOML value against *option*'s type and return it typed (raises on mismatch)."""
    if option.type == "indexes":
        if not isinstance(raw, list):
            raise BadValue(expected_text(option))
        return [_index_entry(item, base, i) for i, item in enumerate(raw)]
    if option.is_list:
        if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
            raise BadValue(expected_text(option))
        kind, items = option.type[5:-1], []
        for i, item in enumerate(raw):
            try:
                items.append(_scalar(kind, item, base, option))
                if option.key == "trusted-host":
                    _check_host(item)
            except BadValue as exc:
                raise BadValue(exc.expected, (i,), item) from None
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
            raise BadValue(expected_text(option))
        if option.is_list:
            return coerce_list(option, text.split(), base=base)
        return convert(option, text, base)
    except BadValue as exc:
        raise ValueError(f"expected {exc.expected}") from None
    except ValueError as exc:
        if str(exc).startswith("expected"):
            raise
        raise ValueError(f"expected {expected_text(option)}") from None


def coerce_list(option: Option, items: Sequence[str], *, base: Path | None = None) -> object:
    """Strings (command-line VALUEs, split env text) -> a list option's value; ValueError."""
    try:
        return convert(option, list(items), base)
    except BadValue as exc:
        got = f", got {toml_string(exc.got)}" if isinstance(exc.got, str) else ""
        raise ValueError(f"expected {exc.expected}{got}") from None


def toml_string(text: str) -> str:
    """*text* as a TOML basic string literal."""
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
        return toml_string(redact_text(value))
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k} = {format_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return toml_string(redact_text(str(value)))
