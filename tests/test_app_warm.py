"""A warm install (pages fresh in the HTTP cache, wheels and their unpacked trees cached) goes
over no network: no request, no HTTP client (urllib3 and ssl are never imported), no thread.
When a request *is* needed, the lazily built client fails exactly as an eager one did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.app import LazyHttpClient
from tests.helpers.e2e_index import Cli, requests_like, run_python
from tests.helpers.index_server import IndexServer, SimpleIndex
from tests.helpers.probe import probe
from tests.helpers.tls_servers import TestPKI

NETWORK = ("urllib3", "ssl", "truststore", "certifi")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> Iterator[IndexServer]:
    idx = SimpleIndex(tmp_path_factory.mktemp("index"))
    requests_like(idx)
    with IndexServer(idx, pki, cache_control="max-age=600") as srv:
        yield srv


def test_warm_install_makes_no_request_and_builds_no_client(
        tmp_path: Path, server: IndexServer, pki: TestPKI) -> None:
    cli = Cli(tmp_path, tmp_path / "cache")
    index = ["--index-url", server.url + "/", "--cert", str(pki.ca_path)]
    cli.ok("venv", "one")
    cli.ok("install", "--python", "one", *index, "requests")
    sent = len(server.requests)
    cli.ok("venv", "two")
    seen = probe(cli, "install", "--python", "two", *index, "requests", modules=NETWORK)
    # No network thread (index pages, downloads); the installer's own file-linking threads
    # are not about the network.
    network = [t for t in seen.threads if not t.startswith("inst-cached")]
    assert (seen.code, network, seen.modules) == (0, [], [])
    assert len(server.requests) == sent
    imported = run_python(tmp_path / "two", "import requests; print(requests.__version__)")
    assert imported.stdout == "2.32.0\n", imported.stderr


def test_error_bad_cert_still_fails_when_a_request_is_needed(
        tmp_path: Path, server: IndexServer, pki: TestPKI) -> None:
    cli = Cli(tmp_path, tmp_path / "cache")
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    cli.ok("venv", "one")
    cli.ok("install", "--python", "one", "--index-url", server.url + "/", "--cert",
           str(pki.ca_path), "requests")
    sent = len(server.requests)
    cli.ok("venv", "two")
    proc = cli("install", "--python", "two", "--index-url", server.url + "/", "--refresh",
               "--cert", str(empty), "requests")
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: cert file {empty} holds no PEM certificate (set by flag --cert)"]
    assert len(server.requests) == sent  # failed closed, before sending anything
    assert not list((tmp_path / "two").rglob("requests-*.dist-info"))


def test_lazy_client_is_built_once_on_first_request() -> None:
    made: list[int] = []

    class Client:
        request_count = 0

        def request(self, method: str, url: str, headers: object = None, *,
                    stream: bool = False, ok: object = (200,)) -> str:
            self.request_count += 1
            return f"{method} {url}"

        def get(self, url: str, headers: object = None, *, stream: bool = False,
                ok: object = (200,)) -> str:
            return self.request("GET", url, headers, stream=stream, ok=ok)

        def close(self) -> None:
            made.append(-1)

    def factory() -> Client:
        made.append(1)
        return Client()

    lazy = LazyHttpClient(factory)  # type: ignore[arg-type]
    assert (lazy.built, lazy.request_count, made) == (False, 0, [])
    lazy.close()
    assert made == []  # nothing to close
    answers: list[object] = [lazy.request("GET", "https://x/"), lazy.get("https://y/")]
    assert answers == ["GET https://x/", "GET https://y/"]
    assert (lazy.built, lazy.request_count, made) == (True, 2, [1])
    lazy.close()
    assert made == [1, -1]


def test_lazy_client_factory_error_surfaces_from_each_request() -> None:
    def factory() -> object:
        raise OSError("no trust store")

    lazy = LazyHttpClient(factory)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(OSError, match="no trust store"):
            lazy.get("https://x/")
    assert not lazy.built


# (not subprocess or dataclasses: packaging.markers imports them, through packaging.tags and
# packaging._tokenizer)
HEAVY = ("installer.txn", "installer.wheel", "installer.index", "installer.http", "urllib3",
         "ssl", "email", "tomllib", "concurrent.futures", "hashlib", "zipfile", "tempfile",
         "shutil")


def test_no_op_install_imports_nothing_it_does_not_need(
        tmp_path: Path, server: IndexServer, pki: TestPKI) -> None:
    # Start-up is most of a no-op install (issue 7): the installer, the index client, TLS,
    # and email stay unimported when everything is satisfied.
    cli = Cli(tmp_path, tmp_path / "cache")
    index = ["--index-url", server.url + "/", "--cert", str(pki.ca_path)]
    cli.ok("venv", "env")
    cli.ok("install", "--python", "env", *index, "requests")
    seen = probe(cli, "install", "--python", "env", *index, "requests", modules=HEAVY)
    assert (seen.code, seen.modules) == (0, [])
