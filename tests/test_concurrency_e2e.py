"""Concurrency and crashes through the real CLI (issue 6).

- 4 parallel ``inst install`` runs (different packages, one shared cache) into one venv: all
  finish or fail cleanly; afterwards every file of every RECORD exists with its hash and no lock
  or transaction folder is left.
- ``kill -9`` of ``inst install`` at named points of the commit (the INST_TEST_CRASH_AT hook) and
  after random delays: the next ``inst install`` recovers and the RECORD check passes.

8 parallel ``inst config set`` runs with a polling reader are already driven through the CLI by
tests/test_configedit.py::test_parallel_sets_all_land_while_reader_always_parses.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from installer.environment import query_environment
from installer.models import Environment
from installer.txn import CRASH_ENV, check_environment, installed_distributions
from tests.helpers.faults_world import ROOT, inst_install
from tests.helpers.index_server import IndexServer, SimpleIndex
from tests.helpers.install_env import clone_venv, make_venv, tree_digest
from tests.helpers.tls_servers import TestPKI


@dataclass
class World:
    pki: TestPKI
    srv: IndexServer
    template: Path  # a venv with aaa 1.0 and bbb 1.0, installed by inst


def _add(index: SimpleIndex, name: str, version: str) -> None:
    files = {f"{name}/__init__.py": f"V = {version!r}\n", f"{name}/v{version[0]}.py": "",
             f"{name}/data/blob.txt": name * 500}
    index.add_wheel(name, version, files=files,
                    entry_points=f"[console_scripts]\n{name}-cli = {name}:V\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("concurrency")
    pki = TestPKI(root / "pki")
    index = SimpleIndex(root / "idx")
    for name in ("aaa", "bbb"):
        _add(index, name, "1.0")
        _add(index, name, "2.0")
    for name in ("ccc", "ddd", "eee", "fff"):
        _add(index, name, "1.0")
    make_venv(root / "venv")
    with IndexServer(index, pki) as srv:
        w = World(pki, srv, root / "venv")
        proc = _install(w, root / "venv", root / "cache", "aaa==1.0", "bbb==1.0")
        assert proc.returncode == 0, proc.stderr
        yield w


def _install(w: World, venv: Path, cache: Path, *reqs: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return inst_install(venv, cache, "--index-url", w.srv.url, "--cert", str(w.pki.ca_path),
                        "--timeout", "5", *reqs, env=env)


def _popen(w: World, venv: Path, cache: Path, *reqs: str,
           env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "installer", "install", "--python", str(venv), "--cache-dir",
           str(cache), "--index-url", w.srv.url, "--cert", str(w.pki.ca_path), *reqs]
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(cmd, env=full, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _env(venv: Path) -> Environment:
    return query_environment(venv / "bin" / "python", None)


def _versions(venv: Path) -> dict[str, str]:
    return {d.name: d.version for d in installed_distributions(_env(venv))}


def _clean(venv: Path) -> None:
    env = _env(venv)
    assert check_environment(env) == []
    assert sorted(p.name for p in venv.glob(".inst*")) == []


def test_four_parallel_installs_into_one_venv(world: World, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    clone_venv(world.template, venv)
    cache = tmp_path / "cache"  # shared by all four: the cache must cope too
    procs = [_popen(world, venv, cache, *reqs) for reqs in (
        ["ccc"], ["ddd"], ["eee", "fff"], ["aaa==2.0", "bbb==2.0"])]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    assert _versions(venv) == {"aaa": "2.0", "bbb": "2.0", "ccc": "1.0", "ddd": "1.0",
                               "eee": "1.0", "fff": "1.0"}
    _clean(venv)
    assert not list((cache / "tmp").glob("*")) if (cache / "tmp").exists() else True


UPGRADE = ("aaa==2.0", "bbb==2.0", "ccc==1.0")
WANTED = {"aaa": "2.0", "bbb": "2.0", "ccc": "1.0"}
POINTS = ["staged", "journal", "op-0", "op-1", "op-4", "op-9", "op-15", "op-22", "op-30",
          "committed"]


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_at_a_commit_step_then_next_install_recovers(point: str, world: World,
                                                            tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    clone_venv(world.template, venv)
    before = tree_digest(venv)
    cache = tmp_path / "cache"
    crashed = _install(world, venv, cache, *UPGRADE, env={CRASH_ENV: point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert list(venv.glob(".inst-txn-*"))  # the kill left a transaction behind
    if point in ("staged", "journal"):
        assert {k: v for k, v in tree_digest(venv).items() if ".inst" not in k} == before
    again = _install(world, venv, cache, *UPGRADE)
    assert again.returncode == 0, again.stderr
    assert "an interrupted install" in again.stderr
    assert _versions(venv) == WANTED
    _clean(venv)


@pytest.mark.parametrize("seed", range(3))
def test_kill_9_after_a_random_delay_then_next_install_recovers(seed: int, world: World,
                                                                tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    clone_venv(world.template, venv)
    cache = tmp_path / "cache"
    # warm the cache in another venv so the victim run spends its time installing
    warm = tmp_path / "warm"
    clone_venv(world.template, warm)
    assert _install(world, warm, cache, *UPGRADE).returncode == 0
    delay = random.Random(seed).uniform(0.25, 0.9)
    proc = _popen(world, venv, cache, *UPGRADE)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    # the next install (of something else) recovers first, then the upgrade is redone
    other = _install(world, venv, cache, "ddd")
    assert other.returncode == 0, other.stderr
    _clean(venv)
    again = _install(world, venv, cache, *UPGRADE)
    assert again.returncode == 0, again.stderr
    assert _versions(venv) == {**WANTED, "ddd": "1.0"}
    _clean(venv)
