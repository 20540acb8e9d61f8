"""Fault injection through the real CLI: ``inst install`` against a local HTTPS index that
misbehaves on purpose (issue 6, "Faults").

For every fault: the exit code (1, or 0 where a retry is right), exactly one ``error:`` line that
names the URL with its credentials masked and the cause (pinned), the target venv byte-identical
to before, no bad file and no temp file left in the cache, and the number of requests bounded.
The unit-level behaviour of each layer is tested in test_http.py, test_index_http.py and
test_download_cache.py; here the whole path a user runs is exercised.
"""

from __future__ import annotations

import hashlib
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.faults_world import FAST, cache_leftovers, errors, inst_install
from tests.helpers.index_server import IndexFile, IndexServer, SimpleIndex
from tests.helpers.install_env import clone_venv, make_venv, tree_digest
from tests.helpers.tls_servers import (
    Handler,
    HTTPSServer,
    TestPKI,
    sequence,
    stall,
    status,
)
from tests.helpers.wheels import metadata_text

SECRET = "s3cr3t-f4ult"
DEMO = "demo-1.0-py3-none-any.whl"
DEP = "dep-1.0-py3-none-any.whl"


@dataclass
class World:
    pki: TestPKI
    index: SimpleIndex
    template: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("faults")
    pki = TestPKI(root / "pki")
    index = SimpleIndex(root / "idx")
    index.add_wheel("demo", "1.0", files={"demo/__init__.py": "X = 1\n"}, requires=["dep"])
    index.add_wheel("dep", "1.0", files={"dep/__init__.py": "Y = 1\n",
                                         "dep/blob.bin": random.Random(6).randbytes(200_000)})
    make_venv(root / "venv")
    return World(pki, index, root / "venv")


@dataclass
class Case:
    """One run's setting: a venv cloned from the template, a cache, a server."""

    venv: Path
    cache: Path
    srv: IndexServer
    ca: str
    before: dict[str, str]

    @property
    def url(self) -> str:
        """The index URL with credentials in it."""
        return self.srv.url.replace("https://", f"https://alice:{SECRET}@")

    @property
    def shown(self) -> str:
        """The index URL as messages must show it."""
        return self.srv.url.replace("https://", "https://alice:****@")

    def install(self, *extra: str, url: str | None = None) -> tuple[int, list[str], str]:
        proc = inst_install(self.venv, self.cache, "--index-url", url or self.url,
                            "--cert", self.ca, *FAST, *extra, "demo")
        out = proc.stdout + proc.stderr
        assert SECRET not in out
        return proc.returncode, errors(proc), out

    def unchanged(self, bad: list[bytes] = []) -> None:  # noqa: B006 - read only
        assert tree_digest(self.venv) == self.before
        assert cache_leftovers(self.cache, bad) == []

    def installed(self) -> None:
        site = next(self.venv.glob("lib/python*/site-packages"))
        assert (site / "demo" / "__init__.py").is_file()
        assert (site / "dep" / "__init__.py").is_file()
        assert cache_leftovers(self.cache) == []


@pytest.fixture
def case(world: World, tmp_path: Path) -> Iterator[Case]:
    venv = tmp_path / "venv"
    clone_venv(world.template, venv)
    with IndexServer(world.index, world.pki) as srv:
        yield Case(venv, tmp_path / "cache", srv, str(world.pki.ca_path), tree_digest(venv))


def _default(srv: IndexServer, path: str) -> Callable[[Handler], None]:
    """The server's normal answer for *path* (after an override has done its damage)."""

    def run(h: Handler) -> None:
        srv.overrides.pop(path, None)
        srv._handle(h)

    return run


