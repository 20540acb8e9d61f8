"""Download and unpack the wheels the resolver pins while it is still resolving.

A cold install used to resolve (one CPU busy, the other mostly idle, waiting on index pages),
then download, then finish unpacking the biggest wheels. :class:`Prefetcher` starts each
pinned wheel's download the moment the resolver pins it, and hands the verified file to the
unpack workers at once, so resolving, downloading and unpacking overlap.

A pin that backtracking drops was downloaded for nothing (it stays in the cache). When the
resolver is done, :meth:`Prefetcher.stop` drops the downloads that have not started; the
download step then fetches only the wheels no prefetch is working on, and takes the others'
results (or errors) from :meth:`Prefetcher.take` as they finish: a broken server is never
asked twice for one file.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from concurrent.futures import Future, ThreadPoolExecutor

    from installer.cache import Cache
    from installer.download import Client, Downloaded
    from installer.models import Link
    from installer.unpackpool import UnpackPool

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
    unpack *pool*; :meth:`stop` ends the queue, :meth:`take` hands over the rest, and
    :meth:`close` waits for the threads."""

    def __init__(self, cache: Cache, pool: UnpackPool) -> None:
        self.cache, self.pool = cache, pool
        self._client: Client | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._futures: dict[str, Future[Downloaded]] = {}
        self._stopped = False
        self._lock = threading.Lock()

    def bind(self, client: Client) -> None:
        """Use *client* (the index session's, built lazily) for the downloads."""
        self._client = client

    def pinned(self, link: Link, metadata: bytes | None) -> None:
        """The resolver chose *link* (for now): start fetching it."""
        if self._client is None or not link.filename.endswith(".whl"):
            return
        with self._lock:
            if self._stopped or link.url in self._futures:
                return
            if self._threads is None:
                from concurrent.futures import ThreadPoolExecutor

                self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="inst-prefetch")
            self._futures[link.url] = self._threads.submit(self._fetch, link, metadata)

    def _fetch(self, link: Link, metadata: bytes | None) -> Downloaded:
        from installer.download import DownloadItem, download_one

        got: Downloaded = download_one(DownloadItem(link, metadata=metadata), cache=self.cache,
                                       client=self._client, for_install=True)
        self.pool.submit(got.path, got.sha256)
        return got

    def stop(self) -> None:
        """Resolution is over: drop the downloads that have not started (those in flight go
        on; :meth:`take` hands them over)."""
        with self._lock:
            self._stopped = True
            threads = self._threads
        if threads is not None:
            threads.shutdown(wait=False, cancel_futures=True)

    def take(self, urls: Iterable[str]) -> dict[str, Future[Downloaded]]:
        """The prefetches, running or done, of *urls* (cancelled ones are left out: the
        download step fetches those itself). A future's result is the Downloaded file, or
        the download's error."""
        with self._lock:
            found = {u: self._futures[u] for u in urls if u in self._futures}
        return {u: f for u, f in found.items() if not f.cancelled()}

    def close(self) -> None:
        """Stop, and wait for the downloads still running: none is cut off halfway (a failed
        install leaves no temp file in the cache), as with the download step's own threads."""
        self.stop()
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
