"""The target environment: which interpreter, its tags, markers, install scheme and dists.

The target interpreter is run once (a small stdlib-only script, so the target needs nothing
installed); the answer is cached as JSON keyed by the interpreter's path, mtime and size. Tags
are computed here, with ``packaging.tags``, from the facts the target reported. Installed
distributions are scanned on every call (reading a few headers is cheap and must be current).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from installer._record import field, record, replace
from installer._types import NormalizedName
from installer.errors import EnvironmentError_
from installer.models import Environment, InstalledDist, canonical, metadata_headers

CACHE_FORMAT = 2
_PREFIX_TOKEN = "/__inst_prefix__"
_SCHEME_KEYS = ("purelib", "platlib", "scripts", "data", "include")

# Runs inside the target with -I; stdlib only, works on Python 3.8+.
_PROBE = r"""
import json, os, platform, sys, sysconfig
impl = sys.implementation
iv = impl.version
impl_version = "%d.%d.%d" % (iv.major, iv.minor, iv.micro)
if iv.releaselevel != "final":
    impl_version += iv.releaselevel[0] + str(iv.serial)
markers = {
    "implementation_name": impl.name,
    "implementation_version": impl_version,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
try:
    glibc = os.confstr("CS_GNU_LIBC_VERSION")
except (AttributeError, OSError, ValueError):
    glibc = None
token = sys.argv[1]
pvars = {"base": token, "platbase": token, "installed_base": token,
         "installed_platbase": token}
prefix_scheme = sysconfig.get_paths("nt" if os.name == "nt" else "posix_prefix", vars=pvars)
cv = sysconfig.get_config_var
print(json.dumps({
    "executable": sys.executable,
    "prefix": sys.prefix,
    "is_venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
    "version": list(sys.version_info[:2]),
    "full_version": platform.python_version(),
    "implementation": impl.name,
    "markers": markers,
    "paths": sysconfig.get_paths(),
    "prefix_scheme": prefix_scheme,
    "platform": sysconfig.get_platform(),
    "system": platform.system(),
    "mac_version": platform.mac_ver()[0],
    "machine": platform.machine(),
    "is_32bit": sys.maxsize <= 2 ** 32,
    "glibc": glibc,
    "py_debug": cv("Py_DEBUG"),
    "gil_disabled": cv("Py_GIL_DISABLED"),
    "has_refcount": hasattr(sys, "gettotalrefcount"),
    "ext_suffix": cv("EXT_SUFFIX"),
    "nodot": cv("py_version_nodot"),
}))
"""


@record(frozen=True)
class TargetEnvironment(Environment):
    """An :class:`Environment` that also knows its ``--prefix`` scheme template.

    ``prefix_scheme`` maps scheme keys to paths with :data:`_PREFIX_TOKEN` where the prefix
    goes; :func:`scheme_for_target` fills it in.
    """

    prefix_scheme: Mapping[str, str] = field(default_factory=dict)


# --- finding the interpreter ------------------------------------------------------------------


def _venv_python(folder: Path) -> Path | None:
    for candidate in (folder / "bin" / "python", folder / "Scripts" / "python.exe",
                      folder / "bin" / "python3"):
        if candidate.exists():
            return candidate
    return None


def _from_python_option(python: str, cwd: Path) -> Path:
    path = Path(python).expanduser()
    if not path.is_absolute():
        if os.sep not in python and "/" not in python and not (cwd / path).exists():
            import shutil

            found = shutil.which(python)
            if found:
                return Path(found)
        path = cwd / path
    if path.is_dir():
        interp = _venv_python(path)
        if interp is None:
            raise EnvironmentError_(
                f"{path} is not a virtual environment (no bin/python in it)",
                hint="pass the interpreter itself with --python, or create the "
                     "environment with `inst venv`")
        return interp
    if not path.exists():
        raise EnvironmentError_(f"no Python interpreter at {path} (from --python)")
    return path


def find_interpreter(python: str | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """The target interpreter: ``--python``, else ``$VIRTUAL_ENV``, else the nearest ``.venv``.

    ``python`` may name an interpreter, a venv folder or (bare name) a command on PATH. The
    returned path is absolute but symlinks are kept (a venv's ``bin/python`` is a symlink).
    """
    if python:
        return Path(os.path.abspath(_from_python_option(python, cwd)))
    venv = environ.get("VIRTUAL_ENV")
    if venv:
        interp = _venv_python(Path(venv))
        if interp is None:
            raise EnvironmentError_(
                f"VIRTUAL_ENV points to {venv}, which has no Python interpreter",
                hint="deactivate it, or pass --python PATH")
        return Path(os.path.abspath(interp))
    for folder in (cwd, *cwd.parents):
        candidate = folder / ".venv"
        if candidate.is_dir():
            interp = _venv_python(candidate)
            if interp is not None:
                return Path(os.path.abspath(interp))
    raise EnvironmentError_(
        f"no Python environment found: no --python, no VIRTUAL_ENV, and no .venv in {cwd} "
        "or its parents",
        hint="create one with `inst venv`, or name an interpreter with --python PATH")


# --- querying it ------------------------------------------------------------------------------


def _cache_key(interpreter: Path) -> dict[str, object]:
    # Content, not mtimes, for the venv's own parts: a venv deleted and created again at the
    # same path (every CI run, every benchmark run) links to the same base interpreter with
    # the same pyvenv.cfg, so it answers the same; the base interpreter's own file is keyed
    # by mtime and size, so an upgraded Python is probed again.
    st = interpreter.stat()
    link = os.readlink(interpreter) if interpreter.is_symlink() else None
    cfg = interpreter.parent.parent / "pyvenv.cfg"
    try:
        cfg_text: str | None = cfg.read_text(encoding="utf-8", errors="replace")
    except OSError:
        cfg_text = None
    return {"format": CACHE_FORMAT, "path": str(interpreter), "mtime": st.st_mtime_ns,
            "size": st.st_size, "ino": st.st_ino, "link": link, "cfg": cfg_text}


def cache_file(cache_dir: Path, interpreter: Path) -> Path:
    """Where the cached answer for *interpreter* lives under *cache_dir*."""
    # Two 32-bit checksums rather than hashlib, whose OpenSSL load is ~3 ms of every start-up:
    # a collision only costs a probe (the entry's key holds the full path).
    import zlib

    raw = str(interpreter).encode("utf-8", "surrogateescape")
    digest = f"{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}"
    return cache_dir / "interpreters-v2" / f"{digest}.json"


def _load_cached(path: Path, key: dict[str, object]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    static = data.get("static")
    return static if isinstance(static, dict) else None


def _store_cached(path: Path, key: dict[str, object], static: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "static": static}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs a subprocess next time


def _probe(interpreter: Path) -> dict[str, Any]:
    import subprocess

    try:
        proc = subprocess.run(
            [str(interpreter), "-I", "-c", _PROBE, _PREFIX_TOKEN],
            capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentError_(f"cannot run {interpreter}: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentError_(f"querying {interpreter} failed: {detail}")
    try:
        facts = json.loads(proc.stdout)
    except ValueError as exc:
        raise EnvironmentError_(f"querying {interpreter} failed: unexpected output") from exc
    if not isinstance(facts, dict):
        raise EnvironmentError_(f"querying {interpreter} failed: unexpected output")
    return facts


def _static_from_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    paths = {k: v for k, v in facts["paths"].items() if k in _SCHEME_KEYS}
    scheme = {k: v for k, v in facts["prefix_scheme"].items() if k in _SCHEME_KEYS}
    return {
        "prefix": facts["prefix"], "python_version": facts["full_version"],
        "implementation": facts["implementation"], "tags": compute_tags(facts),
        "markers": facts["markers"], "paths": paths, "prefix_scheme": scheme,
        "is_venv": bool(facts["is_venv"]),
    }


def query_environment(interpreter: Path, cache_dir: Path | None) -> TargetEnvironment:
    """Ask *interpreter* for its version, tags, markers and scheme (once; cached) and scan dists.

    With *cache_dir* the static answer is stored as JSON keyed by the interpreter's path, mtime
    and size (and its venv's ``pyvenv.cfg``), so later runs start no subprocess.
    """
    try:
        key = _cache_key(interpreter)
    except OSError as exc:
        raise EnvironmentError_(f"no Python interpreter at {interpreter}") from exc
    path = cache_file(cache_dir, interpreter) if cache_dir is not None else None
    static = _load_cached(path, key) if path is not None else None
    if static is None:
        static = _static_from_facts(_probe(interpreter))
        if path is not None:
            _store_cached(path, key, static)
    env = TargetEnvironment(
        python=interpreter, prefix=Path(static["prefix"]),
        python_version=static["python_version"], implementation=static["implementation"],
        tags=tuple(static["tags"]), markers=dict(static["markers"]),
        paths=dict(static["paths"]), is_venv=static["is_venv"],
        prefix_scheme=dict(static["prefix_scheme"]))
    return replace(env, installed=scan_installed(env.paths))


def scheme_for_target(env: Environment, target: Path | None = None,
                      prefix: Path | None = None) -> Environment:
    """*env* with its install scheme moved to ``--target DIR`` or ``--prefix DIR``.

    ``--target``: purelib = platlib = DIR, scripts DIR/bin, data DIR, include DIR/include.
    ``--prefix``: the interpreter's own prefix scheme rooted at DIR. Installed distributions
    are rescanned in the new location.
    """
    if target is not None:
        root = Path(os.path.abspath(target))
        paths = {"purelib": str(root), "platlib": str(root), "scripts": str(root / "bin"),
                 "data": str(root), "include": str(root / "include")}
    elif prefix is not None:
        root = Path(os.path.abspath(prefix))
        paths = {k: _reroot(v, root) for k, v in _prefix_template(env).items()}
    else:
        return env
    return replace(env, paths=paths, installed=scan_installed(paths))


def _prefix_template(env: Environment) -> Mapping[str, str]:
    if isinstance(env, TargetEnvironment) and env.prefix_scheme:
        return env.prefix_scheme
    # An Environment built elsewhere: re-root its own paths from its prefix.
    own = str(env.prefix)
    return {k: _PREFIX_TOKEN + v[len(own):] if v.startswith(own) else v
            for k, v in env.paths.items()}


def _reroot(template: str, root: Path) -> str:
    if not template.startswith(_PREFIX_TOKEN):
        return template
    rest = template[len(_PREFIX_TOKEN):].lstrip("/\\")
    return str(root / rest) if rest else str(root)


# --- tags -------------------------------------------------------------------------------------


def compute_tags(facts: Mapping[str, Any]) -> list[str]:
    """Wheel tags for a target described by *facts* (the probe's answer), best first."""
    from packaging import tags as ptags

    version = (int(facts["version"][0]), int(facts["version"][1]))
    short = ptags.INTERPRETER_SHORT_NAMES.get(facts["implementation"], facts["implementation"])
    nodot = str(facts.get("nodot") or f"{version[0]}{version[1]}")
    platforms = list(_platforms(facts))
    if short == "cp":
        found = ptags.cpython_tags(version, _cpython_abis(facts, version), platforms)
        interp: str | None = f"cp{nodot}"
    else:
        found = ptags.generic_tags(f"{short}{nodot}", _generic_abis(facts), platforms)
        interp = "pp3" if short == "pp" else None
    result = [str(t) for t in found]
    result += [str(t) for t in ptags.compatible_tags(version, interp, platforms)]
    return list(dict.fromkeys(result))


def _cpython_abis(facts: Mapping[str, Any], version: tuple[int, int]) -> list[str]:
    nodot = f"{version[0]}{version[1]}"
    debug = "d" if facts.get("py_debug") or (
        facts.get("py_debug") is None and facts.get("has_refcount")) else ""
    threading = "t" if version >= (3, 13) and facts.get("gil_disabled") else ""
    abis = [f"cp{nodot}{threading}{debug}"]
    if debug:
        abis.append(f"cp{nodot}{threading}")
    return abis


def _generic_abis(facts: Mapping[str, Any]) -> list[str]:
    suffix = facts.get("ext_suffix")
    if not isinstance(suffix, str):
        return []
    parts = suffix.split(".")
    if len(parts) < 3:
        return []
    soabi = parts[1]
    if soabi.startswith("pypy"):
        abi = "-".join(soabi.split("-")[:2])
    elif soabi.startswith("graalpy"):
        abi = "-".join(soabi.split("-")[:3])
    else:
        abi = soabi
    return [_normalize(abi)] if abi else []


def _normalize(text: str) -> str:
    return text.replace(".", "_").replace("-", "_").replace(" ", "_")


def _platforms(facts: Mapping[str, Any]) -> Iterator[str]:
    from packaging import tags as ptags

    system = facts.get("system")
    plat = _normalize(str(facts["platform"]))
    if system == "Darwin" and facts.get("mac_version"):
        major, minor = (int(x) for x in [*str(facts["mac_version"]).split("."), "0"][:2])
        arch = str(facts.get("machine") or "x86_64")
        yield from ptags.mac_platforms((major, minor), arch)
    elif system == "Linux" and plat.startswith("linux_"):
        yield from _linux_platforms(plat, facts)
    else:
        yield plat


_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def _linux_platforms(plat: str, facts: Mapping[str, Any]) -> Iterator[str]:
    if facts.get("is_32bit"):
        plat = {"linux_x86_64": "linux_i686", "linux_aarch64": "linux_armv8l"}.get(plat, plat)
    arch = plat.split("_", 1)[1]
    archs = {"armv8l": ["armv8l", "armv7l"]}.get(arch, [arch])
    for a in archs:
        yield f"linux_{a}"
    glibc = _glibc_version(facts.get("glibc"))
    if glibc is not None:
        yield from _manylinux_tags(archs, glibc)
    else:
        yield from _musllinux_tags(archs, str(facts.get("executable") or ""))


def _glibc_version(text: object) -> tuple[int, int] | None:
    if not isinstance(text, str):
        return None
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _manylinux_tags(archs: list[str], glibc: tuple[int, int]) -> Iterator[str]:
    # Same walk as packaging._manylinux.platform_tags, but for the target's glibc.
    too_old = (2, 4) if set(archs) & {"x86_64", "i686"} else (2, 16)
    maxima = [glibc] + [(major, 50) for major in range(glibc[0] - 1, 1, -1)]
    for arch in archs:
        for major, top in maxima:
            floor = too_old[1] if major == too_old[0] else -1
            for minor in range(top, floor, -1):
                yield f"manylinux_{major}_{minor}_{arch}"
                legacy = _LEGACY_MANYLINUX.get((major, minor))
                if legacy:
                    yield f"{legacy}_{arch}"


def _musllinux_tags(archs: list[str], executable: str) -> Iterator[str]:
    try:
        from packaging._musllinux import _get_musl_version
        musl = _get_musl_version(executable) if executable else None
    except (ImportError, OSError):
        return
    if musl is None:
        return
    for arch in archs:
        for minor in range(musl.minor, -1, -1):
            yield f"musllinux_{musl.major}_{minor}_{arch}"


# --- installed distributions ------------------------------------------------------------------


def scan_installed(paths: Mapping[str, str]) -> dict[NormalizedName, InstalledDist]:
    """Distributions installed under the scheme's purelib and platlib (``*.dist-info``)."""
    found: dict[NormalizedName, InstalledDist] = {}
    seen: set[str] = set()
    for key in ("purelib", "platlib"):
        folder = paths.get(key)
        if not folder or folder in seen:
            continue
        seen.add(folder)
        for dist in _scan_folder(Path(folder)):
            found.setdefault(dist.name, dist)
    return found


def _scan_folder(folder: Path) -> Iterator[InstalledDist]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.endswith(".dist-info") and entry.is_dir():
            dist = read_dist_info(Path(entry.path))
            if dist is not None:
                yield dist


def read_dist_info(dist_info: Path) -> InstalledDist | None:
    """Name, version, INSTALLER and REQUESTED of one ``.dist-info`` folder; None when its
    METADATA gives no name and version."""
    name, version = _name_and_version(dist_info)
    return _installed(dist_info, name, version) if name and version else None


def read_any_dist_info(dist_info: Path) -> InstalledDist:
    """:func:`read_dist_info`, but the folder name ``name-version.dist-info`` stands in for a
    METADATA without a name (so that such a broken distribution can still be uninstalled)."""
    name, version = _name_and_version(dist_info)
    if not name:
        name, _, version = dist_info.name[: -len(".dist-info")].partition("-")
    return _installed(dist_info, name, version)


def _name_and_version(dist_info: Path) -> tuple[str, str]:
    try:
        headers = metadata_headers((dist_info / "METADATA").read_bytes())
    except OSError:
        return "", ""
    return (headers.get("name") or [""])[0].strip(), (headers.get("version") or [""])[0].strip()


def _installed(dist_info: Path, name: str, version: str) -> InstalledDist:
    try:
        installer: str | None = (dist_info / "INSTALLER").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        installer = None
    return InstalledDist(name=canonical(name), display_name=name, version=version,
                         dist_info=dist_info, installer=installer or None,
                         requested=(dist_info / "REQUESTED").exists())


def probe_python(interpreter: str = sys.executable) -> dict[str, Any]:
    """The raw facts the probe script reports for *interpreter* (for diagnostics and tests)."""
    return _probe(Path(interpreter))
