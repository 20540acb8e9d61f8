"""Hostile inputs through the real CLI (issue 6): names and URLs, credentials, netrc, config
files, and hostile wheels. Every case runs ``python -m installer`` as a user would; the target
venv must stay byte-identical when a run is refused, and nothing outside it may change.

Wheel-level cases (31 of them) are in test_wheel_hostile.py; here a representative few prove
the CLI path refuses them the same way.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.faults_world import (
    FAST,
    errors,
    inst,
    inst_install,
    outside_digest,
)
from tests.helpers.index_server import IndexServer, SimpleIndex
from tests.helpers.install_env import clone_venv, make_venv, tree_digest
from tests.helpers.tls_servers import TestPKI, status
from tests.helpers.wheels import make_wheel
from tests.test_wheel_hostile import CASES

SECRET = "hunter2-h0stile"


@dataclass
class World:
    pki: TestPKI
    index: SimpleIndex
    template: Path  # a venv with victim 1.0 installed by inst


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("hostile-e2e")
    pki = TestPKI(root / "pki")
    index = SimpleIndex(root / "idx")
    index.add_wheel("demo", "1.0", files={"demo/__init__.py": "X = 1\n"})
    index.add_wheel("demo-x", "9.0", files={"demo_x/__init__.py": "X = 9\n"})
    make_venv(root / "venv")
    victim = make_wheel(root, "victim", "1.0", files={"victim/__init__.py": "V = 1\n"})
    proc = inst_install(root / "venv", root / "cache", "--no-index", "--find-links",
                        str(root), "victim")
    assert proc.returncode == 0, proc.stderr
    victim.unlink()
    return World(pki, index, root / "venv")


@pytest.fixture
def venv(world: World, tmp_path: Path) -> Path:
    clone_venv(world.template, tmp_path / "venv")
    return tmp_path / "venv"


@pytest.fixture
def srv(world: World) -> Iterator[IndexServer]:
    with IndexServer(world.index, world.pki) as server:
        yield server


def _creds(url: str) -> str:
    return url.replace("https://", f"https://alice:{SECRET}@")


def _masked(url: str) -> str:
    return url.replace("https://", "https://alice:****@")


# --- names and URLs ---------------------------------------------------------------------------


def test_hostile_file_names_on_an_index_page_are_skipped(world: World, venv: Path, srv: IndexServer,
                                                         tmp_path: Path) -> None:
    good = "../../files/demo-1.0-py3-none-any.whl"
    hostile = ["../../files/..%2F..%2Fdemo-1.0-py3-none-any.whl",
               "../../files/demo%2F..%2F1.0-py3-none-any.whl",
               "../../files/..demo-2.0-py3-none-any.whl",
               "../../files/%252E%252E%252Fdemo-3.0-py3-none-any.whl"]
    page = "".join(f'<a href="{h}">x</a>' for h in [*hostile, good]).encode()
    srv.overrides["/simple/demo/"] = status(200, {"Content-Type": "text/html"}, page)
    before = outside_digest(tmp_path, [venv, tmp_path / "cache"])
    proc = inst_install(venv, tmp_path / "cache", "--index-url", _creds(srv.url), "--cert",
                        str(world.pki.ca_path), *FAST, "demo")
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "unsafe name" in line]
    assert warned == [
        f"warning: skipping a file with an unsafe name {name!r} from {_masked(srv.url)}"
        for name in ("../../demo-1.0-py3-none-any.whl", "demo/../1.0-py3-none-any.whl",
                     "..demo-2.0-py3-none-any.whl", "%2E%2E%2Fdemo-3.0-py3-none-any.whl")]
    assert SECRET not in proc.stdout + proc.stderr
    assert {r.path for r in srv.requests if r.path.startswith("/files/")} == {
        "/files/demo-1.0-py3-none-any.whl"}
    assert outside_digest(tmp_path, [venv, tmp_path / "cache"]) == before


def test_a_name_that_normalizes_to_another_project_is_not_taken(world: World, venv: Path,
                                                                srv: IndexServer,
                                                                tmp_path: Path) -> None:
    # The page of "demo" also lists demo_x (project demo-x): it must be skipped, not installed.
    page = (b'<a href="../../files/demo_x-9.0-py3-none-any.whl">demo_x</a>'
            b'<a href="../../files/demo-1.0-py3-none-any.whl">demo</a>')
    srv.overrides["/simple/demo/"] = status(200, {"Content-Type": "text/html"}, page)
    proc = inst_install(venv, tmp_path / "cache", "--index-url", srv.url, "--cert",
                        str(world.pki.ca_path), *FAST, "DEMO")
    assert proc.returncode == 0, proc.stderr
    assert (f"warning: skipping 'demo_x-9.0-py3-none-any.whl' on the page of demo from "
            f"{srv.url}: it belongs to demo-x") in proc.stderr
    assert proc.stderr.splitlines()[-2:][1] == " + demo==1.0"
    assert "Installed 1 package in" in proc.stderr
    assert srv.count("/simple/demo/") == 1  # asked for by its normalized name
    site = next(venv.glob("lib/python*/site-packages"))
    assert not (site / "demo_x").exists()


def test_credentials_masked_in_every_output(world: World, venv: Path, srv: IndexServer,
                                            tmp_path: Path) -> None:
    url = _creds(srv.url)
    cache = str(tmp_path / "cache")
    ca = str(world.pki.ca_path)
    set_ = inst("config", "set", "index-url", url, cwd=tmp_path)
    assert set_.returncode == 0, set_.stderr
    runs = [
        inst("config", "list", cwd=tmp_path),
        inst("config", "get", "index-url", cwd=tmp_path),
        inst("config", "debug", cwd=tmp_path),
        inst("install", "--python", str(venv), "--cache-dir", cache, "--cert", ca,
             "--show-settings", cwd=tmp_path),
        inst("install", "--python", str(venv), "--cache-dir", cache, "--cert", ca, *FAST,
             "-vv", "--report", "report.json", "--extra-index-url", url, "demo", cwd=tmp_path),
    ]
    srv.overrides["/files/demo-1.0-py3-none-any.whl"] = status(404)
    failing = inst("install", "--python", str(venv), "--cache-dir", cache + "2", "--cert", ca,
                   *FAST, "-vv", "--force-reinstall", "demo", cwd=tmp_path)
    runs.append(failing)
    for proc in runs:
        assert SECRET not in proc.stdout + proc.stderr, proc.args
        assert proc.returncode == 0 or proc is failing, proc.stderr
    assert f"index-url = \"{_masked(srv.url)}\"" in runs[0].stdout
    report = (tmp_path / "report.json").read_text()
    assert SECRET not in report
    urls = [item["download_info"]["url"] for item in json.loads(report)["install"]]
    assert urls == [_masked(srv.origin) + "/files/demo-1.0-py3-none-any.whl"]
    assert errors(failing) == [f"error: HTTP 404 Not Found: {_masked(srv.origin)}/files/"
                               "demo-1.0-py3-none-any.whl"]
    # the secret does reach the server that owns it, as Basic auth
    assert all("Authorization" in r.headers for r in srv.requests)


def test_netrc_is_never_used(world: World, venv: Path, srv: IndexServer, tmp_path: Path,
                             clean_env: Path) -> None:
    """inst does not read ~/.netrc at all (docs/security.md): an entry for one host can never
    be sent to another one, nor to the host it names."""
    netrc = clean_env / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin bob\npassword {SECRET}\n"
                     f"default login eve password {SECRET}\n")
    netrc.chmod(0o600)
    proc = inst_install(venv, tmp_path / "cache", "--index-url", srv.url, "--cert",
                        str(world.pki.ca_path), *FAST, "demo", env={"NETRC": str(netrc)})
    assert proc.returncode == 0, proc.stderr
    assert srv.requests and all("Authorization" not in r.headers for r in srv.requests)


# --- config files -----------------------------------------------------------------------------


def _user_config(home: Path) -> Path:
    path = home / ".config" / "inst" / "inst.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_error_config_invalid_utf8(clean_env: Path, tmp_path: Path) -> None:
    cfg = _user_config(clean_env)
    cfg.write_bytes(b"[global]\ntimeout = 3\n# caf\xe9\n")
    proc = inst("config", "list", cwd=tmp_path)
    assert proc.returncode == 2
    assert errors(proc) == [f"error: {cfg}: not UTF-8 text (invalid continuation byte)"]


def test_config_bom_is_read_and_kept_on_edit(clean_env: Path, tmp_path: Path) -> None:
    cfg = _user_config(clean_env)
    cfg.write_bytes(b"\xef\xbb\xbf[global]\r\ntimeout = 3.0\r\n")
    assert inst("config", "get", "timeout", cwd=tmp_path).stdout == "3.0\n"
    proc = inst("config", "set", "retries", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = cfg.read_bytes()
    assert data == b"\xef\xbb\xbf[global]\r\ntimeout = 3.0\r\nretries = 4\r\n"


def test_config_crlf_kept_on_set_and_unset(clean_env: Path, tmp_path: Path) -> None:
    cfg = _user_config(clean_env)
    cfg.write_bytes(b"# mine\r\n[global]\r\ntimeout = 3.0\r\n\r\n[install]\r\nupgrade = true\r\n")
    assert inst("config", "set", "install.no-deps", "true", cwd=tmp_path).returncode == 0
    assert inst("config", "unset", "global.timeout", cwd=tmp_path).returncode == 0
    data = cfg.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert data.startswith(b"# mine\r\n[global]\r\n")
    assert b"no-deps = true\r\n" in data and b"timeout" not in data


def test_config_of_10_mb(clean_env: Path, tmp_path: Path) -> None:
    cfg = _user_config(clean_env)
    filler = "".join(f"k{i} = {i}\n" for i in range(20_000))
    comment = "# " + "x" * 1000 + "\n"
    text = "[global]\ntimeout = 3.0\n[junk]\n" + filler + comment * (10_000_000 // 1003)
    cfg.write_text(text)
    assert cfg.stat().st_size > 10_000_000
    proc = inst("config", "get", "timeout", cwd=tmp_path, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "3.0\n")
    warned = proc.stderr.splitlines()
    assert warned[0] == f"warning: {cfg}:3: unknown table 'junk'"
    assert len(warned) == 1  # one table, however many keys it holds


def test_config_many_unknown_keys_are_summarized(clean_env: Path, tmp_path: Path) -> None:
    cfg = _user_config(clean_env)
    cfg.write_text("[global]\n" + "".join(f"nope{i} = {i}\n" for i in range(5000)))
    proc = inst("config", "list", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 21
    assert lines[0] == f"warning: {cfg}:2: unknown key 'nope0' in [global]"
    assert lines[-1] == f"warning: {cfg}: 4980 more unknown keys or tables not shown"


@pytest.mark.parametrize("text", [
    "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
], ids=["arrays", "inline-tables"])
def test_error_config_nested_too_deeply(text: str, clean_env: Path, tmp_path: Path) -> None:
    cfg = _user_config(clean_env)
    cfg.write_text(text)
    proc = inst("config", "list", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: {cfg}: invalid TOML: arrays or tables nested too deeply"]
    assert "Traceback" not in proc.stderr


def test_config_deep_dotted_tables_are_unknown_not_fatal(clean_env: Path, tmp_path: Path) -> None:
    cfg = _user_config(clean_env)
    cfg.write_text("[global]\ntimeout = 2.0\n[" + ".".join(["t"] * 300) + "]\nk = 1\n")
    proc = inst("config", "get", "timeout", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "2.0\n")
    assert proc.stderr.splitlines() == [f"warning: {cfg}: unknown table 't'"]


def test_error_config_wrong_types_all_reported(clean_env: Path, tmp_path: Path) -> None:
    cfg = _user_config(clean_env)
    cfg.write_text('[global]\ntimeout = "fast"\nretries = 1.5\ntrusted-host = 3\n'
                   '[install]\nupgrade = "yes"\n')
    proc = inst("config", "list", cwd=tmp_path)
    assert proc.returncode == 2
    assert errors(proc) == [
        f'error: {cfg}:2: global.timeout: expected a number (seconds), got "fast"',
        f"error: {cfg}:3: global.retries: expected an integer, got 1.5",
        f"error: {cfg}:4: global.trusted-host: expected a list of strings, got 3",
        f'error: {cfg}:6: install.upgrade: expected true or false, got "yes"',
    ]


@pytest.mark.parametrize("value", ["*", "*.example.com", "https://pypi.example", "a/b"])
def test_error_trusted_host_wildcard_refused(value: str, clean_env: Path, tmp_path: Path
                                             ) -> None:
    """Decision: trusted-host turns verification off, so only exact host[:port] entries are
    accepted; ``*`` is refused in files, env vars and ``config set``, never silently kept."""
    cfg = _user_config(clean_env)
    cfg.write_text(f'[global]\ntrusted-host = ["ok.example", "{value}"]\n')
    proc = inst("config", "list", cwd=tmp_path)
    assert proc.returncode == 2
    assert errors(proc) == [
        f"error: {cfg}:2: global.trusted-host[1]: expected an exact host or host:port "
        f'(no wildcards, no scheme), got "{value}"']
    cfg.unlink()
    env = inst("config", "list", cwd=tmp_path, env={"INST_TRUSTED_HOST": value})
    assert errors(env) == [
        "error: environment variable INST_TRUSTED_HOST: expected an exact host or host:port "
        f'(no wildcards, no scheme), got "{value}"']
    set_ = inst("config", "set", "trusted-host", value, cwd=tmp_path)
    assert set_.returncode == 2 and not cfg.exists()


@pytest.mark.parametrize("kind", ["folder", "empty-file", "empty-string"])
def test_error_cert_path_unusable(kind: str, world: World, venv: Path, srv: IndexServer,
                                  tmp_path: Path) -> None:
    cert = {"folder": tmp_path / "certs", "empty-file": tmp_path / "empty.pem",
            "empty-string": Path("")}[kind]
    if kind == "folder":
        cert.mkdir()
    elif kind == "empty-file":
        cert.write_bytes(b"")
    before = tree_digest(venv)
    proc = inst_install(venv, tmp_path / "cache", "--index-url", srv.url, "--cert",
                        str(cert) if kind != "empty-string" else "", *FAST, "demo")
    assert proc.returncode == 2
    assert errors(proc) == [{
        "folder": f"error: cert path {cert} is a folder, not a PEM file (set by flag --cert)",
        "empty-file": f"error: cert file {cert} holds no PEM certificate (set by flag --cert)",
        "empty-string": "error: --cert: expected a non-empty path"}[kind]]
    assert srv.requests == []  # failed closed: nothing was sent with an unusable trust store
    assert tree_digest(venv) == before


# --- hostile wheels end to end ----------------------------------------------------------------


@pytest.mark.parametrize("case", ["dotdot", "symlink", "entry-point-slash",
                                  "other-dist-files", "absolute"])
def test_error_hostile_wheel_through_cli(case: str, venv: Path, tmp_path: Path) -> None:
    build, message = CASES[case]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build(wheels)
    before = tree_digest(venv)
    outside = outside_digest(tmp_path, [venv, tmp_path / "cache"])
    proc = inst_install(venv, tmp_path / "cache", "--no-index", "--find-links", str(wheels),
                        "demo")
    assert proc.returncode == 1
    assert errors(proc) == [f"error: {message}"]
    assert tree_digest(venv) == before
    assert outside_digest(tmp_path, [venv, tmp_path / "cache"]) == outside
    assert not (tmp_path.parent / "escape.txt").exists()
