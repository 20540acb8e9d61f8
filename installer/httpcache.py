"""HTTP cache for index pages and metadata files, under ``<cache-dir>/http-v1``.

An entry is one file: a JSON line (final URL, status, the headers that matter, when stored)
followed by the body. Writes go to a temp file, are fsynced and ``os.replace``d, so a reader
never sees half an entry; an unreadable entry is a miss. Freshness follows the stored
``Cache-Control`` (``max-age``, ``no-cache``; ``no-store`` responses are never stored); a stale
entry is revalidated with ``If-None-Match``/``If-Modified-Since`` and a 304 reuses the body.
``refresh`` revalidates everything; a cache without a folder (``no-cache``) stores nothing.

Content-addressed blobs (metadata verified by its hash) live beside it in ``blobs/``.
The end of this module reads a wheel's METADATA over HTTP range requests (its natural home
would be a ``lazywheel`` module; kept here to stay within this helper's files).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from installer.errors import HashMismatch, IndexError_
from installer.fsutil import atomic_write, path_from_file_url
from installer.httpdate import http_date
from installer.models import Link, canonical

MAX_BODY = 20 * 1024 * 1024
_KEEP_HEADERS = ("content-type", "etag", "last-modified", "cache-control", "date", "expires",
                 "content-range", "accept-ranges", "content-length")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.I)

class HttpResponse(Protocol):
    """What the cache needs of :class:`installer.http.Response`."""

    @property
    def url(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    def iter_bytes(self, chunk: int = ...) -> Iterator[bytes]: ...
    def release(self) -> None: ...


class HttpGetter(Protocol):
    """What the cache needs of :class:`installer.http.HttpClient`."""

    def request(self, method: str, url: str, headers: Mapping[str, str] | None = None, *,
                stream: bool = False, ok: Sequence[int] = (200,)) -> HttpResponse: ...


Source = Literal["network", "cache", "revalidated"]


@dataclass(frozen=True)
class CachedResponse:
    """A response body with its final URL; ``source`` says whether the network was used."""

    url: str
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    source: Source = "network"

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def strip_credentials(url: str) -> str:
    """*url* without user info and fragment: the cache key never holds a secret."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc, fragment=""))


def read_body(resp: HttpResponse, url: str, limit: int = MAX_BODY) -> bytes:
    """The whole body of a streamed response, refusing more than *limit* bytes."""
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in resp.iter_bytes(65536):
            total += len(chunk)
            if total > limit:
                raise IndexError_(url, f"response larger than {limit // (1024 * 1024)} MB")
            chunks.append(chunk)
    finally:
        resp.release()
    return b"".join(chunks)


class _ignore_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, OSError)


