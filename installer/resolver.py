"""Pick one version of every needed project for the target environment (resolvelib).

Layout: the result types and :func:`resolve` first, then the building of the result. The
resolvelib provider (index links -> candidates) is :mod:`installer.provider`; options and
metadata value objects live in :mod:`installer.resolved` and are re-exported here. Requirement
and candidate types live in :mod:`installer.candidates`; failures are explained by
:mod:`installer.explain`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol

import resolvelib
from packaging.version import InvalidVersion, Version

from installer._record import record
from installer._types import NormalizedName
from installer.candidates import PYTHON, AnyCand, AnyReq, Cand, Req, base_name
from installer.errors import InstError, ResolutionError
from installer.explain import Explainer
from installer.models import CandidateSource, Environment, InstalledDist, Link, canonical
from installer.provider import Provider
from installer.reqfile import InstallRequirement
from installer.resolved import (
    CoreMetadata,
    MetadataError,
    ResolveOptions,
    link_from_url,
    parse_metadata,
)

__all__ = [
    "Action",
    "CoreMetadata",
    "MetadataError",
    "Provider",
    "Resolution",
    "ResolveOptions",
    "ResolveReporter",
    "ResolvedPin",
    "link_from_url",
    "parse_metadata",
    "resolve",
    "resolve_installed",
]

Action = Literal["install", "upgrade", "downgrade", "reinstall", "keep"]


@record(frozen=True)
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


@record(frozen=True)
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


def resolve(
    requirements: Sequence[InstallRequirement],
    constraints: Sequence[InstallRequirement],
    source: CandidateSource,
    env: Environment,
    options: ResolveOptions,
    reporter: ResolveReporter | None = None,
    on_pin: Callable[[Link, bytes | None], None] | None = None,
) -> Resolution:
    """Resolve *requirements* (restricted by *constraints*) against *source* for *env*.

    *on_pin* is called with the file and the core metadata of each index candidate the
    resolver pins, while it resolves (a pin may still be undone by backtracking).
    Raises :class:`ResolutionError` with a readable explanation when no solution exists,
    :class:`MetadataError` when a file's metadata does not match its name.
    """
    kept = resolve_installed(requirements, constraints, env, options)
    if kept is not None:
        return kept
    provider = Provider(source, env, options, requirements, constraints)
    hooks = _Hooks(provider, reporter, on_pin)
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

    provider = Provider(_NoIndex(), env, options, requirements, constraints)
    graph: DirectedGraph[str | None] = DirectedGraph()
    graph.add(None)
    mapping: dict[str, AnyCand] = {}
    todo: list[tuple[str | None, Req]] = [(None, r) for r in provider.roots]
    try:
        while todo:
            parent, req = todo.pop()
            cand = provider.installed_candidate(req.name, req.extras)
            constraint = provider.constraints.get(req.name)
            if cand is None or not provider.satisfies(req, cand) or (
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


@record(frozen=True)
class _Result:
    """The parts of a resolvelib result :func:`_build_resolution` reads."""

    mapping: Mapping[str, AnyCand]
    graph: Any


class _Hooks(resolvelib.BaseReporter[AnyReq, AnyCand, str]):
    """Records who required what and why versions were rejected; forwards progress."""

    def __init__(self, provider: Provider, reporter: ResolveReporter | None,
                 on_pin: Callable[[Link, bytes | None], None] | None = None) -> None:
        self.provider, self.reporter, self.on_pin = provider, reporter, on_pin

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
        if not isinstance(candidate, Cand) or candidate.extras:
            return
        if self.reporter is not None:
            self.reporter.pinned(candidate.name, str(candidate.version))
        if self.on_pin is not None and candidate.link is not None and \
                candidate.installed is None and not candidate.is_direct and \
                not self.provider.options.no_deps:
            # Pinned after its dependencies were read, so its metadata is at hand.
            self.on_pin(candidate.link, self.provider.metadata(candidate).raw or None)


# --- the result ---------------------------------------------------------------------------------

def _build_resolution(provider: Provider, result: Any) -> Resolution:
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


def _action(provider: Provider, cand: Cand) -> tuple[Link | None, InstalledDist | None, Action]:
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
