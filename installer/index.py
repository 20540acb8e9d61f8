"""The index client: Simple Repository API pages (PEP 503 HTML, PEP 691 JSON) and find-links.

:mod:`installer.pages` turns a page into :class:`~installer.models.Link` values (hostile
file names are skipped with a warning). Sources fetch one project's files from one location;
:class:`Finder` combines them per ``index-strategy``, fetches pages concurrently, and reads
core metadata: the PEP 658 file when offered (hash-verified), else METADATA out of the wheel
with HTTP range requests (see :mod:`installer.httpcache`), else by downloading the wheel.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

from installer._types import NormalizedName
from installer.errors import HashMismatch, IndexError_, redact_url
from installer.fsutil import path_from_file_url
from installer.httpcache import (
    MAX_METADATA,
    CachedResponse,
    HttpCache,
    HttpGetter,
    local_path,
    metadata_from_wheel,
    read_body,
)
from installer.models import Link, canonical
from installer.pages import (
    ACCEPT,
    JSON_TYPES,
    Warn,
    is_safe_filename,
    json_links,
    json_name,
    load_json,
    no_warn,
    parse_html,
    parse_page,
    project_of,
)

if TYPE_CHECKING:  # both imported when first needed: a JSON index needs no HTML parser
    from concurrent.futures import ThreadPoolExecutor

Strategy = Literal["first-index", "unsafe-best-match"]


class PageSource(Protocol):
    """One index or find-links location."""

    label: str

    def find(self, name: NormalizedName) -> list[Link] | None:
        """The project's files here; None when this location does not have the project."""
        ...

    def cached(self, name: NormalizedName) -> list[Link] | None:
        """:meth:`find`'s answer when it needs no request and no thread (a fresh cached
        page), else None. May raise what :meth:`find` raises for that page."""
        ...


def _for_project(links: list[Link], name: NormalizedName, label: str, warn: Warn,
                 strict: bool) -> list[Link]:
    kept = []
    for link in links:
        owner = project_of(link.filename)
        if owner == name:
            kept.append(link)
        elif strict and owner is not None:
            warn(f"skipping {link.filename!r} on the page of {name} from {label}: "
                 f"it belongs to {owner}")
    return kept


class HttpIndexSource:
    """A Simple Repository API index (http, https, or a ``file://`` folder laid out like one)."""

    def __init__(self, url: str, http: HttpGetter, cache: HttpCache, *, name: str | None = None,
                 warn: Warn | None = None) -> None:
        self.url = url.rstrip("/")
        self.http, self.cache = http, cache
        self.label = name or redact_url(self.url)
        self.warn = warn or no_warn

    def page_url(self, name: NormalizedName) -> str:
        """``<index>/<name>/``."""
        return f"{self.url}/{name}/"

    def find(self, name: NormalizedName) -> list[Link] | None:
        """See :class:`PageSource`; a 404 means the index does not have the project."""
        url = self.page_url(name)
        if url.startswith("file:"):
            resp = _read_local_index(url, name)
            if resp is None:
                return None
        else:
            resp = self.cache.fetch(self.http, url, {"Accept": ACCEPT})
            if resp.status == 404:
                return None
        return self._links_of(resp, url, name)

    def cached(self, name: NormalizedName) -> list[Link] | None:
        """The project's files when its page is fresh in the HTTP cache (no request needed),
        else None: then :meth:`find` must run."""
        url = self.page_url(name)
        if url.startswith("file:"):
            return None
        resp = self.cache.lookup(url, {"Accept": ACCEPT})
        return None if resp is None else self._links_of(resp, url, name)

    def _links_of(self, resp: CachedResponse, url: str, name: NormalizedName) -> list[Link]:
        try:
            if resp.content_type in JSON_TYPES:
                data = load_json(resp.body, resp.url)
                links = json_links(data, resp.url, warn=self.warn, index=self.label)
                claimed = json_name(data)
                if claimed is not None and claimed != name:
                    raise IndexError_(resp.url, f"the index returned the page of {claimed} "
                                                f"when asked for {name}")
            else:
                links = parse_page(resp, warn=self.warn, index=self.label)
        except IndexError_:
            # A bad page must not stay cached: a fixed server would be ignored until max-age.
            self.cache.evict(url, {"Accept": ACCEPT})
            raise
        return _for_project(links, name, self.label, self.warn, strict=True)


def _read_local_index(url: str, name: NormalizedName) -> CachedResponse | None:
    folder = path_from_file_url(url)
    for filename, ctype in (("index.html", "text/html"),
                            ("index.json", "application/vnd.pypi.simple.v1+json")):
        try:
            body = (folder / filename).read_bytes()
        except OSError:
            continue
        return CachedResponse(f"{url}{filename}", 200, {"content-type": ctype}, body)
    return None


