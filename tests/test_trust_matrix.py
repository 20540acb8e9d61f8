"""The trust matrix: every server kind x every trust policy, each cell success or the exact
diagnosis. Requests go through the real HttpClient to real TLS servers on 127.0.0.1.

"System store" is simulated with SSL_CERT_DIR pointing at a hashed folder holding the test CA
(truststore on Linux uses OpenSSL's default verify paths, which honour it). SSL_CERT_FILE is NOT
used for that, because inst also reads SSL_CERT_FILE as an ambient ``cert`` (which replaces the
roots), so a test using it would exercise the cert path, not the system store. The ambient cells
(REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE) and the precedence cells go through the CLI.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from installer.errors import ConfigError, TLSError
from installer.http import HttpClient, HttpConfig
from installer.trust import TrustConfig, TrustPolicy
from tests.helpers.tls_servers import (
    HTTPSServer,
    TestPKI,
    ok_behaviour,
    self_signed_cert,
    server_context,
)

SERVERS = ("ca", "intermediate", "self-signed", "expired", "not-yet-valid", "wrong-host",
           "client-cert")
POLICIES = ("certifi", "system", "system+certifi", "cert", "per-index", "trusted-host")


class World:
    """One CA, one server per kind, the simulated system store."""

    def __init__(self, folder: Path, stack: ExitStack) -> None:
        self.pki = TestPKI(folder / "pki")
        self.store = self.pki.system_store()
        self.client_pem = self.pki.client_cert_file()
        self.leafs: dict[str, object] = {
            "ca": self.pki.leaf(), "intermediate": self.pki.with_intermediate(),
            "expired": self.pki.expired(), "not-yet-valid": self.pki.not_yet_valid(),
            "wrong-host": self.pki.leaf("other.test"), "client-cert": self.pki.leaf(),
        }
        self.servers: dict[str, HTTPSServer] = {}
        for name in SERVERS:
            cert = self_signed_cert(folder) if name == "self-signed" else self.leafs[name]
            ctx = server_context(cert, client_ca=self.pki.ca if name == "client-cert" else None)
            self.servers[name] = stack.enter_context(HTTPSServer(ok_behaviour(), ctx))

    @property
    def ca_name(self) -> str:
        return _name(x509.load_pem_x509_certificate(self.pki.ca.cert_pem.bytes()).subject)

    def leaf_cert(self, server: str) -> x509.Certificate:
        leaf = self.leafs[server]
        return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())  # type: ignore


def _name(name: x509.Name) -> str:
    parts = []
    for oid, short in ((NameOID.COMMON_NAME, "CN"), (NameOID.ORGANIZATION_NAME, "O"),
                       (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU")):
        parts += [f"{short}={a.value}" for a in name.get_attributes_for_oid(oid)]
    return ", ".join(parts)


def _openssl_time(when: datetime.datetime) -> str:
    return when.strftime("%b %e %H:%M:%S %Y GMT")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ExitStack() as stack:
        yield World(tmp_path_factory.mktemp("matrix"), stack)


def _config(policy: str, world: World, url: str) -> TrustConfig:
    ca = str(world.pki.ca_path)
    if policy in ("certifi", "system", "system+certifi"):
        return TrustConfig(TrustPolicy(trust=policy))  # type: ignore[arg-type]
    if policy == "cert":
        return TrustConfig(TrustPolicy(cert=ca))
    if policy == "per-index":
        return TrustConfig(TrustPolicy(), per_index=((url + "simple", TrustPolicy(cert=ca)),))
    return TrustConfig(TrustPolicy(), trusted_hosts=("127.0.0.1",))


def _roots(policy: str, world: World) -> str:
    return {"certifi": "certifi's roots", "system": "the system store",
            "system+certifi": "the system store and certifi's roots"}.get(
        policy, f"the bundle {world.pki.ca_path}")


def expected(server: str, policy: str) -> str:
    """'ok' or the reason code for a cell."""
    if policy == "trusted-host":
        return "client-cert-required" if server == "client-cert" else "ok"
    if server == "self-signed":
        return "self-signed"
    if policy == "certifi":
        return "unknown-issuer"
    return {"ca": "ok", "intermediate": "ok", "expired": "expired",
            "not-yet-valid": "not-yet-valid", "wrong-host": "hostname-mismatch",
            "client-cert": "client-cert-required"}[server]


def expected_detail(reason: str, server: str, policy: str, world: World) -> str:
    roots = _roots(policy, world)
    if reason == "unknown-issuer":
        return f"unknown issuer: {world.ca_name} is not in {roots}"
    if reason == "self-signed":
        return ("self-signed: CN=self-signed.test signed its own certificate, which is not in "
                f"{roots}")
    if reason == "client-cert-required":
        return "client certificate required: the server asks for one and none is configured"
    if reason == "hostname-mismatch":
        return "hostname mismatch: the certificate is for other.test, not 127.0.0.1"
    leaf = world.leaf_cert(server)
    subject = _name(leaf.subject)
    if reason == "expired":
        return f"expired: the certificate for {subject} expired on " \
               f"{_openssl_time(leaf.not_valid_after_utc)}"
    return f"not yet valid: the certificate for {subject} is valid from " \
           f"{_openssl_time(leaf.not_valid_before_utc)}"


CELLS = [(s, p) for s in SERVERS for p in POLICIES]


@pytest.mark.parametrize(("server", "policy"), CELLS, ids=[f"{s}-{p}" for s, p in CELLS])
def test_matrix(world: World, server: str, policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if policy.startswith("system"):
        monkeypatch.setenv("SSL_CERT_DIR", str(world.store))
    srv = world.servers[server]
    url = srv.url + "simple/"
    config = _config(policy, world, srv.url)
    client = HttpClient(HttpConfig(timeout=5, retries=2), config.context_for, config.explain)
    want = expected(server, policy)
    if want == "ok":
        assert client.get(url).data == b"hello\n"
        return
    with pytest.raises(TLSError) as info:
        client.get(url)
    err = info.value
    assert err.reason == want
    assert err.message == (f"TLS certificate problem "
                           f"({expected_detail(want, server, policy, world)}): {url}")
    assert client.request_count == 1  # certificate errors are never retried


def test_client_cert_configured_succeeds(world: World) -> None:
    srv = world.servers["client-cert"]
    config = TrustConfig(TrustPolicy(cert=str(world.pki.ca_path),
                                     client_cert=str(world.client_pem)))
    client = HttpClient(HttpConfig(timeout=5), config.context_for, config.explain)
    assert client.get(srv.url).status == 200


def test_client_cert_from_other_ca_is_rejected(world: World, tmp_path: Path) -> None:
    stranger = TestPKI(tmp_path / "stranger").client_cert_file()
    srv = world.servers["client-cert"]
    config = TrustConfig(TrustPolicy(cert=str(world.pki.ca_path), client_cert=str(stranger)))
    client = HttpClient(HttpConfig(timeout=5), config.context_for, config.explain)
    with pytest.raises(TLSError) as info:
        client.get(srv.url)
    assert info.value.reason == "client-cert-required"
    assert info.value.detail == f"client certificate rejected: the server did not accept {stranger}"


def test_system_without_the_ca_fails(world: World) -> None:
    config = TrustConfig(TrustPolicy(trust="system"))
    client = HttpClient(HttpConfig(timeout=5), config.context_for, config.explain)
    with pytest.raises(TLSError) as info:
        client.get(world.servers["ca"].url)
    assert info.value.reason == "unknown-issuer"


def test_cert_replaces_roots_even_with_system_trust(world: World, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle replaces the roots: the test CA in the system store does not help."""
    monkeypatch.setenv("SSL_CERT_DIR", str(world.store))
    other = TestPKI(tmp_path / "other")
    config = TrustConfig(TrustPolicy(trust="system", cert=str(other.ca_path)))
    client = HttpClient(HttpConfig(timeout=5), config.context_for, config.explain)
    with pytest.raises(TLSError) as info:
        client.get(world.servers["ca"].url)
    assert info.value.reason == "unknown-issuer"


