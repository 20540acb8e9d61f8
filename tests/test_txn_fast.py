"""The transaction's fast paths keep every check and guarantee: checks per folder (symlinks,
folders in the way, first error in file order), existing files staged and restored, batched
journal ops, hard links made by two threads, rollback that deletes only what it made, and
RECORD text written without csv.writer."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from installer.cache import Cache
from installer.errors import InstallError, WheelError
from installer.journal import CRASH_ENV, JOURNAL, TXN_PREFIX
from installer.models import Environment
from installer.plan import plan_wheel
from installer.txn import (
    Transaction,
    check_environment,
    env_lock,
    install_wheels,
    installed_distributions,
    recover,
)
from installer.txnfs import THREADED_LINKS
from installer.wheel import RecordEntry, WheelInfo, record_hash
from tests.helpers.install_env import tree_digest
from tests.helpers.wheels import make_wheel

ROOT = Path(__file__).resolve().parents[1]
BIG = THREADED_LINKS + 500  # files in the big wheel: enough for two link threads


@pytest.fixture(scope="module")
def big_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """*BIG* modules in a new package folder ``big/``."""
    root = tmp_path_factory.mktemp("big")
    return make_wheel(root, "big", "1.0", files={f"big/m{i:04}.py": f"I = {i}\n"
                                                 for i in range(BIG)})


@pytest.fixture(scope="module")
def flat_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """*BIG* top-level modules: files straight in site-packages, a folder that exists."""
    root = tmp_path_factory.mktemp("flat")
    return make_wheel(root, "flat", "1.0", files={f"flat_{i:04}.py": f"I = {i}\n"
                                                  for i in range(BIG)})


def _site(env: Environment) -> Path:
    return Path(env.paths["purelib"])


def _entry(env: Environment, path: Path) -> str:
    return os.path.relpath(path, env.prefix)


def _install(env: Environment, tmp_path: Path, *wheels: Path) -> None:
    install_wheels(env, [(w, True, None) for w in wheels], cache=Cache(tmp_path / "cache"))


def _files(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


# -- checks per folder -----------------------------------------------------------------------


def test_error_file_through_a_symlink_that_leaves_the_environment(env: Environment,
                                                                    tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (_site(env) / "demo").symlink_to(outside)
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "", "demo/x.py": ""})
    before = tree_digest(Path(env.prefix))
    with pytest.raises(WheelError) as exc:
        _install(env, tmp_path, wheel)
    assert str(exc.value) == (
        "demo-1.0-py3-none-any.whl: file would be installed outside the environment "
        f"(entry '{_entry(env, _site(env) / 'demo/__init__.py')}')")
    assert list(outside.iterdir()) == []
    assert tree_digest(Path(env.prefix)) == before


def test_symlinked_folder_inside_the_environment_is_followed(env: Environment,
                                                              tmp_path: Path) -> None:
    real = Path(env.prefix) / "share" / "demo-real"
    real.mkdir(parents=True)
    (_site(env) / "demo").symlink_to(real)
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "X = 1\n"})
    _install(env, tmp_path, wheel)
    assert (real / "__init__.py").read_text() == "X = 1\n"
    assert (_site(env) / "demo").is_symlink()
    assert check_environment(env) == []


def test_error_file_would_replace_a_directory(env: Environment, tmp_path: Path) -> None:
    (_site(env) / "demo" / "sub").mkdir(parents=True)
    (_site(env) / "demo" / "sub" / "keep.txt").write_text("mine")
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "", "demo/sub": "x"})
    before = tree_digest(Path(env.prefix))
    with pytest.raises(WheelError) as exc:
        _install(env, tmp_path, wheel)
    assert str(exc.value) == (
        "demo-1.0-py3-none-any.whl: file would replace a directory "
        f"(entry '{_entry(env, _site(env) / 'demo/sub')}')")
    assert tree_digest(Path(env.prefix)) == before


@pytest.mark.parametrize("first", ["folder", "outside"])
def test_error_names_the_first_bad_file_in_record_order(first: str, env: Environment,
                                                        tmp_path: Path) -> None:
    """Two bad files in two folders: the error is the first one's, whatever the folders."""
    (_site(env) / "aaa" / "x.py").mkdir(parents=True)  # a folder where a file goes
    outside = tmp_path / "outside"
    outside.mkdir()
    (_site(env) / "zzz").symlink_to(outside)
    bad = {"folder": "aaa/x.py", "outside": "zzz/y.py"}
    order = [first, *(k for k in bad if k != first)]
    wheel = make_wheel(tmp_path, "demo", "1.0", files={bad[k]: "" for k in order})
    with pytest.raises(WheelError) as exc:
        _install(env, tmp_path, wheel)
    what = {"folder": "file would replace a directory",
            "outside": "file would be installed outside the environment"}[first]
    assert str(exc.value) == (f"demo-1.0-py3-none-any.whl: {what} "
                              f"(entry '{_entry(env, _site(env) / bad[first])}')")


