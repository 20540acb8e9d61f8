"""Prefetching: on a cold cache, wheels the resolver pins are downloaded (and unpacked) while
it still resolves; never under --dry-run, never on a warm cache, and the install is the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.e2e_index import Cli, requests_like, run_python
from tests.helpers.index_server import IndexServer, SimpleIndex
from tests.helpers.probe import probe
from tests.helpers.tls_servers import TestPKI


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(tmp_path: Path, pki: TestPKI) -> Iterator[IndexServer]:
    idx = SimpleIndex(tmp_path / "index")
    requests_like(idx)
    with IndexServer(idx, pki) as srv:
        yield srv


def prefetching(cli: Cli, *args: str) -> tuple[int, list[str]]:
    """Exit code and the prefetch threads of one run."""
    seen = probe(cli, *args)
    return seen.code, [t for t in seen.threads if t.startswith("inst-prefetch")]


def wheels_fetched(server: IndexServer) -> int:
    return sum(1 for r in server.requests if r.path.split("?")[0].endswith(".whl"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="unpack workers fork")
def test_cold_install_prefetches_while_resolving(tmp_path: Path, server: IndexServer,
                                                 pki: TestPKI) -> None:
    cli = Cli(tmp_path, tmp_path / "cache")
    index = ["--index-url", server.url + "/", "--cert", str(pki.ca_path)]
    cli.ok("venv", "env")
    code, prefetch_threads = prefetching(cli, "install", "--python", "env", *index, "requests")
    assert code == 0 and prefetch_threads
    assert wheels_fetched(server) == 5  # each wheel once: prefetched, never again
    imported = run_python(tmp_path / "env", "import requests; print(requests.__version__)")
    assert imported.stdout == "2.32.0\n", imported.stderr
    # The cache is no longer empty: the next (warm) run prefetches nothing.
    cli.ok("venv", "env2")
    code, prefetch_threads = prefetching(cli, "install", "--python", "env2", *index, "requests")
    assert (code, prefetch_threads, wheels_fetched(server)) == (0, [], 5)


def test_cold_dry_run_downloads_no_wheel(tmp_path: Path, server: IndexServer,
                                         pki: TestPKI) -> None:
    cli = Cli(tmp_path, tmp_path / "cache")
    cli.ok("venv", "env")
    code, prefetch_threads = prefetching(cli, "install", "--dry-run", "--python", "env",
                                   "--index-url", server.url + "/", "--cert",
                                   str(pki.ca_path), "requests")
    assert (code, prefetch_threads, wheels_fetched(server)) == (0, [], 0)
