"""Installing real wheels into real venvs: layout, scripts, RECORD, upgrade, uninstall, links."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.cache import Cache
from installer.errors import InstallError
from installer.models import Environment
from installer.txn import (
    Transaction,
    check_environment,
    install_wheels,
    installed_distributions,
    uninstall,
)
from installer.wheel import record_hash
from tests.helpers.install_env import clone_venv, tree_digest
from tests.helpers.wheels import make_wheel

EP = "[console_scripts]\ndemo-cli = demo.cli:main\n[gui_scripts]\ndemo-gui = demo.cli:main\n"
FILES = {
    "demo/__init__.py": "VERSION = '1'\n",
    "demo/cli.py": "def main():\n    print('hello from demo')\n    return 0\n",
    "demo/old_only.py": "OLD = 1\n",
    "demo-1.0.data/scripts/tool": "#!python -u\nimport sys\nprint('tool', sys.executable)\n",
    "demo-1.0.data/scripts/plain.sh": "#!/bin/sh\necho plain\n",
    "demo-1.0.data/data/share/demo/readme.txt": "data file\n",
    "demo-1.0.data/headers/demo.h": "#define DEMO 1\n",
}


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    yield Cache(tmp_path / "cache")


def _site(env: Environment) -> Path:
    return Path(env.paths["purelib"])


def _record(env: Environment, dist_info: str) -> dict[str, tuple[str, str]]:
    with open(_site(env) / dist_info / "RECORD", newline="") as f:
        return {row[0]: (row[1], row[2]) for row in csv.reader(f)}


def test_install_layout_scripts_and_metadata(env: Environment, cache: Cache,
                                              tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files=FILES, entry_points=EP)
    direct = {"url": "file:///somewhere/demo-1.0-py3-none-any.whl", "archive_info": {}}
    install_wheels(env, [(wheel, True, direct)], cache=cache)
    bindir, prefix = Path(env.paths["scripts"]), Path(env.prefix)
    out = subprocess.run([str(bindir / "demo-cli")], capture_output=True, text=True, check=True)
    assert out.stdout == "hello from demo\n"
    tool = (bindir / "tool").read_text()
    assert tool.startswith(f"#!{env.python} -u\nimport sys\n")
    assert subprocess.run([str(bindir / "tool")], capture_output=True, text=True,
                          check=True).stdout.startswith("tool ")
    assert (bindir / "plain.sh").read_text() == "#!/bin/sh\necho plain\n"
    for script in ("demo-cli", "demo-gui", "tool", "plain.sh"):
        assert os.stat(bindir / script).st_mode & 0o111 == 0o111
    launcher = (bindir / "demo-gui").read_text()
    assert launcher == (
        f"#!{env.python}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
        "from demo.cli import main\nif __name__ == \"__main__\":\n"
        "    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n"
        "    sys.exit(main())\n")
    assert (prefix / "share/demo/readme.txt").read_text() == "data file\n"
    assert (prefix / "include/site/python3.11/demo/demo.h").read_text() == "#define DEMO 1\n"
    di = _site(env) / "demo-1.0.dist-info"
    assert (di / "INSTALLER").read_text() == "inst\n"
    assert (di / "REQUESTED").exists()
    assert json.loads((di / "direct_url.json").read_text()) == direct
    record = _record(env, "demo-1.0.dist-info")
    assert record["demo-1.0.dist-info/RECORD"] == ("", "")
    assert "../../../bin/demo-cli" in record
    assert "../../../share/demo/readme.txt" in record
    for rel, (digest, size) in record.items():
        if digest:
            data = (_site(env) / rel).read_bytes()
            assert (record_hash(data), int(size)) == (digest, len(data)), rel
    # every file the install created is in RECORD
    listed = {os.path.normpath(_site(env) / rel) for rel in record}
    created = {os.path.join(d, f) for d, _, fs in os.walk(_site(env) / "demo") for f in fs}
    assert created <= listed
    assert check_environment(env) == []
    assert [d.display_name for d in installed_distributions(env)] == ["demo"]


def test_not_requested_has_no_requested_file(env: Environment, cache: Cache,
                                             tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "dep", "1.0", files={"dep.py": "X = 1\n"}, root_is_purelib=False)
    install_wheels(env, [(wheel, False, None)], cache=cache)
    di = Path(env.paths["platlib"]) / "dep-1.0.dist-info"
    assert not (di / "REQUESTED").exists()
    assert not (di / "direct_url.json").exists()
    assert check_environment(env) == []


def test_newer_wheel_minor_version_warns(env: Environment, cache: Cache, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "dep", "1.0", files={"dep.py": ""}, wheel_version="1.9")
    result = install_wheels(env, [(wheel, True, None)], cache=cache)
    assert result.warnings == [
        "dep-1.0-py3-none-any.whl: Wheel-Version 1.9 is newer than 1.0; installing anyway"]


def test_upgrade_replaces_old_version(env: Environment, cache: Cache, tmp_path: Path) -> None:
    v1 = make_wheel(tmp_path, "demo", "1.0", files=FILES, entry_points=EP)
    install_wheels(env, [(v1, True, None)], cache=cache, compile_bytecode=True)
    new_files = {"demo/__init__.py": "VERSION = '2'\n", "demo/cli.py": FILES["demo/cli.py"]}
    v2 = make_wheel(tmp_path, "demo", "2.0", files=new_files, entry_points=EP)
    result = install_wheels(env, [(v2, True, None)], cache=cache)
    assert [d.version for d in result.removed] == ["1.0"]
    site = _site(env)
    assert not (site / "demo/old_only.py").exists()
    assert not list((site / "demo/__pycache__").glob("old_only*"))
    assert not (site / "demo-1.0.dist-info").exists()
    assert not (Path(env.prefix) / "share/demo").exists()  # emptied dirs are removed
    assert not (Path(env.paths["scripts"]) / "tool").exists()
    assert (site / "demo/__init__.py").read_text() == "VERSION = '2'\n"
    assert check_environment(env) == []
    assert not list(Path(env.prefix).glob(".inst*"))


def test_uninstall_by_record_never_outside(env: Environment, cache: Cache,
                                           tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    wheel = make_wheel(tmp_path, "demo", "1.0", files=FILES, entry_points=EP)
    before = tree_digest(Path(env.prefix))
    install_wheels(env, [(wheel, True, None)], cache=cache, compile_bytecode=True)
    record = _site(env) / "demo-1.0.dist-info/RECORD"
    rel = os.path.relpath(outside, _site(env))
    record.write_text(record.read_text() + f"{rel},,\n")  # planted row pointing outside
    result = uninstall(env, ["Demo", "missing"])
    assert outside.read_text() == "keep me"
    assert f"demo: not removing {os.path.normpath(_site(env) / rel)}: it is outside the " \
        "environment" in result.warnings
    assert "missing is not installed" in result.warnings
    assert tree_digest(Path(env.prefix)) == before


def test_error_uninstall_without_record(env: Environment, tmp_path: Path) -> None:
    di = _site(env) / "legacy-1.0.dist-info"
    di.mkdir()
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: legacy\nVersion: 1.0\n\n")
    before = tree_digest(Path(env.prefix))
    with pytest.raises(InstallError) as exc:
        uninstall(env, ["legacy"])
    assert str(exc.value) == f"cannot uninstall legacy 1.0: no RECORD file in {di}"
    assert tree_digest(Path(env.prefix)) == before


def test_compile_bytecode_adds_pyc_to_record(env: Environment, cache: Cache,
                                             tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files=FILES, entry_points=EP)
    install_wheels(env, [(wheel, True, None)], cache=cache, compile_bytecode=True)
    record = _record(env, "demo-1.0.dist-info")
    pycs = sorted(r for r in record if r.endswith(".pyc"))
    assert pycs == ["demo/__pycache__/__init__.cpython-311.pyc",
                    "demo/__pycache__/cli.cpython-311.pyc",
                    "demo/__pycache__/old_only.cpython-311.pyc"]
    assert check_environment(env) == []
    # the pyc is valid for the installed source: importing it does not rewrite it
    pyc = _site(env) / pycs[1]
    before = pyc.read_bytes()
    subprocess.run([str(env.python), "-c", "import demo.cli"], check=True)
    assert pyc.read_bytes() == before


def test_no_bytecode_by_default(env: Environment, cache: Cache, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files=FILES)
    install_wheels(env, [(wheel, True, None)], cache=cache)
    assert not (_site(env) / "demo/__pycache__").exists()


@pytest.mark.parametrize("mode", ["hardlink", "copy", "symlink"])
def test_link_modes(mode: str, env: Environment, cache: Cache, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files=FILES, entry_points=EP)
    install_wheels(env, [(wheel, True, None)], cache=cache, link_mode=mode)  # type: ignore[arg-type]
    installed = _site(env) / "demo/cli.py"
    cached = next((cache.root / "unpacked").glob("*/tree/demo/cli.py"))
    same_inode = os.stat(installed).st_ino == os.stat(cached).st_ino
    assert same_inode == (mode in ("hardlink", "symlink"))
    assert installed.is_symlink() == (mode == "symlink")
    # rewritten files are never links into the cache
    for fresh in (Path(env.paths["scripts"]) / "tool", _site(env) / "demo-1.0.dist-info/RECORD"):
        assert not fresh.is_symlink() and os.stat(fresh).st_nlink == 1
    cached_tool = next((cache.root / "unpacked").glob("*/tree/demo-1.0.data/scripts/tool"))
    assert cached_tool.read_text() == FILES["demo-1.0.data/scripts/tool"]
    assert check_environment(env) == []


def test_warm_install_links_from_cache(venv_template: Path, cache: Cache, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files=FILES, entry_points=EP)
    env1 = clone_venv(venv_template, tmp_path / "v1")
    env2 = clone_venv(venv_template, tmp_path / "v2")
    install_wheels(env1, [(wheel, True, None)], cache=cache)
    marker = next((cache.root / "unpacked").glob("*/verified.json"))
    stamp = marker.stat().st_mtime_ns
    install_wheels(env2, [(wheel, True, None)], cache=cache)
    assert marker.stat().st_mtime_ns == stamp  # not unpacked again
    a, b = (Path(e.paths["purelib"]) / "demo/cli.py" for e in (env1, env2))
    assert os.stat(a).st_ino == os.stat(b).st_ino


def test_corrupted_unpacked_cache_is_rebuilt(venv_template: Path, cache: Cache,
                                             tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files=FILES)
    env1 = clone_venv(venv_template, tmp_path / "v1")
    install_wheels(env1, [(wheel, True, None)], cache=cache, link_mode="copy")
    cached = next((cache.root / "unpacked").glob("*/tree/demo/cli.py"))
    cached.write_text("raise SystemExit('tampered')\n")
    env2 = clone_venv(venv_template, tmp_path / "v2")
    install_wheels(env2, [(wheel, True, None)], cache=cache)
    assert (Path(env2.paths["purelib"]) / "demo/cli.py").read_text() == FILES["demo/cli.py"]
    assert check_environment(env2) == []


def test_transaction_api_install_and_remove_together(env: Environment, cache: Cache,
                                                     tmp_path: Path) -> None:
    install_wheels(env, [(make_wheel(tmp_path, "old", "1.0", files={"old.py": ""}), True, None)],
                   cache=cache)
    with Transaction(env, cache) as txn:
        txn.install(make_wheel(tmp_path, "new", "1.0", files={"new.py": ""}))
        assert txn.remove("old") is not None
    assert [d.name for d in installed_distributions(env)] == ["new"]
    assert not (_site(env) / "old.py").exists()
    assert check_environment(env) == []
