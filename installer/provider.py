"""The resolvelib provider: index links -> candidates for the target environment.

:class:`Provider` filters and orders the files a :class:`~installer.models.CandidateSource`
offers, reads their metadata and turns Requires-Dist into requirements. It also records who
required what (``via``) and why versions were rejected, which :mod:`installer.explain` reads.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

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
    hash_ok,
    make_identifier,
    same_url,
)
from installer.errors import redact_url
from installer.models import CandidateSource, Environment, Link, canonical
from installer.reqfile import InstallRequirement
from installer.resolved import (
    CoreMetadata,
    MetadataError,
    ResolveOptions,
    file_url_path,
    link_from_url,
    parse_metadata,
)


class Provider(resolvelib.AbstractProvider[AnyReq, AnyCand, str]):
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
        self._satisfied: dict[tuple[AnyReq, AnyCand], bool] = {}
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
            path = file_url_path(link.url.partition("#")[0])
            try:
                return _wheel_metadata_file(path), link.filename
            except (OSError, KeyError) as exc:
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

    def installed_candidate(self, name: str, extras: frozenset[str]) -> Cand | None:
        """The candidate of the installed distribution of *name*, or None."""
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
        if isinstance(cand, str) or not all(self.satisfies(r, cand) for r in reqs):
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
        inst = self.installed_candidate(name, extras)
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

    def satisfies(self, req: Req, cand: Cand) -> bool:
        """Whether *cand* matches *req*'s URL or specifier (pre-releases allowed)."""
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
        # resolvelib asks again for every pin on every round; both are immutable and hash by
        # identity, so the answer is kept (a dict lookup instead of a specifier match).
        key = (requirement, candidate)
        known = self._satisfied.get(key)
        if known is None:
            if isinstance(requirement, PythonReq) or isinstance(candidate, PythonCand):
                known = requirement.specifier.contains(candidate.version, prereleases=True)
            else:
                known = self.satisfies(requirement, candidate)
            self._satisfied[key] = known
        return known

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
            if not cand.extras and _only_for_an_extra(text):
                continue  # false without extras: skip parsing it (most Requires-Dist lines)
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


_EXTRA_ONLY = re.compile(
    r"""(?:\((?P<group>.*)\)\s*and\s*)?extra\s*==\s*(?P<q>['"])[^'"]*(?P=q)""")
_QUOTED = re.compile("'[^']*'|\"[^\"]*\"")


def _only_for_an_extra(text: str) -> bool:
    """Whether the Requires-Dist line *text* has a marker that is false unless an extra is
    requested: ``extra == "x"``, or ``(...) and extra == "x"`` with one parenthesized group
    (so no ``or`` outside it). Anything else is left to packaging's parser."""
    req, sep, marker = text.partition(";")
    m = _EXTRA_ONLY.fullmatch(marker.strip()) if sep and "@" not in req else None
    if m is None:
        return False
    group = m.group("group")
    if group is None:
        return True
    depth = 0
    for char in _QUOTED.sub("''", group):  # the group must stay open from start to end
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _wheel_metadata_file(path: Path) -> bytes:
    """The METADATA of the wheel at *path*; OSError (a bad ZIP too) or KeyError."""
    import zipfile  # only for file: wheels, which have no metadata file of their own

    try:
        with zipfile.ZipFile(path) as zf:
            for entry in zf.namelist():
                if entry.endswith(".dist-info/METADATA") and entry.count("/") == 1:
                    return zf.read(entry)
    except zipfile.BadZipFile as exc:
        raise OSError(str(exc)) from exc
    raise KeyError("no .dist-info/METADATA in the wheel")