class FindLinksSource:
    """A find-links location: a local folder (its files) or an HTML page (all its anchors)."""

    def __init__(self, location: str, http: HttpGetter, cache: HttpCache, *, cwd: Path,
                 warn: Warn | None = None) -> None:
        self.location = location
        self.http, self.cache, self.cwd = http, cache, cwd
        self.label = redact_url(location)
        self.warn = warn or no_warn
        self._links: list[Link] | None = None
        self._lock = threading.Lock()

    def find(self, name: NormalizedName) -> list[Link] | None:
        """Files of *name* at this location ([] rather than None: find-links never 'owns')."""
        return _for_project(self._all(), name, self.label, self.warn, strict=False)

    def cached(self, name: NormalizedName) -> list[Link] | None:
        """:meth:`find` once the location was read (it is read once per run), else None."""
        with self._lock:
            links = self._links
        return None if links is None else _for_project(links, name, self.label, self.warn,
                                                        strict=False)

    def _all(self) -> list[Link]:
        with self._lock:
            if self._links is None:
                self._links = self._load()
            return self._links

    def _load(self) -> list[Link]:
        scheme = urlsplit(self.location).scheme.lower()
        if scheme in ("http", "https"):
            resp = self.cache.fetch(self.http, self.location, {"Accept": "text/html"})
            if resp.status == 404:
                raise IndexError_(self.location, "find-links page not found (404)")
            try:
                return parse_page(resp, warn=self.warn, index=self.label)
            except IndexError_:
                self.cache.evict(self.location, {"Accept": "text/html"})
                raise
        path = local_path(self.location) if scheme == "file" else self.cwd / self.location
        if path.is_dir():
            return self._folder(path)
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise IndexError_(self.location, f"cannot read find-links location "
                                             f"({exc.strerror or exc})") from exc
        return parse_html(body, path.absolute().as_uri(), warn=self.warn, index=self.label)

    def _folder(self, path: Path) -> list[Link]:
        links = []
        for entry in sorted(path.iterdir()):
            if entry.is_file() and is_safe_filename(entry.name) and project_of(entry.name):
                links.append(Link(filename=entry.name, url=entry.absolute().as_uri(),
                                  size=entry.stat().st_size, index=self.label))
        return links


# --- the finder -------------------------------------------------------------------------------


