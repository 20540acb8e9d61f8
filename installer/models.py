"""Value objects shared by the index client, resolver, downloader and wheel installer."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from installer._record import field, record
from installer._types import NormalizedName

_SEPARATORS = re.compile(r"[-_.]+")


def canonical(name: str) -> NormalizedName:
    """PEP 503 normalized project name (same as ``packaging.utils.canonicalize_name``)."""
    return NormalizedName(_SEPARATORS.sub("-", name).lower())


# A header line as email.feedparser sees it: a field name of printable ASCII except ":",
# then ":"; anything else (but a continuation) ends the header section, as it does there.
_HEADER = re.compile(r"[\041-\071\073-\176]*:")
_LINES = re.compile(r"\r\n|\r|\n")


def metadata_headers(raw: bytes) -> dict[str, list[str]]:
    """The header fields of a METADATA file: lower-cased name -> values in file order.

    The same answer as ``email.parser.BytesHeaderParser`` with the ``compat32`` policy (folded
    lines kept with their line breaks, a value's leading blanks dropped), without importing
    :mod:`email` (~11 ms of start-up) or reading the description body line by line.
    """
    headers: dict[str, list[str]] = {}
    last: list[str] | None = None
    # Only the header section is split into lines, not a long description body: it ends at
    # the first blank line, i.e. a line end followed by another.
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r"), raw.find(b"\r\r")) if i >= 0]
    head = raw[: min(ends) + 1] if ends else raw
    lines = _LINES.split(head.decode("utf-8", "surrogateescape"))
    if lines[0].startswith("From "):
        del lines[0]  # an mbox "From " line, which email skips too
    for line in lines:
        if not line:
            break  # the blank line that ends the headers
        if line[0] in " \t":
            if last is not None:
                last[-1] += "\n" + line
            continue
        m = _HEADER.match(line)
        if m is None:
            break  # the body begins (email calls this a missing-separator defect)
        last = headers.setdefault(line[: m.end() - 1].lower(), [])
        last.append(line[m.end():].lstrip(" \t"))
    return headers


@record(frozen=True)
class Link:
    """One file offered by an index or a find-links location.

    ``hashes`` maps algorithm to hex digest (from ``#sha256=`` or JSON ``hashes``).
    ``metadata_hashes`` is None when no PEP 658 metadata file is offered, a (possibly empty)
    mapping when one is. ``yanked`` is None when not yanked, else the reason ("" if none given).
    """

    filename: str
    url: str
    hashes: Mapping[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: str | None = None
    metadata_hashes: Mapping[str, str] | None = None
    size: int | None = None
    index: str = ""  # the index or find-links location this came from (redacted URL or name)

    @property
    def is_wheel(self) -> bool:
        """True when the file is a wheel (the only kind inst installs for now)."""
        return self.filename.endswith(".whl")

    @property
    def metadata_url(self) -> str:
        """PEP 658: the metadata file sits at the file's URL plus ``.metadata``."""
        base, _, _frag = self.url.partition("#")
        return base + ".metadata"

    @property
    def sha256(self) -> str | None:
        """The sha256 the index announced, if any."""
        return self.hashes.get("sha256")


@record(frozen=True)
class InstalledDist:
    """A distribution found installed in the target environment."""

    name: NormalizedName
    display_name: str
    version: str
    dist_info: Path
    installer: str | None = None
    requested: bool = False


@record(frozen=True)
class Environment:
    """What inst knows of the target interpreter; queried once, cached by path and mtime.

    ``tags`` are packaging.tags strings, best match first. ``paths`` holds the install scheme:
    purelib, platlib, scripts, data, include (absolute paths).
    """

    python: Path
    prefix: Path
    python_version: str  # "3.11.7"
    implementation: str  # "cpython"
    tags: tuple[str, ...]
    markers: Mapping[str, str]
    paths: Mapping[str, str]
    is_venv: bool
    installed: Mapping[NormalizedName, InstalledDist] = field(default_factory=dict)


def state_root(env: Environment) -> Path:
    """The folder that holds the whole install scheme (a venv's prefix, a --target or --prefix
    DIR); the lock file and transaction folders live here."""
    keys = ("purelib", "platlib", "scripts", "data")
    return Path(os.path.commonpath([os.path.abspath(env.paths[k]) for k in keys]))


class CandidateSource(Protocol):
    """Where the resolver gets files and metadata from (HTTP indexes, or memory in tests)."""

    def links(self, name: NormalizedName) -> list[Link]:
        """All files offered for *name* (already filtered by index-strategy); [] if unknown."""
        ...

    def metadata(self, link: Link) -> bytes:
        """Core metadata (the METADATA file's bytes) of *link*, verified against its hash."""
        ...

    def prefetch(self, names: list[NormalizedName]) -> None:
        """Hint: these projects' pages will be needed soon (fetch concurrently)."""
        ...


@record(frozen=False)
class MemoryIndex:
    """An in-memory :class:`CandidateSource` for tests: ``{name: [(Link, METADATA bytes)]}``."""

    projects: dict[NormalizedName, list[tuple[Link, bytes]]] = field(default_factory=dict)
    page_requests: int = 0

    def add(self, link: Link, metadata: bytes) -> None:
        """Register a file and its core metadata under the project its filename names."""
        name = canonical(link.filename.split("-")[0])
        self.projects.setdefault(name, []).append((link, metadata))

    def links(self, name: NormalizedName) -> list[Link]:
        """See :class:`CandidateSource`."""
        self.page_requests += 1
        return [link for link, _ in self.projects.get(name, [])]

    def metadata(self, link: Link) -> bytes:
        """See :class:`CandidateSource`."""
        for entries in self.projects.values():
            for candidate, meta in entries:
                if candidate == link:
                    return meta
        raise KeyError(link.url)

    def prefetch(self, names: list[NormalizedName]) -> None:
        """Nothing to prefetch in memory."""