def test_odd_but_safe_names_take_the_slow_path(env: Environment, tmp_path: Path) -> None:
    names = ["demo/.hidden/x.txt", "demo/..dots.py", "demo/file.", ".top.pth", "demo/ok.py"]
    wheel = make_wheel(tmp_path, "demo", "1.0", files={n: n for n in names})
    _install(env, tmp_path, wheel)
    for name in names:
        assert (_site(env) / name).read_text() == name
    assert check_environment(env) == []


# -- existing files and rollback --------------------------------------------------------------


def test_untracked_file_is_replaced_and_restored_by_a_rollback(env: Environment,
                                                               tmp_path: Path) -> None:
    (_site(env) / "demo").mkdir()
    untracked = _site(env) / "demo" / "x.py"
    untracked.write_text("untracked")
    demo = make_wheel(tmp_path, "demo", "1.0", files={"demo/x.py": "new", "demo/y.py": "y"})
    blocker = _site(env) / "zzz"
    blocker.write_text("a file where ddd wants a folder")
    ddd = make_wheel(tmp_path, "ddd", "1.0", files={"zzz/mod.py": ""})
    before = tree_digest(Path(env.prefix))
    with pytest.raises(InstallError):
        _install(env, tmp_path, demo, ddd)
    assert tree_digest(Path(env.prefix)) == before
    blocker.unlink()
    _install(env, tmp_path, demo)
    assert untracked.read_text() == "new"
    assert check_environment(env) == []


@pytest.mark.parametrize("index", [5, 100, BIG - 100])
def test_file_made_after_planning_is_not_deleted_by_the_rollback(index: int,
                                                                 env: Environment,
                                                                 flat_wheel: Path,
                                                                 tmp_path: Path) -> None:
    """Another process creates a file the commit wants (in the helper thread's part, or the
    main thread's): link fails with EEXIST, and the rollback removes exactly what was made."""
    before = tree_digest(Path(env.prefix))
    foreign = _site(env) / f"flat_{index:04}.py"
    with pytest.raises(InstallError) as exc, Transaction(env, Cache(tmp_path / "c")) as txn:
        txn.install(flat_wheel)
        foreign.write_text("not yours")
    assert str(exc.value).startswith("install failed: [Errno 17] File exists: ")
    assert str(exc.value).endswith("; the environment was rolled back")
    assert foreign.read_text() == "not yours"
    foreign.unlink()
    assert tree_digest(Path(env.prefix)) == before


