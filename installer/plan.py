"""Plan the files a wheel installs: scheme paths, script shebangs, entry-point launchers and
the generated dist-info files (PEP 427/491, PEP 376/610).

Pure planning: nothing here touches the environment; :mod:`installer.txn` stages and commits
the :class:`NewFile` list it gets from :func:`plan_wheel` and :func:`generated`.
"""

from __future__ import annotations

import configparser
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from installer.errors import WheelError
from installer.models import Environment
from installer.wheel import GENERATED_FILES, WheelInfo, check_script_name, record_hash

_ENTRY_POINT_VALUE = re.compile(
    r"^(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+))?\s*(\[[^\]]*\])?$"
)


def state_root(env: Environment) -> Path:
    """The folder that holds the whole install scheme (a venv's prefix, a --target or --prefix
    DIR); the lock file and transaction folders live here."""
    keys = ("purelib", "platlib", "scripts", "data")
    return Path(os.path.commonpath([os.path.abspath(env.paths[k]) for k in keys]))


def within(path: str, root: str) -> bool:
    """True when *path* is *root* or lies under it; both absolute and normalized (normpath or
    realpath), so a string-prefix test is exact (and ~20x cheaper than commonpath)."""
    if path == root:
        return True
    return path.startswith(root if root.endswith(os.sep) else root + os.sep)


@dataclass(frozen=True)
class NewFile:
    """One file a transaction creates: linked/copied from *source* or written from *data*."""

    dest: str  # absolute, normalized
    source: str | None  # file in the unpacked tree to link/copy, or
    data: bytes | None  # generated content, written fresh
    mode: int
    record: str  # RECORD hash
    size: int


def _shebang(python: str) -> bytes:
    if len(python) < 127 and " " not in python and "\n" not in python:
        return f"#!{python}".encode()
    # Long or spaced interpreter paths: the /bin/sh trampoline pip and installer write.
    return f"#!/bin/sh\n'''exec' \"{python}\" \"$0\" \"$@\"\n' '''".encode()


def _launcher(python: str, module: str, attr: str) -> bytes:
    import_name = attr.split(".")[0]
    body = (
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n"
        f"from {module} import {import_name}\n"
        'if __name__ == "__main__":\n'
        '    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])\n'
        f"    sys.exit({attr}())\n"
    )
    return _shebang(python) + b"\n" + body.encode()


def _rewrite_script(python: str, data: bytes) -> bytes:
    first, nl, rest = data.partition(b"\n")
    m = re.fullmatch(rb"#!pythonw?(?P<args>[ \t][^\r]*)?(?P<cr>\r?)", first)
    if not m:
        return data
    return _shebang(python) + (m.group("args") or b"") + m.group("cr") + nl + rest


def _entry_points(info: WheelInfo, tree: Path) -> list[tuple[str, str, str]]:
    path = tree / info.dist_info / "entry_points.txt"
    if not path.is_file():
        return []
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    entry = f"{info.dist_info}/entry_points.txt"
    try:
        parser.read_string(path.read_text("utf-8"))
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise WheelError(info.filename, f"entry_points.txt is malformed ({exc})",
                         entry=entry) from exc
    out = []
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            check_script_name(info.filename, name, "entry point")
            m = _ENTRY_POINT_VALUE.match(value.strip())
            if not m or not m.group("attr"):
                raise WheelError(info.filename, f"entry point {name!r} has an invalid value "
                                 f"{value!r}", entry=entry)
            out.append((name, m.group("module"), m.group("attr")))
    return out


def install_scheme(env: Environment, info: WheelInfo) -> dict[str, str]:
    """The directory of each wheel scheme key (purelib, platlib, scripts, data, headers)."""
    paths = {k: os.path.normpath(v) for k, v in env.paths.items()}
    major_minor = ".".join(env.python_version.split(".")[:2])
    headers = paths.get("headers") or os.path.join(
        state_root(env), "include", "site", f"python{major_minor}", info.name)
    return {
        "purelib": paths["purelib"], "platlib": paths["platlib"], "scripts": paths["scripts"],
        "data": paths["data"], "headers": os.path.normpath(headers),
    }


def _dest(info: WheelInfo, root: str, rel: str, entry: str) -> str:
    dest = os.path.normpath(os.path.join(root, *rel.split("/")))
    if not within(dest, root) or dest == root:
        raise WheelError(info.filename, "file would be installed outside its target "
                         "directory", entry=entry)
    return dest


def plan_wheel(env: Environment, info: WheelInfo, tree: Path) -> list[NewFile]:
    """Every file the wheel installs (except the generated dist-info files)."""
    scheme = install_scheme(env, info)
    site = scheme["purelib" if info.root_is_purelib else "platlib"]
    python = str(env.python)
    files: dict[str, NewFile] = {}
    base = str(tree) + os.sep
    for rec in info.records:
        top, _, rest = rec.path.partition("/")
        if top == info.dist_info and rest in GENERATED_FILES:
            continue
        source = base + rec.path.replace("/", os.sep)
        if top == info.data_dir:
            key, _, rel = rest.partition("/")
            dest = _dest(info, scheme[key], rel, rec.path)
            if key == "scripts":
                data = _rewrite_script(python, Path(source).read_bytes())
                files[dest] = NewFile(dest, None, data, 0o755, record_hash(data), len(data))
                continue
        else:
            dest = _dest(info, site, rec.path, rec.path)
        # mode 0: linked or copied files keep the mode of their verified source in the tree.
        files[dest] = NewFile(dest, source, None, 0, rec.hash, rec.size or 0)
    for name, module, attr in _entry_points(info, tree):
        dest = _dest(info, scheme["scripts"], name, name)
        data = _launcher(python, module, attr)
        files[dest] = NewFile(dest, None, data, 0o755, record_hash(data), len(data))
    return list(files.values())


def generated(info: WheelInfo, site: str, requested: bool,
              direct_url: Mapping[str, object] | None) -> list[NewFile]:
    """The dist-info files inst writes itself: INSTALLER, REQUESTED, direct_url.json."""
    base = os.path.join(site, info.dist_info)
    items: list[tuple[str, bytes]] = [("INSTALLER", b"inst\n")]
    if requested:
        items.append(("REQUESTED", b""))
    if direct_url is not None:
        items.append(("direct_url.json", json.dumps(dict(direct_url), sort_keys=True).encode()))
    return [NewFile(os.path.join(base, n), None, d, 0o644, record_hash(d), len(d))
            for n, d in items]

