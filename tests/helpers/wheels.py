"""Build real wheel files in tests, including malformed and malicious ones.

``make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "X = 1"}, requires=["dep>=1"])``
returns the path of a valid ``demo-1.0-py3-none-any.whl``. Keyword arguments bend the rules for
hostile-input tests (see :func:`make_wheel`).
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def metadata_text(name: str, version: str, requires: Iterable[str] = (),
                  requires_python: str | None = None,
                  extras: Mapping[str, Iterable[str]] | None = None) -> str:
    """Core metadata 2.1 text for a distribution."""
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    for extra, reqs in (extras or {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for r in reqs:
            req, _, marker = r.partition(";")
            cond = f"({marker.strip()}) and extra == '{extra}'" if marker else f"extra == '{extra}'"
            lines.append(f"Requires-Dist: {req.strip()}; {cond}")
    return "\n".join(lines) + "\n\n"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    files: Mapping[str, str | bytes] | None = None,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    extras: Mapping[str, Iterable[str]] | None = None,
    tag: str = "py3-none-any",
    entry_points: str | None = None,
    root_is_purelib: bool = True,
    wheel_version: str = "1.0",
    record: bool = True,
    record_overrides: Mapping[str, str] | None = None,
    extra_record_lines: Iterable[str] = (),
    omit_from_record: Iterable[str] = (),
    raw_entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]] = (),
    dist_info_name: str | None = None,
    metadata: str | None = None,
) -> Path:
    """Write a wheel to *directory* and return its path.

    ``files`` maps archive paths to contents (``name-version.data/scripts/x`` works too).
    ``raw_entries`` are written as-is after everything else and not listed in RECORD (for
    ``../`` paths, symlinks via ZipInfo.external_attr, duplicates). ``record_overrides`` replaces
    a RECORD line's hash field for a path; ``omit_from_record`` leaves paths out of RECORD.
    """
    files = dict(files or {})
    dist = dist_info_name or f"{name.replace('-', '_')}-{version}"
    di = f"{dist}.dist-info"
    files.setdefault(f"{di}/METADATA", metadata or metadata_text(
        name, version, requires, requires_python, extras))
    files.setdefault(f"{di}/WHEEL", (
        f"Wheel-Version: {wheel_version}\nGenerator: inst-tests\n"
        f"Root-Is-Purelib: {'true' if root_is_purelib else 'false'}\nTag: {tag}\n"))
    if entry_points:
        files.setdefault(f"{di}/entry_points.txt", entry_points)
    filename = f"{name.replace('-', '_')}-{version}-{tag}.whl"
    path = directory / filename
    omit = set(omit_from_record)
    overrides = dict(record_overrides or {})
    lines = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            zf.writestr(arc, data)
            if arc not in omit:
                lines.append(f"{arc},{overrides.get(arc, _record_hash(data))},{len(data)}")
        lines += list(extra_record_lines)
        if record:
            lines.append(f"{di}/RECORD,,")
            zf.writestr(f"{di}/RECORD", "\n".join(lines) + "\n")
        for info, data in raw_entries:
            zf.writestr(info, data)
    return path


def wheel_metadata(path: Path) -> bytes:
    """The METADATA bytes inside a wheel (what an index serves as its PEP 658 file)."""
    with zipfile.ZipFile(path) as zf:
        for n in zf.namelist():
            if n.endswith(".dist-info/METADATA") and n.count("/") == 1:
                return zf.read(n)
    raise KeyError("METADATA")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
