"""The index client end to end against a real local HTTPS index (trustme CA)."""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.errors import HashMismatch, IndexError_
from installer.http import HttpClient, HttpConfig
from installer.httpcache import HttpCache
from installer.index import Finder, build_finder
from installer.models import Link, canonical
from tests.helpers.index_server import IndexServer, SimpleIndex
from tests.helpers.tls_servers import Handler, TestPKI
from tests.helpers.wheels import metadata_text

N = canonical


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def http(pki: TestPKI) -> Iterator[HttpClient]:
    ctx = ssl.create_default_context(cafile=str(pki.ca_path))
    client = HttpClient(HttpConfig(retries=0, timeout=10), context_for=lambda url: ctx)
    yield client
    client.close()


@pytest.fixture
def index(tmp_path: Path) -> SimpleIndex:
    idx = SimpleIndex(tmp_path / "idx")
    idx.add_wheel("demo", "1.0", requires=["dep>=1"])
    idx.add_wheel("demo", "2.0", requires=["dep>=2"], requires_python=">=3.8")
    idx.add_wheel("dep", "1.0")
    idx.add_wheel("dep", "2.0", yanked="broken")
    return idx


def finder(http: HttpClient, cache: HttpCache, *urls: str, **kw: object) -> Finder:
    return build_finder(http=http, cache=cache, index_url=urls[0] if urls else None,
                        extra_index_urls=list(urls[1:]), cwd=Path.cwd(),
                        **kw)  # type: ignore[arg-type]


def versions(links: list[Link]) -> list[str]:
    return sorted(link.filename.split("-")[1] for link in links)


# --- flavours and metadata ----------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["json", "html"])
def test_links_and_metadata_files(flavour: str, index: SimpleIndex, pki: TestPKI,
                                  http: HttpClient, tmp_path: Path) -> None:
    with IndexServer(index, pki, flavour=flavour) as srv:  # type: ignore[arg-type]
        with finder(http, HttpCache(tmp_path / "c"), srv.url) as f:
            links = f.links(N("demo"))
            assert versions(links) == ["1.0", "2.0"]
            two = next(link for link in links if "2.0" in link.filename)
            assert two.requires_python == ">=3.8"
            assert two.url == f"{srv.origin}/files/demo-2.0-py3-none-any.whl"
            assert two.sha256 == index.projects["demo"][1].sha256
            assert two.metadata_hashes is not None
            assert f.metadata(two) == index.projects["demo"][1].metadata
            dep = f.links(N("dep"))
            assert [link.yanked for link in sorted(dep, key=lambda x: x.filename)] == [
                None, "broken"]
        assert srv.count("/simple/demo/") == 1
        assert srv.count("/files/demo-2.0-py3-none-any.whl.metadata") == 1
        assert srv.count("/files/demo-2.0-py3-none-any.whl") == 0
        page = next(r for r in srv.requests if r.path == "/simple/demo/")
        assert page.headers["Accept"].startswith("application/vnd.pypi.simple.v1+json")


@pytest.mark.parametrize("flavour", ["json", "html"])
def test_metadata_by_range_requests(flavour: str, pki: TestPKI, http: HttpClient,
                                    tmp_path: Path) -> None:
    idx = SimpleIndex(tmp_path / "idx")
    meta = metadata_text("big", "1.0", ["dep"])
    # METADATA first, then 300 kB of noise: it is far from the tail, so a second range is needed.
    entry = idx.add_wheel("big", "1.0", metadata_file=False, files={
        "big-1.0.dist-info/METADATA": meta, "big/blob.bin": os.urandom(300_000)})
    small = idx.add_wheel("small", "1.0", metadata_file=False, requires=["x"])
    with IndexServer(idx, pki, flavour=flavour) as srv:  # type: ignore[arg-type]
        with finder(http, HttpCache(tmp_path / "c"), srv.url) as f:
            (link,) = f.links(N("big"))
            assert link.metadata_hashes is None
            assert f.metadata(link) == meta.encode()
            (slink,) = f.links(N("small"))
            assert f.metadata(slink) == small.metadata
        assert srv.range_requests(entry.filename) == 2
        assert srv.range_requests(small.filename) == 1
        files = [r for r in srv.requests if r.path.startswith("/files/")]
        assert all("Range" in r.headers for r in files)


