"""Pages fresh in the HTTP cache are answered by the Finder in the calling thread: no request,
no thread pool, no HTTP client; anything else still goes through the worker threads."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.app import LazyHttpClient
from installer.errors import IndexError_
from installer.http import HttpClient, HttpConfig
from installer.httpcache import HttpCache
from installer.index import Finder, build_finder
from installer.models import canonical
from tests.helpers.index_server import IndexServer, SimpleIndex
from tests.helpers.tls_servers import TestPKI

N = canonical


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def index(tmp_path: Path) -> SimpleIndex:
    idx = SimpleIndex(tmp_path / "idx")
    idx.add_wheel("demo", "1.0", requires=["dep>=1"])
    idx.add_wheel("dep", "1.0")
    return idx


class Built:
    """A LazyHttpClient factory that records whether (and where) the client was built."""

    def __init__(self, pki: TestPKI) -> None:
        self.ctx = ssl.create_default_context(cafile=str(pki.ca_path))
        self.threads: list[str] = []

    def __call__(self) -> HttpClient:
        self.threads.append(threading.current_thread().name)
        return HttpClient(HttpConfig(retries=0, timeout=10), context_for=lambda url: self.ctx)


@pytest.fixture
def built(pki: TestPKI) -> Built:
    return Built(pki)


@pytest.fixture
def lazy(built: Built) -> Iterator[LazyHttpClient]:
    client = LazyHttpClient(built)
    yield client
    client.close()


def finder(http: LazyHttpClient, cache: HttpCache, url: str) -> Finder:
    return build_finder(http=http, cache=cache, index_url=url, cwd=Path.cwd())


def index_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("inst-index")]


def test_fresh_pages_need_no_thread_and_no_client(index: SimpleIndex, pki: TestPKI,
                                                  built: Built, lazy: LazyHttpClient,
                                                  tmp_path: Path) -> None:
    with IndexServer(index, pki, cache_control="max-age=600") as srv:
        with finder(lazy, HttpCache(tmp_path / "c"), srv.url) as f:
            first = f.links(N("demo")), f.links(N("dep"))
            assert index_threads()  # fetched by the worker threads
        assert built.threads and built.threads[0].startswith("inst-index")
        warm = LazyHttpClient(built)
        cache = HttpCache(tmp_path / "c")
        with finder(warm, cache, srv.url) as f:
            f.prefetch([N("demo"), N("dep")])
            assert (f.links(N("demo")), f.links(N("dep"))) == first
            assert index_threads() == []
        assert not warm.built and len(built.threads) == 1
        assert cache.stats == {"network": 0, "cache": 2, "revalidated": 0}
        assert srv.count("/simple/demo/") == srv.count("/simple/dep/") == 1


def test_stale_page_is_revalidated_in_a_thread(index: SimpleIndex, pki: TestPKI,
                                               built: Built, lazy: LazyHttpClient,
                                               tmp_path: Path) -> None:
    with IndexServer(index, pki, cache_control="max-age=0") as srv:
        with finder(lazy, HttpCache(tmp_path / "c"), srv.url) as f:
            links = f.links(N("demo"))
        again = LazyHttpClient(built)
        cache = HttpCache(tmp_path / "c")
        with finder(again, cache, srv.url) as f:
            assert f.links(N("demo")) == links
        again.close()
        assert cache.stats == {"network": 0, "cache": 0, "revalidated": 1}
        assert [t.startswith("inst-index") for t in built.threads] == [True, True]


def test_error_corrupt_fresh_entry_raises_from_links_and_is_evicted(
        index: SimpleIndex, pki: TestPKI, lazy: LazyHttpClient, tmp_path: Path) -> None:
    with IndexServer(index, pki, flavour="json", cache_control="max-age=600") as srv:
        with finder(lazy, HttpCache(tmp_path / "c"), srv.url) as f:
            links = f.links(N("demo"))
        [entry] = [p for p in (tmp_path / "c" / "http-v1" / "pages").rglob("*") if p.is_file()]
        head, _, body = entry.read_bytes().partition(b"\n")
        entry.write_bytes(head + b"\n" + b"!" * len(body))  # same length: still "fresh"
        with finder(lazy, HttpCache(tmp_path / "c"), srv.url) as f:
            f.prefetch([N("demo")])  # the error belongs to whoever asks for the links
            with pytest.raises(IndexError_) as info:
                f.links(N("demo"))
        assert info.value.message == (
            f"malformed JSON page (truncated or not JSON): {srv.url}/demo/")
        assert not entry.exists()
        with finder(lazy, HttpCache(tmp_path / "c"), srv.url) as f:
            assert f.links(N("demo")) == links
        assert srv.count("/simple/demo/") == 2

