"""A real proxy.py on loopback: plain CONNECT, and TLS interception with its own CA.

proxy.py names the certificates it mints with DNS names only, so the origin is reached as
``localhost`` (its certificate covers localhost and 127.0.0.1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from installer.errors import NetworkError, TLSError
from installer.http import HttpClient, HttpConfig
from installer.trust import TrustConfig, TrustPolicy
from tests.helpers.tls_servers import (
    HTTPSServer,
    Proxy,
    TestPKI,
    ok_behaviour,
    proxy_py,
    server_context,
)


class Net:
    def __init__(self, folder: Path, stack: ExitStack) -> None:
        self.origin_pki = TestPKI(folder / "origin")
        self.proxy_pki = TestPKI(folder / "proxy-ca", name="proxy-ca")
        self.origin = stack.enter_context(HTTPSServer(
            ok_behaviour(), server_context(self.origin_pki.leaf()), "localhost"))
        self.plain: Proxy = stack.enter_context(proxy_py(folder / "plain"))
        self.mitm: Proxy = stack.enter_context(proxy_py(
            folder / "mitm", intercept_ca=self.proxy_pki, upstream_ca=self.origin_pki.ca_path))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with ExitStack() as stack:
        yield Net(tmp_path_factory.mktemp("proxy"), stack)


def _client(policy: TrustPolicy, proxy: str | None) -> HttpClient:
    trust = TrustConfig(policy)
    return HttpClient(HttpConfig(timeout=10, retries=1, backoff=0.05, proxy=proxy),
                      trust.context_for,
                      lambda url, exc: trust.explain(url, exc, proxy=proxy))


def test_plain_connect_proxy(net: Net) -> None:
    before = len(net.origin.requests)
    c = _client(TrustPolicy(cert=str(net.origin_pki.ca_path)), net.plain.url)
    assert c.get(net.origin.url).data == b"hello\n"
    assert len(net.origin.requests) == before + 1


def test_error_unreachable_proxy_is_used(net: Net) -> None:
    c = _client(TrustPolicy(cert=str(net.origin_pki.ca_path)), "http://127.0.0.1:9")
    with pytest.raises(NetworkError) as info:
        c.get(net.origin.url)
    assert info.value.message.startswith("proxy error (")
    assert not isinstance(info.value, TLSError)


def _interception_detail(net: Net, roots: str) -> str:
    def name(pki: TestPKI) -> str:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        subj = x509.load_pem_x509_certificate(pki.ca.cert_pem.bytes()).subject
        org = subj.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        ou = subj.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        return f"O={org}, OU={ou}"

    return (f"proxy re-signs traffic: through {net.mitm.url} the certificate is issued by "
            f"{name(net.proxy_pki)}, directly by {name(net.origin_pki)}; {roots} do not "
            f"include the proxy's CA")


def test_error_interception_with_certifi_is_named(net: Net) -> None:
    c = _client(TrustPolicy(), net.mitm.url)
    with pytest.raises(TLSError) as info:
        c.get(net.origin.url)
    err = info.value
    assert err.reason == "proxy-resigns"
    assert err.message == (f"TLS certificate problem "
                           f"({_interception_detail(net, 'certifi' + chr(39) + 's roots')}): "
                           f"{net.origin.url}")
    assert err.hint == ("add the proxy's CA certificate: inst config set global.cert "
                        "/path/to/proxy-ca.pem (or add it to the system store and "
                        "inst config set global.trust system)")


def test_error_interception_with_origin_ca(net: Net) -> None:
    c = _client(TrustPolicy(cert=str(net.origin_pki.ca_path)), net.mitm.url)
    with pytest.raises(TLSError) as info:
        c.get(net.origin.url)
    assert info.value.reason == "proxy-resigns"


def test_interception_with_proxy_ca_as_cert(net: Net) -> None:
    c = _client(TrustPolicy(cert=str(net.proxy_pki.ca_path)), net.mitm.url)
    assert c.get(net.origin.url).data == b"hello\n"


def test_interception_with_proxy_ca_in_system_store(net: Net,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_DIR", str(net.proxy_pki.system_store()))
    c = _client(TrustPolicy(trust="system"), net.mitm.url)
    assert c.get(net.origin.url).data == b"hello\n"


def test_error_interception_fix_is_system_store(net: Net,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_DIR", str(net.proxy_pki.system_store()))
    c = _client(TrustPolicy(), net.mitm.url)
    with pytest.raises(TLSError) as info:
        c.get(net.origin.url)
    assert info.value.reason == "proxy-resigns"
    assert info.value.hint == "the system store verifies it: inst config set global.trust system"


def test_debug_tls_through_intercepting_proxy(net: Net) -> None:
    env = {**os.environ, "HTTPS_PROXY": net.mitm.url}
    proc = subprocess.run([sys.executable, "-m", "installer", "debug", "tls", net.origin.url],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"  proxy = {net.mitm.url} (env HTTPS_PROXY)\n" in proc.stdout
    assert "server chain (through the proxy):" in proc.stdout
    assert "server chain (direct, without the proxy):" in proc.stdout
    roots = "certifi's roots"
    assert f"verdict: FAILED, {_interception_detail(net, roots)}\n" in proc.stdout


def test_debug_tls_no_proxy_bypasses(net: Net) -> None:
    env = {**os.environ, "HTTPS_PROXY": net.mitm.url, "NO_PROXY": "localhost",
           "REQUESTS_CA_BUNDLE": str(net.origin_pki.ca_path)}
    proc = subprocess.run([sys.executable, "-m", "installer", "debug", "tls", net.origin.url],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "  proxy = (none)\n" in proc.stdout
