"""The target environment: discovery, one query per interpreter (cached), schemes, dists."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.tags import sys_tags

from installer.environment import (
    cache_file,
    find_interpreter,
    query_environment,
    scheme_for_target,
)
from installer.errors import EnvironmentError_


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real venv without pip, made once for this module."""
    path = tmp_path_factory.mktemp("env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def _purelib(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def _dist_info(site: Path, name: str, version: str, *, installer: str | None = "inst",
               requested: bool = False) -> Path:
    di = site / f"{name.replace('-', '_')}-{version}.dist-info"
    di.mkdir(parents=True)
    (di / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: x\n\nName: body\n")
    if installer:
        (di / "INSTALLER").write_text(installer + "\n")
    if requested:
        (di / "REQUESTED").write_text("")
    return di


# --- discovery --------------------------------------------------------------------------------


def test_python_option_accepts_venv_folder_and_interpreter(venv: Path, tmp_path: Path) -> None:
    assert find_interpreter(str(venv), {}, tmp_path) == venv / "bin" / "python"
    assert find_interpreter(str(venv / "bin" / "python"), {}, tmp_path) == venv / "bin" / "python"


def test_python_option_relative_to_cwd(venv: Path) -> None:
    assert find_interpreter("venv", {}, venv.parent) == venv / "bin" / "python"


def test_python_option_wins_over_virtual_env(venv: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(other)], check=True)
    found = find_interpreter(str(other), {"VIRTUAL_ENV": str(venv)}, tmp_path)
    assert found == other / "bin" / "python"


def test_virtual_env_before_dot_venv(venv: Path, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(venv)
    other = tmp_path / "x"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(other)], check=True)
    assert find_interpreter(None, {"VIRTUAL_ENV": str(other)}, tmp_path) == \
        other / "bin" / "python"


