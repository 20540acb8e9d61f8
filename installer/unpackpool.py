"""Unpack wheels into the cache in worker processes while the caller does something else.

:class:`UnpackPool` forks its workers (one per CPU) and runs :func:`installer.wheel.unpack_to_cache`
in them; results are hints (see the class), the transaction redoes a failed wheel in-process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from installer.cache import MARKER, Cache
from installer.wheel import WheelInfo, unpack_to_cache

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


def _unpack_quietly(cache: Cache, wheel: Path, sha256: str | None) -> tuple[
        WheelInfo, Path] | None:
    """:func:`unpack_to_cache` in a worker process; None on any error (WheelError does not
    survive pickling; the transaction redoes the wheel in-process to raise it)."""
    try:
        return unpack_to_cache(cache, wheel, sha256)
    except Exception:
        return None


UnpackResult = Future[tuple[WheelInfo, Path] | None]


def _die_with_parent(parent: int) -> None:
    """Worker start-up: exit when the parent dies (kill -9 included) instead of waiting
    forever on the task queue with the parent's stdout and stderr still open."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # died before prctl took effect
        os._exit(1)


class UnpackPool:
    """Worker processes that validate and unpack wheels into *cache*
    (:func:`unpack_to_cache`) while the caller does something else, such as downloading the
    next wheels. Results are only hints: a wheel whose future failed or returned None is
    unpacked again in-process by :meth:`installer.txn.Transaction.install`, which raises its
    own error.

    Processes, not threads: zipfile's per-member Python code holds the GIL, and threads made
    unpacking slower (more futex time than parallel work). Workers are forked in
    :meth:`start`, which refuses (None) a process that already runs threads: a thread holding
    a lock at fork time would leave it locked forever in the child.
    """

    def __init__(self, cache: Cache, executor: ProcessPoolExecutor) -> None:
        self.cache = cache
        self._executor = executor
        self._futures: dict[tuple[str, str | None], UnpackResult] = {}
        self._lock = threading.Lock()  # submit() is called from download threads

    @classmethod
    def start(cls, cache: Cache, workers: int | None = None) -> UnpackPool | None:
        """Fork the workers now (one per CPU by default); None on a single CPU, off Linux,
        or when this process runs other threads."""
        workers = workers or os.cpu_count() or 1
        if workers < 2 or not sys.platform.startswith("linux") or threading.active_count() > 1:
            return None
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # fork, not forkserver: a forkserver pool (a fresh interpreter importing this module,
        # then the workers) made a cold install of set b ~0.1 s slower.
        executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with_parent, initargs=(os.getpid(),))
        executor.submit(os.getpid)  # forks every worker now, while single-threaded
        return cls(cache, executor)

    def submit(self, wheel: Path, sha256: str | None) -> UnpackResult | None:
        """Start unpacking *wheel* (once per wheel); None when its verified tree is already
        in the cache (warm) or the pool cannot take work."""
        key = (str(wheel), sha256)
        with self._lock:
            fut = self._futures.get(key)
            if fut is not None:
                return fut
            with contextlib.suppress(ValueError):  # not a hex sha256: not in the cache
                if sha256 and (self.cache.unpacked_dir(sha256) / MARKER).is_file():
                    return None
            try:
                fut = self._executor.submit(_unpack_quietly, self.cache, Path(wheel), sha256)
            except RuntimeError:  # BrokenProcessPool, or shut down
                return None
            self._futures[key] = fut
            return fut

    def close(self) -> None:
        """Cancel what has not started, wait for the rest, and stop the workers."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> UnpackPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
