"""Requirement inputs: package arguments, requirements files and pyproject.toml.

Everything here turns text into :class:`InstallRequirement` values; nothing is resolved or
fetched. Errors are :class:`installer.errors.RequirementError` naming the file and line.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from installer._record import field, record
from installer._types import NormalizedName
from installer.errors import RequirementError, redact_url
from installer.models import canonical

COMMAND_LINE = "command line"
STRONG_HASHES = {"sha256": 64, "sha384": 96, "sha512": 128}

_COMMENT = re.compile(r"(^|\s+)#.*$")
_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
_NAMED_URL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")
_EXTRAS_SUFFIX = re.compile(r"^(?P<path>.*?)(?P<extras>\[[^\]]*\])?$")


@record(frozen=True)
class InstallRequirement:
    """One requirement as the user wrote it, with where it came from.

    ``requirement`` is a packaging Requirement; a ``name @ URL`` requirement (also a local
    wheel path, turned into a ``file:`` URL) has ``requirement.url`` set. ``source`` is
    ``"command line"``, ``"requirements.txt:3"`` or ``"pyproject.toml [project.dependencies]"``.
    ``hashes`` are ``"sha256:<hex>"`` strings from ``--hash`` options.
    """

    requirement: Requirement
    source: str = COMMAND_LINE
    hashes: tuple[str, ...] = ()
    is_constraint: bool = False
    user_supplied: bool = True
    editable: bool = False

    @property
    def name(self) -> NormalizedName:
        """PEP 503 normalized project name."""
        return canonical(self.requirement.name)

    @property
    def display_name(self) -> str:
        """The name as written."""
        return self.requirement.name

    @property
    def url(self) -> str | None:
        """The direct URL of a ``name @ URL`` requirement."""
        return self.requirement.url

    @property
    def extras(self) -> frozenset[str]:
        """Requested extras, normalized."""
        return frozenset(canonical(e) for e in self.requirement.extras)

    @property
    def specifier(self) -> SpecifierSet:
        """The version specifier (empty for any version)."""
        return self.requirement.specifier

    @property
    def marker(self) -> Marker | None:
        """The environment marker, if any."""
        return self.requirement.marker

    def __str__(self) -> str:
        text = str(self.requirement)
        return redact_url(text) if self.url else text


@record(frozen=True)
class FileOption:
    """An option line of a requirements file, keyed like the option table (``index-url``)."""

    key: str
    value: str | bool
    path: str
    line: int


@record(frozen=True)
class ParsedRequirements:
    """What requirements files (and arguments) asked for, plus their option lines."""

    requirements: tuple[InstallRequirement, ...] = ()
    constraints: tuple[InstallRequirement, ...] = ()
    options: tuple[FileOption, ...] = ()

    def _values(self, key: str) -> list[str | bool]:
        return [o.value for o in self.options if o.key == key]

    @property
    def index_url(self) -> str | None:
        """The last ``--index-url`` line (pip: the last one wins)."""
        values = self._values("index-url")
        return str(values[-1]) if values else None

    @property
    def extra_index_urls(self) -> tuple[str, ...]:
        """Every ``--extra-index-url``, in order."""
        return tuple(str(v) for v in self._values("extra-index-url"))

    @property
    def find_links(self) -> tuple[str, ...]:
        """Every ``--find-links`` location (relative folders made absolute)."""
        return tuple(str(v) for v in self._values("find-links"))

    @property
    def no_index(self) -> bool:
        """True when a file says ``--no-index``."""
        return bool(self._values("no-index"))

    @property
    def pre(self) -> bool:
        """True when a file says ``--pre``."""
        return bool(self._values("pre"))

    @property
    def require_hashes(self) -> bool:
        """True when a file says ``--require-hashes`` or any requirement carries ``--hash``."""
        return bool(self._values("require-hashes")) or any(
            r.hashes for r in self.requirements)

    def merged(self, other: ParsedRequirements) -> ParsedRequirements:
        """Both sets, *self* first."""
        return ParsedRequirements(
            self.requirements + other.requirements,
            self.constraints + other.constraints,
            self.options + other.options,
        )


# --- single requirements ------------------------------------------------------------------------

def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or os.sep in text or "/" in text or (
        os.altsep is not None and os.altsep in text)


def _is_url(text: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text))


def _wheel_requirement(filename: str, url: str, text: str) -> Requirement:
    try:
        name, _version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise ValueError(f"not a valid wheel filename: {filename!r} ({exc})") from exc
    return Requirement(f"{name} @ {url}")


def _from_url(text: str) -> Requirement:
    """A bare URL (``https://host/x-1.0-py3-none-any.whl``): the name comes from the file."""
    url, _, marker = text.partition(" ;")
    path = urlsplit(url).path
    filename = unquote(path.rsplit("/", 1)[-1])
    if not filename.endswith(".whl"):
        raise ValueError(
            f"cannot tell the project name from {redact_url(url)!r}; write it as 'name @ URL'")
    req = _wheel_requirement(filename, url, text)
    if marker.strip():
        req.marker = Marker(marker.strip())
    return req


def parse_requirement(text: str, *, source: str = COMMAND_LINE,
                      base_dir: Path | None = None) -> InstallRequirement:
    """Parse one PEP 508 requirement, a wheel URL or a local wheel path.

    Raises RequirementError (without file/line; callers with a place add it).
    """
    text = text.strip()
    try:
        if _is_url(text):
            req = _from_url(text)
        elif text.endswith(".whl") and not _NAMED_URL.match(text):
            path = ((base_dir or Path.cwd()) / Path(text).expanduser()).resolve()
            if not path.is_file():
                raise ValueError(f"wheel file not found: {path}")
            req = _wheel_requirement(path.name, path.as_uri(), text)
        else:
            req = Requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid syntax"
        raise RequirementError(f"invalid requirement {redact_url(text)!r}: {first}") from exc
    except ValueError as exc:
        raise RequirementError(f"invalid requirement {redact_url(text)!r}: {exc}") from exc
    return InstallRequirement(req, source=source)


# --- pyproject.toml -----------------------------------------------------------------------------

def _load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:  # Python 3.10
        import tomlkit

        try:
            return dict(tomlkit.parse(path.read_text(encoding="utf-8")).unwrap())
        except OSError as exc:
            raise RequirementError(f"cannot read: {exc.strerror}", path=str(path)) from exc
        except Exception as exc:
            raise RequirementError(f"invalid TOML: {exc}", path=str(path)) from exc
    try:
        with path.open("rb") as f:
            data: dict[str, Any] = tomllib.load(f)
            return data
    except OSError as exc:
        raise RequirementError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise RequirementError(f"invalid TOML: {exc}", path=str(path)) from exc


def _string_list(value: object, path: Path, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequirementError(f"{where} must be a list of strings", path=str(path))
    return list(value)


def _pyproject_reqs(path: Path, texts: list[str], where: str) -> list[InstallRequirement]:
    source = f"{path} [{where}]"
    out = []
    for text in texts:
        try:
            out.append(parse_requirement(text, source=source, base_dir=path.parent))
        except RequirementError as exc:
            raise RequirementError(f"[{where}]: {exc.message}", path=str(path)) from exc
    return out


def read_pyproject(directory: Path, extras: Sequence[str] = ()) -> list[InstallRequirement]:
    """``[project.dependencies]`` of *directory*/pyproject.toml plus the named extras.

    A self-reference (``proj[other]`` inside an optional dependency of ``proj``) is expanded.
    """
    path = directory / "pyproject.toml"
    if not path.is_file():
        raise RequirementError(
            f"{directory} has no pyproject.toml (inst installs requirements, not source trees)")
    data = _load_toml(path)
    project = data.get("project")
    if not isinstance(project, dict):
        raise RequirementError("no [project] table", path=str(path))
    name = canonical(str(project.get("name", "")))
    if "dependencies" in project.get("dynamic", []):
        raise RequirementError("[project.dependencies] is dynamic; inst cannot read it",
                               path=str(path))
    reqs = _pyproject_reqs(path, _string_list(project.get("dependencies", []), path,
                                              "project.dependencies"), "project.dependencies")
    optional = project.get("optional-dependencies", {})
    optional = {canonical(k): v for k, v in optional.items()} if isinstance(optional, dict) else {}
    pending: list[str] = [canonical(e) for e in extras]
    seen: set[str] = set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in optional:
            raise RequirementError(f"no optional dependency group {extra!r} in "
                                   "[project.optional-dependencies]", path=str(path))
        where = f"project.optional-dependencies.{extra}"
        for req in _pyproject_reqs(path, _string_list(optional[extra], path, where), where):
            if req.name == name and name:
                pending.extend(sorted(req.extras))
            else:
                reqs.append(req)
    return reqs


def read_dependency_group(path: Path, group: str) -> list[InstallRequirement]:
    """PEP 735: the requirements of ``[dependency-groups].<group>``, includes expanded."""
    data = _load_toml(path)
    groups = data.get("dependency-groups")
    if not isinstance(groups, dict):
        raise RequirementError("no [dependency-groups] table", path=str(path))
    table: dict[str, object] = {canonical(k): v for k, v in groups.items()}
    return _expand_group(path, table, canonical(group), ())


def _expand_group(path: Path, table: Mapping[str, object], group: str,
                  stack: tuple[str, ...]) -> list[InstallRequirement]:
    if group in stack:
        chain = " -> ".join((*stack, group))
        raise RequirementError(f"dependency group cycle: {chain}", path=str(path))
    if group not in table:
        raise RequirementError(f"no dependency group {group!r} in [dependency-groups]",
                               path=str(path))
    items = table[group]
    if not isinstance(items, list):
        raise RequirementError(f"[dependency-groups] {group!r} must be a list", path=str(path))
    out: list[InstallRequirement] = []
    where = f"dependency-groups.{group}"
    for item in items:
        if isinstance(item, str):
            out += _pyproject_reqs(path, [item], where)
        elif isinstance(item, dict) and isinstance(item.get("include-group"), str):
            out += _expand_group(path, table, canonical(item["include-group"]), (*stack, group))
        else:
            raise RequirementError(f"[dependency-groups] {group!r}: unsupported entry {item!r}",
                                   path=str(path))
    return out


# --- command-line arguments ---------------------------------------------------------------------

def _project_dir_arg(arg: str, cwd: Path) -> tuple[Path, list[str]] | None:
    """``.``, ``./proj`` or ``.[dev]`` when it names a folder with a pyproject.toml."""
    m = _EXTRAS_SUFFIX.match(arg)
    if not m or (not _looks_like_path(arg) and arg != "."):
        return None
    folder = (cwd / Path(m.group("path")).expanduser())
    if not folder.is_dir():
        return None
    extras = m.group("extras") or "[]"
    return folder, [e.strip() for e in extras[1:-1].split(",") if e.strip()]


def parse_args(args: Sequence[str], *, groups: Sequence[str] = (),
               cwd: Path | None = None) -> list[InstallRequirement]:
    """Package arguments: PEP 508 strings, ``name @ URL``, wheel paths/URLs, project folders.

    A folder (``.``, ``./proj``, ``.[extra]``) contributes its ``[project.dependencies]`` and
    the named extras. *groups* are ``--group`` values: ``NAME`` (from ./pyproject.toml) or
    ``PATH:NAME`` (PEP 735 dependency groups).
    """
    cwd = cwd or Path.cwd()
    out: list[InstallRequirement] = []
    for arg in args:
        project = _project_dir_arg(arg, cwd)
        if project is not None:
            out += read_pyproject(*project)
        else:
            out.append(parse_requirement(arg, source=COMMAND_LINE, base_dir=cwd))
    for group in groups:
        file_part, sep, name = group.rpartition(":")
        path = cwd / (file_part if sep and file_part else "pyproject.toml")
        if path.is_dir():
            path = path / "pyproject.toml"
        out += read_dependency_group(path, name)
    return out


# --- requirements files -------------------------------------------------------------------------

_VALUE_OPTIONS = {
    "-i": "index-url", "--index-url": "index-url", "--extra-index-url": "extra-index-url",
    "-f": "find-links", "--find-links": "find-links", "--trusted-host": "trusted-host",
    "--only-binary": "only-binary", "--no-binary": "no-binary",
}
_FLAG_OPTIONS = {"--no-index": "no-index", "--pre": "pre", "--require-hashes": "require-hashes"}
_INCLUDE_OPTIONS = {"-r": False, "--requirement": False, "-c": True, "--constraint": True}
_EDITABLE = ("-e", "--editable")


@record(frozen=False)
class _FileParser:
    environ: Mapping[str, str]
    requirements: list[InstallRequirement] = field(default_factory=list)
    constraints: list[InstallRequirement] = field(default_factory=list)
    options: list[FileOption] = field(default_factory=list)

    def parse(self, path: Path, constraint: bool, stack: tuple[Path, ...],
              place: tuple[str, int] | None) -> None:
        real = path.resolve()
        if real in stack:
            chain = " -> ".join(str(p) for p in (*stack, real))
            raise RequirementError(f"requirements files include each other: {chain}",
                                   path=place[0] if place else str(path),
                                   line=place[1] if place else None)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            message = f"cannot read requirements file {str(path)!r}: {exc.strerror}"
            if place:
                raise RequirementError(message, path=place[0], line=place[1]) from exc
            raise RequirementError(message) from exc
        for lineno, line in _logical_lines(text):
            self._line(path, lineno, line, constraint, (*stack, real))

    def _line(self, path: Path, lineno: int, line: str, constraint: bool,
              stack: tuple[Path, ...]) -> None:
        line = _ENV_VAR.sub(lambda m: self.environ.get(m.group(1), m.group(0)), line)
        where = str(path)
        if line.startswith("-"):
            self._option(path, lineno, line, constraint, stack)
            return
        req_text, hashes = _split_hashes(line, where, lineno)
        project = _project_dir_arg(req_text, path.parent)
        if project is not None and not constraint:
            self.requirements += read_pyproject(*project)
            return
        try:
            req = parse_requirement(req_text, source=f"{where}:{lineno}", base_dir=path.parent)
        except RequirementError as exc:
            raise RequirementError(exc.message, path=where, line=lineno) from exc
        if constraint and req.extras:
            raise RequirementError(f"constraints cannot have extras: {req_text!r}",
                                   path=where, line=lineno)
        req = InstallRequirement(req.requirement, source=req.source, hashes=hashes,
                                 is_constraint=constraint, user_supplied=not constraint)
        (self.constraints if constraint else self.requirements).append(req)

    def _option(self, path: Path, lineno: int, line: str, constraint: bool,
                stack: tuple[Path, ...]) -> None:
        where = str(path)
        words = _split_words(line, where, lineno)
        i = 0
        while i < len(words):
            opt, value, i = _take_option(words, i, where, lineno)
            if opt in _INCLUDE_OPTIONS:
                nested = path.parent / Path(value or "").expanduser()
                self.parse(nested, constraint or _INCLUDE_OPTIONS[opt], stack, (where, lineno))
            elif opt in _VALUE_OPTIONS:
                key = _VALUE_OPTIONS[opt]
                if key == "find-links" and value and not _is_url(value):
                    value = str((path.parent / Path(value).expanduser()).resolve())
                self.options.append(FileOption(key, value or "", where, lineno))
            elif opt in _FLAG_OPTIONS:
                self.options.append(FileOption(_FLAG_OPTIONS[opt], True, where, lineno))
            elif opt in _EDITABLE:
                raise RequirementError("editable requirements (-e) are not supported",
                                       path=where, line=lineno)
            elif opt == "--hash":
                raise RequirementError("--hash must follow a requirement on the same line",
                                       path=where, line=lineno)
            else:
                raise RequirementError(f"unknown option {opt!r}", path=where, line=lineno)


def _take_option(words: list[str], i: int, where: str, lineno: int) -> tuple[str, str | None, int]:
    word = words[i]
    opt, eq, inline = word.partition("=")
    if not eq and opt.startswith("-") and not opt.startswith("--") and len(opt) > 2:
        opt, inline, eq = opt[:2], opt[2:], "="
    takes_value = opt in _VALUE_OPTIONS or opt in _INCLUDE_OPTIONS or opt in _EDITABLE or (
        opt == "--hash")
    if not takes_value:
        if eq and opt in _FLAG_OPTIONS:
            raise RequirementError(f"option {opt!r} takes no value", path=where, line=lineno)
        return opt, None, i + 1
    if eq:
        return opt, inline, i + 1
    if i + 1 >= len(words):
        raise RequirementError(f"option {opt!r} needs a value", path=where, line=lineno)
    return opt, words[i + 1], i + 2


def _split_words(line: str, where: str, lineno: int) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise RequirementError(f"cannot split line: {exc}", path=where, line=lineno) from exc


def _split_hashes(line: str, where: str, lineno: int) -> tuple[str, tuple[str, ...]]:
    """Separate trailing ``--hash=...`` options from the requirement text."""
    m = re.search(r"\s--", line)
    if not m:
        return line, ()
    req_text, rest = line[: m.start()], line[m.start():]
    words = _split_words(rest, where, lineno)
    hashes: list[str] = []
    i = 0
    while i < len(words):
        opt, value, i = _take_option(words, i, where, lineno)
        if opt != "--hash":
            raise RequirementError(f"option {opt!r} is not allowed after a requirement "
                                   "(only --hash is)", path=where, line=lineno)
        hashes.append(_check_hash(value or "", where, lineno))
    return req_text, tuple(hashes)


def _check_hash(value: str, where: str, lineno: int) -> str:
    algo, sep, digest = value.partition(":")
    digest = digest.lower()
    if not sep or algo not in STRONG_HASHES or len(digest) != STRONG_HASHES[algo] or not (
            re.fullmatch(r"[0-9a-f]+", digest)):
        raise RequirementError(
            f"--hash needs 'sha256:<64 hex digits>' (or sha384/sha512), got {value!r}",
            path=where, line=lineno)
    return f"{algo}:{digest}"


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Join ``\\`` continuations, drop comments and blank lines; yield (first line no, text)."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        stripped = _COMMENT.sub("", raw)
        if raw.endswith("\\") and stripped == raw:
            buffer.append(raw[:-1])
            continue
        buffer.append(stripped)
        line = " ".join(part.strip() for part in buffer).strip()
        buffer = []
        if line:
            yield start, line
    if buffer:
        line = " ".join(part.strip() for part in buffer).strip()
        if line:
            yield start, line


def parse_requirements_file(path: str | Path, *, constraint: bool = False,
                            environ: Mapping[str, str] | None = None) -> ParsedRequirements:
    """Parse a requirements (``-r``) or constraints (``-c``) file, following nested includes.

    Nested ``-r``/``-c`` paths are relative to the including file; include cycles are errors.
    ``${VAR}`` references are expanded from *environ* (default: ``os.environ``), like pip.
    """
    parser = _FileParser(os.environ if environ is None else environ)
    parser.parse(Path(path), constraint, (), None)
    return ParsedRequirements(tuple(parser.requirements), tuple(parser.constraints),
                              tuple(parser.options))
