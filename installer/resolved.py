"""Value objects shared by the resolver and its provider: options, core metadata, direct links.

They live below :mod:`installer.provider` and :mod:`installer.resolver` so both can use them;
:mod:`installer.resolver` re-exports them.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from installer._record import field, record
from installer.errors import InstError
from installer.fsutil import path_from_file_url
from installer.models import Link, metadata_headers


@record(frozen=True)
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


@record(frozen=True)
class CoreMetadata:
    """The parts of a distribution's core metadata the resolver uses, plus the raw bytes."""

    name: str
    version: str
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    provides_extra: tuple[str, ...] = ()
    raw: bytes = field(default=b"", repr=False)


class MetadataError(InstError):
    """A file's metadata contradicts its filename, or cannot be read."""

    def __init__(self, filename: str, message: str) -> None:
        self.filename = filename
        super().__init__(f"{filename}: {message}")


def parse_metadata(raw: bytes) -> CoreMetadata:
    """Parse the headers of a METADATA file (fast: the description body is not parsed)."""
    headers = metadata_headers(raw)

    def one(key: str) -> str | None:
        values = headers.get(key)
        return values[0].strip() if values else None

    def many(key: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in headers.get(key, ()))

    return CoreMetadata(
        name=one("name") or "", version=one("version") or "",
        requires_dist=many("requires-dist"), requires_python=one("requires-python"),
        provides_extra=many("provides-extra"), raw=raw,
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
        path = file_url_path(base)
        if path.is_file():
            import hashlib  # lazily: loading OpenSSL's libcrypto is ~3 ms of every run

            hashes["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return Link(filename=filename, url=url, hashes=hashes)


def file_url_path(url: str) -> Path:
    """The local path a ``file:`` URL names."""
    return path_from_file_url(url)
