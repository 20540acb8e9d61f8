"""Pick one version of every needed project for the target environment (resolvelib).

Layout: public value objects and :func:`resolve` first, then the resolvelib provider (index
links -> candidates), then the building of the result. Requirement and candidate types live in
:mod:`installer.candidates`; failures are explained by :mod:`installer.explain`.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import itertools
import json
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import resolvelib
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from installer._types import NormalizedName
from installer.candidates import (
    PYTHON,
    AnyCand,
    AnyReq,
    Cand,
    Constraint,
    PythonCand,
    PythonReq,
    Req,
    VersionInfo,
    base_name,
    hash_ok,
    make_identifier,
    same_url,
)
from installer.errors import InstError, ResolutionError, redact_url
from installer.explain import Explainer
from installer.models import CandidateSource, Environment, InstalledDist, Link, canonical
from installer.reqfile import InstallRequirement

Action = Literal["install", "upgrade", "downgrade", "reinstall", "keep"]


@dataclass(frozen=True)
class ResolveOptions:
    """The settings that steer resolution (names as in the option table).

    ``upgrade`` upgrades the requested projects (pip's only-if-needed strategy: their
    dependencies are upgraded only when needed); ``upgrade_packages`` names projects to upgrade.
    ``ignore_installed`` resolves as if the environment were empty (``inst download``).
    ``only_binary``/``no_binary`` hold normalized names or ``":all:"``.
    """

    pre: bool = False
    upgrade: bool = False
    upgrade_packages: frozenset[str] = frozenset()
    force_reinstall: bool = False
    no_deps: bool = False
    only_binary: frozenset[str] = frozenset()
    no_binary: frozenset[str] = frozenset()
    ignore_installed: bool = False
    max_rounds: int = 20000


@dataclass(frozen=True)
class CoreMetadata:
    """The parts of a distribution's core metadata the resolver uses, plus the raw bytes."""

    name: str
    version: str
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    provides_extra: tuple[str, ...] = ()
    raw: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class ResolvedPin:
    """One project in the solution.

    ``link`` is None when the installed distribution is kept (``action == "keep"``).
    ``requested`` is True for projects the user asked for directly; ``requested_extras`` are
    the extras they asked for; ``extras`` every extra the solution needs. ``hashes`` are the
    ``--hash`` values the requirements demand (``"sha256:<hex>"``), empty when none.
    """

    name: NormalizedName
    display_name: str
    version: str
    link: Link | None
    metadata: CoreMetadata
    requested: bool
    is_direct: bool
    extras: frozenset[str]
    requested_extras: frozenset[str]
    installed: InstalledDist | None
    action: Action
    hashes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Resolution:
    """The solution: ``pins`` in install order (dependencies before their dependents)."""

    pins: tuple[ResolvedPin, ...]
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[ResolvedPin]:
        return iter(self.pins)

    def __len__(self) -> int:
        return len(self.pins)

    def get(self, name: str) -> ResolvedPin | None:
        """The pin of *name* (any spelling), or None."""
        key = canonical(name)
        return next((p for p in self.pins if p.name == key), None)

    @property
    def to_install(self) -> tuple[ResolvedPin, ...]:
        """Pins that need a file (everything but ``keep``)."""
        return tuple(p for p in self.pins if p.action != "keep")


class ResolveReporter(Protocol):
    """Progress hooks (the core never prints; a command handler may)."""

    def pinned(self, name: str, version: str) -> None:
        """A version was chosen (it may be undone by backtracking)."""

    def rejected(self, name: str, version: str) -> None:
        """A version was tried and dropped because its dependencies conflict."""


class MetadataError(InstError):
    """A file's metadata contradicts its filename, or cannot be read."""

    def __init__(self, filename: str, message: str) -> None:
        self.filename = filename
        super().__init__(f"{filename}: {message}")


