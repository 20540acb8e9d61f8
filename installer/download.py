"""Parallel, hash-checked downloads into the content-addressed cache.

Each file streams to a temp file in the cache while it is hashed; it is verified (the index's
sha256, and/or the ``--hash`` values) before it is moved into the cache, and deleted when it
does not match. A cache hit (re-verified by the cache) skips the network. A body that breaks
mid-way is resumed with ``Range: bytes=N-`` (206 + matching Content-Range), or restarted when
the server answers 200. ``file://`` URLs and local paths are hashed in place.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from installer.cache import Cache
from installer.errors import HashMismatch, InstallError, NetworkError, redact_url
from installer.fsutil import path_from_file_url
from installer.models import Link, metadata_headers
from installer.models import canonical as canonical_name

if TYPE_CHECKING:
    from installer.http import Response

_ALGOS = ("sha256", "sha384", "sha512")


class Client(Protocol):
    """What downloads need of :class:`installer.http.HttpClient` (or ``app.LazyHttpClient``,
    which builds it on the first request: a run that hits the cache never does)."""

    def get(self, url: str, headers: Mapping[str, str] | None = None, *,
            stream: bool = False, ok: Sequence[int] = (200,)) -> Response:
        """GET *url*; see :meth:`installer.http.HttpClient.get`."""
        ...


class ProgressReporter(Protocol):
    """Receives download progress; the CLI renders it (core never prints)."""

    def on_start(self, name: str, total: int | None) -> None:
        """A download of *name* begins (*total* bytes if known)."""

    def on_advance(self, name: str, nbytes: int) -> None:
        """*nbytes* more bytes of *name* arrived."""

    def on_done(self, name: str) -> None:
        """*name* is complete (or failed)."""


class NullReporter:
    """A reporter that ignores everything."""

    def on_start(self, name: str, total: int | None) -> None:
        """Ignored."""

    def on_advance(self, name: str, nbytes: int) -> None:
        """Ignored."""

    def on_done(self, name: str) -> None:
        """Ignored."""


@dataclass(frozen=True)
class DownloadItem:
    """One file to fetch. ``sha256`` is the index's digest (defaults to the link's); ``allowed``
    holds ``--hash`` values (algorithm -> hex digests); the file must match one of them."""

    link: Link
    sha256: str | None = None
    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: The core metadata the resolver used (PEP 658 file); the wheel's own must agree.
    metadata: bytes | None = field(default=None, repr=False)

    @property
    def expected_sha256(self) -> str | None:
        """The index's sha256 for this file, if any."""
        return (self.sha256 or self.link.sha256 or "").lower() or None


@dataclass(frozen=True)
class Downloaded:
    """A verified file ready to install: where it is and its sha256."""

    link: Link
    path: Path
    sha256: str
    from_cache: bool


class MetadataMismatch(InstallError):
    """The wheel's METADATA disagrees with the metadata file the index served (which the
    resolver trusted): installing it would install something other than what was resolved."""

    def __init__(self, link: Link, fields: Sequence[str]) -> None:
        self.link, self.fields = link, tuple(fields)
        super().__init__(
            f"{link.filename}: the wheel's METADATA disagrees with the metadata file the "
            f"index served ({', '.join(fields)}): {redact_url(link.url)}",
            hint="the index is inconsistent; nothing was installed")


class HashRequired(InstallError):
    """--require-hashes is on and a file has no --hash."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no --hash given for {name}, and hash-checking mode is on",
                         hint="add --hash=sha256:<digest> to its requirement line")


def download_all(items: Sequence[DownloadItem], *, cache: Cache, client: Client | None,
                 concurrency: int = 8, require_hashes: bool = False,
                 reporter: ProgressReporter | None = None,
                 max_resumes: int = 3, for_install: bool = False,
                 on_file: Callable[[Downloaded], None] | None = None) -> list[Downloaded]:
    """Fetch and verify every item (in parallel, at most *concurrency* at once); results are
    in the order of *items*. The first error cancels what has not started and is raised.
    *on_file* is called with each verified file as soon as it is ready (from the download
    threads), e.g. to start unpacking it while the others download.

    *for_install*: the files are only going to be installed, from the cache's verified
    unpacked trees; a cached wheel with such a tree is not re-hashed (see
    :meth:`Cache.get_wheel_for_install`). Never set it when the wheel's bytes are handed out."""
    rep = reporter or NullReporter()
    if require_hashes:
        for item in items:
            if not item.allowed:
                raise HashRequired(item.link.filename)

    def one(item: DownloadItem) -> Downloaded:
        got = download_one(item, cache=cache, client=client, reporter=rep,
                           max_resumes=max_resumes, for_install=for_install)
        if on_file is not None:
            on_file(got)
        return got

    # Cache hits that cost a few stats are taken here: a thread per hit cost more than the hit.
    results: dict[int, Downloaded] = {}
    for i, item in enumerate(items):
        hit = _installable_hit(item, cache) if for_install else None
        if hit is not None:
            results[i] = hit
            if on_file is not None:
                on_file(hit)
    todo = [i for i in range(len(items)) if i not in results]
    if len(todo) <= 1 or concurrency <= 1:
        results.update((i, one(items[i])) for i in todo)
    else:
        results.update(_in_threads(one, items, todo, concurrency))
    return [results[i] for i in range(len(items))]