def test_metadata_whole_wheel_when_ranges_unsupported(pki: TestPKI, http: HttpClient,
                                                      tmp_path: Path) -> None:
    idx = SimpleIndex(tmp_path / "idx")
    entry = idx.add_wheel("demo", "1.0", metadata_file=False, requires=["dep"])
    with IndexServer(idx, pki, ranges=False) as srv:
        with finder(http, HttpCache(tmp_path / "c"), srv.url) as f:
            (link,) = f.links(N("demo"))
            assert f.metadata(link) == entry.metadata
        assert srv.count(f"/files/{entry.filename}") == 1


def test_error_whole_wheel_hash_mismatch(pki: TestPKI, http: HttpClient, tmp_path: Path) -> None:
    idx = SimpleIndex(tmp_path / "idx")
    entry = idx.add_wheel("demo", "1.0", metadata_file=False)
    with IndexServer(idx, pki, ranges=False) as srv, finder(http, HttpCache(None), srv.url) as f:
        (link,) = f.links(N("demo"))
        entry.path.write_bytes(entry.path.read_bytes() + b"tampered")
        with pytest.raises(HashMismatch) as info:
            f.metadata(link)
    assert info.value.message.startswith(
        f"hash mismatch for demo-1.0-py3-none-any.whl from {srv.origin}/files/"
        f"demo-1.0-py3-none-any.whl: expected sha256={link.sha256}, got sha256=")


def test_error_metadata_hash_mismatch(pki: TestPKI, http: HttpClient, tmp_path: Path) -> None:
    idx = SimpleIndex(tmp_path / "idx")
    entry = idx.add_wheel("demo", "1.0")
    entry.served_metadata = b"Metadata-Version: 2.1\nName: demo\nVersion: 6.6.6\n\n"
    import hashlib

    actual = hashlib.sha256(entry.served_metadata).hexdigest()
    expected = hashlib.sha256(entry.metadata).hexdigest()
    cache = HttpCache(tmp_path / "c")
    with IndexServer(idx, pki) as srv, finder(http, cache, srv.url) as f:
        (link,) = f.links(N("demo"))
        with pytest.raises(HashMismatch) as info:
            f.metadata(link)
    assert info.value.message == (
        f"hash mismatch for demo-1.0-py3-none-any.whl.metadata from {srv.origin}/files/"
        f"demo-1.0-py3-none-any.whl.metadata: expected sha256={expected}, got sha256={actual}")
    assert cache.get_blob("core-metadata", expected) is None