def test_nearest_dot_venv_upward(venv: Path, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(venv)
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert find_interpreter(None, {}, deep) == tmp_path / ".venv" / "bin" / "python"


def test_error_no_environment(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentError_) as info:
        find_interpreter(None, {}, tmp_path)
    assert info.value.message == (
        f"no Python environment found: no --python, no VIRTUAL_ENV, and no .venv in {tmp_path} "
        "or its parents")
    assert info.value.hint == (
        "create one with `inst venv`, or name an interpreter with --python PATH")


def test_error_python_option_missing(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentError_) as info:
        find_interpreter(str(tmp_path / "nope" / "python"), {}, tmp_path)
    assert info.value.message == f"no Python interpreter at {tmp_path}/nope/python (from --python)"


def test_error_python_option_folder_without_interpreter(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentError_) as info:
        find_interpreter(str(tmp_path), {}, tmp_path)
    assert info.value.message == f"{tmp_path} is not a virtual environment (no bin/python in it)"


def test_error_virtual_env_without_interpreter(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentError_) as info:
        find_interpreter(None, {"VIRTUAL_ENV": str(tmp_path)}, tmp_path)
    assert info.value.message == (
        f"VIRTUAL_ENV points to {tmp_path}, which has no Python interpreter")


# --- query ------------------------------------------------------------------------------------


def test_query_venv_facts(venv: Path, tmp_path: Path) -> None:
    env = query_environment(venv / "bin" / "python", tmp_path / "cache")
    assert env.is_venv
    assert env.python == venv / "bin" / "python"
    assert Path(env.prefix).resolve() == venv.resolve()
    assert env.python_version == platform.python_version()
    assert env.implementation == sys.implementation.name
    assert Path(env.paths["purelib"]).resolve() == _purelib(venv).resolve()
    assert Path(env.paths["scripts"]).resolve() == (venv / "bin").resolve()
    assert set(env.paths) == {"purelib", "platlib", "scripts", "data", "include"}
    # The venv runs our interpreter's build, so the tags must be exactly what packaging says.
    assert list(env.tags) == [str(t) for t in sys_tags()]
    expected = {k: v for k, v in default_environment().items() if k in env.markers}
    assert dict(env.markers) == expected
    assert len(env.markers) >= 11


def _poison(cache: Path, python: Path) -> None:
    entry = cache_file(cache, python)
    data = json.loads(entry.read_text())
    data["static"]["python_version"] = "9.9.9-from-cache"
    entry.write_text(json.dumps(data))


def test_query_is_cached_by_path_and_content(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin" / "python"
    cache = tmp_path / "cache"
    query_environment(python, cache)
    _poison(cache, python)
    # A second query answers from the cache: no subprocess could have said 9.9.9.
    assert query_environment(python, cache).python_version == "9.9.9-from-cache"
    # Touching the venv's symlink does not matter (a venv created again at the same path)...
    st = python.lstat()
    os.utime(python, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9), follow_symlinks=False)
    assert query_environment(python, cache).python_version == "9.9.9-from-cache"
    # ...but a changed pyvenv.cfg invalidates the entry.
    cfg = venv / "pyvenv.cfg"
    cfg.write_text(cfg.read_text() + "\n# changed\n")
    assert query_environment(python, cache).python_version == platform.python_version()


def test_query_cache_follows_the_interpreter_link(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin" / "python"
    cache = tmp_path / "cache"
    query_environment(python, cache)
    _poison(cache, python)
    alias = tmp_path / "alias-python"  # same binary, another link target
    alias.symlink_to(os.path.realpath(python))
    python.unlink()
    python.symlink_to(alias)
    assert query_environment(python, cache).python_version == platform.python_version()


def test_no_cache_dir_writes_nothing(venv: Path, tmp_path: Path) -> None:
    env = query_environment(venv / "bin" / "python", None)
    assert env.python_version == platform.python_version()
    assert not any(tmp_path.iterdir())


def test_installed_dists_scanned_each_time(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin" / "python"
    site = _purelib(venv)
    _dist_info(site, "Foo.Bar", "1.2", requested=True)
    try:
        env = query_environment(python, tmp_path)
        foo = env.installed["foo-bar"]
        assert (foo.display_name, foo.version, foo.installer, foo.requested) == (
            "Foo.Bar", "1.2", "inst", True)
        di = _dist_info(site, "baz", "3", installer=None)
        again = query_environment(python, tmp_path)
        assert again.installed["baz"].installer is None
        assert again.installed["baz"].requested is False
        assert again.installed["baz"].dist_info == di
    finally:
        import shutil

        for d in site.glob("*.dist-info"):
            shutil.rmtree(d)


def test_broken_dist_info_is_skipped(venv: Path, tmp_path: Path) -> None:
    site = _purelib(venv)
    broken = site / "broken-1.0.dist-info"
    broken.mkdir()
    try:
        assert "broken" not in query_environment(venv / "bin" / "python", tmp_path).installed
    finally:
        broken.rmdir()


def test_error_interpreter_that_fails(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(EnvironmentError_) as info:
        query_environment(fake, None)
    assert info.value.message == f"querying {fake} failed: boom"


# --- schemes ----------------------------------------------------------------------------------


def test_target_scheme(venv: Path, tmp_path: Path) -> None:
    env = query_environment(venv / "bin" / "python", None)
    target = tmp_path / "t"
    _dist_info(target, "inside", "1")
    moved = scheme_for_target(env, target=target)
    assert moved.paths == {"purelib": str(target), "platlib": str(target),
                           "scripts": str(target / "bin"), "data": str(target),
                           "include": str(target / "include")}
    assert list(moved.installed) == ["inside"]
    assert moved.tags == env.tags


def test_prefix_scheme(venv: Path, tmp_path: Path) -> None:
    env = query_environment(venv / "bin" / "python", None)
    moved = scheme_for_target(env, prefix=tmp_path / "p")
    short = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert moved.paths["purelib"] == str(tmp_path / "p" / "lib" / f"python{short}" /
                                         "site-packages")
    assert moved.paths["scripts"] == str(tmp_path / "p" / "bin")
    assert moved.paths["data"] == str(tmp_path / "p")
    assert moved.paths["include"].startswith(str(tmp_path / "p" / "include"))
    assert moved.installed == {}


def test_no_target_no_prefix_is_identity(venv: Path) -> None:
    env = query_environment(venv / "bin" / "python", None)
    assert scheme_for_target(env) is env
