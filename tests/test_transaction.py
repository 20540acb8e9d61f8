"""All-or-nothing installs: rollback on errors and Ctrl-C, recovery after kill -9, the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installer.cache import Cache
from installer.errors import InstallError
from installer.models import Environment
from installer.txn import (
    CRASH_ENV,
    check_environment,
    env_lock,
    install_wheels,
    installed_distributions,
    recover,
)
from tests.helpers.install_env import clone_venv, make_venv, tree_digest
from tests.helpers.wheels import make_wheel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with aaa 1.0 and bbb 1.0 installed by inst."""
    root = tmp_path_factory.mktemp("tpl")
    env = make_venv(root / "venv")
    wheels = [_wheel(root, name, "1.0") for name in ("aaa", "bbb")]
    install_wheels(env, [(w, True, None) for w in wheels], cache=Cache(root / "cache"))
    return root / "venv"


def _wheel(d: Path, name: str, version: str) -> Path:
    files = {f"{name}/__init__.py": f"V = {version!r}\n", f"{name}/v{version[0]}.py": ""}
    ep = f"[console_scripts]\n{name}-cli = {name}:V\n"
    return make_wheel(d, name, version, files=files, entry_points=ep)


def _versions(env: Environment) -> dict[str, str]:
    return {d.name: d.version for d in installed_distributions(env)}


def _upgrade_set(d: Path) -> list[Path]:
    return [_wheel(d, "aaa", "2.0"), _wheel(d, "bbb", "2.0"), _wheel(d, "ccc", "1.0")]


def _run(env: Environment, cache: Path, wheels: list[Path], crash: str | None = None,
         ) -> subprocess.Popen[str]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    if crash:
        environ[CRASH_ENV] = crash
    cmd = [sys.executable, "-m", "tests.helpers.install_run", str(env.python), str(cache),
           *map(str, wheels)]
    return subprocess.Popen(cmd, env=environ, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_error_failure_in_the_middle_rolls_back_everything(template: Path, tmp_path: Path,
                                                           ) -> None:
    env = clone_venv(template, tmp_path / "venv")
    blocker = Path(env.paths["purelib"]) / "zzz"
    blocker.write_text("an untracked file where ddd wants a folder")
    wheels = [*_upgrade_set(tmp_path), make_wheel(tmp_path, "ddd", "1.0",
                                                  files={"zzz/mod.py": ""})]
    before = tree_digest(Path(env.prefix))
    with pytest.raises(InstallError) as exc:
        install_wheels(env, [(w, True, None) for w in wheels], cache=Cache(tmp_path / "c"))
    assert str(exc.value) == (
        f"install failed: [Errno 17] File exists: '{blocker}'; the environment was rolled back")
    assert tree_digest(Path(env.prefix)) == before
    assert _versions(env) == {"aaa": "1.0", "bbb": "1.0"}


@pytest.mark.parametrize("point", ["staged", "journal", "op-0", "op-9", "op-20"])
def test_ctrl_c_rolls_back(point: str, template: Path, tmp_path: Path) -> None:
    env = clone_venv(template, tmp_path / "venv")
    before = tree_digest(Path(env.prefix))
    proc = _run(env, tmp_path / "c", _upgrade_set(tmp_path), crash=f"{point}:INT")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err, (out, err)
    assert tree_digest(Path(env.prefix)) == before
    assert not list(Path(env.prefix).glob(".inst*"))


KILL_POINTS = ["staged", "journal", "op-0", "op-1", "op-5", "op-13", "op-14", "op-15",
               "op-20", "op-28", "op-35", "committed"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_then_recover(point: str, template: Path, tmp_path: Path) -> None:
    env = clone_venv(template, tmp_path / "venv")
    before = tree_digest(Path(env.prefix))
    proc = _run(env, tmp_path / "c", _upgrade_set(tmp_path), crash=point)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -9, (out, err)
    assert list(Path(env.prefix).glob(".inst-txn-*"))  # the crash left a transaction behind
    with env_lock(env):
        messages = recover(env)
    assert len(messages) == 1
    assert check_environment(env) == []
    assert not list(Path(env.prefix).glob(".inst*"))
    if point == "committed":
        assert messages[0].startswith("finished an interrupted install")
        assert _versions(env) == {"aaa": "2.0", "bbb": "2.0", "ccc": "1.0"}
    else:
        verb = "discarded" if point == "staged" else "rolled back"
        assert messages[0].startswith(f"{verb} an interrupted install")
        assert tree_digest(Path(env.prefix)) == before


def test_next_install_recovers_first(template: Path, tmp_path: Path) -> None:
    env = clone_venv(template, tmp_path / "venv")
    proc = _run(env, tmp_path / "c", _upgrade_set(tmp_path), crash="op-14")
    proc.communicate(timeout=60)
    result = install_wheels(env, [(_wheel(tmp_path, "ccc", "1.0"), True, None)],
                            cache=Cache(tmp_path / "c"))
    assert result.warnings[0].startswith("rolled back an interrupted install")
    assert _versions(env) == {"aaa": "1.0", "bbb": "1.0", "ccc": "1.0"}
    assert check_environment(env) == []


def test_concurrent_installs_serialize(template: Path, tmp_path: Path) -> None:
    env = clone_venv(template, tmp_path / "venv")
    sets = [[_wheel(tmp_path, "aaa", "2.0")], [_wheel(tmp_path, "bbb", "2.0")],
            [_wheel(tmp_path, "ccc", "1.0")], [_wheel(tmp_path, "ddd", "1.0")]]
    procs = [_run(env, tmp_path / "c", s) for s in sets]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert _versions(env) == {"aaa": "2.0", "bbb": "2.0", "ccc": "1.0", "ddd": "1.0"}
    assert check_environment(env) == []
    assert not list(Path(env.prefix).glob(".inst*"))


def test_error_second_process_waits_with_message(template: Path, tmp_path: Path) -> None:
    env = clone_venv(template, tmp_path / "venv")
    wheel = _wheel(tmp_path, "ccc", "1.0")
    with env_lock(env):
        proc = _run(env, tmp_path / "c", [wheel])
        deadline = time.monotonic() + 30
        line = ""
        assert proc.stderr is not None
        while not line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        assert line == f"waiting for another inst process to finish with {env.prefix}\n"
        time.sleep(0.2)
        assert proc.poll() is None  # still blocked
        assert "ccc" not in _versions(env)
    out, _err = proc.communicate(timeout=60)
    assert out == "done\n"
    assert _versions(env)["ccc"] == "1.0"
    assert not (Path(env.prefix) / ".inst.lock").exists()