def test_metadata_cached_across_runs(index: SimpleIndex, pki: TestPKI, http: HttpClient,
                                     tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    with IndexServer(index, pki) as srv:
        for _ in range(2):
            with finder(http, HttpCache(cache_dir), srv.url) as f:
                assert f.metadata(f.links(N("demo"))[0]) == index.projects["demo"][0].metadata
        assert srv.count("/files/demo-1.0-py3-none-any.whl.metadata") == 1
        assert srv.count("/simple/demo/") == 1  # max-age=600: the page is fresh too


# --- redirects, 404, strategies -----------------------------------------------------------------


def test_redirect_resolves_links_against_final_url(index: SimpleIndex, pki: TestPKI,
                                                   http: HttpClient, tmp_path: Path) -> None:
    with IndexServer(index, pki, flavour="html") as srv:
        srv.overrides["/old/demo/"] = lambda h: h.reply(301, b"", {"Location": "/simple/demo/"})
        with finder(http, HttpCache(None), srv.origin + "/old") as f:
            links = f.links(N("demo"))
        assert {link.url for link in links} == {
            f"{srv.origin}/files/demo-1.0-py3-none-any.whl",
            f"{srv.origin}/files/demo-2.0-py3-none-any.whl"}


def test_missing_project_is_empty(index: SimpleIndex, pki: TestPKI, http: HttpClient) -> None:
    with IndexServer(index, pki) as srv, finder(http, HttpCache(None), srv.url) as f:
        assert f.links(N("nope")) == []
        assert srv.count("/simple/nope/") == 1


@pytest.fixture
def two_indexes(pki: TestPKI, tmp_path: Path) -> Iterator[tuple[IndexServer, IndexServer]]:
    first = SimpleIndex(tmp_path / "first")
    first.add_wheel("demo", "1.0")
    first.empty_projects.add("blocked")
    second = SimpleIndex(tmp_path / "second")
    second.add_wheel("demo", "9.0")
    second.add_wheel("only-second", "1.0")
    second.add_wheel("blocked", "9.0")
    with IndexServer(first, pki) as a, IndexServer(second, pki) as b:
        yield a, b


def test_first_index_strategy(two_indexes: tuple[IndexServer, IndexServer],
                              http: HttpClient) -> None:
    a, b = two_indexes
    with finder(http, HttpCache(None), a.url, b.url) as f:
        assert versions(f.links(N("demo"))) == ["1.0"]
        assert versions(f.links(N("only-second"))) == ["1.0"]
        # An empty page on the first index still claims the name.
        assert f.links(N("blocked")) == []
    assert b.count("/simple/demo/") == 0
    assert b.count("/simple/blocked/") == 0
    assert a.count("/simple/only-second/") == 1


def test_unsafe_best_match_strategy(two_indexes: tuple[IndexServer, IndexServer],
                                    http: HttpClient) -> None:
    a, b = two_indexes
    with finder(http, HttpCache(None), a.url, b.url, strategy="unsafe-best-match") as f:
        links = f.links(N("demo"))
        assert versions(links) == ["1.0", "9.0"]
        assert {link.index for link in links} == {a.url, b.url}
        assert versions(f.links(N("blocked"))) == ["9.0"]


def test_named_index_table_comes_before_extra(two_indexes: tuple[IndexServer, IndexServer],
                                              http: HttpClient) -> None:
    a, b = two_indexes
    f = build_finder(http=http, cache=HttpCache(None), index_url=None,
                     indexes=[{"name": "second", "url": b.url}], extra_index_urls=[a.url],
                     cwd=Path.cwd())
    with f:
        links = f.links(N("demo"))
    assert versions(links) == ["9.0"]
    assert links[0].index == "second"


def test_no_index_uses_only_find_links(two_indexes: tuple[IndexServer, IndexServer],
                                       http: HttpClient, tmp_path: Path) -> None:
    a, _ = two_indexes
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "demo-5.0-py3-none-any.whl").write_bytes(
        (tmp_path / "first" / "files" / "demo-1.0-py3-none-any.whl").read_bytes())
    (wheels / "other-1.0-py3-none-any.whl").write_bytes(b"")
    with build_finder(http=http, cache=HttpCache(None), index_url=a.url, no_index=True,
                      find_links=[str(wheels)], cwd=tmp_path) as f:
        links = f.links(N("demo"))
    assert [(link.filename, link.url) for link in links] == [
        ("demo-5.0-py3-none-any.whl", (wheels / "demo-5.0-py3-none-any.whl").as_uri())]
    assert a.requests == []


def test_find_links_merged_with_first_index(two_indexes: tuple[IndexServer, IndexServer],
                                            http: HttpClient, tmp_path: Path) -> None:
    a, b = two_indexes
    # find-links as an HTML page over HTTPS: the second index's page lists demo 9.0.
    with build_finder(http=http, cache=HttpCache(None), index_url=a.url,
                      find_links=[b.url + "/demo/"], cwd=tmp_path) as f:
        links = f.links(N("demo"))
        assert versions(links) == ["1.0", "9.0"]
        assert f.metadata(links[1]).startswith(b"Metadata-Version")


