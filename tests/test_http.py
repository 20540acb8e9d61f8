"""HttpClient against real local servers: retries, timeouts, redirects, credentials."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.errors import NetworkError
from installer.http import HttpClient, HttpConfig, select_proxy
from installer.trust import TrustConfig, TrustPolicy
from tests.helpers.tls_servers import (
    Behaviour,
    Handler,
    HTTPSServer,
    TestPKI,
    https_file_server,
    ok_behaviour,
    reset,
    sequence,
    server_context,
    stall,
    status,
)

SECRET = "s3cr3t-canary-7f1d"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def trust(pki: TestPKI) -> TrustConfig:
    return TrustConfig(TrustPolicy(cert=str(pki.ca_path)))


def client(trust: TrustConfig, **kw: object) -> HttpClient:
    cfg = HttpConfig(**{"timeout": 5.0, "retries": 3, "backoff": 0.05, **kw})  # type: ignore
    return HttpClient(cfg, trust.context_for, trust.explain)


@pytest.fixture
def server(pki: TestPKI) -> Iterator[HTTPSServer]:
    with HTTPSServer(ok_behaviour(), server_context(pki.leaf())) as srv:
        yield srv


def test_503_with_retry_after_is_retried(server: HTTPSServer, trust: TrustConfig) -> None:
    server.set_behaviour(sequence([status(503, {"Retry-After": "1"})]))
    c = client(trust)
    start = time.monotonic()
    assert c.get(server.url).data == b"ok"
    elapsed = time.monotonic() - start
    assert c.request_count == 2 and len(server.requests) == 2
    assert 0.9 <= elapsed < 3


def test_retry_after_as_an_http_date(server: HTTPSServer, trust: TrustConfig) -> None:
    from email.utils import formatdate

    later = formatdate(time.time() + 2, usegmt=True)  # whole seconds: waits ~1-2 s
    server.set_behaviour(sequence([status(503, {"Retry-After": later})]))
    c = client(trust)
    start = time.monotonic()
    assert c.get(server.url).data == b"ok"
    assert c.request_count == 2
    assert 0.9 <= time.monotonic() - start < 4


def test_retry_after_is_capped(server: HTTPSServer, trust: TrustConfig) -> None:
    server.set_behaviour(sequence([status(429, {"Retry-After": "120"})] * 2))
    c = client(trust, max_retry_wait=0.2)
    start = time.monotonic()
    assert c.get(server.url).status == 200
    assert time.monotonic() - start < 2
    assert c.request_count == 3


def test_error_503_forever_gives_up(server: HTTPSServer, trust: TrustConfig) -> None:
    server.set_behaviour(status(503))
    c = client(trust, retries=2)
    with pytest.raises(NetworkError) as info:
        c.get(server.url)
    assert info.value.message == f"HTTP 503 Service Unavailable: {server.url}"
    assert info.value.status == 503
    assert c.request_count == 3 and len(server.requests) == 3


def test_error_reset_is_retried_then_fails(server: HTTPSServer, trust: TrustConfig) -> None:
    server.set_behaviour(reset)
    c = client(trust, retries=2)
    start = time.monotonic()
    with pytest.raises(NetworkError) as info:
        c.get(server.url)
    assert info.value.message == (f"connection reset by the server (after 3 attempts): "
                                  f"{server.url}")
    assert c.request_count == 3 and len(server.requests) == 3
    assert time.monotonic() - start < 3


def test_reset_then_success(server: HTTPSServer, trust: TrustConfig) -> None:
    server.set_behaviour(sequence([reset, reset]))
    c = client(trust)
    assert c.get(server.url).data == b"ok"
    assert c.request_count == 3


def test_error_stall_times_out_within_bounds(server: HTTPSServer, trust: TrustConfig) -> None:
    server.set_behaviour(stall(3))
    c = client(trust, timeout=0.5, retries=1)
    start = time.monotonic()
    with pytest.raises(NetworkError) as info:
        c.get(server.url)
    elapsed = time.monotonic() - start
    assert info.value.message == f"read timed out (after 2 attempts): {server.url}"
    # (retries + 1) * read timeout + backoff + slack
    assert elapsed < 2 * 0.5 + 0.05 + 1.5
    assert c.request_count == 2


def test_error_connect_refused(trust: TrustConfig) -> None:
    with HTTPSServer(ok_behaviour(), None) as srv:
        port = srv.port
    c = client(trust, retries=1)
    with pytest.raises(NetworkError) as info:
        c.get(f"https://127.0.0.1:{port}/")
    assert info.value.message == (f"connection refused (after 2 attempts): "
                                  f"https://127.0.0.1:{port}/")


def test_error_404_not_retried(server: HTTPSServer, trust: TrustConfig) -> None:
    server.set_behaviour(status(404))
    c = client(trust)
    with pytest.raises(NetworkError) as info:
        c.get(server.url + "x")
    assert info.value.message == f"HTTP 404 Not Found: {server.url}x"
    assert c.request_count == 1


def test_ok_statuses_and_range(tmp_path: Path, pki: TestPKI, trust: TrustConfig) -> None:
    (tmp_path / "f.bin").write_bytes(bytes(range(256)))
    with https_file_server(tmp_path, pki) as srv:
        c = client(trust)
        r = c.get(srv.url + "f.bin", {"Range": "bytes=-16"}, ok=(200, 206))
        assert r.status == 206 and r.data == bytes(range(240, 256))
        assert r.headers["content-range"] == "bytes 240-255/256"
        streamed = c.get(srv.url + "f.bin", stream=True)
        assert b"".join(streamed.iter_bytes(10)) == bytes(range(256))
        assert srv.requests[0].headers["User-Agent"].startswith("inst/")


def test_credentials_sent_as_basic_and_never_shown(server: HTTPSServer,
                                                   trust: TrustConfig) -> None:
    server.set_behaviour(status(401))
    c = client(trust)
    url = f"https://alice:{SECRET}@127.0.0.1:{server.port}/simple/"
    with pytest.raises(NetworkError) as info:
        c.get(url)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.args)
    assert info.value.message == (f"HTTP 401 Unauthorized: "
                                  f"https://alice:****@127.0.0.1:{server.port}/simple/")
    assert server.requests[0].headers["Authorization"].startswith("Basic ")


def _redirect(to: str, code: int = 302) -> Behaviour:
    return lambda h: h.reply(code, b"", {"Location": to})


def test_redirect_to_other_host_drops_authorization(pki: TestPKI, trust: TrustConfig) -> None:
    other = HTTPSServer(ok_behaviour(), server_context(pki.leaf()), "localhost")
    first = HTTPSServer(_redirect(other.url + "file"), server_context(pki.leaf()))
    with other, first:
        c = client(trust)
        url = f"https://alice:{SECRET}@127.0.0.1:{first.port}/start"
        r = c.get(url, {"Cookie": "a=b"})
        assert r.url == other.url + "file"
        assert "Authorization" in first.requests[0].headers
        assert "Authorization" not in other.requests[0].headers
        assert "Cookie" not in other.requests[0].headers


def test_same_origin_redirect_keeps_authorization(server: HTTPSServer,
                                                  trust: TrustConfig) -> None:
    def behave(h: Handler) -> None:
        if h.path == "/a":
            h.reply(301, b"", {"Location": "/b"})
        else:
            h.reply(200, b"b")

    server.set_behaviour(behave)
    c = client(trust)
    r = c.get(f"https://alice:{SECRET}@127.0.0.1:{server.port}/a")
    assert r.data == b"b"
    assert "Authorization" in server.requests[1].headers


def test_error_redirect_loop(server: HTTPSServer, trust: TrustConfig) -> None:
    def behave(h: Handler) -> None:
        h.reply(302, b"", {"Location": "/b" if h.path == "/a" else "/a"})

    server.set_behaviour(behave)
    c = client(trust)
    with pytest.raises(NetworkError) as info:
        c.get(server.url + "a")
    assert info.value.message == f"redirect loop (back to {server.url}a): {server.url}b"
    assert c.request_count == 2


def test_error_https_to_http_redirect_refused(server: HTTPSServer, trust: TrustConfig) -> None:
    with HTTPSServer(ok_behaviour(), None) as plain:
        server.set_behaviour(_redirect(plain.url))
        c = client(trust)
        with pytest.raises(NetworkError) as info:
            c.get(server.url)
        assert info.value.message == (
            f"refused redirect from https to plain http ({plain.url}): {server.url}")
        assert plain.requests == []


def test_error_plain_http_refused_unless_trusted(trust: TrustConfig) -> None:
    with HTTPSServer(ok_behaviour(), None) as plain:
        with pytest.raises(NetworkError) as info:
            client(trust).get(plain.url)
        assert info.value.message == f"refused plain http URL: {plain.url}"
        assert info.value.hint == "use https, or add 127.0.0.1 to trusted-host"
        warned: list[str] = []
        cfg = HttpConfig(trusted_hosts=("127.0.0.1",))
        c = HttpClient(cfg, trust.context_for, on_insecure=warned.append)
        assert c.get(plain.url).status == 200
        c.get(plain.url)
        assert warned == [f"127.0.0.1:{plain.port}"]


def test_trusted_host_does_not_cover_redirect_target(pki: TestPKI) -> None:
    """Verification stays on for the host a trusted host redirects to."""
    stranger = TestPKI()
    other = HTTPSServer(ok_behaviour(), server_context(stranger.leaf()), "localhost")
    first = HTTPSServer(_redirect(other.url), server_context(stranger.leaf()))
    with other, first:
        trust = TrustConfig(TrustPolicy(), trusted_hosts=("127.0.0.1",))
        c = HttpClient(HttpConfig(trusted_hosts=("127.0.0.1",)), trust.context_for,
                       trust.explain)
        with pytest.raises(NetworkError) as info:
            c.get(first.url)
        assert info.value.url == other.url


@pytest.mark.parametrize(("url", "no_proxy", "expected"), [
    ("https://pypi.org/simple", (), "http://p:1"),
    ("https://pypi.org/simple", ("pypi.org",), None),
    ("https://files.pypi.org/x", (".pypi.org",), None),
    ("https://files.pypi.org/x", ("pypi.org",), None),
    ("https://notpypi.org/x", ("pypi.org",), "http://p:1"),
    ("https://pypi.org/x", ("*",), None),
    ("https://pypi.org:8443/x", ("pypi.org:8443",), None),
    ("https://pypi.org/x", ("pypi.org:8443",), "http://p:1"),
])
def test_no_proxy(url: str, no_proxy: tuple[str, ...], expected: str | None) -> None:
    assert select_proxy(url, "http://p:1", no_proxy) == expected
