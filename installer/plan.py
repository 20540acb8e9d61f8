"""Plan the files a wheel installs: scheme paths, script shebangs, entry-point launchers and
the generated dist-info files (PEP 427/491, PEP 376/610).

Pure planning: nothing here touches the environment; :mod:`installer.txn` stages and commits
the :class:`NewFile` list it gets from :func:`plan_wheel` and :func:`generated`.
"""

from __future__ import annotations

import configparser
import csv
import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from installer.errors import WheelError
from installer.models import Environment, state_root
from installer.wheel import GENERATED_FILES, WheelInfo, check_script_name, record_hash

_ENTRY_POINT_VALUE = re.compile(
    r"^(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+))?\s*(\[[^\]]*\])?$"
)
_POSIX = os.sep == "/"


def within(path: str, root: str) -> bool:
    """True when *path* is *root* or lies under it; both absolute and normalized (normpath or
    realpath), so a string-prefix test is exact (and ~20x cheaper than commonpath)."""
    if path == root:
        return True
    return path.startswith(root if root.endswith(os.sep) else root + os.sep)


class NewFile(NamedTuple):
    """One file a transaction creates: linked/copied from *source* or written from *data*.

    A NamedTuple, not a frozen dataclass: one is made per installed file, and a frozen
    dataclass's ``__init__`` (``object.__setattr__`` per field) costs ~5x as much.
    """

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


def _plain(rel: str) -> bool:
    """True when the "/"-separated relative path *rel* has no empty, "." or ".." component
    (conservatively: no component starts with "." and it does not end with "."), so that
    appending it to a normalized root gives a normalized path. A few C string searches: a
    regex (or normpath) per file cost several times more."""
    return bool(rel) and "/." not in rel and "//" not in rel and rel[0] not in "./" and \
        rel[-1] not in "./"


def _dest(info: WheelInfo, root: str, rel: str, entry: str) -> str:
    if _POSIX and root.startswith("/") and _plain(rel):
        return (root if root.endswith("/") else root + "/") + rel
    dest = os.path.normpath(os.path.join(root, *rel.split("/")))
    if not within(dest, root) or dest == root:
        raise WheelError(info.filename, "file would be installed outside its target "
                         "directory", entry=entry)
    return dest


def plan_wheel(env: Environment, info: WheelInfo, tree: Path,
               scheme: Mapping[str, str] | None = None) -> list[NewFile]:
    """Every file the wheel installs (except the generated dist-info files); *scheme* is
    :func:`install_scheme` (computed when not given)."""
    scheme = scheme or install_scheme(env, info)
    site = scheme["purelib" if info.root_is_purelib else "platlib"]
    site_prefix = site if site.endswith(os.sep) else site + os.sep
    fast = _POSIX and site.startswith("/")
    python = str(env.python)
    files: dict[str, NewFile] = {}
    base = str(tree) + os.sep
    generated_prefix, data_prefix = info.dist_info + "/", info.data_dir + "/"
    special = (generated_prefix, data_prefix)
    new = tuple.__new__
    for rec in info.records:
        path = rec.path
        if path.startswith(special):
            if path.startswith(generated_prefix) and \
                    path[len(generated_prefix):] in GENERATED_FILES:
                continue
            if path.startswith(data_prefix):
                key, _, rel = path[len(data_prefix):].partition("/")
                dest = _dest(info, scheme[key], rel, path)
                source = base + path.replace("/", os.sep)
                if key == "scripts":
                    data = _rewrite_script(python, Path(source).read_bytes())
                    files[dest] = NewFile(dest, None, data, 0o755, record_hash(data), len(data))
                    continue
                files[dest] = NewFile(dest, source, None, 0, rec.hash, rec.size or 0)
                continue
        # _plain(path), inlined: this loop runs once per file of every wheel
        if fast and path and "/." not in path and "//" not in path and \
                path[0] not in "./" and path[-1] not in "./":
            dest, source = site_prefix + path, base + path
        else:
            dest = _dest(info, site, path, path)
            source = base + path.replace("/", os.sep)
        # mode 0: linked or copied files keep the mode of their verified source in the tree.
        # tuple.__new__: NewFile() without its Python-level __new__ (once per file)
        files[dest] = new(NewFile, (dest, source, None, 0, rec.hash, rec.size or 0))
    for name, module, attr in _entry_points(info, tree):
        dest = _dest(info, scheme["scripts"], name, name)
        data = _launcher(python, module, attr)
        files[dest] = NewFile(dest, None, data, 0o755, record_hash(data), len(data))
    return list(files.values())


def record_text(files: list[NewFile], site: str, record: str) -> str:
    """RECORD's text, as csv.writer writes it: a row per file (path relative to *site*),
    then the row of *record* itself.

    Joined f-strings are ~6x faster than csv.writer; they give the same text unless a field
    needs quoting (a comma, quote, CR or LF in it), which the counts below detect.
    """
    prefix = site + os.sep
    cut = len(prefix)

    def rel(dest: str) -> str:
        # normalized paths: a prefix cut is relpath
        path = dest[cut:] if dest.startswith(prefix) else os.path.relpath(dest, site)
        return path if _POSIX else path.replace(os.sep, "/")

    if _POSIX:  # rel(), inlined for the files under site
        text = "".join([f"{d[cut:] if (d := nf.dest).startswith(prefix) else rel(d)},"
                        f"{nf.record},{nf.size}\n" for nf in files])
    else:
        text = "".join([f"{rel(nf.dest)},{nf.record},{nf.size}\n" for nf in files])
    text += f"{record},,\n"
    lines = len(files) + 1
    if text.count(",") == 2 * lines and text.count("\n") == lines and '"' not in text and \
            "\r" not in text:
        return text
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([(rel(nf.dest), nf.record, nf.size) for nf in files])
    writer.writerow([record, "", ""])
    return out.getvalue()


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