def test_find_links_relative_folder_and_local_metadata(tmp_path: Path, http: HttpClient) -> None:
    from tests.helpers.wheels import make_wheel

    (tmp_path / "w").mkdir()
    make_wheel(tmp_path / "w", "demo", "1.0", requires=["dep"])
    with build_finder(http=http, cache=HttpCache(None), index_url=None, find_links=["w"],
                      cwd=tmp_path) as f:
        (link,) = f.links(N("demo"))
        assert b"Requires-Dist: dep" in f.metadata(link)


def test_file_url_index(index: SimpleIndex, http: HttpClient, tmp_path: Path) -> None:
    simple = index.write_static(tmp_path / "static")
    with finder(http, HttpCache(None), simple.as_uri()) as f:
        links = f.links(N("demo"))
        assert versions(links) == ["1.0", "2.0"]
        assert f.metadata(links[0]) == index.projects["demo"][0].metadata
        assert f.links(N("nope")) == []


# --- hostile pages ------------------------------------------------------------------------------


def test_page_files_of_other_projects_skipped(pki: TestPKI, http: HttpClient,
                                              tmp_path: Path) -> None:
    idx = SimpleIndex(tmp_path / "idx")
    idx.add_wheel("demo", "1.0")
    idx.add_wheel("evil", "9.0").href = "../../files/evil-9.0-py3-none-any.whl"
    idx.projects["demo"].append(idx.projects.pop("evil")[0])
    idx.add_wheel("x", "1.0").href = "../../files/..%2F..%2Fdemo-9.9-py3-none-any.whl"
    idx.projects["demo"].append(idx.projects.pop("x")[0])
    warnings: list[str] = []
    with IndexServer(idx, pki, flavour="html") as srv, \
            finder(http, HttpCache(None), srv.url, warn=warnings.append) as f:
        assert versions(f.links(N("demo"))) == ["1.0"]
    assert warnings == [
        f"skipping a file with an unsafe name '../../demo-9.9-py3-none-any.whl' from {srv.url}",
        f"skipping 'evil-9.0-py3-none-any.whl' on the page of demo from {srv.url}: "
        "it belongs to evil"]


def test_error_json_page_of_another_project(pki: TestPKI, http: HttpClient,
                                            tmp_path: Path) -> None:
    idx = SimpleIndex(tmp_path / "idx")
    idx.add_wheel("other", "1.0")
    with IndexServer(idx, pki, flavour="json") as srv:
        srv.overrides["/simple/demo/"] = lambda h: h.reply(
            200, idx.json_page("other"),
            {"Content-Type": "application/vnd.pypi.simple.v1+json"})
        with finder(http, HttpCache(None), srv.url) as f, pytest.raises(IndexError_) as info:
            f.links(N("demo"))
    assert info.value.message == (
        f"the index returned the page of other when asked for demo: {srv.url}/demo/")


def test_error_garbage_page(index: SimpleIndex, pki: TestPKI, http: HttpClient) -> None:
    with IndexServer(index, pki) as srv:
        srv.overrides["/simple/demo/"] = lambda h: h.reply(
            200, b"\x89PNG...", {"Content-Type": "image/png"})
        with finder(http, HttpCache(None), srv.url) as f, pytest.raises(IndexError_) as info:
            f.links(N("demo"))
    assert info.value.message == (
        f"the index answered with neither HTML nor JSON (Content-Type: image/png): "
        f"{srv.url}/demo/")


def test_error_truncated_json_page(index: SimpleIndex, pki: TestPKI, http: HttpClient,
                                   tmp_path: Path) -> None:
    cache = HttpCache(tmp_path / "c")
    with IndexServer(index, pki) as srv:
        body = index.json_page("demo")[:-20]
        srv.overrides["/simple/demo/"] = lambda h: h.reply(
            200, body, {"Content-Type": "application/vnd.pypi.simple.v1+json"})
        with finder(http, cache, srv.url) as f, pytest.raises(IndexError_) as info:
            f.links(N("demo"))
    assert info.value.message == (
        f"malformed JSON page (truncated or not JSON): {srv.url}/demo/")


