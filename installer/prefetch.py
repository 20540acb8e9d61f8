"""Download and unpack the wheels the resolver pins while it is still resolving.

A cold install used to resolve (one CPU busy, the other mostly idle, waiting on index pages),
then download, then finish unpacking the biggest wheels. :class:`Prefetcher` starts each
pinned wheel's download the moment the resolver pins it, and hands the verified file to the
unpack workers at once, so resolving, downloading and unpacking overlap.

A pin that backtracking drops was downloaded for nothing (it stays in the cache). A download
that fails is not tried again: its error is kept in :attr:`Prefetcher.failed` and the download
step after resolution raises it for a wheel the resolution kept (a broken server is not asked
twice; a wheel dropped by backtracking never mattered).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from installer.cache import Cache
    from installer.download import Client, Downloaded
    from installer.models import Link
    from installer.wheel import UnpackPool

#: Downloads at once while resolving: the index's page threads share the connection pool
#: (10 connections), and the resolver itself needs the CPU.
THREADS = 2


def cache_is_empty(cache: Cache) -> bool:
    """True when *cache* holds no wheel at all (a first run, a CI job without a cache): then
    every pinned wheel will be downloaded, and forking unpack workers early pays."""
    try:
        with os.scandir(cache.root / "wheels") as entries:
            return next(entries, None) is None
    except OSError:
        return True


class Prefetcher:
    """Fetches each pinned wheel into *cache* in background threads and submits it to the
    unpack *pool*; :meth:`finish` waits for what is in flight and stops the threads."""

    def __init__(self, cache: Cache, pool: UnpackPool) -> None:
        self.cache, self.pool = cache, pool
        self._client: Client | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._seen: set[str] = set()
        self._futures: list[Future[None]] = []
        self._lock = threading.Lock()
        #: URL -> the error its download raised (all retries done).
        self.failed: dict[str, Exception] = {}

    def bind(self, client: Client) -> None:
        """Use *client* (the index session's, built lazily) for the downloads."""
        self._client = client

    def pinned(self, link: Link, metadata: bytes | None) -> None:
        """The resolver chose *link* (for now): start fetching it."""
        if self._client is None or not link.filename.endswith(".whl"):
            return
        with self._lock:
            if link.url in self._seen:
                return
            self._seen.add(link.url)
            if self._threads is None:
                from concurrent.futures import ThreadPoolExecutor

                self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="inst-prefetch")
            self._futures.append(self._threads.submit(self._fetch, link, metadata))

    def _fetch(self, link: Link, metadata: bytes | None) -> None:
        from installer.download import DownloadItem, download_one

        try:
            got: Downloaded = download_one(DownloadItem(link, metadata=metadata),
                                           cache=self.cache, client=self._client,
                                           for_install=True)
        except Exception as exc:  # raised by the download step if the wheel is kept
            self.failed[link.url] = exc
            return
        self.pool.submit(got.path, got.sha256)

    def finish(self) -> None:
        """Drop what has not started and wait for the downloads in flight."""
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