def test_per_index_cert_does_not_leak_to_other_hosts(world: World) -> None:
    ca = str(world.pki.ca_path)
    config = TrustConfig(TrustPolicy(),
                         per_index=(("https://pypi.corp.example/simple", TrustPolicy(cert=ca)),))
    client = HttpClient(HttpConfig(timeout=5), config.context_for, config.explain)
    with pytest.raises(TLSError):
        client.get(world.servers["ca"].url)


def test_trusted_host_is_exact(world: World) -> None:
    srv = world.servers["ca"]
    for entry in ("127.0.0", "0.0.1", f"127.0.0.1:{srv.port + 1}", "*"):
        config = TrustConfig(TrustPolicy(), trusted_hosts=(entry,))
        client = HttpClient(HttpConfig(timeout=5), config.context_for, config.explain)
        with pytest.raises(TLSError):
            client.get(srv.url)
    config = TrustConfig(TrustPolicy(), trusted_hosts=(f"127.0.0.1:{srv.port}",))
    assert HttpClient(HttpConfig(), config.context_for).get(srv.url).status == 200


# --- fixes the short diagnosis offers -------------------------------------------------------


def test_error_certifi_suggests_system_store(world: World, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.setenv("SSL_CERT_DIR", str(world.store))
    config = TrustConfig(TrustPolicy())
    client = HttpClient(HttpConfig(timeout=5), config.context_for, config.explain)
    with pytest.raises(TLSError) as info:
        client.get(world.servers["ca"].url)
    assert info.value.hint == "the system store verifies it: inst config set global.trust system"


def test_error_nothing_verifies_suggests_cert_then_trusted_host(world: World) -> None:
    config = TrustConfig(TrustPolicy())
    client = HttpClient(HttpConfig(timeout=5), config.context_for, config.explain)
    with pytest.raises(TLSError) as info:
        client.get(world.servers["ca"].url)
    assert info.value.hint == (
        "get the CA certificate that signed it and run inst config set global.cert "
        "/path/to/ca.pem; as a last resort, inst config set global.trusted-host 127.0.0.1 "
        "turns verification off for 127.0.0.1: anyone on the network path could then "
        "impersonate it")


def test_error_shadowed_bundle_is_suggested(world: World, tmp_path: Path) -> None:
    wrong = TestPKI(tmp_path / "wrong")
    ca = str(world.pki.ca_path)
    config = TrustConfig(TrustPolicy(cert=str(wrong.ca_path), origins={"cert": "flag --cert"}),
                         known_bundles=((ca, "env REQUESTS_CA_BUNDLE"),))
    client = HttpClient(HttpConfig(timeout=5), config.context_for, config.explain)
    with pytest.raises(TLSError) as info:
        client.get(world.servers["ca"].url)
    assert info.value.hint == (
        f"the bundle {ca} (env REQUESTS_CA_BUNDLE) verifies it: use --cert {ca}")


# --- bad cert paths fail closed -------------------------------------------------------------


def _bad_paths(tmp: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp / "empty.pem"
    empty.write_text("")
    junk = tmp / "junk.pem"
    junk.write_text("not a certificate\n")
    unreadable = tmp / "secret.pem"
    unreadable.write_text("-----BEGIN CERTIFICATE-----\n")
    unreadable.chmod(0)
    by = " (set by env REQUESTS_CA_BUNDLE)"
    return {
        "missing": (tmp / "nope.pem", "cert file {p} does not exist" + by),
        "folder": (tmp, "cert path {p} is a folder, not a PEM file" + by),
        "empty": (empty, "cert file {p} holds no PEM certificate" + by),
        "junk": (junk, "cert file {p} holds no PEM certificate" + by),
        "unreadable": (unreadable, "cannot read cert file {p}: Permission denied" + by),
    }


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "junk", "unreadable"])
def test_error_bad_cert_path(kind: str, tmp_path: Path) -> None:
    path, message = _bad_paths(tmp_path)[kind]
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root can read any file")
    config = TrustConfig(TrustPolicy(cert=str(path),
                                     origins={"cert": "env REQUESTS_CA_BUNDLE"}))
    with pytest.raises(ConfigError) as info:
        config.context_for("https://pypi.org/simple/")
    assert info.value.message == message.format(p=path)
    assert info.value.hint == ("fix the path or remove the setting; inst does not fall back to "
                               "other roots")