def resolve(
    requirements: Sequence[InstallRequirement],
    constraints: Sequence[InstallRequirement],
    source: CandidateSource,
    env: Environment,
    options: ResolveOptions,
    reporter: ResolveReporter | None = None,
) -> Resolution:
    """Resolve *requirements* (restricted by *constraints*) against *source* for *env*.

    Raises :class:`ResolutionError` with a readable explanation when no solution exists,
    :class:`MetadataError` when a file's metadata does not match its name.
    """
    kept = resolve_installed(requirements, constraints, env, options)
    if kept is not None:
        return kept
    provider = _Provider(source, env, options, requirements, constraints)
    hooks = _Hooks(provider, reporter)
    resolver: resolvelib.Resolver[AnyReq, AnyCand, str] = resolvelib.Resolver(
        provider, hooks)
    try:
        result = resolver.resolve(provider.roots, max_rounds=options.max_rounds)
    except resolvelib.ResolutionImpossible as exc:
        message, hint = Explainer(provider).explain(list(exc.causes))
        raise ResolutionError(message, hint=hint) from None
    except resolvelib.ResolutionTooDeep as exc:
        raise ResolutionError(
            f"gave up after {exc.round_count} resolution rounds without a solution",
            hint="pin some versions (e.g. with a constraints file) to narrow the search",
        ) from None
    return _build_resolution(provider, result)


class _NoIndex:
    """The CandidateSource of :func:`resolve_installed`: asking it for index data means the
    installed distributions are not enough."""

    def links(self, name: NormalizedName) -> list[Link]:
        raise _NeedsIndex(name)

    def metadata(self, link: Link) -> bytes:
        raise _NeedsIndex(link.filename)

    def prefetch(self, names: list[NormalizedName]) -> None:
        """Nothing to fetch."""


class _NeedsIndex(Exception):
    pass


def resolve_installed(
    requirements: Sequence[InstallRequirement],
    constraints: Sequence[InstallRequirement],
    env: Environment,
    options: ResolveOptions,
) -> Resolution | None:
    """The resolution that keeps everything, when the installed distributions satisfy every
    requirement and, transitively, their dependencies; None when the index is needed.

    This is pip's and uv's "already satisfied" check: it reads installed METADATA only (no
    index, no network). It gives up (None) on upgrades, reinstalls, URLs, hashes, anything
    missing or not matching, and on anything that would warn, so the full resolver decides.
    """
    if options.upgrade or options.upgrade_packages or options.force_reinstall \
            or options.ignore_installed or not requirements:
        return None
    if any(r.url or r.hashes for r in (*requirements, *constraints)):
        return None
    from resolvelib.structs import DirectedGraph

    provider = _Provider(_NoIndex(), env, options, requirements, constraints)
    graph: DirectedGraph[str | None] = DirectedGraph()
    graph.add(None)
    mapping: dict[str, AnyCand] = {}
    todo: list[tuple[str | None, Req]] = [(None, r) for r in provider.roots]
    try:
        while todo:
            parent, req = todo.pop()
            cand = provider._installed_cand(req.name, req.extras)
            constraint = provider.constraints.get(req.name)
            if cand is None or not provider._satisfies(req, cand) or (
                    constraint is not None and not constraint.specifier.contains(
                        cand.version, prereleases=True)):
                return None
            ident = cand.identifier
            if ident not in mapping:
                mapping[ident] = cand
                graph.add(ident)
                todo += [(ident, d) for d in provider.get_dependencies(cand)
                         if isinstance(d, Req)]
            graph.connect(parent, ident)
        if provider.warnings:
            return None
        return _build_resolution(provider, _Result(mapping, graph))
    except (InstError, _NeedsIndex):
        return None


@dataclass(frozen=True)
class _Result:
    """The parts of a resolvelib result :func:`_build_resolution` reads."""

    mapping: Mapping[str, AnyCand]
    graph: Any


def parse_metadata(raw: bytes) -> CoreMetadata:
    """Parse the headers of a METADATA file (fast: the description body is not parsed)."""
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)

    def one(key: str) -> str | None:
        value = msg.get(key)
        return None if value is None else str(value).strip()

    def many(key: str) -> tuple[str, ...]:
        return tuple(str(v).strip() for v in msg.get_all(key) or ())

    return CoreMetadata(
        name=one("Name") or "", version=one("Version") or "",
        requires_dist=many("Requires-Dist"), requires_python=one("Requires-Python"),
        provides_extra=many("Provides-Extra"), raw=raw,
    )