def test_folder_made_after_planning_is_not_removed_by_the_rollback(env: Environment,
                                                                   tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": ""})
    folder = _site(env) / "demo"
    with pytest.raises(InstallError), Transaction(env, Cache(tmp_path / "c")) as txn:
        txn.install(wheel)
        folder.mkdir()  # empty: a rollback that thought it made it would remove it
    assert folder.is_dir()
    assert installed_distributions(env) == []


# -- two link threads ------------------------------------------------------------------------


def test_many_files_are_hard_links_made_by_two_threads(env: Environment, big_wheel: Path,
                                                       tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    install_wheels(env, [(big_wheel, True, None)], cache=cache)
    tree = next(cache.root.glob("unpacked/*/tree"))
    for i in (0, BIG // 2, BIG - 1):
        installed = _site(env) / f"big/m{i:04}.py"
        assert os.stat(installed).st_ino == os.stat(tree / f"big/m{i:04}.py").st_ino
    assert _files(_site(env) / "big") == {f"m{i:04}.py" for i in range(BIG)}
    assert check_environment(env) == []


def test_many_folders_are_made_before_their_files_are_linked(env: Environment,
                                                            tmp_path: Path) -> None:
    """One thread makes the folders while the other links into those already made."""
    files = {f"deep/d{i // 3:04}/sub/m{i % 3}.py": f"I = {i}\n" for i in range(BIG)}
    wheel = make_wheel(tmp_path, "deep", "1.0", files=files)
    cache = Cache(tmp_path / "cache")
    install_wheels(env, [(wheel, True, None)], cache=cache)
    assert _files(_site(env) / "deep") == {name[len("deep/"):] for name in files}
    tree = next(cache.root.glob("unpacked/*/tree"))
    last = sorted(files)[-1]
    assert os.stat(_site(env) / last).st_ino == os.stat(tree / last).st_ino
    assert check_environment(env) == []


def test_many_files_across_file_systems_are_copied(env: Environment, big_wheel: Path) -> None:
    """The cache on another file system: every hard link fails with EXDEV, in both threads,
    and each file is copied instead."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(env.prefix).st_dev:
        pytest.skip("needs /dev/shm on another file system than the test folder")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        install_wheels(env, [(big_wheel, True, None)], cache=Cache(Path(other)))
    assert _files(_site(env) / "big") == {f"m{i:04}.py" for i in range(BIG)}
    assert os.stat(_site(env) / "big" / "m0000.py").st_nlink == 1
    assert check_environment(env) == []


def _run(env: Environment, cache: Path, wheel: Path, crash: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), CRASH_ENV: crash}
    cmd = [sys.executable, "-m", "tests.helpers.install_run", str(env.python), str(cache),
           str(wheel)]
    return subprocess.Popen(cmd, env=environ, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


# Steps of a fresh install of the big wheel: 2 folders (big/, the dist-info), then the links
# (BIG modules, METADATA, WHEEL): with two threads the hook fires after the main thread's
# first chunk of links.
MID_LINKS = 2 + BIG // 2


def test_kill_9_while_two_threads_link_then_recover(env: Environment, big_wheel: Path,
                                                    tmp_path: Path) -> None:
    before = tree_digest(Path(env.prefix))
    proc = _run(env, tmp_path / "c", big_wheel, f"op-{MID_LINKS}")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, (out, err)
    made = len(_files(_site(env) / "big"))
    assert 0 < made < BIG  # killed in the middle of the links
    with env_lock(env):
        messages = recover(env)
    assert [m.split(" (")[0] for m in messages] == ["rolled back an interrupted install"]
    assert tree_digest(Path(env.prefix)) == before


def test_ctrl_c_while_two_threads_link_rolls_back(env: Environment, big_wheel: Path,
                                                  tmp_path: Path) -> None:
    before = tree_digest(Path(env.prefix))
    proc = _run(env, tmp_path / "c", big_wheel, f"op-{MID_LINKS}:INT")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err, (out, err)
    assert tree_digest(Path(env.prefix)) == before
    assert not list(Path(env.prefix).glob(".inst*"))


# -- journal and RECORD ------------------------------------------------------------------------


def test_journal_lists_new_folders_and_files_in_one_op(env: Environment, tmp_path: Path,
                                                       ) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/a.py": "", "demo/sub/b.py": ""})
    proc = _run(env, tmp_path / "c", wheel, "journal")
    proc.communicate(timeout=60)
    journal = json.loads(next(Path(env.prefix).glob(TXN_PREFIX + "*/" + JOURNAL)).read_text())
    site = str(_site(env))
    assert [op["op"] for op in journal["ops"]] == ["create"]
    assert journal["ops"][0]["dirs"] == [f"{site}/demo", f"{site}/demo/sub",
                                         f"{site}/demo-1.0.dist-info"]
    assert set(journal["ops"][0]["paths"]) == {
        f"{site}/{rel}" for rel in ("demo/a.py", "demo/sub/b.py", *(
            f"demo-1.0.dist-info/{n}" for n in ("METADATA", "WHEEL", "INSTALLER", "REQUESTED",
                                                "RECORD")))}
    with env_lock(env):
        recover(env)
    assert installed_distributions(env) == []
    assert not (_site(env) / "demo").exists()


def test_journal_of_an_earlier_version_is_recovered(env: Environment) -> None:
    """One op per path ("path", not "paths"), as inst wrote them before batching."""
    folder = _site(env) / "old"
    folder.mkdir()
    (folder / "mod.py").write_text("")
    txn = Path(env.prefix) / f"{TXN_PREFIX}old"
    txn.mkdir()
    (txn / JOURNAL).write_text(json.dumps({"state": "applying", "ops": [
        {"op": "mkdir", "path": str(folder)},
        {"op": "create", "path": str(folder / "mod.py")},
        {"op": "create", "path": str(folder / "never-made.py")}], "prune": []}))
    with env_lock(env):
        assert recover(env) == [f"rolled back an interrupted install ({TXN_PREFIX}old)"]
    assert not folder.exists()
    assert check_environment(env) == []


def test_record_quotes_names_as_csv_does(env: Environment, tmp_path: Path) -> None:
    odd = {"demo/a,b.py": b"1", 'demo/q"uote.py': b"2"}
    lines = []
    for name, data in odd.items():
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow([name, record_hash(data), len(data)])
        lines.append(out.getvalue())
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "", **odd},
                       omit_from_record=list(odd), extra_record_lines=lines)
    _install(env, tmp_path, wheel)
    text = (_site(env) / "demo-1.0.dist-info" / "RECORD").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows(rows)
    assert text == expected.getvalue()
    assert {r[0] for r in rows} >= set(odd)
    assert check_environment(env) == []


# -- planning ----------------------------------------------------------------------------------


def _info(*paths: str) -> WheelInfo:
    return WheelInfo("demo-1.0-py3-none-any.whl", "demo", "1.0", "demo-1.0.dist-info", True,
                     "1.0", tuple(RecordEntry(p, "", 0) for p in paths))


def test_plan_normalizes_record_paths_that_are_not_plain(env: Environment, tmp_path: Path,
                                                         ) -> None:
    """Wheel validation refuses such paths first; planning must not rely on it."""
    info = _info("demo/./a.py", "demo//b.py", "demo/sub/../c.py", "demo/d.py")
    dests = [nf.dest for nf in plan_wheel(env, info, tmp_path)]
    site = str(_site(env))
    assert dests == [f"{site}/demo/a.py", f"{site}/demo/b.py", f"{site}/demo/c.py",
                     f"{site}/demo/d.py"]


@pytest.mark.parametrize("path", ["../escape.py", "demo/../../escape.py", "demo/..", "."])
def test_error_plan_refuses_record_paths_outside_the_target(path: str, env: Environment,
                                                            tmp_path: Path) -> None:
    with pytest.raises(WheelError) as exc:
        plan_wheel(env, _info("demo/a.py", path), tmp_path)
    assert str(exc.value) == ("demo-1.0-py3-none-any.whl: file would be installed outside its "
                              f"target directory (entry {path!r})")
