"""`inst debug tls URL` against real local TLS servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.helpers.tls_servers import HTTPSServer, TestPKI, ok_behaviour, server_context


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pki = TestPKI(tmp_path_factory.mktemp("pki"))
    with ExitStack() as stack:
        good = stack.enter_context(HTTPSServer(ok_behaviour(), server_context(pki.leaf())))
        mtls = stack.enter_context(HTTPSServer(ok_behaviour(),
                                               server_context(pki.leaf(), client_ca=pki.ca)))
        yield {"pki": pki, "good": good, "mtls": mtls, "store": pki.system_store()}


def test_ok_prints_policy_chain_and_verdict(run_inst: Any, setup: dict[str, Any]) -> None:
    pki, url = setup["pki"], setup["good"].url
    proc = run_inst("debug", "tls", url, "--cert", str(pki.ca_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:6] == [
        f"url: {url}", "policy:",
        "  trust = certifi (default)  [not used: cert replaces these roots]",
        f"  cert = {pki.ca_path} (flag --cert)", "  client-cert = (none)", "  proxy = (none)",
    ]
    assert lines[6] == "server chain:"
    assert lines[7].startswith("  0: subject: O=trustme")
    assert "     names:   127.0.0.1, localhost" in lines
    assert lines[-1] == f"verdict: OK, verified with the bundle {pki.ca_path} (HTTP/1.1 200 OK)"


def test_error_unknown_issuer_suggests_system(run_inst: Any, setup: dict[str, Any]) -> None:
    url = setup["good"].url
    proc = run_inst("debug", "tls", url, env={"SSL_CERT_DIR": str(setup["store"])})
    assert proc.returncode == 1
    assert "  trust = certifi (default)\n" in proc.stdout
    assert proc.stdout.splitlines()[-2].startswith("verdict: FAILED, unknown issuer: O=trustme")
    assert proc.stdout.splitlines()[-1] == (
        "fix: the system store verifies it: inst config set global.trust system")


def test_trust_system_from_env(run_inst: Any, setup: dict[str, Any]) -> None:
    proc = run_inst("debug", "tls", setup["good"].url,
                    env={"SSL_CERT_DIR": str(setup["store"]), "INST_TRUST": "system"})
    assert proc.returncode == 0, proc.stdout
    assert "  trust = system (env INST_TRUST)\n" in proc.stdout
    assert proc.stdout.splitlines()[-1] == (
        "verdict: OK, verified with the system store (HTTP/1.1 200 OK)")


def test_error_client_cert_required(run_inst: Any, setup: dict[str, Any]) -> None:
    pki = setup["pki"]
    proc = run_inst("debug", "tls", setup["mtls"].url, "--cert", str(pki.ca_path))
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-2:] == [
        "verdict: FAILED, client certificate required: the server asks for one and none is "
        "configured",
        "fix: inst config set global.client-cert /path/to/client.pem (certificate and key)",
    ]
    client = pki.client_cert_file()
    proc = run_inst("debug", "tls", setup["mtls"].url, "--cert", str(pki.ca_path),
                    "--client-cert", str(client))
    assert proc.returncode == 0, proc.stdout
    assert f"  client-cert = {client} (flag --client-cert)\n" in proc.stdout


def test_trusted_host_warns(run_inst: Any, setup: dict[str, Any]) -> None:
    proc = run_inst("debug", "tls", setup["good"].url, "--trusted-host", "127.0.0.1")
    assert proc.returncode == 0
    assert ("warning: certificate verification is off for 127.0.0.1 (trusted-host, set by "
            "flag --trusted-host)") in proc.stderr
    assert proc.stdout.splitlines()[-1] == (
        "verdict: OK, not verified: 127.0.0.1 is a trusted-host (HTTP/1.1 200 OK)")


def test_error_bad_cert_path(run_inst: Any, setup: dict[str, Any], tmp_path: Any) -> None:
    missing = tmp_path / "missing.pem"
    proc = run_inst("debug", "tls", setup["good"].url, env={"CURL_CA_BUNDLE": str(missing)})
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: cert file {missing} does not exist (set by env CURL_CA_BUNDLE)",
        "hint: fix the path or remove the setting; inst does not fall back to other roots",
    ]


def test_error_not_https(run_inst: Any) -> None:
    proc = run_inst("debug", "tls", "http://127.0.0.1:1/")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: inst debug tls needs an https:// URL, got http://127.0.0.1:1/"


def test_error_connection_refused(run_inst: Any) -> None:
    with HTTPSServer(ok_behaviour(), None) as srv:
        port = srv.port
    proc = run_inst("debug", "tls", f"https://127.0.0.1:{port}/")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: could not connect (Connection refused): https://127.0.0.1:{port}/")