class HttpCache:
    """Pages and metadata cached under ``cache_dir / "http-v1"``; ``None`` disables storing.

    ``stats`` counts how each :meth:`fetch` was answered (``network``, ``cache``,
    ``revalidated``) so callers and tests can see what the network was asked.
    """

    def __init__(self, cache_dir: Path | None, *, refresh: bool = False,
                 max_body: int = MAX_BODY, clock: Callable[[], float] = time.time) -> None:
        self.root = cache_dir / "http-v1" if cache_dir is not None else None
        self.refresh = refresh
        self.max_body = max_body
        self._clock = clock
        self._lock = threading.Lock()
        self.stats: dict[str, int] = {"network": 0, "cache": 0, "revalidated": 0}

    @property
    def enabled(self) -> bool:
        """False under ``no-cache``."""
        return self.root is not None

    def fetch(self, http: HttpGetter, url: str,
              headers: Mapping[str, str] | None = None) -> CachedResponse:
        """GET *url* through the cache. 200 and 404 are returned; other statuses raise.

        A fresh entry is returned without a request; a stale one is revalidated.
        """
        headers = dict(headers or {})
        path = self._entry_path(url, headers)
        entry = self._load(path, url) if path is not None else None
        if entry is not None and not self.refresh and self._is_fresh(entry):
            return self._count(entry)
        req = dict(headers)
        if entry is not None:
            if "etag" in entry.headers:
                req["If-None-Match"] = entry.headers["etag"]
            if "last-modified" in entry.headers:
                req["If-Modified-Since"] = entry.headers["last-modified"]
        resp = http.request("GET", url, req, stream=True, ok=(200, 304, 404))
        if resp.status == 304 and entry is not None:
            resp.release()
            merged = {**entry.headers, **_kept(resp.headers)}
            fresh = CachedResponse(entry.url, entry.status, merged, entry.body, "revalidated")
            self._store(path, fresh)
            return self._count(fresh)
        if resp.status == 304:
            resp.release()
            raise IndexError_(url, "unexpected 304 Not Modified for an unconditional request")
        body = read_body(resp, url, self.max_body) if resp.status == 200 else _drain(resp)
        result = CachedResponse(resp.url or url, resp.status, _kept(resp.headers), body)
        if resp.status == 200 and _storable(result.headers):
            self._store(path, result)
        elif path is not None:
            self._remove(path)
        return self._count(result)

    def lookup(self, url: str, headers: Mapping[str, str] | None = None
               ) -> CachedResponse | None:
        """The entry :meth:`fetch` would return without any request (fresh, and no
        ``refresh``), else None. Cheap enough to call before deciding to use a thread."""
        if self.refresh:
            return None
        path = self._entry_path(url, dict(headers or {}))
        entry = self._load(path, url) if path is not None else None
        if entry is None or not self._is_fresh(entry):
            return None
        return self._count(entry)

    def evict(self, url: str, headers: Mapping[str, str] | None = None) -> None:
        """Forget the entry for *url* (e.g. after its content failed a hash check)."""
        path = self._entry_path(url, dict(headers or {}))
        if path is not None:
            self._remove(path)

    # --- content-addressed blobs ---------------------------------------------------------

    def get_blob(self, kind: str, key: str) -> bytes | None:
        """A blob stored by :meth:`put_blob`, or None. Callers re-verify what they read."""
        path = self._blob_path(kind, key)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def put_blob(self, kind: str, key: str, data: bytes) -> None:
        """Store *data* under *kind*/*key* (an unwritable cache is silently skipped)."""
        path = self._blob_path(kind, key)
        if path is not None:
            with _ignore_oserror():
                atomic_write(path, data)

    def evict_blob(self, kind: str, key: str) -> None:
        """Forget a blob stored by :meth:`put_blob`."""
        path = self._blob_path(kind, key)
        if path is not None:
            self._remove(path)

    # --- internals -----------------------------------------------------------------------

    def _blob_path(self, kind: str, key: str) -> Path | None:
        if self.root is None:
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / "blobs" / kind / digest[:2] / digest

    def _entry_path(self, url: str, headers: Mapping[str, str]) -> Path | None:
        if self.root is None:
            return None
        accept = next((v for k, v in headers.items() if k.lower() == "accept"), "")
        digest = hashlib.sha256(f"{strip_credentials(url)}\0{accept}".encode()).hexdigest()
        return self.root / "pages" / digest[:2] / digest

    def _is_fresh(self, entry: CachedResponse) -> bool:
        control = entry.headers.get("cache-control", "").lower()
        if "no-cache" in control:
            return False
        stored = float(entry.headers.get("x-inst-stored", "0"))
        m = _MAX_AGE.search(control)
        lifetime = int(m.group(1)) if m else self._heuristic_lifetime(entry, control, stored)
        return self._clock() - stored < lifetime

    @staticmethod
    def _heuristic_lifetime(entry: CachedResponse, control: str, stored: float) -> float:
        """RFC 9111 4.2.2: a response without explicit freshness but with Last-Modified may be
        fresh for a fraction of its age. 10% as the RFC suggests, capped at PyPI's own 600 s,
        so a static index (nginx sends no Cache-Control) is not revalidated page by page on
        every run; --refresh still revalidates."""
        if control or "expires" in entry.headers or entry.status != 200:
            return 0.0
        modified = entry.headers.get("last-modified")
        if not modified:
            return 0.0
        try:
            age = stored - http_date(modified)
        except (TypeError, ValueError, IndexError, OverflowError):
            return 0.0
        return max(0.0, min(age * 0.1, 600.0))

    def _load(self, path: Path, url: str) -> CachedResponse | None:
        """The stored entry, with the user info of the requested *url* (see
        :func:`_with_userinfo`); None when missing or unreadable."""
        try:
            raw = path.read_bytes()
            head, _, body = raw.partition(b"\n")
            meta = json.loads(head)
            if len(body) != meta["length"]:
                return None
            entry = CachedResponse(meta["url"], int(meta["status"]), dict(meta["headers"]),
                                   body, "cache")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return _with_userinfo(entry, url)

    def _store(self, path: Path | None, resp: CachedResponse) -> None:
        if path is None:
            return
        headers = {**resp.headers, "x-inst-stored": repr(self._clock())}
        meta = {"url": strip_credentials(resp.url), "status": resp.status, "headers": headers,
                "length": len(resp.body)}
        with _ignore_oserror():
            atomic_write(path, json.dumps(meta).encode() + b"\n" + resp.body)

    def _remove(self, path: Path) -> None:
        with _ignore_oserror():
            path.unlink()

    def _count(self, resp: CachedResponse) -> CachedResponse:
        with self._lock:
            self.stats[resp.source] += 1
        return resp