class Finder:
    """The resolver's :class:`~installer.models.CandidateSource` over indexes and find-links.

    ``first-index``: a project comes from the first index that has a page for it (an empty
    page counts: it blocks later indexes); ``unsafe-best-match`` merges every index. Files from
    find-links are always added. Pages are fetched by a pool of *concurrency* threads.
    """

    def __init__(self, indexes: Sequence[PageSource], find_links: Sequence[PageSource], *,
                 http: HttpGetter, cache: HttpCache, strategy: Strategy = "first-index",
                 concurrency: int = 8, warn: Warn | None = None) -> None:
        self.indexes, self.find_links = list(indexes), list(find_links)
        self.http, self.cache, self.strategy = http, cache, strategy
        self.warn = warn or no_warn
        self._concurrency = max(1, concurrency)
        self._pool: ThreadPoolExecutor | None = None  # made (and threads started) on demand
        self._closed = False
        self._pages: dict[tuple[int, str], Future[list[Link] | None]] = {}
        self._metadata: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Finder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker threads (if any were started)."""
        with self._lock:
            pool, self._closed = self._pool, True
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _sources(self) -> list[PageSource]:
        return self.indexes + self.find_links

    def _pool_locked(self) -> ThreadPoolExecutor:
        """The worker pool, made on first use (the caller holds ``_lock``)."""
        if self._pool is None:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self._concurrency,
                                            thread_name_prefix="inst-index")
        return self._pool

    def _page(self, i: int, name: NormalizedName) -> Future[list[Link] | None]:
        key = (i, name)
        with self._lock:
            fut = self._pages.get(key)
        if fut is not None:
            return fut
        source = self._sources()[i]
        # A page fresh in the cache is read right here: a thread hop costs more than the read.
        answered = _from_cache(source, name)
        with self._lock:
            fut = self._pages.get(key)
            if fut is None:
                fut = answered if answered is not None else self._pool_locked().submit(
                    source.find, name)
                self._pages[key] = fut
            return fut

    def prefetch(self, names: list[NormalizedName]) -> None:
        """Start fetching these projects' pages (first index only under first-index)."""
        n_idx = len(self.indexes)
        wanted = range(n_idx) if self.strategy == "unsafe-best-match" else range(min(1, n_idx))
        for name in names:
            for i in [*wanted, *range(n_idx, n_idx + len(self.find_links))]:
                self._page(i, canonical(name))

    def links(self, name: NormalizedName) -> list[Link]:
        """Files for *name* per the index strategy, plus find-links files; [] if unknown."""
        name = canonical(name)
        self.prefetch([name])
        found: list[Link] = []
        for i in range(len(self.indexes)):
            page = self._page(i, name).result()
            if page is not None:
                found += page
                if self.strategy == "first-index":
                    break
        for i in range(len(self.indexes), len(self._sources())):
            found += self._page(i, name).result() or []
        return list({link.url: link for link in found}.values())

    def metadata(self, link: Link) -> bytes:
        """Core metadata of *link*: PEP 658 file, else range requests, else the whole wheel."""
        with self._lock:
            known = self._metadata.get(link.url)
        if known is not None:
            return known
        data = self._core_metadata_file(link) if link.metadata_hashes is not None else None
        if data is None:
            data = self._from_wheel(link)
        with self._lock:
            self._metadata[link.url] = data
        return data

    def metadata_used(self, link: Link) -> bytes | None:
        """The core metadata :meth:`metadata` returned for *link* from the index's PEP 658
        file (None if it came from the wheel itself or was never read): the download must
        agree with it (:class:`installer.download.DownloadItem` ``metadata``)."""
        if link.metadata_hashes is None:
            return None
        with self._lock:
            return self._metadata.get(link.url)

    def forget_metadata(self, link: Link) -> None:
        """Drop *link*'s metadata from memory and the cache (it proved to be a lie)."""
        with self._lock:
            self._metadata.pop(link.url, None)
        sha = (link.metadata_hashes or {}).get("sha256")
        if sha:
            self.cache.evict_blob("core-metadata", sha)
        self.cache.evict(link.metadata_url)

    def prefetch_metadata(self, links: Sequence[Link]) -> None:
        """Read these links' metadata concurrently (results are kept for :meth:`metadata`)."""
        with self._lock:
            pool = self._pool_locked()
        for fut in [pool.submit(self.metadata, link) for link in links]:
            fut.exception()

    def _core_metadata_file(self, link: Link) -> bytes | None:
        assert link.metadata_hashes is not None
        expected = link.metadata_hashes.get("sha256")
        if expected:
            cached = self.cache.get_blob("core-metadata", expected)
            if cached is not None and hashlib.sha256(cached).hexdigest() == expected:
                return cached
        if link.url.startswith("file:"):
            try:
                data = local_path(link.metadata_url).read_bytes()
            except OSError:
                return None
        elif expected:  # content-addressed below; the page cache would only duplicate it
            raw = self.http.request("GET", link.metadata_url, stream=True, ok=(200, 404))
            if raw.status == 404:
                raw.release()
                return None
            data = read_body(raw, link.metadata_url, MAX_METADATA)
        else:
            resp = self.cache.fetch(self.http, link.metadata_url)
            if resp.status == 404:
                return None
            data = resp.body
        if expected:
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected:
                self.cache.evict(link.metadata_url)
                raise HashMismatch(f"{link.filename}.metadata", link.metadata_url, expected,
                                   actual)
            self.cache.put_blob("core-metadata", expected, data)
        return data

    def _from_wheel(self, link: Link) -> bytes:
        if not link.is_wheel:
            raise IndexError_(link.url, "cannot read metadata of a file that is not a wheel")
        sha = link.sha256
        if sha:
            cached = self.cache.get_blob("wheel-metadata", f"{link.url}#{sha}")
            if cached is not None:
                return cached
        data = metadata_from_wheel(self.http, link)
        if sha:
            self.cache.put_blob("wheel-metadata", f"{link.url}#{sha}", data)
        return data


def _from_cache(source: PageSource, name: NormalizedName) -> Future[list[Link] | None] | None:
    """A finished future when *source* answers for *name* without a request, else None."""
    done: Future[list[Link] | None] = Future()
    try:
        links = source.cached(name)
    except Exception as exc:  # raised by .result(), as it would be from a worker thread
        done.set_exception(exc)
        return done
    if links is None:
        return None
    done.set_result(links)
    return done


def build_finder(*, http: HttpGetter, cache: HttpCache, index_url: str | None,
                 extra_index_urls: Sequence[str] = (),
                 indexes: Sequence[Mapping[str, Any]] = (), find_links: Sequence[str] = (),
                 no_index: bool = False, strategy: Strategy = "first-index",
                 concurrency: int = 8, cwd: Path, warn: Warn | None = None) -> Finder:
    """A :class:`Finder` from settings: index-url, then [[index]] tables in order, then
    extra-index-url (duplicates dropped); ``no_index`` keeps only find-links."""
    sources: list[PageSource] = []
    if not no_index:
        entries: list[tuple[str, str | None]] = []
        if index_url:
            entries.append((index_url, None))
        entries += [(str(t["url"]), str(t.get("name") or "") or None) for t in indexes]
        entries += [(u, None) for u in extra_index_urls]
        seen: set[str] = set()
        for url, name in entries:
            key = url.rstrip("/")
            if key not in seen:
                seen.add(key)
                sources.append(HttpIndexSource(url, http, cache, name=name, warn=warn))
    links = [FindLinksSource(loc, http, cache, cwd=cwd, warn=warn) for loc in find_links]
    return Finder(sources, links, http=http, cache=cache, strategy=strategy,
                  concurrency=concurrency, warn=warn)