def _in_threads(one: Callable[[DownloadItem], Downloaded], items: Sequence[DownloadItem],
                todo: list[int], concurrency: int) -> dict[int, Downloaded]:
    """``one(items[i])`` for each i in *todo* on a thread pool; the first error cancels what
    has not started and is raised."""
    # Biggest first (when the index gave sizes): the longest downloads, and the longest
    # unpacks that *on_file* starts, do not end up last.
    from concurrent.futures import ThreadPoolExecutor  # a warm run starts no thread

    order = sorted(todo, key=lambda i: -(items[i].link.size or 0))
    with ThreadPoolExecutor(max_workers=min(concurrency, len(todo)),
                            thread_name_prefix="inst-download") as pool:
        started = {i: pool.submit(one, items[i]) for i in order}
        futures = [started[i] for i in todo]
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        for fut in futures:
            if fut in done and fut.exception() is not None:
                for other in futures:
                    other.cancel()
                raise fut.exception()  # type: ignore[misc]
        return {i: started[i].result() for i in todo}


def _installable_hit(item: DownloadItem, cache: Cache) -> Downloaded | None:
    """*item* from the cache when its wheel and verified unpacked tree are there (a few stats
    and, with ``item.metadata``, one small read), else None."""
    if _local_path(item.link.url) is not None:
        return None
    for sha in _known_sha256(item):
        path = cache.installable_wheel(sha, item.link.filename)
        if path is not None:
            check_metadata(item, path, cache=cache, sha256=sha)
            return Downloaded(item.link, path, sha, True)
    return None


def download_one(item: DownloadItem, *, cache: Cache, client: Client | None,
                 reporter: ProgressReporter | None = None, max_resumes: int = 3,
                 for_install: bool = False) -> Downloaded:
    """Fetch and verify one file (see :func:`download_all`)."""
    rep = reporter or NullReporter()
    link = item.link
    local = _local_path(link.url)
    if local is not None:
        return _verify_local(item, local)
    for sha in _known_sha256(item):
        # The tree itself is re-verified (sizes, mtimes) when the transaction uses it.
        hit = (cache.get_wheel_for_install(sha, link.filename) if for_install
               else cache.get_wheel(sha, link.filename))
        if hit is not None:
            check_metadata(item, hit, cache=cache, sha256=sha)
            return Downloaded(link, hit, sha, True)
    if client is None:
        raise NetworkError(link.url, "no network client to download with")
    with cache.temp_file() as tmp:
        rep.on_start(link.filename, link.size)
        try:
            digests = _fetch(client, link.url, tmp, lambda n: rep.on_advance(link.filename, n),
                             max_resumes, _algos(item))
        finally:
            rep.on_done(link.filename)
        _verify(item, digests)
        check_metadata(item, tmp)
        path = cache.add_wheel(tmp, digests["sha256"], link.filename)
    return Downloaded(link, path, digests["sha256"], False)


def _known_sha256(item: DownloadItem) -> list[str]:
    out = [item.expected_sha256] if item.expected_sha256 else []
    out += sorted(item.allowed.get("sha256", ()))
    return [s for s in dict.fromkeys(out) if s and re.fullmatch(r"[0-9a-f]{64}", s)]


def _local_path(url: str) -> Path | None:
    if "://" not in url:
        return Path(url)
    if urlsplit(url).scheme != "file":
        return None
    return path_from_file_url(url)


def _algos(item: DownloadItem) -> tuple[str, ...]:
    """sha256 (the cache key) and whatever else the item's ``--hash`` values need: hashing
    38 MB with sha384 and sha512 as well cost 0.1 s of CPU per cold install."""
    return tuple(a for a in _ALGOS if a == "sha256" or a in item.allowed)


def _hashers(algos: tuple[str, ...] = _ALGOS) -> dict[str, hashlib._Hash]:
    return {algo: hashlib.new(algo) for algo in algos}


def _verify_local(item: DownloadItem, path: Path) -> Downloaded:
    hashers = _hashers(_algos(item))
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                for h in hashers.values():
                    h.update(block)
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror or exc}") from exc
    digests = {algo: h.hexdigest() for algo, h in hashers.items()}
    _verify(item, digests)
    check_metadata(item, path)
    return Downloaded(item.link, path, digests["sha256"], False)


