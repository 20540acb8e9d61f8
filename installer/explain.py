"""Explain a failed resolution: who required what, and why each version was refused.

The provider (:class:`installer.provider.Provider`) is passed in; this module does not import
the provider or the resolver at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from installer.candidates import PYTHON, AnyCand, Cand, Req, VersionInfo, base_name, hash_ok
from installer.errors import redact_url

if TYPE_CHECKING:
    from packaging.version import Version

    from installer.provider import Provider

_MAX_VERSIONS = 8


class Explainer:
    """Turns resolvelib's causes into lines: who required what, and why versions were refused."""

    def __init__(self, provider: Provider) -> None:
        self.p = provider
        self.hint: str | None = None

    def explain(self, causes: list[Any]) -> tuple[str, str | None]:
        """The message and hint of the ResolutionError for resolvelib's *causes*."""
        groups: dict[str, list[Any]] = {}
        for info in causes:
            groups.setdefault(info.requirement.identifier, []).append(info)
        sections = [self._python(infos) if ident == PYTHON else self._project(infos)
                    for ident, infos in groups.items()]
        return "\n".join(sections), self.hint

    def who(self, info: Any) -> str:
        """'command line', or 'a 1.0 <- b 2.0 <- requirements.txt:3'."""
        return " <- ".join(self._chain(info))

    def _chain(self, info: Any) -> list[str]:
        if info.parent is None:
            return [str(info.requirement.source)]
        parts: list[str] = []
        node: AnyCand | str = info.parent
        while isinstance(node, Cand) and len(parts) < 6:
            text = str(node)
            if text in parts:
                break
            parts.append(text)
            node = self.p.via.get(node.identifier, "")
        if isinstance(node, str) and node:
            parts.append(node)
        return parts

    def _python(self, infos: list[Any]) -> str:
        lines = [f"the target Python {self.p.python} is not supported:"]
        for info in infos:
            first, *rest = self._chain(info)
            via = f" (via {' <- '.join(rest)})" if rest else ""
            lines.append(f"  {first} requires Python {info.requirement.specifier}{via}")
        return "\n".join(lines)

    def _project(self, infos: list[Any]) -> str:
        first: Req = infos[0].requirement
        lines = [f"  {i.requirement} required by {self.who(i)}" for i in infos]
        direct = next((i.requirement for i in infos if i.requirement.url), None)
        if direct is not None:
            found = self.p.direct_candidate(first.name, first.display_name, direct.url,
                                            first.extras)
            head = (f"cannot use {direct}: {found}" if isinstance(found, str)
                    else f"the requirements on {first.display_name} conflict:")
            return "\n".join([head, *lines])
        if not self.p.links(first.name):
            self.hint = ("check the name, and the index-url, extra-index-url and find-links "
                         "settings")
            return "\n".join([f"no project named {first.display_name!r} was found on the "
                              "configured indexes", *lines])
        head = f"no version of {first.display_name} satisfies the requirements:"
        return "\n".join([head, *lines, *self._versions(first, infos),
                          *self._parents(first.name, infos)])

    def _parents(self, project: str, infos: list[Any]) -> list[str]:
        """Why the other versions of the requiring projects were given up, when known."""
        shown = {(i.parent.name, i.parent.version) for i in infos if isinstance(i.parent, Cand)}
        lines = []
        for name in dict.fromkeys(n for n, _v in sorted(shown) if n != project):
            for (rname, version), (ident, rinfos) in self.p.rejections.items():
                if rname == name and (rname, version) not in shown:
                    text = self._rejection(name, version, ident, rinfos)
                    lines.append(f"  {self.p.display_name(name)} {version}: {text}")
        return lines[:_MAX_VERSIONS]

    def _versions(self, first: Req, infos: list[Any]) -> list[str]:
        reqs = [i for i in infos if isinstance(i.requirement, Req)]
        versions = self.p.versions(first.name)
        lines = [f"  {first.display_name} {v.version}: {self._reason(first.name, v, reqs)}"
                 for v in versions[:_MAX_VERSIONS]]
        if len(versions) > _MAX_VERSIONS:
            lines.append(f"  ... and {len(versions) - _MAX_VERSIONS} older versions")
        return lines

    def _reason(self, name: str, info: VersionInfo, reqs: list[Any]) -> str:
        if info.reason is not None:
            return info.reason
        assert info.link is not None
        constraint = self.p.constraints.get(name)
        # Version ranges first: "excluded by idna==3.7" explains more than a hash or pre-release
        # reason for a version nobody asked for.
        if constraint is not None and not constraint.specifier.contains(info.version, True):
            text, source = constraint.texts[0]
            return f"excluded by constraint {text} ({source})"
        for i in reqs:
            if not i.requirement.specifier.contains(info.version, prereleases=True):
                return f"excluded by {i.requirement}"
        if info.yanked is not None and not any(i.requirement.pinned for i in reqs):
            return f"yanked ({info.yanked})" if info.yanked else "yanked"
        allowed = self.p.allowed_hashes([i.requirement for i in reqs], constraint)
        if allowed is not None and not hash_ok(info.link, allowed):
            expected = ", ".join(sorted(allowed)) or "(none: the --hash sets disagree)"
            actual = ", ".join(f"{a}:{d}" for a, d in sorted(info.link.hashes.items()))
            return (f"hash mismatch for {redact_url(info.link.url.partition('#')[0])}: "
                    f"expected {expected}, the index says {actual}")
        if info.version.is_prerelease and not self.p.options.pre and not any(
                i.requirement.specifier.prereleases for i in reqs):
            return "pre-release (allow with --pre)"
        rejection = self.p.rejections.get((name, info.version))
        return self._rejection(name, info.version, *rejection) if rejection else (
            "rejected while backtracking")

    def _rejection(self, name: str, version: Version, ident: str, infos: list[Any]) -> str:
        if ident == PYTHON:
            spec = infos[0].requirement.specifier
            return f"requires Python {spec}, the target Python is {self.p.python}"

        def own(i: Any) -> bool:
            return isinstance(i.parent, Cand) and i.parent.name == name and (
                i.parent.version == version)

        needs = ", ".join(str(i.requirement) for i in infos if own(i))
        others = [f"{i.requirement} (required by {self.who(i)})" for i in infos if not own(i)]
        if others:
            return f"needs {needs}, which conflicts with {'; '.join(others)}"
        if not self.p.links(base_name(ident)):
            return f"needs {needs}, which is not on any configured index"
        return f"needs {needs}, which no available version satisfies"
