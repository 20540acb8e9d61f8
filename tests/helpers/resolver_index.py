"""In-memory indexes and target environments for resolver tests (no network, no interpreter).

``build_index({"a": ["1.0", {"version": "2.0", "requires": ["b>=2"], "yanked": "bad"}]})``
returns a :class:`installer.models.MemoryIndex`. A version entry is a string or a dict with:
``requires``, ``requires_python`` (metadata), ``link_requires_python`` (data-requires-python),
``yanked``, ``tags`` (one wheel per tag; default ``["py3-none-any"]``), ``sdist`` (also offer
an sdist; with ``tags=[]`` the version is sdist-only), ``extras`` ({extra: [reqs]}), ``name``
(metadata Name, to test mismatches).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.markers import default_environment

from installer._types import NormalizedName
from installer.models import Environment, InstalledDist, Link, MemoryIndex, canonical
from tests.helpers.wheels import metadata_text

TAGS = (
    "cp311-cp311-manylinux_2_17_x86_64",
    "cp311-abi3-manylinux_2_17_x86_64",
    "cp311-none-manylinux_2_17_x86_64",
    "py311-none-manylinux_2_17_x86_64",
    "cp311-none-any",
    "py311-none-any",
    "py3-none-any",
)
BASE = "https://index.test/files"


def _link(filename: str, entry: Mapping[str, Any]) -> Link:
    digest = hashlib.sha256(filename.encode()).hexdigest()
    return Link(filename=filename, url=f"{BASE}/{filename}#sha256={digest}",
                hashes={"sha256": digest},
                requires_python=entry.get("link_requires_python"),
                yanked=entry.get("yanked"), index="https://index.test/simple")


def add_version(index: MemoryIndex, name: str, entry: str | Mapping[str, Any]) -> None:
    """Add one version (see the module docstring) to *index*."""
    data: Mapping[str, Any] = {"version": entry} if isinstance(entry, str) else entry
    version = str(data["version"])
    meta = metadata_text(data.get("name", name), version, data.get("requires", ()),
                         data.get("requires_python"), data.get("extras")).encode()
    stem = f"{name.replace('-', '_')}-{version}"
    for tag in data.get("tags", ["py3-none-any"]):
        index.add(_link(f"{stem}-{tag}.whl", data), meta)
    if data.get("sdist"):
        index.add(_link(f"{stem}.tar.gz", data), meta)


def build_index(spec: Mapping[str, Sequence[str | Mapping[str, Any]]]) -> MemoryIndex:
    """A MemoryIndex from ``{project: [version entries]}``."""
    index = MemoryIndex()
    for name, entries in spec.items():
        for entry in entries:
            add_version(index, name, entry)
    return index


class RecordingIndex(MemoryIndex):
    """A MemoryIndex that remembers prefetch hints and metadata reads."""

    def __init__(self, base: MemoryIndex) -> None:
        super().__init__(projects=base.projects)
        self.prefetched: list[list[str]] = []
        self.metadata_reads: list[str] = []

    def prefetch(self, names: list[NormalizedName]) -> None:
        self.prefetched.append(list(names))

    def metadata(self, link: Link) -> bytes:
        self.metadata_reads.append(link.filename)
        return super().metadata(link)


def installed_dist(site: Path, name: str, version: str, requires: Iterable[str] = (),
                   direct_url: str | None = None) -> InstalledDist:
    """Write a real ``name-version.dist-info`` folder under *site* and describe it."""
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(metadata_text(name, version, requires))
    (dist_info / "INSTALLER").write_text("inst\n")
    if direct_url:
        (dist_info / "direct_url.json").write_text(
            json.dumps({"url": direct_url, "archive_info": {}}))
    return InstalledDist(canonical(name), name, version, dist_info, installer="inst")


def make_env(python_version: str = "3.11.7", tags: Sequence[str] = TAGS,
             installed: Iterable[InstalledDist] = (), **markers: str) -> Environment:
    """A Linux CPython target environment with the given version, tags and installed dists."""
    major_minor = ".".join(python_version.split(".")[:2])
    env_markers = {**default_environment(), "python_version": major_minor,
                   "python_full_version": python_version, "implementation_name": "cpython",
                   "platform_python_implementation": "CPython", "sys_platform": "linux",
                   "platform_system": "Linux", "os_name": "posix",
                   "platform_machine": "x86_64", **markers}
    return Environment(
        python=Path("/target/bin/python"), prefix=Path("/target"),
        python_version=python_version, implementation="cpython", tags=tuple(tags),
        markers=env_markers, paths={}, is_venv=True,
        installed={d.name: d for d in installed},
    )