def _verify(item: DownloadItem, digests: Mapping[str, str]) -> None:
    name, url = item.link.filename, item.link.url
    expected = item.expected_sha256
    if expected and digests["sha256"] != expected:
        raise HashMismatch(name, url, expected, digests["sha256"])
    if item.allowed and not any(digests.get(algo) in values
                                for algo, values in item.allowed.items()):
        wanted = " or ".join(f"{a}={v}" for a in sorted(item.allowed)
                             for v in sorted(item.allowed[a]))
        raise HashMismatch(name, url, wanted.removeprefix("sha256="), digests["sha256"])


def _fetch(client: Client, url: str, dest: Path, advance: Callable[[int], None],
           max_resumes: int, algos: tuple[str, ...] = _ALGOS) -> dict[str, str]:
    """Stream *url* into *dest*, resuming after a broken body; returns hex digests (of
    *algos*)."""
    hashers = _hashers(algos)
    offset = 0
    resumes = 0
    with open(dest, "wb") as out:
        while True:
            headers = {"Accept-Encoding": "identity"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            resp = client.get(url, headers, stream=True, ok=(200, 206))
            if offset and not _resumes_at(resp.status, resp.headers, offset):
                out.seek(0)
                out.truncate()
                hashers, offset = _hashers(algos), 0
                if resp.status == 206:  # a range we did not ask for: start over without one
                    resp.release()
                    continue
            try:
                for chunk in resp.iter_bytes(1 << 16):
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    offset += len(chunk)
                    advance(len(chunk))
                break
            except NetworkError:
                resumes += 1
                if resumes > max_resumes:
                    raise
                out.flush()
        out.flush()
        os.fsync(out.fileno())
    return {algo: h.hexdigest() for algo, h in hashers.items()}


def _resumes_at(status: int, headers: Mapping[str, str], offset: int) -> bool:
    if status != 206:
        return False
    m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (headers.get("Content-Range") or "").strip())
    return bool(m) and int(m.group(1)) == offset  # type: ignore[union-attr]


# --- the index's metadata file against the wheel's METADATA (pip 26.2, #13983) ---------------

_COMPARED = ("Name", "Version", "Requires-Dist", "Requires-Python", "Provides-Extra")


def check_metadata(item: DownloadItem, wheel: Path, *, cache: Cache | None = None,
                   sha256: str | None = None) -> None:
    """Raise :class:`MetadataMismatch` when ``item.metadata`` (what the resolver used) and
    the METADATA inside *wheel* differ in a field that affects resolution.

    With *cache* and the wheel's *sha256*, the METADATA of the wheel's verified unpacked tree
    is used when there is one (:meth:`Cache.unpacked_metadata`) instead of opening the ZIP."""
    if item.metadata is None:
        return
    own = None
    if cache is not None and sha256 is not None:
        own = cache.unpacked_metadata(sha256, _project(item.link.filename))
    if own is None:
        try:
            with zipfile.ZipFile(wheel) as zf:
                own = _wheel_metadata(zf, item.link.filename)
        except (OSError, zipfile.BadZipFile, KeyError):
            return  # not readable as a wheel: the wheel validator reports it with its message
    if own is None or own == item.metadata:  # the usual case: the index served the same file
        return
    theirs, ours = _resolution_fields(item.metadata), _resolution_fields(own)
    differ = [f for f in _COMPARED if theirs.get(f) != ours.get(f)]
    if differ:
        raise MetadataMismatch(item.link, differ)


def _project(filename: str) -> str:
    return canonical_name(filename.split("-")[0])


def _wheel_metadata(zf: zipfile.ZipFile, filename: str) -> bytes | None:
    project = _project(filename)
    for name in zf.namelist():
        top, _, rest = name.partition("/")
        if rest == "METADATA" and top.endswith(".dist-info") and \
                canonical_name(top.split("-")[0]) == project:
            return zf.read(name)
    return None


def _resolution_fields(data: bytes) -> dict[str, object]:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    msg = metadata_headers(data)
    out: dict[str, object] = {"Name": canonical_name((msg.get("name") or [""])[0])}
    version = (msg.get("version") or [""])[0]
    try:
        out["Version"] = Version(version)
    except InvalidVersion:
        out["Version"] = version
    reqs: set[str] = set()
    for raw in msg.get("requires-dist", []):
        try:
            reqs.add(str(Requirement(raw)))
        except InvalidRequirement:
            reqs.add(raw.strip())
    out["Requires-Dist"] = reqs
    rp = (msg.get("requires-python") or [""])[0].strip()
    try:
        out["Requires-Python"] = SpecifierSet(rp)
    except InvalidSpecifier:
        out["Requires-Python"] = rp
    out["Provides-Extra"] = {canonical_name(e) for e in msg.get("provides-extra", [])}
    return out