def replace_source(resp: CachedResponse, source: Source) -> CachedResponse:
    """*resp* marked as answered from *source*."""
    return CachedResponse(resp.url, resp.status, resp.headers, resp.body, source)


def _with_userinfo(entry: CachedResponse, requested: str) -> CachedResponse:
    """Give a stored (credential-free) URL back the user info of the requested URL when both
    are on the same host, so links resolved against it still authenticate."""
    req = urlsplit(requested)
    userinfo, at, host = req.netloc.rpartition("@")
    stored = urlsplit(entry.url)
    if not at or stored.netloc != host:
        return entry
    url = urlunsplit(stored._replace(netloc=f"{userinfo}@{host}"))
    return CachedResponse(url, entry.status, entry.headers, entry.body, entry.source)


def _kept(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() in _KEEP_HEADERS}


def _storable(headers: Mapping[str, str]) -> bool:
    return "no-store" not in headers.get("cache-control", "").lower()


def _drain(resp: HttpResponse) -> bytes:
    resp.release()
    return b""


# --- METADATA out of a wheel: local file, HTTP range requests, or a whole download -----------

TAIL_BYTES = 64 * 1024
MIN_FETCH = 16 * 1024
MAX_METADATA = 16 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+)", re.I)
_IDENTITY = {"Accept-Encoding": "identity"}


def local_path(url: str) -> Path:
    """The local path of a ``file:`` URL (decoded once)."""
    return path_from_file_url(url)


def metadata_from_wheel(http: HttpGetter, link: Link) -> bytes:
    """The wheel's ``.dist-info/METADATA``, read with as few bytes transferred as possible.

    Local files are opened directly. Remote wheels are read with range requests (the zip's
    tail holds the central directory, then METADATA's local entry); a server that ignores
    ``Range`` sends the whole wheel, which is then checked against the index's sha256.
    """
    if link.url.startswith("file:"):
        try:
            with zipfile.ZipFile(local_path(link.url)) as zf:
                return _read_metadata(zf, link)
        except (OSError, zipfile.BadZipFile) as exc:
            raise IndexError_(link.url, f"cannot read the wheel ({exc})") from exc
    resp = http.request("GET", link.url, {"Range": f"bytes=-{TAIL_BYTES}", **_IDENTITY},
                        stream=True, ok=(200, 206))
    if resp.status == 200:
        return _from_full_download(resp, link)
    start, end, total = _content_range(resp, link.url)
    data = read_body(resp, link.url, limit=TAIL_BYTES)
    if end != total - 1 or len(data) != end - start + 1:
        raise IndexError_(link.url, "the server answered a range request inconsistently")
    try:
        with zipfile.ZipFile(RangeFile(http, link.url, total, start, data)) as zf:
            return _read_metadata(zf, link)
    except zipfile.BadZipFile as exc:
        raise IndexError_(link.url, f"not a valid wheel ({exc})") from exc


