"""End to end through the real CLI: ``python -m installer ...`` in a subprocess, against a real
HTTPS index (trustme CA) built in the test from wheels made in the test, into real venvs.

Every test gets its own cwd, HOME, venv and ``--cache-dir`` under tmp_path; the index servers
are module-scoped. The server's request log shows what went over the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.e2e_index import Cli, pip_cmd, requests_like, run_python, web_set
from tests.helpers.index_server import IndexServer, SimpleIndex
from tests.helpers.install_env import tree_digest
from tests.helpers.tls_servers import TestPKI
from tests.helpers.wheels import make_wheel, metadata_text

PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
REQUESTS_PLAN = ("certifi-2024.2.2 charset-normalizer-3.3.2 idna-3.7 urllib3-2.2.1 "
                 "requests-2.32.0")


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> SimpleIndex:
    idx = SimpleIndex(tmp_path_factory.mktemp("index"))
    requests_like(idx)
    idx.add_wheel("needs-old-idna", "1.0", requires=["idna<3"])
    idx.add_wheel("py-future", "1.0", requires_python=">=3.99")
    liar = idx.add_wheel("liar", "1.0", requires=["idna"], files={"liar/__init__.py": ""})
    # The index's metadata file leaves out the wheel's dependency (and carries no hash).
    liar.served_metadata = metadata_text("liar", "1.0").encode()
    liar.metadata_hash = False
    idx.add_wheel("nohash-pkg", "1.0").hash_in_url = False
    return idx


@pytest.fixture(scope="module")
def server(index: SimpleIndex, pki: TestPKI) -> Iterator[IndexServer]:
    with IndexServer(index, pki) as srv:
        yield srv


FLAVOURS = [("html", True), ("json", False), ("html", False), ("json", True)]


@pytest.fixture(scope="module", params=FLAVOURS,
                ids=[f"{f}-{'meta' if m else 'nometa'}" for f, m in FLAVOURS])
def flavour_server(request: pytest.FixtureRequest, pki: TestPKI,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    flavour, metadata = request.param
    idx = SimpleIndex(tmp_path_factory.mktemp(f"index-{flavour}"))
    requests_like(idx, metadata_file=metadata)
    with IndexServer(idx, pki, flavour=flavour) as srv:
        yield srv


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, tmp_path / "cache")


def index_args(srv: IndexServer, pki: TestPKI) -> list[str]:
    return ["--index-url", srv.url + "/", "--cert", str(pki.ca_path)]


def new_venv(cli: Cli, name: str = "demo") -> Path:
    cli.ok("venv", name)
    return cli.cwd / name


def site(venv: Path) -> Path:
    return venv / "lib" / PY / "site-packages"


def freeze(cli: Cli, venv: Path) -> list[str]:
    return cli.ok("freeze", "--python", venv).stdout.splitlines()


def wheel_gets(srv: IndexServer, since: int = 0) -> list[str]:
    return [r.path for r in srv.requests[since:]
            if r.method == "GET" and r.path.endswith(".whl")]


# --- the whole story, per index flavour ------------------------------------------------------


def test_install_list_show_uninstall(cli: Cli, flavour_server: IndexServer,
                                     pki: TestPKI) -> None:
    venv = new_venv(cli)
    assert (venv / "pyvenv.cfg").is_file() and not (venv / "bin" / "pip").exists()
    args = ["--python", "demo", *index_args(flavour_server, pki)]
    proc = cli.ok("install", *args, "requests")
    assert "Installed 5 packages in" in proc.stderr
    assert " + requests==2.32.0" in proc.stderr.splitlines()

    imported = run_python(venv, "import requests, idna; print(requests.get('x'), idna.__version__)")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "GET x 3.7\n"
    script = subprocess.run([str(venv / "bin" / "normalizer"), "a", "b"], capture_output=True,
                            text=True, check=True)
    assert script.stdout == "normalizer 3.3.2 a b\n"
    assert script.stdout  # the entry point ran with the venv's interpreter
    assert (venv / "bin" / "normalizer").read_text().startswith(f"#!{venv / 'bin' / 'python'}")

    dist_info = site(venv) / "requests-2.32.0.dist-info"
    assert (dist_info / "INSTALLER").read_text().strip() == "inst"
    assert (dist_info / "REQUESTED").exists()
    assert not (site(venv) / "idna-3.7.dist-info" / "REQUESTED").exists()

    assert freeze(cli, venv) == ["certifi==2024.2.2", "charset-normalizer==3.3.2", "idna==3.7",
                                 "requests==2.32.0", "urllib3==2.2.1"]
    listing = cli.ok("list", "--python", "demo").stdout.splitlines()
    assert listing[0].split() == ["Package", "Version"]
    assert ["requests", "2.32.0"] in [line.split() for line in listing]
    rows = json.loads(cli.ok("list", "--python", "demo", "--format", "json").stdout)
    assert {"name": "urllib3", "version": "2.2.1"} in rows and len(rows) == 5
    shown = cli.ok("show", "--python", "demo", "requests", "idna").stdout.splitlines()
    assert "Requires: certifi, charset-normalizer, idna, urllib3" in shown
    assert "Required-by: requests" in shown
    assert f"Location: {site(venv)}" in shown

    again = cli.ok("install", *args, "requests")
    assert again.stderr.startswith("Audited 5 packages in ")
    assert again.stderr.rstrip().endswith("; nothing to do")

    record = (dist_info / "RECORD").read_text().splitlines()
    installed_files = [site(venv) / line.rsplit(",", 2)[0] for line in record]
    assert all(p.exists() for p in installed_files)
    gone = cli.ok("uninstall", "--python", "demo", "-y", "requests")
    assert gone.stderr.splitlines() == [" - requests==2.32.0"]
    assert not any(p.exists() for p in installed_files)
    assert not (site(venv) / "requests").exists()
    assert "requests==2.32.0" not in freeze(cli, venv)
    assert run_python(venv, "import requests").returncode == 1
    assert run_python(venv, "import idna").returncode == 0


# --- upgrades and reinstalls -----------------------------------------------------------------


def test_upgrade_upgrade_package_and_force_reinstall(cli: Cli, server: IndexServer,
                                                     pki: TestPKI) -> None:
    venv = new_venv(cli)
    args = ["--python", "demo", *index_args(server, pki)]
    cli.ok("install", *args, "requests==2.31.0", "idna==3.6")
    assert "requests==2.31.0" in freeze(cli, venv) and "idna==3.6" in freeze(cli, venv)

    # Installed and satisfying: kept.
    kept = cli.ok("install", *args, "requests")
    assert "nothing to do" in kept.stderr
    # --upgrade upgrades what was named, dependencies only if needed.
    up = cli.ok("install", *args, "--upgrade", "requests")
    assert " - requests==2.31.0" in up.stderr.splitlines()
    assert " + requests==2.32.0" in up.stderr.splitlines()
    assert "idna==3.6" in freeze(cli, venv)
    assert not (site(venv) / "requests-2.31.0.dist-info").exists()
    # --upgrade-package names a dependency to upgrade too.
    cli.ok("install", *args, "--upgrade-package", "idna", "requests")
    assert "idna==3.7" in freeze(cli, venv)

    init = site(venv) / "requests" / "__init__.py"
    original = init.read_bytes()
    init.write_text("raise SystemExit('tampered')\n")
    plain = cli.ok("install", *args, "requests")
    assert "nothing to do" in plain.stderr and init.read_text().startswith("raise")
    forced = cli.ok("install", *args, "--force-reinstall", "requests")
    assert " + requests==2.32.0" in forced.stderr.splitlines()
    assert "Installed 5 packages" in forced.stderr  # pip: --force-reinstall covers the deps
    assert init.read_bytes() == original
    assert freeze(cli, venv) == ["certifi==2024.2.2", "charset-normalizer==3.3.2", "idna==3.7",
                                 "requests==2.32.0", "urllib3==2.2.1"]


# --- dry run and the report ------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_changes_nothing(cli: Cli, server: IndexServer,
                                                     pki: TestPKI) -> None:
    venv = new_venv(cli)
    before = tree_digest(venv)
    mark = len(server.requests)
    proc = cli.ok("install", "--python", "demo", *index_args(server, pki), "--dry-run",
                  "requests")
    assert proc.stdout == f"Would install {REQUESTS_PLAN}\n"
    assert tree_digest(venv) == before
    assert wheel_gets(server, mark) == []  # metadata files were enough


def _check_report(report: dict[str, object], srv: IndexServer, index: SimpleIndex) -> None:
    assert report["version"] == "1"
    env = report["environment"]
    assert isinstance(env, dict)
    assert env["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert env["sys_platform"] == sys.platform and "implementation_name" in env
    items = report["install"]
    assert isinstance(items, list)
    by_name = {item["metadata"]["name"]: item for item in items}
    assert sorted(by_name) == ["certifi", "charset-normalizer", "idna", "requests", "urllib3"]
    req = by_name["requests"]
    assert req["requested"] is True and req["is_direct"] is False
    assert req["metadata"]["version"] == "2.32.0"
    assert "idna<4,>=2.5" in req["metadata"]["requires_dist"]
    assert req["metadata"]["provides_extra"] == ["socks"]
    wheel = index.files_dir / "requests-2.32.0-py3-none-any.whl"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert req["download_info"] == {
        "url": f"{srv.origin}/files/requests-2.32.0-py3-none-any.whl",
        "archive_info": {"hash": f"sha256={digest}", "hashes": {"sha256": digest}}}
    assert by_name["idna"]["requested"] is False


def test_report_to_stdout_and_to_a_file(cli: Cli, server: IndexServer, index: SimpleIndex,
                                        pki: TestPKI) -> None:
    venv = new_venv(cli)
    args = ["--python", "demo", *index_args(server, pki)]
    proc = cli.ok("install", *args, "--dry-run", "--report", "-", "requests")
    _check_report(json.loads(proc.stdout), server, index)  # stdout holds the JSON alone
    assert f"Would install {REQUESTS_PLAN}" in proc.stderr
    assert freeze(cli, venv) == []

    (cli.cwd / "out").mkdir()
    cli.ok("install", *args, "--report", "out/report.json", "requests")
    _check_report(json.loads((cli.cwd / "out" / "report.json").read_text()), server, index)
    assert "requests==2.32.0" in freeze(cli, venv)


# --- requirements files, hashes --------------------------------------------------------------


def test_requirements_file_nested_with_constraints_and_index_url(
        cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    venv = new_venv(cli)
    (cli.cwd / "reqs").mkdir()
    (cli.cwd / "reqs" / "base.txt").write_text("certifi  # the CA bundle\n")
    (cli.cwd / "reqs" / "constraints.txt").write_text("idna==3.6\nurllib3<2\n")
    (cli.cwd / "requirements.txt").write_text(
        f"--index-url {server.url}/\n-r reqs/base.txt\n-c reqs/constraints.txt\n"
        "requests \\\n  >=2.31\n")
    proc = cli.ok("install", "--python", "demo", "--cert", pki.ca_path, "-r",
                  "requirements.txt")
    assert "Installed 5 packages" in proc.stderr
    assert freeze(cli, venv) == ["certifi==2024.2.2", "charset-normalizer==3.3.2", "idna==3.6",
                                 "requests==2.32.0", "urllib3==1.26.18"]


def _hashed_lines(index: SimpleIndex, pins: dict[str, str], bad: str | None = None) -> str:
    lines = []
    for name, version in pins.items():
        wheel = index.files_dir / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if name == bad:
            digest = "0" * 64
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}")
    return "\n".join(lines) + "\n"


PINS = {"requests": "2.32.0", "idna": "3.7", "urllib3": "2.2.1", "certifi": "2024.2.2",
        "charset-normalizer": "3.3.2"}


def test_hashes_in_requirements_file(cli: Cli, server: IndexServer, index: SimpleIndex,
                                     pki: TestPKI) -> None:
    venv = new_venv(cli)
    (cli.cwd / "good.txt").write_text(_hashed_lines(index, PINS))
    cli.ok("install", "--python", "demo", *index_args(server, pki), "-r", "good.txt")
    assert len(freeze(cli, venv)) == 5


def test_error_wrong_hash_leaves_the_venv_byte_identical(
        cli: Cli, server: IndexServer, index: SimpleIndex, pki: TestPKI) -> None:
    venv = new_venv(cli)
    (cli.cwd / "bad.txt").write_text(_hashed_lines(index, PINS, bad="idna"))
    before = tree_digest(venv)
    real = hashlib.sha256((index.files_dir / "idna-3.7-py3-none-any.whl").read_bytes()).hexdigest()
    proc = cli("install", "--python", "demo", *index_args(server, pki), "-r", "bad.txt")
    assert proc.returncode == 1, proc.stderr
    # The index announces the file's sha256, so the candidate is refused before downloading.
    assert proc.stderr == (
        "error: no version of idna satisfies the requirements:\n"
        f"  idna==3.7 required by {cli.cwd / 'bad.txt'}:3\n"
        f"  idna 3.7: hash mismatch for {server.url.rsplit('/simple', 1)[0]}/files/"
        "idna-3.7-py3-none-any.whl: "
        f"expected sha256:{'0' * 64}, the index says sha256:{real}\n"
        "  idna 3.6: excluded by idna==3.7\n")
    assert tree_digest(venv) == before


def test_error_wrong_hash_for_a_file_without_index_hash(
        cli: Cli, server: IndexServer, index: SimpleIndex, pki: TestPKI) -> None:
    venv = new_venv(cli)
    cli.ok("install", "--python", "demo", *index_args(server, pki), "idna==3.6")
    wheel = index.files_dir / "nohash_pkg-1.0-py3-none-any.whl"
    (cli.cwd / "bad.txt").write_text(f"nohash-pkg==1.0 --hash=sha256:{'0' * 64}\n"
                                     + _hashed_lines(index, {"idna": "3.7"}))
    before = tree_digest(venv)
    proc = cli("install", "--python", "demo", *index_args(server, pki), "-r", "bad.txt")
    assert proc.returncode == 1, proc.stderr
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert proc.stderr.splitlines()[0] == (
        f"error: hash mismatch for nohash_pkg-1.0-py3-none-any.whl from "
        f"{server.origin}/files/nohash_pkg-1.0-py3-none-any.whl: expected "
        f"sha256={'0' * 64}, got sha256={digest}")
    assert tree_digest(venv) == before
    assert [p for p in cli.cache.rglob("nohash*") if p.is_file()] == []
    (cli.cwd / "good.txt").write_text(f"nohash-pkg==1.0 --hash=sha256:{digest}\n")
    cli.ok("install", "--python", "demo", *index_args(server, pki), "-r", "good.txt")
    assert freeze(cli, venv) == ["idna==3.6", "nohash-pkg==1.0"]


def test_error_require_hashes_with_an_unpinned_requirement(
        cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    new_venv(cli)
    proc = cli("install", "--python", "demo", *index_args(server, pki), "--require-hashes",
               "requests")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: requests (command line) is not pinned with ==, and hash-checking mode is on\n"
        "hint: pin every requirement with == and add --hash=sha256:...\n")


def test_error_hash_mode_dependency_without_hash(cli: Cli, server: IndexServer,
                                                 index: SimpleIndex, pki: TestPKI) -> None:
    venv = new_venv(cli)
    (cli.cwd / "partial.txt").write_text(_hashed_lines(index, {"requests": "2.32.0"}))
    before = tree_digest(venv)
    proc = cli("install", "--python", "demo", *index_args(server, pki), "-r", "partial.txt")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == (
        "error: no --hash given for certifi-2024.2.2-py3-none-any.whl, and hash-checking "
        "mode is on")
    assert tree_digest(venv) == before


# --- direct URLs, local wheels, projects -----------------------------------------------------


def test_direct_url_writes_direct_url_json(cli: Cli, server: IndexServer,
                                           pki: TestPKI) -> None:
    venv = new_venv(cli)
    url = f"{server.origin}/files/idna-3.6-py3-none-any.whl"
    proc = cli.ok("install", "--python", "demo", *index_args(server, pki), f"idna @ {url}")
    assert " + idna==3.6" in proc.stderr.splitlines()
    direct = json.loads((site(venv) / "idna-3.6.dist-info" / "direct_url.json").read_text())
    assert direct["url"] == url and "archive_info" in direct
    assert freeze(cli, venv) == [f"idna @ {url}"]
    again = cli.ok("install", "--python", "demo", *index_args(server, pki), f"idna @ {url}")
    assert "nothing to do" in again.stderr


def test_local_wheel_path(cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    venv = new_venv(cli)
    (cli.cwd / "dist").mkdir()
    wheel = make_wheel(cli.cwd / "dist", "local-pkg", "0.3", requires=["certifi"],
                       files={"local_pkg/__init__.py": "VALUE = 42\n"})
    cli.ok("install", "--python", "demo", *index_args(server, pki),
           "./dist/" + wheel.name)
    assert run_python(venv, "import local_pkg; print(local_pkg.VALUE)").stdout == "42\n"
    direct = json.loads((site(venv) / "local_pkg-0.3.dist-info" / "direct_url.json").read_text())
    assert direct["url"] == wheel.resolve().as_uri()
    assert "certifi==2024.2.2" in freeze(cli, venv)


def test_install_dot_reads_project_dependencies(cli: Cli, server: IndexServer,
                                                pki: TestPKI) -> None:
    venv = new_venv(cli)
    project = cli.cwd / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "proj"\nversion = "0.1"\n'
        'dependencies = ["idna==3.6", "certifi"]\n'
        '[project.optional-dependencies]\nnet = ["urllib3<2"]\n')
    cli.ok("install", "--python", venv, *index_args(server, pki), ".", cwd=project)
    assert freeze(cli, venv) == ["certifi==2024.2.2", "idna==3.6"]
    cli.ok("install", "--python", venv, *index_args(server, pki), ".[net]", cwd=project)
    assert "urllib3==1.26.18" in freeze(cli, venv)


# --- other places to install to --------------------------------------------------------------


def test_target_and_prefix(cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    venv = new_venv(cli)
    before = tree_digest(venv)
    args = ["--python", "demo", *index_args(server, pki)]
    cli.ok("install", *args, "--target", "tgt", "idna")
    assert (cli.cwd / "tgt" / "idna" / "__init__.py").is_file()
    assert (cli.cwd / "tgt" / "idna-3.7.dist-info" / "RECORD").is_file()
    cli.ok("install", *args, "--prefix", "pfx", "certifi")
    prefixed = cli.cwd / "pfx" / "lib" / PY / "site-packages"
    assert (prefixed / "certifi" / "__init__.py").is_file()
    assert tree_digest(venv) == before
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import idna, certifi"],
                           env={**os.environ, "PYTHONPATH": f"{cli.cwd / 'tgt'}:{prefixed}"},
                           capture_output=True, text=True)
    assert found.returncode == 0, found.stderr


# --- download and the cache ------------------------------------------------------------------


def test_download_puts_hash_checked_wheels_in_dir(cli: Cli, server: IndexServer,
                                                  index: SimpleIndex, pki: TestPKI) -> None:
    new_venv(cli)
    proc = cli.ok("download", "--python", "demo", *index_args(server, pki), "-d", "wheels",
                  "requests")
    assert "Downloaded 5 files" in proc.stderr
    got = sorted(p.name for p in (cli.cwd / "wheels").iterdir())
    assert got == sorted(f"{n.replace('-', '_')}-{v}-py3-none-any.whl" for n, v in PINS.items())
    for name in got:
        assert (cli.cwd / "wheels" / name).read_bytes() == (index.files_dir / name).read_bytes()
    # A stale file of the same name is replaced, not trusted.
    stale = cli.cwd / "wheels" / "idna-3.7-py3-none-any.whl"
    stale.write_bytes(b"x" * stale.stat().st_size)
    cli.ok("download", "--python", "demo", *index_args(server, pki), "-d", "wheels", "idna")
    assert stale.read_bytes() == (index.files_dir / stale.name).read_bytes()


def test_download_without_environment_uses_inst_own_python(
        cli: Cli, server: IndexServer, index: SimpleIndex, pki: TestPKI) -> None:
    # Like pip download: no --python, no VIRTUAL_ENV and no .venv is not an error here.
    proc = cli.ok("download", *index_args(server, pki), "-d", "wheels", "idna")
    assert "Downloaded 1 file" in proc.stderr
    assert [p.name for p in (cli.cwd / "wheels").iterdir()] == ["idna-3.7-py3-none-any.whl"]


def test_cache_dir_info_clean(cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    new_venv(cli)
    assert cli.ok("cache", "dir").stdout == f"{cli.cache}\n"
    cli.ok("install", "--python", "demo", *index_args(server, pki), "idna")
    info = cli.ok("cache", "info").stdout.splitlines()
    assert info[0] == f"cache: {cli.cache}"
    wheels = next(line.split() for line in info if line.startswith("wheels"))
    assert int(wheels[1]) >= 1
    cleaned = cli.ok("cache", "clean")
    assert cleaned.stderr.startswith("Removed ") and str(cli.cache) in cleaned.stderr
    assert not any(p.is_file() for p in (cli.cache / "wheels").rglob("*")) \
        if (cli.cache / "wheels").exists() else True


def test_warm_install_is_served_from_the_cache(cli: Cli, server: IndexServer,
                                               pki: TestPKI) -> None:
    args = [*index_args(server, pki), "requests"]
    first = new_venv(cli, "one")
    mark = len(server.requests)
    cli.ok("install", "--python", first, *args)
    assert len([p for p in wheel_gets(server, mark)]) >= 5
    second = new_venv(cli, "two")
    mark = len(server.requests)
    cli.ok("install", "--python", second, *args)
    assert wheel_gets(server, mark) == []
    assert freeze(cli, second) == freeze(cli, first)
    assert run_python(second, "import requests").returncode == 0


def test_no_cache_leaves_no_wheels_behind(cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    venv = new_venv(cli)
    cli.ok("install", "--python", "demo", *index_args(server, pki), "--no-cache", "requests")
    assert run_python(venv, "import requests").returncode == 0
    cached = [p for p in cli.cache.rglob("*") if p.is_file()] if cli.cache.exists() else []
    assert cached == []


def test_error_metadata_file_disagrees_with_the_wheel(cli: Cli, server: IndexServer,
                                                      pki: TestPKI) -> None:
    venv = new_venv(cli)
    before = tree_digest(venv)
    proc = cli("install", "--python", "demo", *index_args(server, pki), "liar")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (
        "error: liar-1.0-py3-none-any.whl: the wheel's METADATA disagrees with the metadata "
        f"file the index served (Requires-Dist): {server.origin}/files/liar-1.0-py3-none-any.whl\n"
        "hint: the index is inconsistent; nothing was installed\n")
    assert tree_digest(venv) == before


def test_list_outdated_and_quiet(cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    new_venv(cli)
    args = ["--python", "demo", *index_args(server, pki)]
    quiet = cli.ok("install", *args, "-q", "requests==2.31.0", "idna==3.6")
    assert quiet.stdout == quiet.stderr == ""
    outdated = cli.ok("list", *args, "--outdated").stdout.splitlines()
    assert [line.split() for line in outdated] == [
        ["Package", "Version", "Latest"], ["--------", "-------", "------"],
        ["idna", "3.6", "3.7"], ["requests", "2.31.0", "2.32.0"]]
    rows = json.loads(cli.ok("list", *args, "--outdated", "--format", "json").stdout)
    assert rows == [{"name": "idna", "version": "3.6", "latest_version": "3.7"},
                    {"name": "requests", "version": "2.31.0", "latest_version": "2.32.0"}]


def test_uninstall_of_something_not_installed_warns(cli: Cli) -> None:
    new_venv(cli)
    proc = cli.ok("uninstall", "--python", "demo", "-y", "not-here")
    assert proc.stderr == "warning: not-here is not installed\n"


def test_error_venv_over_an_existing_environment_or_file(cli: Cli) -> None:
    new_venv(cli)
    proc = cli("venv", "demo")
    assert proc.returncode == 1
    assert proc.stderr == (f"error: a virtual environment already exists at {cli.cwd / 'demo'}\n"
                           "hint: use --clear to replace it, or pick another PATH\n")
    (cli.cwd / "notes.txt").write_text("keep me")
    proc = cli("venv", "notes.txt")
    assert proc.returncode == 1
    assert proc.stderr == (f"error: {cli.cwd / 'notes.txt'} exists and is not an empty folder "
                           "or a virtual environment\n")
    assert (cli.cwd / "notes.txt").read_text() == "keep me"
    cli.ok("venv", "--clear", "demo")
    assert (cli.cwd / "demo" / "pyvenv.cfg").is_file()


# --- finding the environment -----------------------------------------------------------------


def test_virtual_env_and_nearest_dot_venv(cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    venv = new_venv(cli, "active")
    cli.ok("install", *index_args(server, pki), "idna", env={"VIRTUAL_ENV": str(venv)})
    assert freeze(cli, venv) == ["idna==3.7"]

    project = cli.cwd / "project"
    deeper = project / "src" / "pkg"
    deeper.mkdir(parents=True)
    cli.ok("venv", ".venv", cwd=project)
    cli.ok("install", *index_args(server, pki), "certifi", cwd=deeper)
    assert cli.ok("freeze", cwd=deeper).stdout == "certifi==2024.2.2\n"
    assert freeze(cli, venv) == ["idna==3.7"]


def test_error_no_environment_found(cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    proc = cli("install", *index_args(server, pki), "idna")
    assert proc.returncode == 1
    assert proc.stderr == (
        f"error: no Python environment found: no --python, no VIRTUAL_ENV, and no .venv in "
        f"{cli.cwd} or its parents\n"
        "hint: create one with `inst venv`, or name an interpreter with --python PATH\n")


# --- errors from resolution ------------------------------------------------------------------


def test_error_resolution_failure_explains_the_chain(cli: Cli, server: IndexServer,
                                                     pki: TestPKI) -> None:
    venv = new_venv(cli)
    before = tree_digest(venv)
    proc = cli("install", "--python", "demo", *index_args(server, pki), "requests",
               "needs-old-idna")
    assert proc.returncode == 1
    assert proc.stderr == (
        "error: no version of idna satisfies the requirements:\n"
        "  idna<3 required by needs-old-idna 1.0 <- command line\n"
        "  idna 3.7: excluded by idna<3\n"
        "  idna 3.6: excluded by idna<3\n")
    assert tree_digest(venv) == before


def test_error_requires_python_excludes_every_version(cli: Cli, server: IndexServer,
                                                      pki: TestPKI) -> None:
    new_venv(cli)
    proc = cli("install", "--python", "demo", *index_args(server, pki), "py-future")
    assert proc.returncode == 1
    version = ".".join(map(str, sys.version_info[:3]))
    assert proc.stderr == (
        "error: no version of py-future satisfies the requirements:\n"
        "  py-future required by command line\n"
        f"  py-future 1.0: requires Python >=3.99, the target Python is {version}\n")


def test_error_project_not_on_the_index(cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    new_venv(cli)
    proc = cli("install", "--python", "demo", *index_args(server, pki), "no-such-project")
    assert proc.returncode == 1
    assert proc.stderr == (
        "error: no project named 'no-such-project' was found on the configured indexes\n"
        "  no-such-project required by command line\n"
        "hint: check the name, and the index-url, extra-index-url and find-links settings\n")


def test_show_settings_on_install(cli: Cli, server: IndexServer, pki: TestPKI) -> None:
    new_venv(cli)
    proc = cli.ok("install", "--python", "demo", *index_args(server, pki), "--upgrade",
                  "--show-settings", "idna")
    lines = [" ".join(line.split()) for line in proc.stdout.splitlines()]
    assert f'index-url = "{server.url}/" (from flag --index-url)' in lines
    assert f'cert = "{pki.ca_path}" (from flag --cert)' in lines
    assert "upgrade = true (from flag --upgrade)" in lines
    assert "pre = false (default)" in lines
    assert f'cache-dir = "{cli.cache}" (from flag --cache-dir)' in lines
    assert freeze(cli, cli.cwd / "demo") == []  # nothing was installed


# --- a ~50-project web, cold and warm, checked by pip ----------------------------------------


@pytest.fixture(scope="module")
def web_server(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[IndexServer, list[str]]]:
    idx = SimpleIndex(tmp_path_factory.mktemp("web"))
    names = web_set(idx)
    with IndexServer(idx, pki, flavour="html") as srv:
        yield srv, names


def _pip_check(venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(pip_cmd("--python", str(venv / "bin" / "python"), "check"),
                          capture_output=True, text=True, timeout=120)


def test_web_of_fifty_cold_then_warm_and_pip_check(
        cli: Cli, web_server: tuple[IndexServer, list[str]], pki: TestPKI) -> None:
    srv, names = web_server
    args = [*index_args(srv, pki), "web-root"]
    cold_venv, warm_venv = new_venv(cli, "cold"), new_venv(cli, "warm")
    mark = len(srv.requests)
    start = time.perf_counter()
    cold = cli.ok("install", "--python", cold_venv, *args)
    cold_s = time.perf_counter() - start
    installed = freeze(cli, cold_venv)
    assert len(installed) == len(names) == 50, cold.stderr
    assert len(wheel_gets(srv, mark)) == 50

    mark = len(srv.requests)
    start = time.perf_counter()
    cli.ok("install", "--python", warm_venv, *args)
    warm_s = time.perf_counter() - start
    assert wheel_gets(srv, mark) == []
    assert freeze(cli, warm_venv) == installed
    print(f"\n50-project install via the CLI: cold {cold_s:.2f}s, warm {warm_s:.2f}s")

    pip_version = subprocess.run(pip_cmd("--version"), capture_output=True, text=True)
    if pip_version.returncode != 0:
        pytest.skip("pip is not available to check the result")
    for venv in (cold_venv, warm_venv):
        check = _pip_check(venv)
        if "no such option: --python" in check.stderr:
            pytest.skip("this pip has no --python")
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout == "No broken requirements found.\n"
    imported = run_python(warm_venv, "import web_root, web_pkg_00, web_pkg_48")
    assert imported.returncode == 0, imported.stderr