# --- through the CLI: ambient env bundles and precedence -------------------------------------


def _inst(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "installer", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=60)


AMBIENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
AMBIENT_CELLS = [(v, s) for v in AMBIENT for s in ("ca", "intermediate", "expired",
                                                   "wrong-host")]


@pytest.mark.parametrize(("var", "server"), AMBIENT_CELLS,
                         ids=[f"{v}-{s}" for v, s in AMBIENT_CELLS])
def test_ambient_bundle(world: World, var: str, server: str) -> None:
    url = world.servers[server].url
    proc = _inst("debug", "tls", url, env={var: str(world.pki.ca_path)})
    assert f"  cert = {world.pki.ca_path} (env {var})" in proc.stdout
    want = expected(server, "cert")
    if want == "ok":
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"verdict: OK, verified with the bundle {world.pki.ca_path}" in proc.stdout
    else:
        assert proc.returncode == 1
        detail = expected_detail(want, server, "cert", world)
        assert f"verdict: FAILED, {detail}\n" in proc.stdout


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return TestPKI(tmp_path_factory.mktemp("wrong")).ca_path


def _user_file(home_cfg: Path, cert: Path) -> Path:
    path = home_cfg / "inst" / "inst.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[global]\ncert = "{cert}"\n')
    return path


PRECEDENCE = ["flag>INST_CERT", "INST_CERT>file", "file>REQUESTS_CA_BUNDLE"]


@pytest.mark.parametrize("case", PRECEDENCE)
@pytest.mark.parametrize("winner_good", [True, False], ids=["higher-good", "higher-bad"])
def test_precedence(world: World, wrong_ca: Path, case: str, winner_good: bool) -> None:
    good, bad = world.pki.ca_path, wrong_ca
    hi, lo = (good, bad) if winner_good else (bad, good)
    url = world.servers["ca"].url
    env: dict[str, str] = {}
    args: list[str] = []
    cfg_home = Path(os.environ["XDG_CONFIG_HOME"])
    upper, lower = case.split(">")
    for layer, value in ((upper, hi), (lower, lo)):
        if layer == "flag":
            args += ["--cert", str(value)]
        elif layer == "file":
            _user_file(cfg_home, value)
        else:
            env[layer] = str(value)
    proc = _inst("debug", "tls", url, *args, env=env)
    origin = {"flag": "flag --cert", "INST_CERT": "env INST_CERT",
              "file": f"{cfg_home / 'inst' / 'inst.toml'}:2 [global]",
              "REQUESTS_CA_BUNDLE": "env REQUESTS_CA_BUNDLE"}[upper]
    assert f"  cert = {hi} ({origin})\n" in proc.stdout, proc.stdout + proc.stderr
    if winner_good:
        assert proc.returncode == 0
    else:
        assert proc.returncode == 1
        assert f"fix: the bundle {good} (" in proc.stdout