def _content_range(resp: HttpResponse, url: str) -> tuple[int, int, int]:
    m = _CONTENT_RANGE.match(resp.headers.get("content-range", "").strip())
    if not m:
        resp.release()
        raise IndexError_(url, "the server answered a range request without Content-Range")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _from_full_download(resp: HttpResponse, link: Link) -> bytes:
    digest = hashlib.sha256()
    import tempfile

    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        try:
            for chunk in resp.iter_bytes(65536):
                digest.update(chunk)
                spool.write(chunk)
        finally:
            resp.release()
        expected = link.sha256
        if expected and digest.hexdigest() != expected:
            raise HashMismatch(link.filename, link.url, expected, digest.hexdigest())
        spool.seek(0)
        try:
            with zipfile.ZipFile(spool) as zf:
                return _read_metadata(zf, link)
        except zipfile.BadZipFile as exc:
            raise IndexError_(link.url, f"not a valid wheel ({exc})") from exc


def _read_metadata(zf: zipfile.ZipFile, link: Link) -> bytes:
    project = canonical(link.filename.split("-")[0])
    for info in zf.infolist():
        top, _, rest = info.filename.partition("/")
        if rest == "METADATA" and top.endswith(".dist-info") \
                and canonical(top.split("-")[0]) == project:
            if info.file_size > MAX_METADATA:
                raise IndexError_(link.url, "the wheel's METADATA is implausibly large")
            with zf.open(info) as fh:
                return fh.read(MAX_METADATA + 1)[:MAX_METADATA]
    raise IndexError_(link.url, f"the wheel has no {project}-*.dist-info/METADATA")


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file that fetches missing byte ranges on demand.

    ``requests`` counts the range requests made after the initial tail.
    """

    def __init__(self, http: HttpGetter, url: str, size: int, start: int, data: bytes) -> None:
        super().__init__()
        self._http, self._url, self._size = http, url, size
        self._segments: list[tuple[int, bytes]] = [(start, data)]
        self._pos = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        if end <= self._pos:
            return b""
        data = self._get(self._pos, end)
        self._pos = end
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _get(self, start: int, end: int) -> bytes:
        out = bytearray()
        pos = start
        while pos < end:
            seg = next(((s, d) for s, d in self._segments if s <= pos < s + len(d)), None)
            if seg is not None:
                piece = seg[1][pos - seg[0]: end - seg[0]]
                out += piece
                pos += len(piece)
                continue
            following = min((s for s, _ in self._segments if s > pos), default=self._size)
            self._fetch(pos, min(following, max(end, pos + MIN_FETCH), self._size))
        return bytes(out)

    def _fetch(self, start: int, end: int) -> None:
        self.requests += 1
        resp = self._http.request("GET", self._url,
                                  {"Range": f"bytes={start}-{end - 1}", **_IDENTITY},
                                  stream=True, ok=(206,))
        got_start, got_end, total = _content_range(resp, self._url)
        data = read_body(resp, self._url, limit=end - start)
        if got_start != start or total != self._size or len(data) != got_end - got_start + 1 \
                or not data:
            raise IndexError_(self._url, "the server answered a range request inconsistently")
        self._segments.append((start, data))
        self._segments.sort()
