"""The install hot path's shortcuts keep their promises: "already satisfied" without the index,
in-place creation of new files (hard links into the cache tree) and parallel unpacking."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from installer.cache import Cache
from installer.errors import WheelError
from installer.models import Environment
from installer.reqfile import parse_args, parse_requirement
from installer.resolver import ResolveOptions, resolve, resolve_installed
from installer.wheel import Transaction, check_environment, installed_distributions
from tests.helpers.install_env import make_venv, tree_digest
from tests.helpers.resolver_index import RecordingIndex, build_index, installed_dist, make_env
from tests.helpers.wheels import make_wheel, sha256_file

INDEX = {"a": [{"version": "1.0", "requires": ["b>=1"]}, {"version": "2.0", "requires": ["b"]}],
         "b": ["1.0", "2.0"]}


def _installed(tmp_path: Path, b_version: str = "1.0") -> Environment:
    return make_env(installed=[installed_dist(tmp_path, "a", "1.0", ["b>=1"]),
                               installed_dist(tmp_path, "b", b_version)])


def _resolve(env: Environment, args: list[str], constraints: list[str] = (),  # type: ignore[assignment]
             **options: Any) -> tuple[Any, RecordingIndex]:
    index = RecordingIndex(build_index(INDEX))
    cons = [replace(parse_requirement(c, source="c.txt:1"), is_constraint=True,
                    user_supplied=False) for c in constraints]
    return resolve(parse_args(args), cons, index, env, ResolveOptions(**options)), index


def test_satisfied_requirements_never_touch_the_index(tmp_path: Path) -> None:
    env = _installed(tmp_path)
    res, index = _resolve(env, ["a"])
    assert [(p.name, p.version, p.action, p.requested) for p in res] == [
        ("b", "1.0", "keep", False), ("a", "1.0", "keep", True)]
    assert (index.page_requests, index.prefetched, index.metadata_reads) == (0, [], [])


@pytest.mark.parametrize(("args", "constraints", "options"), [
    (["a>=2"], [], {}),                    # installed a does not satisfy
    (["a"], ["b>=2"], {}),                 # a constraint rules out the installed b
    (["a", "c"], [], {}),                  # c is not installed
    (["a"], [], {"upgrade": True}),
    (["a"], [], {"force_reinstall": True}),
], ids=["not-satisfied", "constraint", "missing", "upgrade", "force-reinstall"])
def test_anything_unsatisfied_falls_back_to_the_resolver(
        tmp_path: Path, args: list[str], constraints: list[str], options: dict[str, Any]) -> None:
    env = _installed(tmp_path)
    cons = [replace(parse_requirement(c, source="c.txt:1"), is_constraint=True,
                    user_supplied=False) for c in constraints]
    assert resolve_installed(parse_args(args), cons, env, ResolveOptions(**options)) is None


def test_a_missing_dependency_of_an_installed_dist_is_fetched(tmp_path: Path) -> None:
    env = make_env(installed=[installed_dist(tmp_path, "a", "1.0", ["b>=1"])])
    res, index = _resolve(env, ["a"])
    assert {p.name: p.action for p in res} == {"a": "keep", "b": "install"}
    assert index.page_requests > 0


def test_new_files_are_hard_links_into_the_cache_tree(tmp_path: Path) -> None:
    env = make_venv(tmp_path / "venv")
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "X = 1\n"})
    cache = Cache(tmp_path / "cache")
    with Transaction(env, cache) as txn:
        txn.install(wheel)
    target = Path(env.paths["purelib"]) / "demo" / "__init__.py"
    (tree,) = (cache.root / "unpacked").glob("*/tree")
    assert os.path.samefile(target, tree / "demo" / "__init__.py")
    assert check_environment(env) == []


def test_prepare_unpacks_in_parallel_and_errors_stay_with_their_wheel(tmp_path: Path) -> None:
    env = make_venv(tmp_path / "venv")
    good = [make_wheel(tmp_path, f"p{i}", "1.0", files={f"p{i}/__init__.py": f"I = {i}\n"})
            for i in range(5)]
    bad = make_wheel(tmp_path, "q", "1.0", files={"q/__init__.py": "x"},
                     record_overrides={"q/__init__.py": "sha256=AAAA"})
    before = tree_digest(Path(env.prefix))
    with pytest.raises(WheelError) as exc, Transaction(env, Cache(tmp_path / "c")) as txn:
        txn.prepare([(w, None) for w in [*good, bad]])
        for wheel in good:
            txn.install(wheel)
        txn.install(bad)
    assert exc.value.wheel == bad.name and "hash does not match RECORD" in str(exc.value)
    assert tree_digest(Path(env.prefix)) == before  # rolled back: nothing installed
    with Transaction(env, Cache(tmp_path / "c")) as txn:
        txn.prepare([(w, None) for w in good])
        for wheel in good:
            txn.install(wheel)
    assert sorted(d.name for d in installed_distributions(env)) == [f"p{i}" for i in range(5)]
    assert check_environment(env) == []


def test_install_only_lookups_skip_rehashing_but_downloads_still_verify(tmp_path: Path) -> None:
    env = make_venv(tmp_path / "venv")
    cache = Cache(tmp_path / "cache")
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "X = 1\n"})
    sha = sha256_file(wheel)
    with cache.temp_file() as tmp:
        tmp.write_bytes(wheel.read_bytes())
        cached = cache.add_wheel(tmp, sha, wheel.name)
    assert cache.get_wheel_for_install(sha, wheel.name) == cached  # no tree yet: re-hashed
    with Transaction(env, cache) as txn:
        txn.install(cached, sha256=sha)
    cached.write_bytes(b"corrupted")  # the tree stays verified; the wheel no longer is
    assert cache.get_wheel_for_install(sha, wheel.name) == cached
    assert cache.get_wheel(sha, wheel.name) is None  # what `inst download` hands out


_PREPARE_SCRIPT = """
import os, sys, threading
from pathlib import Path
from installer.cache import Cache
from installer.environment import query_environment
from installer.errors import WheelError
from installer.wheel import Transaction
python, cache, *wheels = sys.argv[1:]
env = query_environment(Path(python), None)
assert threading.active_count() == 1
try:
    with Transaction(env, Cache(Path(cache))) as txn:
        txn.prepare([(Path(w), None) for w in wheels])
        # the worker processes ran (one CPU: install() unpacks one by one)
        assert len(txn._ready) == (len(wheels) if (os.cpu_count() or 1) > 1 else 0)
        for w in wheels:
            txn.install(Path(w))
except WheelError as exc:
    print("WheelError:", exc)
"""


def test_prepare_in_worker_processes_keeps_each_wheels_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = make_venv(tmp_path / "venv")
    good = [make_wheel(tmp_path, f"p{i}", "1.0", files={f"p{i}/__init__.py": f"I = {i}\n"})
            for i in range(3)]
    bad = make_wheel(tmp_path, "q", "1.0", files={"q/__init__.py": "x"},
                     record_overrides={"q/__init__.py": "sha256=AAAA"})
    before = tree_digest(Path(env.prefix))
    root = Path(__file__).resolve().parents[1]
    run = [sys.executable, "-c", _PREPARE_SCRIPT, str(env.python), str(tmp_path / "c")]
    proc = subprocess.run([*run, *map(str, [*good, bad])], capture_output=True, text=True,
                          cwd=root, check=True)
    assert proc.stdout.startswith(f"WheelError: {bad.name}: hash does not match RECORD")
    assert tree_digest(Path(env.prefix)) == before
    subprocess.run([*run, *map(str, good)], capture_output=True, text=True, cwd=root, check=True)
    assert sorted(d.name for d in installed_distributions(env)) == ["p0", "p1", "p2"]
    assert check_environment(env) == []
