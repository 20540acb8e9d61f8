"""Downloads over a real local HTTPS server (trustme CA) into the content-addressed cache."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.cache import Cache
from installer.download import DownloadItem, HashRequired, download_all, download_one
from installer.errors import HashMismatch
from installer.http import HttpClient, HttpConfig
from installer.models import Link
from tests.helpers.tls_servers import (
    Handler,
    HTTPSServer,
    TestPKI,
    file_behaviour,
    server_context,
)
from tests.helpers.wheels import make_wheel, sha256_file


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    for i in range(5):
        blob = os.urandom(300_000 * (i + 1))  # incompressible, so a body can break mid-way
        make_wheel(root, f"pkg{i}", "1.0", files={f"pkg{i}/blob.bin": blob})
    return root


@pytest.fixture
def client(pki: TestPKI) -> Iterator[HttpClient]:
    ctx = ssl.create_default_context(cafile=str(pki.ca_path))
    c = HttpClient(HttpConfig(retries=1, backoff=0.01, timeout=10), lambda url: ctx)
    yield c
    c.close()


def _server(pki: TestPKI, behaviour: object) -> HTTPSServer:
    return HTTPSServer(behaviour, server_context(pki.leaf()))  # type: ignore[arg-type]


def _items(srv: HTTPSServer, root: Path) -> list[DownloadItem]:
    return [DownloadItem(Link(p.name, srv.url + p.name, {"sha256": sha256_file(p)}))
            for p in sorted(root.glob("*.whl"))]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int | None]] = []
        self.lock = threading.Lock()

    def on_start(self, name: str, total: int | None) -> None:
        with self.lock:
            self.events.append(("start", name, total))

    def on_advance(self, name: str, nbytes: int) -> None:
        with self.lock:
            self.events.append(("advance", name, nbytes))

    def on_done(self, name: str) -> None:
        with self.lock:
            self.events.append(("done", name, None))


def test_parallel_downloads_then_cache_hits(pki: TestPKI, files: Path, client: HttpClient,
                                            tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    rec = Recorder()
    with _server(pki, file_behaviour(files)) as srv:
        items = _items(srv, files)
        got = download_all(items, cache=cache, client=client, concurrency=4, reporter=rec)
        assert [d.link.filename for d in got] == [i.link.filename for i in items]
        for d, item in zip(got, items, strict=True):
            assert not d.from_cache and d.sha256 == item.expected_sha256
            assert d.path.read_bytes() == (files / d.link.filename).read_bytes()
            assert d.path == cache.wheel_dir(d.sha256) / d.link.filename
        advanced = {n: 0 for n in (i.link.filename for i in items)}
        for kind, name, n in rec.events:
            if kind == "advance":
                advanced[name] += n or 0
        assert advanced == {p.name: p.stat().st_size for p in files.glob("*.whl")}
        assert len(srv.requests) == 5
        again = download_all(items, cache=cache, client=client)
        assert all(d.from_cache for d in again)
        assert len(srv.requests) == 5
    assert not list(cache.tmp_dir.iterdir())


def test_error_hash_mismatch_deletes_file(pki: TestPKI, files: Path, client: HttpClient,
                                          tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    path = sorted(files.glob("*.whl"))[0]
    bad = "0" * 64
    with _server(pki, file_behaviour(files)) as srv:
        url = srv.url.replace("https://", "https://user:s3cret@") + path.name
        item = DownloadItem(Link(path.name, url, {"sha256": bad}))
        with pytest.raises(HashMismatch) as exc:
            download_one(item, cache=cache, client=client)
    masked = srv.url.replace("https://", "https://user:****@") + path.name
    assert str(exc.value) == (f"hash mismatch for {path.name} from {masked}: expected "
                              f"sha256={bad}, got sha256={sha256_file(path)}")
    assert "s3cret" not in str(exc.value)
    assert not list(cache.tmp_dir.iterdir())
    assert not (cache.root / "wheels").exists() or not any(
        p.is_file() for p in (cache.root / "wheels").rglob("*"))


def test_hash_options(pki: TestPKI, files: Path, client: HttpClient, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    path = sorted(files.glob("*.whl"))[0]
    good = sha256_file(path)
    with _server(pki, file_behaviour(files)) as srv:
        link = Link(path.name, srv.url + path.name)
        with pytest.raises(HashRequired) as exc:
            download_all([DownloadItem(link)], cache=cache, client=client, require_hashes=True)
        assert str(exc.value) == (f"no --hash given for {path.name}, and hash-checking mode "
                                  "is on")
        wrong = DownloadItem(link, allowed={"sha256": frozenset({"1" * 64, "2" * 64})})
        with pytest.raises(HashMismatch) as exc2:
            download_one(wrong, cache=cache, client=client)
        assert f"expected sha256={'1' * 64} or sha256={'2' * 64}, got sha256={good}" \
            in str(exc2.value)
        ok = DownloadItem(link, allowed={"sha256": frozenset({"1" * 64, good})})
        got = download_all([ok], cache=cache, client=client, require_hashes=True)
        assert got[0].sha256 == good


def test_corrupted_cache_entry_is_refetched(pki: TestPKI, files: Path, client: HttpClient,
                                           tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    with _server(pki, file_behaviour(files)) as srv:
        item = _items(srv, files)[0]
        first = download_one(item, cache=cache, client=client)
        first.path.write_bytes(b"garbage")
        second = download_one(item, cache=cache, client=client)
        assert not second.from_cache
        assert sha256_file(second.path) == item.expected_sha256
        assert len(srv.requests) == 2


def _drop_first(root: Path, *, honour_range: bool) -> object:
    serve = file_behaviour(root)
    state = {"dropped": False}

    def run(h: Handler) -> None:
        rel = h.path.lstrip("/")
        if not state["dropped"]:
            state["dropped"] = True
            data = (root / rel).read_bytes()
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        if not honour_range and "Range" in h.headers:
            del h.headers["Range"]
        serve(h)

    return run


@pytest.mark.parametrize("honour_range", [True, False])
def test_resume_after_connection_drop(honour_range: bool, pki: TestPKI, files: Path,
                                      client: HttpClient, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    path = sorted(files.glob("*.whl"))[-1]
    with _server(pki, _drop_first(files, honour_range=honour_range)) as srv:
        item = DownloadItem(Link(path.name, srv.url + path.name, {"sha256": sha256_file(path)}))
        got = download_one(item, cache=cache, client=client)
        ranges = [r.headers.get("Range") for r in srv.requests]
    assert got.path.read_bytes() == path.read_bytes()
    assert ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:-1]) > 0  # resumed from where the body broke
    assert len(ranges) == 2


def test_file_url_is_hashed_in_place(files: Path, tmp_path: Path) -> None:
    path = sorted(files.glob("*.whl"))[0]
    item = DownloadItem(Link(path.name, path.as_uri(), {"sha256": sha256_file(path)}))
    got = download_one(item, cache=Cache(tmp_path / "cache"), client=None)
    assert got.path == path and got.sha256 == sha256_file(path)
    bad = DownloadItem(Link(path.name, path.as_uri(), {"sha256": "f" * 64}))
    with pytest.raises(HashMismatch):
        download_one(bad, cache=Cache(tmp_path / "cache"), client=None)
    assert path.exists()  # a user's own file is never deleted


def test_cache_info_and_clean(tmp_path: Path, files: Path) -> None:
    cache = Cache(tmp_path / "cache")
    path = sorted(files.glob("*.whl"))[0]
    with cache.temp_file() as tmp:
        tmp.write_bytes(path.read_bytes())
        cache.add_wheel(tmp, sha256_file(path), path.name)
    info = {k.kind: k for k in cache.info()}
    assert (info["wheels"].entries, info["wheels"].size) == (1, path.stat().st_size)
    assert cache.get_wheel(sha256_file(path), path.name) is not None
    assert cache.clean() == path.stat().st_size
    assert cache.get_wheel(sha256_file(path), path.name) is None