def test_error_page_too_large(index: SimpleIndex, pki: TestPKI, http: HttpClient) -> None:
    with IndexServer(index, pki) as srv:
        srv.overrides["/simple/demo/"] = lambda h: h.reply(
            200, b"<html>" + b" " * 3_000_000, {"Content-Type": "text/html"})
        with finder(http, HttpCache(None, max_body=2 * 1024 * 1024), srv.url) as f, \
                pytest.raises(IndexError_) as info:
            f.links(N("demo"))
    assert info.value.message == f"response larger than 2 MB: {srv.url}/demo/"


# --- HTTP cache ---------------------------------------------------------------------------------


def test_cache_revalidates_with_etag(index: SimpleIndex, pki: TestPKI, http: HttpClient,
                                     tmp_path: Path) -> None:
    with IndexServer(index, pki, cache_control="max-age=0") as srv:
        first = HttpCache(tmp_path / "c")
        with finder(http, first, srv.url) as f:
            links = f.links(N("demo"))
        second = HttpCache(tmp_path / "c")
        with finder(http, second, srv.url) as f:
            assert f.links(N("demo")) == links
        assert (first.stats, second.stats) == (
            {"network": 1, "cache": 0, "revalidated": 0},
            {"network": 0, "cache": 0, "revalidated": 1})
        conditional = [r for r in srv.requests if r.path == "/simple/demo/"][1]
        assert conditional.headers["If-None-Match"].startswith('"')
        assert conditional.headers["If-Modified-Since"] == "Wed, 01 Jan 2025 00:00:00 GMT"


def test_cache_fresh_entry_needs_no_request(index: SimpleIndex, pki: TestPKI, http: HttpClient,
                                            tmp_path: Path) -> None:
    with IndexServer(index, pki, cache_control="max-age=600") as srv:
        for _ in range(2):
            with finder(http, HttpCache(tmp_path / "c"), srv.url) as f:
                f.links(N("demo"))
        assert srv.count("/simple/demo/") == 1
        refresh = HttpCache(tmp_path / "c", refresh=True)
        with finder(http, refresh, srv.url) as f:
            f.links(N("demo"))
        assert srv.count("/simple/demo/") == 2
        assert refresh.stats["revalidated"] == 1


def test_cache_heuristic_freshness_without_cache_control(
        index: SimpleIndex, pki: TestPKI, http: HttpClient, tmp_path: Path) -> None:
    # RFC 9111 4.2.2: no Cache-Control but an old Last-Modified -> fresh for 10% of its age,
    # capped at 600 s. Within that window no request; after it, a conditional request.
    now = [time.time()]
    with IndexServer(index, pki, cache_control="") as srv:
        for _ in range(2):
            with finder(http, HttpCache(tmp_path / "c", clock=lambda: now[0]), srv.url) as f:
                f.links(N("demo"))
        assert srv.count("/simple/demo/") == 1
        now[0] += 601
        later = HttpCache(tmp_path / "c", clock=lambda: now[0])
        with finder(http, later, srv.url) as f:
            f.links(N("demo"))
        assert srv.count("/simple/demo/") == 2
        assert later.stats["revalidated"] == 1


def test_cache_changed_page_replaces_entry(index: SimpleIndex, pki: TestPKI, http: HttpClient,
                                           tmp_path: Path) -> None:
    with IndexServer(index, pki, cache_control="no-cache") as srv:
        with finder(http, HttpCache(tmp_path / "c"), srv.url) as f:
            assert versions(f.links(N("demo"))) == ["1.0", "2.0"]
        index.add_wheel("demo", "3.0")
        cache = HttpCache(tmp_path / "c")
        with finder(http, cache, srv.url) as f:
            assert versions(f.links(N("demo"))) == ["1.0", "2.0", "3.0"]
        assert cache.stats["network"] == 1