def _partial(data: bytes, *, reset: bool) -> Callable[[Handler], None]:
    """Announce the whole body, send half, then reset (RST) or close cleanly."""

    def run(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        h.wfile.write(data[: len(data) // 2])
        h.wfile.flush()
        if reset:
            h.reset()
        else:
            h.close_connection = True

    return run


# --- network faults ---------------------------------------------------------------------------


def test_error_connection_refused(case: Case) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://alice:{SECRET}@127.0.0.1:{port}/simple"
    start = time.monotonic()
    code, errs, _ = case.install(url=url)
    assert code == 1
    assert errs == [f"error: connection refused (after 3 attempts): "
                    f"https://alice:****@127.0.0.1:{port}/simple/demo/"]
    assert time.monotonic() - start < 15
    case.unchanged()


def test_reset_mid_body_resumes(case: Case, world: World) -> None:
    data = (world.index.files_dir / DEP).read_bytes()
    case.srv.overrides[f"/files/{DEP}"] = sequence(
        [_partial(data, reset=True)], then=_default(case.srv, f"/files/{DEP}"))
    code, errs, _ = case.install()
    assert (code, errs) == (0, [])
    case.installed()
    ranged = [r for r in case.srv.requests if r.path == f"/files/{DEP}"]
    assert len(ranged) == 2
    offset = int(ranged[1].headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= len(data) // 2  # resumed where the body broke, not from zero


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "short-body"])
def test_error_body_always_broken(case: Case, world: World, reset: bool) -> None:
    data = (world.index.files_dir / DEP).read_bytes()
    case.srv.overrides[f"/files/{DEP}"] = _partial(data, reset=reset)
    code, errs, _ = case.install()
    assert code == 1
    # the TLS layer sees the end of the stream either way (close_notify before the RST)
    assert errs == ["error: connection broken while reading (the server closed the connection "
                    "early): "
                    f"{case.shown.rsplit('/', 1)[0]}/files/{DEP}"]
    # one request and three resumes; each resume is one request
    assert case.srv.count(f"/files/{DEP}") == 4
    case.unchanged([data[: len(data) // 2]])


def test_error_stall_past_read_timeout(case: Case) -> None:
    case.srv.overrides["/simple/demo/"] = stall(3)
    start = time.monotonic()
    code, errs, _ = case.install()
    elapsed = time.monotonic() - start
    assert code == 1
    assert errs == [f"error: read timed out (after 3 attempts): {case.shown}/demo/"]
    assert case.srv.count("/simple/demo/") == 3
    assert 3 <= elapsed < 3 * 1 + 0.75 + 6  # (retries+1) x timeout + backoff + start-up
    case.unchanged()


def test_5xx_then_success(case: Case) -> None:
    case.srv.overrides["/simple/demo/"] = sequence(
        [500, 502], then=_default(case.srv, "/simple/demo/"))
    case.srv.overrides[f"/files/{DEP}"] = sequence(
        [503], then=_default(case.srv, f"/files/{DEP}"))
    code, errs, _ = case.install()
    assert (code, errs) == (0, [])
    case.installed()
    assert case.srv.count("/simple/demo/") == 3
    assert case.srv.count(f"/files/{DEP}") == 2


def test_error_5xx_forever(case: Case) -> None:
    case.srv.overrides["/simple/demo/"] = status(502, body=b"bad gateway")
    code, errs, _ = case.install()
    assert code == 1
    assert errs == [f"error: HTTP 502 Bad Gateway: {case.shown}/demo/"]
    assert case.srv.count("/simple/demo/") == 3
    case.unchanged([b"bad gateway"])


def test_503_retry_after_is_honoured(case: Case) -> None:
    case.srv.overrides["/simple/demo/"] = sequence(
        [status(503, {"Retry-After": "1"})], then=_default(case.srv, "/simple/demo/"))
    code, errs, _ = case.install()
    assert (code, errs) == (0, [])
    case.installed()
    first, second = [r for r in case.srv.requests if r.path == "/simple/demo/"]
    assert second.time - first.time >= 0.95
    assert len(case.srv.requests) == 7  # 2 pages, 2 metadata files, 2 wheels, 1 retry


def test_error_404_for_one_file(case: Case) -> None:
    case.srv.overrides[f"/files/{DEP}"] = status(404, body=b"gone")
    code, errs, _ = case.install()
    assert code == 1
    assert errs == [f"error: HTTP 404 Not Found: {case.shown.rsplit('/', 1)[0]}/files/{DEP}"]
    assert case.srv.count(f"/files/{DEP}") == 1  # a 404 is not retried
    case.unchanged()  # demo was downloaded fine, but nothing is installed


# --- bad pages --------------------------------------------------------------------------------


def test_error_page_neither_html_nor_json(case: Case) -> None:
    body = b"\x00\x01 this is not an index page"
    case.srv.overrides["/simple/demo/"] = status(
        200, {"Content-Type": "application/octet-stream", "Cache-Control": "max-age=600"}, body)
    code, errs, _ = case.install()
    assert code == 1
    assert errs == ["error: the index answered with neither HTML nor JSON (Content-Type: "
                    f"application/octet-stream): {case.shown}/demo/"]
    assert case.srv.count("/simple/demo/") == 1
    case.unchanged([body])


def test_error_truncated_json_page(case: Case, world: World) -> None:
    body = world.index.json_page("demo")[:-25]
    case.srv.overrides["/simple/demo/"] = status(
        200, {"Content-Type": "application/vnd.pypi.simple.v1+json",
              "Cache-Control": "max-age=600"}, body)
    code, errs, _ = case.install()
    assert code == 1
    assert errs == [f"error: malformed JSON page (truncated or not JSON): {case.shown}/demo/"]
    assert case.srv.count("/simple/demo/") == 1
    case.unchanged([body])


def test_error_page_of_50_mb(case: Case) -> None:
    sent = [0]

    def huge(h: Handler) -> None:
        size = 50 * 1024 * 1024
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(size))
        h.end_headers()
        chunk = b"<a>" + b" " * 65533
        try:
            while sent[0] < size:
                h.wfile.write(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    case.srv.overrides["/simple/demo/"] = huge
    start = time.monotonic()
    code, errs, _ = case.install()
    assert code == 1
    assert errs == [f"error: response larger than 20 MB: {case.shown}/demo/"]
    assert case.srv.count("/simple/demo/") == 1
    assert time.monotonic() - start < 20
    time.sleep(0.2)
    assert sent[0] < 50 * 1024 * 1024  # inst stopped reading; it did not drain the rest
    case.unchanged()


# --- redirects --------------------------------------------------------------------------------


def test_error_redirect_loop(case: Case) -> None:
    case.srv.overrides["/simple/demo/"] = status(302, {"Location": "/simple/loop/"})
    case.srv.overrides["/simple/loop/"] = status(302, {"Location": "/simple/demo/"})
    code, errs, _ = case.install()
    assert code == 1
    origin = case.srv.origin
    assert errs == [f"error: redirect loop (back to {origin}/simple/demo/): {origin}/simple/loop/"]
    assert case.srv.count("/simple/demo/") == 1 and case.srv.count("/simple/loop/") == 1
    case.unchanged()


def test_error_redirect_to_plain_http(case: Case) -> None:
    with HTTPSServer(lambda h: h.reply(200, b"<html></html>", {"Content-Type": "text/html"}),
                     None) as plain:
        case.srv.overrides["/simple/demo/"] = status(
            302, {"Location": f"{plain.url}simple/demo/"})
        code, errs, _ = case.install()
    assert code == 1
    assert errs == [f"error: refused redirect from https to plain http "
                    f"({plain.url}simple/demo/): {case.shown}/demo/"]
    assert plain.requests == []
    assert case.srv.count("/simple/demo/") == 1
    case.unchanged()


def test_redirect_to_another_host_drops_authorization(case: Case, world: World) -> None:
    with IndexServer(world.index, world.pki) as other:
        elsewhere = f"https://localhost:{other.origin.rsplit(':', 1)[1]}"
        case.srv.overrides["/simple/demo/"] = status(
            302, {"Location": f"{elsewhere}/simple/demo/"})
        code, errs, _ = case.install()
        assert (code, errs) == (0, [])
        case.installed()
        assert {r.path for r in other.requests} == {
            "/simple/demo/", f"/files/{DEMO}.metadata", f"/files/{DEMO}"}
        assert all("Authorization" not in r.headers for r in other.requests)
    first = [r for r in case.srv.requests if r.path == "/simple/demo/"]
    assert len(first) == 1 and first[0].headers["Authorization"].startswith("Basic ")
    assert len(other.requests) == 3


# --- integrity faults -------------------------------------------------------------------------


def test_error_wheel_hash_differs_from_index(case: Case, world: World) -> None:
    good = (world.index.files_dir / DEP).read_bytes()
    evil = good + b"\0tampered"
    case.srv.overrides[f"/files/{DEP}"] = status(
        200, {"Content-Type": "application/octet-stream"}, evil)
    code, errs, out = case.install()
    assert code == 1
    expected, actual = hashlib.sha256(good).hexdigest(), hashlib.sha256(evil).hexdigest()
    files = case.shown.rsplit("/", 1)[0] + "/files"
    assert errs == [f"error: hash mismatch for {DEP} from {files}/{DEP}: expected "
                    f"sha256={expected}, got sha256={actual}"]
    assert "hint: the file was deleted; if the index changed, retry with --refresh" in out
    assert case.srv.count(f"/files/{DEP}") == 1
    case.unchanged([evil])


def test_error_metadata_file_hash_differs(case: Case, world: World) -> None:
    lie = metadata_text("demo", "1.0").encode()  # no Requires-Dist
    entry = world.index.projects["demo"][0]
    entry.served_metadata = lie
    try:
        code, errs, _ = case.install()
    finally:
        entry.served_metadata = None
    assert code == 1
    expected = hashlib.sha256(entry.metadata).hexdigest()
    files = case.shown.rsplit("/", 1)[0] + "/files"
    assert errs == [f"error: hash mismatch for {DEMO}.metadata from {files}/{DEMO}.metadata: "
                    f"expected sha256={expected}, got sha256={hashlib.sha256(lie).hexdigest()}"]
    assert case.srv.count(f"/files/{DEMO}.metadata") == 1
    assert case.srv.count(f"/files/{DEMO}") == 0
    case.unchanged([lie])


class _LyingFile(IndexFile):
    """An index entry whose metadata file (and its announced hash) disagree with the wheel."""

    lie: bytes = b""

    @property
    def metadata(self) -> bytes:
        return self.lie


def test_error_metadata_file_disagrees_with_wheel(tmp_path: Path, world: World) -> None:
    index = SimpleIndex(tmp_path / "idx")
    real = index.add_wheel("demo", "1.0", files={"demo/__init__.py": ""}, requires=["dep"])
    index.add_wheel("dep", "1.0")
    lying = _LyingFile(real.path)
    lying.lie = metadata_text("demo", "1.0").encode()  # says: no dependencies
    index.projects["demo"] = [lying]
    venv = clone_venv(world.template, tmp_path / "venv").python.parent.parent
    before = tree_digest(venv)
    with IndexServer(index, world.pki) as srv:
        proc = inst_install(venv, tmp_path / "cache", "--index-url", srv.url, "--cert",
                            str(world.pki.ca_path), *FAST, "demo")
        assert proc.returncode == 1
        assert errors(proc) == [
            f"error: {DEMO}: the wheel's METADATA disagrees with the metadata file the index "
            f"served (Requires-Dist): {srv.origin}/files/{DEMO}"]
        assert srv.count(f"/files/{DEMO}") == 1
    assert tree_digest(venv) == before
    assert cache_leftovers(tmp_path / "cache", [lying.lie, real.path.read_bytes()]) == []


def test_error_metadata_disagrees_caught_at_download(tmp_path: Path, world: World) -> None:
    """The mechanism behind the test above, through the real server and the download layer:
    a DownloadItem carrying the metadata the resolver used refuses a wheel that disagrees,
    and the wheel is not cached."""
    from installer.app import build_http_client
    from installer.cache import Cache
    from installer.config import load_settings
    from installer.download import DownloadItem, MetadataMismatch, download_one
    from installer.models import Link

    entry = world.index.projects["demo"][0]
    lie = metadata_text("demo", "1.0").encode()
    settings = load_settings("install", cwd=tmp_path, environ={}, flags={
        "cert": (str(world.pki.ca_path), "--cert")}, config_file=None, no_config=True).settings
    client = build_http_client(settings, lambda _m: None)
    with IndexServer(world.index, world.pki) as srv:
        link = Link(filename=DEMO, url=f"{srv.origin}/files/{DEMO}",
                    hashes={"sha256": entry.sha256}, metadata_hashes={})
        cache = Cache(tmp_path / "cache")
        with pytest.raises(MetadataMismatch) as info:
            download_one(DownloadItem(link, metadata=lie), cache=cache, client=client)
        ok = download_one(DownloadItem(link, metadata=entry.metadata), cache=cache,
                          client=client)
    client.close()
    assert info.value.message == (
        f"{DEMO}: the wheel's METADATA disagrees with the metadata file the index served "
        f"(Requires-Dist): {srv.origin}/files/{DEMO}")
    assert ok.sha256 == entry.sha256
    assert cache_leftovers(tmp_path / "cache", [lie]) == []
