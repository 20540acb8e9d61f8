"""Requirements and candidates as the resolver's resolvelib provider sees them.

Shared by :mod:`installer.resolver` (the provider), :mod:`installer.explain` (failure
messages) and :mod:`installer.satisfied` (the already-satisfied fast path).
"""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from installer._record import record
from installer._types import NormalizedName
from installer.errors import redact_url
from installer.models import InstalledDist, Link

PYTHON = "<python>"


def make_identifier(name: str, extras: frozenset[str]) -> str:
    """``name`` or ``name[extra,...]`` (the resolvelib identifier)."""
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


def base_name(identifier: str) -> str:
    """The project name of an identifier (extras dropped)."""
    return identifier.partition("[")[0]


@record(frozen=True, eq=False)
class Req:
    """A requirement on a project: specifier or URL. ``source`` names a root's origin."""

    name: NormalizedName
    display_name: str
    extras: frozenset[str]
    specifier: SpecifierSet
    url: str | None
    source: str | None  # root: "command line", "requirements.txt:3"; None for dependencies
    hashes: frozenset[str] = frozenset()

    @property
    def identifier(self) -> str:
        return make_identifier(self.name, self.extras)

    @property
    def pinned(self) -> bool:
        return any(s.operator in ("==", "===") and not s.version.endswith(".*")
                   for s in self.specifier)

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        if self.url:
            return f"{self.display_name}{extras} @ {redact_url(self.url)}"
        spec = str(self.specifier)
        return f"{self.display_name}{extras}{'==' + spec[3:] if spec.startswith('===') else spec}"


@record(frozen=True, eq=False)
class PythonReq:
    """``Requires-Python`` from a candidate's metadata, as a requirement on the target Python."""

    specifier: SpecifierSet
    identifier: str = PYTHON
    source: None = None

    def __str__(self) -> str:
        return f"Python{self.specifier}"


@record(frozen=True, eq=False)
class Cand:
    """A concrete version of a project (with extras: depends on its base at the same version)."""

    name: NormalizedName
    display_name: str
    version: Version
    link: Link | None
    installed: InstalledDist | None
    extras: frozenset[str] = frozenset()
    is_direct: bool = False

    @property
    def identifier(self) -> str:
        return make_identifier(self.name, self.extras)

    @property
    def key(self) -> tuple[Version, str]:
        return self.version, self.link.url if self.link else "<installed>"

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.display_name}{extras} {self.version}"


@record(frozen=True, eq=False)
class PythonCand:
    """The target Python, as the one candidate for ``<python>``."""

    version: Version
    identifier: str = PYTHON


AnyReq = Req | PythonReq
AnyCand = Cand | PythonCand


@record(frozen=True)
class VersionInfo:
    """One version offered for a project: its best wheel, or why there is none."""

    version: Version
    link: Link | None
    reason: str | None = None  # set when link is None
    yanked: str | None = None  # the yank reason when every usable file is yanked


@record(frozen=True)
class Constraint:
    """Every constraint on one project, combined."""

    specifier: SpecifierSet
    url: str | None
    texts: tuple[tuple[str, str], ...]  # (requirement text, source)
    hashes: frozenset[str]


def hash_ok(link: Link, allowed: frozenset[str]) -> bool:
    """Whether *link* may be used under the ``--hash`` set *allowed* (no known hash: yes)."""
    known = [f"{algo}:{digest}" for algo, digest in link.hashes.items()]
    return not known or any(h in allowed for h in known)


def same_url(a: str, b: str) -> bool:
    """Whether two URLs name the same file (fragments such as ``#sha256=`` ignored)."""
    return a.partition("#")[0] == b.partition("#")[0]