def test_no_cache_stores_nothing(index: SimpleIndex, pki: TestPKI, http: HttpClient,
                                 tmp_path: Path) -> None:
    with IndexServer(index, pki) as srv:
        for _ in range(2):
            with finder(http, HttpCache(None), srv.url) as f:
                f.links(N("demo"))
        assert srv.count("/simple/demo/") == 2
        assert all("If-None-Match" not in r.headers for r in srv.requests)


def test_no_store_is_not_stored(index: SimpleIndex, pki: TestPKI, http: HttpClient,
                                tmp_path: Path) -> None:
    with IndexServer(index, pki, cache_control="no-store") as srv:
        for _ in range(2):
            with finder(http, HttpCache(tmp_path / "c"), srv.url) as f:
                f.links(N("demo"))
        assert srv.count("/simple/demo/") == 2
        assert all("If-None-Match" not in r.headers for r in srv.requests)


def test_corrupt_cache_entry_is_a_miss(index: SimpleIndex, pki: TestPKI, http: HttpClient,
                                       tmp_path: Path) -> None:
    with IndexServer(index, pki) as srv:
        with finder(http, HttpCache(tmp_path / "c"), srv.url) as f:
            f.links(N("demo"))
        for entry in (tmp_path / "c" / "http-v1" / "pages").rglob("*"):
            if entry.is_file():
                entry.write_bytes(entry.read_bytes()[:-5])
        with finder(http, HttpCache(tmp_path / "c"), srv.url) as f:
            assert versions(f.links(N("demo"))) == ["1.0", "2.0"]
        assert srv.count("/simple/demo/") == 2


def test_cache_key_has_no_credentials(index: SimpleIndex, pki: TestPKI, http: HttpClient,
                                      tmp_path: Path) -> None:
    with IndexServer(index, pki) as srv:
        url = srv.url.replace("https://", "https://user:s3cret@")
        with finder(http, HttpCache(tmp_path / "c"), url) as f:
            links = f.links(N("demo"))
        assert all("s3cret" not in link.index for link in links)
    for entry in (tmp_path / "c").rglob("*"):
        if entry.is_file():
            assert b"s3cret" not in entry.read_bytes()


# --- concurrency --------------------------------------------------------------------------------


def test_prefetch_fetches_pages_concurrently(pki: TestPKI, http: HttpClient,
                                             tmp_path: Path) -> None:
    idx = SimpleIndex(tmp_path / "idx")
    names = [f"p{i}" for i in range(8)]
    for name in names:
        idx.add_wheel(name, "1.0")
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    with IndexServer(idx, pki) as srv:

        def slow(h: Handler) -> None:
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.2)
            with lock:
                state["now"] -= 1
            srv._page(h, h.path.strip("/").split("/")[1])

        for name in names:
            srv.overrides[f"/simple/{name}/"] = slow
        with finder(http, HttpCache(None), srv.url, concurrency=4) as f:
            f.prefetch([N(n) for n in names])
            for name in names:
                assert versions(f.links(N(name))) == ["1.0"]
        # Several pages were in flight at once, never more than the pool allows.
        assert 2 <= state["max"] <= 4
        assert len([r for r in srv.requests if r.path.startswith("/simple/")]) == 8


def test_announced_metadata_file_missing_falls_back_to_ranges(pki: TestPKI, http: HttpClient,
                                                               tmp_path: Path) -> None:
    idx = SimpleIndex(tmp_path / "idx")
    entry = idx.add_wheel("demo", "1.0", requires=["dep"])
    with IndexServer(idx, pki) as srv, finder(http, HttpCache(None), srv.url) as f:
        (link,) = f.links(N("demo"))
        entry.metadata_file = False  # the page said "there is one"; the file is gone
        assert link.metadata_hashes is not None
        assert f.metadata(link) == entry.metadata
        assert srv.count(f"/files/{entry.filename}.metadata") == 1
        assert srv.range_requests(entry.filename) == 1