def link_from_url(url: str) -> Link:
    """A Link for a direct URL (``name @ URL``); ``#sha256=`` fragments become hashes."""
    base, _, fragment = url.partition("#")
    hashes = {}
    for part in fragment.split("&"):
        algo, eq, digest = part.partition("=")
        if eq and algo in ("sha256", "sha384", "sha512"):
            hashes[algo] = digest.lower()
    filename = unquote(urlsplit(base).path.rsplit("/", 1)[-1])
    if base.startswith("file:") and "sha256" not in hashes:
        path = _file_url_path(base)
        if path.is_file():
            hashes["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return Link(filename=filename, url=url, hashes=hashes)


def _file_url_path(url: str) -> Path:
    return Path(url2pathname(unquote(urlsplit(url).path)))


# --- the provider -------------------------------------------------------------------------------

class _Provider(resolvelib.AbstractProvider[AnyReq, AnyCand, str]):
    """Candidates from a CandidateSource, filtered for the target environment."""

    def __init__(self, source: CandidateSource, env: Environment, options: ResolveOptions,
                 requirements: Sequence[InstallRequirement],
                 constraints: Sequence[InstallRequirement]) -> None:
        self.source, self.env, self.options = source, env, options
        self.python = Version(env.python_version)
        self.tag_rank: dict[str, int] = {}
        for i, tag in enumerate(env.tags):
            self.tag_rank.setdefault(tag, i)
        self.installed = {} if options.ignore_installed else dict(env.installed)
        self.warnings: list[str] = []
        self._marker_cache: dict[tuple[str, str], bool] = {}
        self._req_cache: dict[str, Requirement | None] = {}
        self._spec_cache: dict[str, SpecifierSet | None] = {}
        self._versions: dict[str, list[VersionInfo]] = {}
        self._links: dict[str, list[Link]] = {}
        self._metadata: dict[str, CoreMetadata] = {}
        self._cands: dict[tuple[str, Version, str], Cand] = {}
        self._direct: dict[str, Cand | str] = {}
        self._depth: dict[str, int] = {}
        self._prefetched: set[str] = set()
        self.via: dict[str, AnyCand | str] = {}  # identifier -> requirer (for explanations)
        self.rejections: dict[tuple[str, Version], tuple[str, list[Any]]] = {}
        self.constraints = self._group_constraints(constraints)
        self.roots = self._root_requirements(requirements)
        self.requested = {r.name for r in self.roots}
        self.upgrade = {canonical(n) for n in options.upgrade_packages} | (
            self.requested if options.upgrade else set())
        self.no_binary = {n if n == ":all:" else canonical(n) for n in options.no_binary}
        self._prefetch([r.name for r in self.roots])

    # -- inputs ------------------------------------------------------------------------------

    def _root_requirements(self, reqs: Sequence[InstallRequirement]) -> list[Req]:
        roots = []
        for ireq in reqs:
            if ireq.marker is not None and not self._marker(ireq.marker, ""):
                continue
            roots.append(Req(ireq.name, ireq.display_name, ireq.extras, ireq.specifier,
                              ireq.url, ireq.source, frozenset(ireq.hashes)))
        return roots

    def _group_constraints(self, reqs: Sequence[InstallRequirement]) -> dict[str, Constraint]:
        out: dict[str, Constraint] = {}
        for ireq in reqs:
            if ireq.marker is not None and not self._marker(ireq.marker, ""):
                continue
            old = out.get(ireq.name, Constraint(SpecifierSet(), None, (), frozenset()))
            out[ireq.name] = Constraint(
                old.specifier & ireq.specifier, ireq.url or old.url,
                (*old.texts, (str(ireq), ireq.source)), old.hashes | frozenset(ireq.hashes))
        return out

    def _marker(self, marker: Marker, extra: str) -> bool:
        key = (str(marker), extra)
        if key not in self._marker_cache:
            environment: dict[str, str] = {**self.env.markers, "extra": extra}
            try:
                self._marker_cache[key] = marker.evaluate(environment)
            except Exception as exc:  # undefined comparison / name: treat as not matching
                self.warnings.append(f"cannot evaluate marker {str(marker)!r}: {exc}")
                self._marker_cache[key] = False
        return self._marker_cache[key]

    def _specifier(self, text: str | None) -> SpecifierSet | None:
        if not text:
            return None
        if text not in self._spec_cache:
            try:
                self._spec_cache[text] = SpecifierSet(text)
            except InvalidSpecifier:
                self._spec_cache[text] = None
        return self._spec_cache[text]

    def _prefetch(self, names: list[str]) -> None:
        new = [NormalizedName(n) for n in dict.fromkeys(names) if n not in self._prefetched]
        if new:
            self._prefetched.update(new)
            self.source.prefetch(new)

    # -- index data --------------------------------------------------------------------------

    def links(self, name: str) -> list[Link]:
        """All files the source offers for *name* (cached)."""
        if name not in self._links:
            self._links[name] = self.source.links(NormalizedName(name))
        return self._links[name]

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version offered for *name*, newest first, each with its best wheel."""
        if name not in self._versions:
            self._versions[name] = self._collect_versions(name)
        return self._versions[name]

    def _collect_versions(self, name: str) -> list[VersionInfo]:
        files: dict[Version, list[tuple[tuple[int, int, int], Link]]] = {}
        reasons: dict[Version, dict[str, int]] = {}
        foreign: dict[Version, set[str]] = {}  # tags of wheels for other environments
        refuse = ":all:" in self.no_binary or name in self.no_binary
        for link in self.links(name):
            version, rank, reason = self._evaluate_link(name, link, refuse, foreign)
            if version is None:
                continue
            if rank is not None:
                files.setdefault(version, []).append((rank, link))
            elif reason is not None:
                reasons.setdefault(version, {}).setdefault(reason[1], reason[0])
        for version, tags in foreign.items():
            shown = ", ".join(sorted(tags)[:3]) + (", ..." if len(tags) > 3 else "")
            reasons.setdefault(version, {})[f"no wheel for this environment (found {shown})"] = 2
        infos = []
        for version in sorted(set(files) | set(reasons), reverse=True):
            if version in files:
                best = min(files[version], key=lambda item: item[0])[1]
                infos.append(VersionInfo(version, best, yanked=best.yanked))
            else:
                texts = reasons[version]
                infos.append(VersionInfo(version, None, reason=min(texts, key=texts.__getitem__)))
        return infos

    def _evaluate_link(self, name: str, link: Link, refuse: bool,
                       foreign: dict[Version, set[str]]) -> tuple[
            Version | None, tuple[int, int, int] | None, tuple[int, str] | None]:
        """(version, sort rank) for a usable wheel, else (version, None, (priority, reason))."""
        if not link.is_wheel:
            try:
                _name, version = parse_sdist_filename(link.filename)
            except (InvalidSdistFilename, InvalidVersion):
                return None, None, None
            return version, None, (3, "source distribution only (inst installs wheels only)")
        try:
            wname, version, build, tags = parse_wheel_filename(link.filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None, None, None
        if wname != name:
            return None, None, None
        spec = self._specifier(link.requires_python)
        if spec is not None and not spec.contains(self.python, prereleases=True):
            return version, None, (
                0, f"requires Python {spec}, the target Python is {self.python}")
        ranks = [self.tag_rank[str(t)] for t in tags if str(t) in self.tag_rank]
        if not ranks:
            foreign.setdefault(version, set()).update(str(t) for t in tags)
            return version, None, None
        if refuse:
            return version, None, (1, "wheels refused by --no-binary")
        return version, (1 if link.yanked is not None else 0, min(ranks),
                         -(build[0] if build else 0)), None

    def metadata(self, cand: Cand) -> CoreMetadata:
        """Parsed core metadata of *cand* (cached per file), checked against its name."""
        key = cand.link.url if cand.link else f"installed:{cand.name}"
        if key not in self._metadata:
            raw, filename = self._read_metadata(cand)
            meta = parse_metadata(raw)
            try:
                ok = canonical(meta.name) == cand.name and Version(meta.version) == cand.version
            except InvalidVersion:
                ok = False
            if not ok:
                raise MetadataError(filename, f"metadata says {meta.name} {meta.version}, "
                                    f"expected {cand.display_name} {cand.version}")
            self._metadata[key] = meta
        return self._metadata[key]

    def _read_metadata(self, cand: Cand) -> tuple[bytes, str]:
        if cand.link is None:
            assert cand.installed is not None
            path = cand.installed.dist_info / "METADATA"
            try:
                return path.read_bytes(), str(path)
            except OSError as exc:
                raise MetadataError(str(path), f"cannot read: {exc.strerror}") from exc
        link = cand.link
        if link.url.startswith("file:"):
            path = _file_url_path(link.url.partition("#")[0])
            try:
                return _wheel_metadata_file(path), link.filename
            except (OSError, zipfile.BadZipFile, KeyError) as exc:
                raise MetadataError(link.filename, f"cannot read METADATA: {exc}") from exc
        return self.source.metadata(link), link.filename

    # -- candidates --------------------------------------------------------------------------

    def _cand(self, name: str, display: str, info: VersionInfo, extras: frozenset[str]) -> Cand:
        key = (make_identifier(name, extras), info.version, info.link.url if info.link else "")
        if key not in self._cands:
            self._cands[key] = Cand(NormalizedName(name), display, info.version, info.link,
                                     None, extras)
        return self._cands[key]

    def display_name(self, name: str) -> str:
        """*name* as spelled by the first candidate of it seen, else as given."""
        return next((str(c.display_name) for c in self._cands.values() if c.name == name),
                    name)

    def _installed_cand(self, name: str, extras: frozenset[str]) -> Cand | None:
        dist = self.installed.get(NormalizedName(name))
        if dist is None:
            return None
        try:
            version = Version(dist.version)
        except InvalidVersion:
            return None
        key = (make_identifier(name, extras), version, "<installed>")
        if key not in self._cands:
            self._cands[key] = Cand(NormalizedName(name), dist.display_name, version, None,
                                     dist, extras)
        return self._cands[key]

    def direct_candidate(self, name: str, display: str, url: str,
                         extras: frozenset[str]) -> Cand | str:
        """The candidate a ``name @ URL`` requirement names, or why it cannot be used."""
        key = f"{make_identifier(name, extras)} @ {url}"
        if key not in self._direct:
            self._direct[key] = self._make_direct(name, display, url, extras)
        return self._direct[key]

    def _make_direct(self, name: str, display: str, url: str,
                     extras: frozenset[str]) -> Cand | str:
        link = link_from_url(url)
        if not link.is_wheel:
            return f"{redact_url(url)} is not a wheel (inst installs wheels only)"
        try:
            wname, version, _build, tags = parse_wheel_filename(link.filename)
        except (InvalidWheelFilename, InvalidVersion) as exc:
            return f"{link.filename} is not a valid wheel filename ({exc})"
        if wname != name:
            return f"{link.filename} is a wheel of {wname}, not {name}"
        if not any(str(t) in self.tag_rank for t in tags):
            return f"{link.filename} does not match this environment's tags"
        return Cand(NormalizedName(name), display, version, link, None, extras, is_direct=True)

    def find_matches(self, identifier: str, requirements: Mapping[str, Iterator[AnyReq]],
                     incompatibilities: Mapping[str, Iterator[AnyCand]]) -> list[AnyCand]:
        """Candidates for *identifier* satisfying every requirement, best first."""
        reqs = list(requirements[identifier])
        if identifier == PYTHON:
            ok = all(r.specifier.contains(self.python, prereleases=True) for r in reqs)
            return [PythonCand(self.python)] if ok else []
        named = [r for r in reqs if isinstance(r, Req)]
        name, extras = named[0].name, named[0].extras
        bad = {c.key for c in incompatibilities[identifier] if isinstance(c, Cand)}
        constraint = self.constraints.get(name)
        url = next((r.url for r in named if r.url), None) or (constraint.url if constraint
                                                               else None)
        if url is not None:
            found = self._direct_matches(named, url, extras)
        else:
            found = self._index_matches(named, constraint, extras)
        return [c for c in found if c.key not in bad]

    def _direct_matches(self, reqs: list[Req], url: str, extras: frozenset[str]) -> list[Cand]:
        first = reqs[0]
        cand = self.direct_candidate(first.name, first.display_name, url, extras)
        if isinstance(cand, str) or not all(self._satisfies(r, cand) for r in reqs):
            return []
        return [cand]

    def _index_matches(self, reqs: list[Req], constraint: Constraint | None,
                       extras: frozenset[str]) -> list[Cand]:
        name, display = reqs[0].name, reqs[0].display_name
        spec = SpecifierSet()
        for r in reqs:
            spec &= r.specifier
        if constraint is not None:
            spec &= constraint.specifier
        pinned = any(r.pinned for r in reqs)
        allowed_hashes = self.allowed_hashes(reqs, constraint)
        usable = [i for i in self.versions(name) if i.link is not None and (
            i.yanked is None or pinned) and (allowed_hashes is None or hash_ok(
                i.link, allowed_hashes))]
        keep = set(spec.filter([i.version for i in usable],
                               prereleases=True if self.options.pre else None))
        found = [self._cand(name, display, i, extras) for i in usable if i.version in keep]
        return self._order_with_installed(name, found, spec, constraint, extras)

    def allowed_hashes(self, reqs: list[Req],
                        constraint: Constraint | None) -> frozenset[str] | None:
        sets = [r.hashes for r in reqs if r.hashes]
        if constraint is not None and constraint.hashes:
            sets.append(constraint.hashes)
        if not sets:
            return None
        return frozenset.intersection(*sets)

    def _order_with_installed(self, name: str, found: list[Cand], spec: SpecifierSet,
                              constraint: Constraint | None,
                              extras: frozenset[str]) -> list[Cand]:
        """Put the installed distribution where the upgrade policy wants it."""
        inst = self._installed_cand(name, extras)
        if inst is None or not spec.contains(inst.version, prereleases=True):
            return found
        upgrading = name in self.upgrade
        same = [c for c in found if c.version == inst.version]
        others = [c for c in found if c.version != inst.version]
        if self.options.force_reinstall:
            return found if upgrading else same + others
        if not upgrading:
            return [inst, *others]
        newer = [c for c in others if c.version > inst.version]
        return [*newer, inst, *[c for c in others if c.version < inst.version]]

    def _satisfies(self, req: Req, cand: Cand) -> bool:
        if req.url is not None:
            return cand.link is not None and same_url(cand.link.url, req.url)
        return req.specifier.contains(cand.version, prereleases=True)

    # -- resolvelib interface ----------------------------------------------------------------

    def identify(self, requirement_or_candidate: AnyReq | AnyCand) -> str:
        """``name`` or ``name[extra,...]``; ``<python>`` for Requires-Python."""
        return requirement_or_candidate.identifier

    def get_preference(self, identifier: str, resolutions: Mapping[str, AnyCand],
                       candidates: Mapping[str, Iterator[AnyCand]],
                       information: Mapping[str, Iterator[Any]],
                       backtrack_causes: Sequence[Any]) -> tuple[object, ...]:
        """Pinned/direct first, then conflict causes, fewer candidates, shallower."""
        infos = list(information[identifier])
        reqs = [i.requirement for i in infos if isinstance(i.requirement, Req)]
        exact = identifier == PYTHON or any(r.url or r.pinned for r in reqs)
        causes = {c.requirement.identifier for c in backtrack_causes}
        causes |= {c.parent.identifier for c in backtrack_causes if c.parent is not None}
        count = sum(1 for _ in itertools.islice(candidates[identifier], 100))
        return (not exact, identifier not in causes, count, self._depth_of(identifier, infos),
                identifier)

    def _depth_of(self, identifier: str, infos: list[Any]) -> int:
        depth = min((0 if i.parent is None else self._depth.get(i.parent.identifier, 50) + 1
                     for i in infos), default=0)
        self._depth[identifier] = depth
        return depth

    def is_satisfied_by(self, requirement: AnyReq, candidate: AnyCand) -> bool:
        """Whether *candidate* satisfies *requirement* (pre-releases already filtered)."""
        if isinstance(requirement, PythonReq) or isinstance(candidate, PythonCand):
            return requirement.specifier.contains(candidate.version, prereleases=True)
        return self._satisfies(requirement, candidate)

    def get_dependencies(self, candidate: AnyCand) -> list[AnyReq]:
        """Requires-Dist (markers evaluated), Requires-Python, and an extra's base pin."""
        if isinstance(candidate, PythonCand):
            return []
        deps: list[AnyReq] = []
        if candidate.extras:
            deps.append(self._base_requirement(candidate))
        if self.options.no_deps:
            return deps
        meta = self.metadata(candidate)
        if not candidate.extras:
            spec = self._specifier(meta.requires_python)
            if spec is not None and candidate.installed is None:
                deps.append(PythonReq(spec))
        deps += self._requires_dist(candidate, meta)
        self._prefetch([d.name for d in deps if isinstance(d, Req)])
        return deps

    def _base_requirement(self, cand: Cand) -> Req:
        url = cand.link.url if cand.is_direct and cand.link else None
        return Req(cand.name, cand.display_name, frozenset(),
                    SpecifierSet(f"==={cand.version}"), url, None)

    def _requires_dist(self, cand: Cand, meta: CoreMetadata) -> list[Req]:
        provided = {canonical(e) for e in meta.provides_extra}
        for extra in sorted(cand.extras - provided):
            self._warn(f"{cand.display_name} {cand.version} does not provide the extra "
                       f"{extra!r}")
        out = []
        for text in meta.requires_dist:
            req = self._parse_dependency(text, cand)
            if req is None:
                continue
            if req.marker is not None:
                base = self._marker(req.marker, "")
                wanted = any(self._marker(req.marker, e) for e in cand.extras) and not base
                if not (wanted if cand.extras else base):
                    continue
            elif cand.extras:
                continue
            out.append(Req(canonical(req.name), req.name,
                            frozenset(canonical(e) for e in req.extras), req.specifier,
                            req.url, None))
        return out

    def _parse_dependency(self, text: str, cand: Cand) -> Requirement | None:
        if text not in self._req_cache:
            try:
                self._req_cache[text] = Requirement(text)
            except InvalidRequirement:
                self._warn(f"{cand.display_name} {cand.version}: ignoring invalid "
                           f"Requires-Dist {text!r}")
                self._req_cache[text] = None
        return self._req_cache[text]

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def _wheel_metadata_file(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        for entry in zf.namelist():
            if entry.endswith(".dist-info/METADATA") and entry.count("/") == 1:
                return zf.read(entry)
    raise KeyError("no .dist-info/METADATA in the wheel")


class _Hooks(resolvelib.BaseReporter[AnyReq, AnyCand, str]):
    """Records who required what and why versions were rejected; forwards progress."""

    def __init__(self, provider: _Provider, reporter: ResolveReporter | None) -> None:
        self.provider, self.reporter = provider, reporter

    def adding_requirement(self, requirement: AnyReq, parent: AnyCand | None) -> None:
        # A root's source wins (shortest story); otherwise the latest requirer, which is the
        # one still in play after backtracking.
        via = self.provider.via
        if isinstance(requirement, Req) and not isinstance(via.get(requirement.identifier), str):
            if parent is None:
                via[requirement.identifier] = requirement.source or ""
            elif isinstance(parent, Cand):
                via[requirement.identifier] = parent

    def rejecting_candidate(self, criterion: Any, candidate: AnyCand) -> None:
        if isinstance(candidate, Cand):
            ident = next((i.requirement.identifier for i in criterion.information), PYTHON)
            key = (candidate.name, candidate.version)
            self.provider.rejections.setdefault(key, (ident, list(criterion.information)))
            if self.reporter is not None:
                self.reporter.rejected(candidate.name, str(candidate.version))

    def pinning(self, candidate: AnyCand) -> None:
        if self.reporter is not None and isinstance(candidate, Cand) and not candidate.extras:
            self.reporter.pinned(candidate.name, str(candidate.version))


# --- the result ---------------------------------------------------------------------------------

def _build_resolution(provider: _Provider, result: Any) -> Resolution:
    mapping: Mapping[str, AnyCand] = result.mapping
    bases: dict[str, Cand] = {
        c.name: c for c in mapping.values() if isinstance(c, Cand) and not c.extras}
    extras: dict[str, set[str]] = {}
    for cand in mapping.values():
        if isinstance(cand, Cand) and cand.extras:
            extras.setdefault(cand.name, set()).update(cand.extras)
    requested_extras: dict[str, set[str]] = {}
    hashes: dict[str, set[str]] = {}
    for root in provider.roots:
        requested_extras.setdefault(root.name, set()).update(root.extras)
        hashes.setdefault(root.name, set()).update(root.hashes)
    for name, constraint in provider.constraints.items():
        hashes.setdefault(name, set()).update(constraint.hashes)
    pins = []
    for name in _install_order(result.graph, bases):
        cand = bases[name]
        meta = provider.metadata(cand)
        link, installed, action = _action(provider, cand)
        pins.append(ResolvedPin(
            name=cand.name, display_name=meta.name or cand.display_name,
            version=str(cand.version), link=link, metadata=meta,
            requested=name in provider.requested,
            is_direct=cand.is_direct, extras=frozenset(extras.get(name, ())),
            requested_extras=frozenset(requested_extras.get(name, ())), installed=installed,
            action=action, hashes=frozenset(hashes.get(name, ())),
        ))
    return Resolution(tuple(pins), tuple(provider.warnings))


def _install_order(graph: Any, bases: Mapping[str, Cand]) -> list[str]:
    """Dependencies before dependents (depth-first post-order; cycles broken by name).

    An extra's dependencies count as dependencies of the project itself.
    """
    children: dict[str | None, set[str]] = {}
    for key in graph:
        parent = None if key is None else base_name(key)
        kids = {base_name(c) for c in graph.iter_children(key)} - {parent}
        children.setdefault(parent, set()).update(k for k in kids if k in bases)
    order: list[str] = []
    seen: set[str | None] = set()

    def visit(name: str | None) -> None:
        seen.add(name)
        for child in sorted(children.get(name, ())):
            if child not in seen:
                visit(child)
        if name is not None:
            order.append(name)

    visit(None)
    order += sorted(n for n in bases if n not in seen)
    return order


def _action(provider: _Provider, cand: Cand) -> tuple[Link | None, InstalledDist | None, Action]:
    if cand.installed is not None:
        return None, cand.installed, "keep"
    dist = provider.installed.get(cand.name)
    if dist is None:
        return cand.link, None, "install"
    try:
        old = Version(dist.version)
    except InvalidVersion:
        return cand.link, dist, "upgrade"
    if old == cand.version:
        if cand.is_direct and not provider.options.force_reinstall and cand.link and (
                _installed_url(dist) == cand.link.url.partition("#")[0]):
            return None, dist, "keep"
        return cand.link, dist, "reinstall"
    return cand.link, dist, "upgrade" if cand.version > old else "downgrade"


def _installed_url(dist: InstalledDist) -> str | None:
    """PEP 610: the URL a distribution was installed from, if it was a direct URL."""
    try:
        data = json.loads((dist.dist_info / "direct_url.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = data.get("url") if isinstance(data, dict) else None
    return url.partition("#")[0] if isinstance(url, str) else None
