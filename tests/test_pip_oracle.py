"""pip as an oracle: on the same local HTTPS index, inst and pip pick the same (name, version) set.

inst runs as ``inst install --dry-run --report -`` against an empty venv; pip as
``python -m pip install --dry-run --ignore-installed --report -`` with the same interpreter
version, no config file and no PIP_* variables. The requirement sets are chosen so that the
answer is unique (both prefer the newest acceptable version): extras, markers, a backtracking
case, requires-python exclusions, yanked files and pre-releases.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.e2e_index import MAIN, pip_cmd
from tests.helpers.index_server import IndexServer, SimpleIndex
from tests.helpers.tls_servers import TestPKI

# name -> [(version, requires, extra keyword arguments for add_wheel)]
PROJECTS: dict[str, list[tuple[str, list[str], dict[str, object]]]] = {
    "alpha": [("1.0", [], {}), ("1.1", [], {"yanked": "broken build"}), ("1.2", [], {}),
              ("2.0", [], {}), ("2.1rc1", [], {})],
    "beta": [("1.0", ["alpha<2"], {}), ("2.0", ["alpha>=2"], {}),
             ("3.0", ["gamma>=5", "alpha>=2"], {})],
    "gamma": [("1.0", [], {}), ("2.0", [], {"requires_python": ">=3.99"}),
              ("2.1", [], {"requires_python": ">=3.99", "page_requires_python": False})],
    "libx": [("1.0", [], {}), ("2.0", ["alpha<2"], {})],
    "app": [("1.0", ["beta", "libx>=2"], {})],
    "delta": [("1.0", ["alpha>=1"], {"extras": {"fast": ["epsilon>=1.1"],
                                                "slow": ["zeta<2"]}})],
    "epsilon": [("1.0", [], {}), ("1.1", ["gamma"], {}), ("1.2b1", [], {})],
    "zeta": [("1.0", ['eta; python_version < "3"', 'theta; sys_platform == "' + sys.platform
                      + '"', 'iota; os_name == "nt"', 'kappa>=2; python_version >= "3.8"'],
              {}),
             ("2.0", ["not-on-index"], {})],
    "eta": [("1.0", [], {})],
    "theta": [("1.0", [], {}), ("1.5", ["epsilon<1.1"], {})],
    "iota": [("1.0", [], {})],
    "kappa": [("1.0", [], {}), ("2.0", [], {}), ("2.2", [], {"metadata_file": False})],
    "omega": [("1.0b1", [], {}), ("1.0b2", [], {"metadata_file": False})],
    "Mixed.Case_Name": [("0.5", ["alpha==1.2"], {"metadata_file": False})],
}

CASES = {
    "newest": ["alpha"],
    "upper-bound-skips-yanked": ["alpha<1.2"],
    "pinned-yanked": ["alpha==1.1"],
    "backtrack-on-missing-dependency": ["beta"],
    "backtrack-on-conflict": ["app"],
    "requires-python": ["gamma"],
    "extras": ["delta[fast,slow]"],
    "markers": ["zeta<2"],
    "prerelease-by-specifier": ["alpha>=2.1rc1", "epsilon"],
    "prerelease-with-pre": ["--pre", "alpha", "epsilon"],
    "only-prereleases": ["omega"],
    "names-and-range-requests": ["mixed-case-name", "kappa"],
    "dependency-conflicts-with-root": ["theta", "epsilon"],
}


def _pip_version() -> tuple[int, ...] | None:
    proc = subprocess.run(pip_cmd("--version"), capture_output=True, text=True)
    m = re.match(r"pip (\d+)\.(\d+)", proc.stdout)
    return (int(m.group(1)), int(m.group(2))) if proc.returncode == 0 and m else None


@pytest.fixture(scope="module")
def pip_ok() -> None:
    version = _pip_version()
    if version is None:
        pytest.skip("pip is not installed in the test environment")
    if version < (22, 2):
        pytest.skip(f"pip {version} has no --report")


@pytest.fixture(scope="module")
def oracle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IndexServer, Path]]:
    root = tmp_path_factory.mktemp("oracle")
    pki = TestPKI(root / "pki")
    index = SimpleIndex(root / "index")
    for name, versions in PROJECTS.items():
        for version, requires, kw in versions:
            pkg = re.sub(r"[-_.]+", "_", name).lower()
            kw = dict(kw)
            on_page = kw.pop("page_requires_python", True)
            entry = index.add_wheel(name, version, requires=requires,
                                    files={f"{pkg}/__init__.py": f'__version__ = "{version}"\n'},
                                    **kw)
            if not on_page:  # only the metadata says it: found after choosing the version
                entry.requires_python = None
    with IndexServer(index, pki) as srv:
        yield srv, pki.ca_path


@pytest.fixture(scope="module")
def empty_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("oracle-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv


def _picked(report: dict[str, object]) -> set[tuple[str, str]]:
    assert report["version"] == "1"
    items = report["install"]
    assert isinstance(items, list)
    return {(re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(), i["metadata"]["version"])
            for i in items}


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "INST_"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "HOME": str(tmp), "PYTHONPATH": str(MAIN)}


def run_inst(reqs: list[str], srv: IndexServer, ca: Path, venv: Path, tmp: Path
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "installer", "install", "--python", str(venv), "--dry-run",
         "--report", "-", "--index-url", srv.url + "/", "--cert", str(ca), "--cache-dir",
         str(tmp / "inst-cache"), *reqs],
        cwd=tmp, env=_clean_env(tmp), capture_output=True, text=True, timeout=120)


def run_pip(reqs: list[str], srv: IndexServer, ca: Path, tmp: Path
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pip_cmd("install", "--dry-run", "--ignore-installed", "--report", "-", "-q",
                "--no-cache-dir", "--index-url", srv.url + "/", "--cert", str(ca), *reqs),
        cwd=tmp, env=_clean_env(tmp), capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("case", sorted(CASES))
def test_inst_picks_what_pip_picks(case: str, pip_ok: None,
                                   oracle_server: tuple[IndexServer, Path], empty_venv: Path,
                                   tmp_path: Path) -> None:
    srv, ca = oracle_server
    reqs = CASES[case]
    pip = run_pip(reqs, srv, ca, tmp_path)
    assert pip.returncode == 0, pip.stderr
    inst = run_inst(reqs, srv, ca, empty_venv, tmp_path)
    assert inst.returncode == 0, inst.stderr
    assert _picked(json.loads(inst.stdout)) == _picked(json.loads(pip.stdout))


def test_both_refuse_an_impossible_set(pip_ok: None, oracle_server: tuple[IndexServer, Path],
                                       empty_venv: Path, tmp_path: Path) -> None:
    srv, ca = oracle_server
    reqs = ["beta>=2", "libx>=2"]
    pip = run_pip(reqs, srv, ca, tmp_path)
    inst = run_inst(reqs, srv, ca, empty_venv, tmp_path)
    assert pip.returncode != 0 and "ERROR: " in pip.stderr
    assert inst.returncode == 1 and inst.stdout == ""
    lines = inst.stderr.splitlines()
    assert lines[0] == "error: no version of gamma satisfies the requirements:"
    assert "  gamma>=5 required by beta 3.0 <- command line" in lines
    assert "  alpha<2 required by libx 2.0 <- command line" in lines
    assert "  alpha>=2 required by beta 2.0 <- command line" in lines
