"""Edits of config files: formatting kept byte for byte, atomic, locked, validated."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from installer.config import parse_toml
from installer.configedit import lock_path, replace_text, set_key, unset_key
from installer.errors import ConfigErrors

ROOT = Path(__file__).resolve().parent.parent

ORIGINAL = """\
# inst settings for this machine
# (keep this header)

[global]
# the corporate CA
cert = "/etc/ssl/old.pem"   # replaced below
timeout   =   30.0        # odd spacing stays

[install]
no-deps = true   # trailing comment

# a closing comment
"""


def toml_loads(text: str) -> dict[str, Any]:
    return parse_toml(text, "test.toml")


def test_set_keeps_everything_else_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "inst.toml"
    path.write_text(ORIGINAL)
    set_key(path, "global", "cert", "/etc/ssl/new.pem")
    expected = ORIGINAL.replace('"/etc/ssl/old.pem"', '"/etc/ssl/new.pem"')
    assert path.read_text() == expected


def test_set_new_key_and_new_table_append_only(tmp_path: Path) -> None:
    path = tmp_path / "inst.toml"
    path.write_text(ORIGINAL)
    set_key(path, "install", "retries", 3)
    set_key(path, "download", "trusted-host", ["a.example", "b.example"])
    text = path.read_text()
    assert text.startswith(ORIGINAL.split("[install]")[0])
    assert "no-deps = true   # trailing comment\nretries = 3\n" in text
    assert text.endswith('[download]\ntrusted-host = ["a.example", "b.example"]\n')
    assert toml_loads(text)["install"] == {"no-deps": True, "retries": 3}


def test_unset_removes_only_that_key(tmp_path: Path) -> None:
    path = tmp_path / "inst.toml"
    path.write_text(ORIGINAL)
    assert unset_key(path, "global", "timeout") is True
    assert path.read_text() == ORIGINAL.replace(
        "timeout   =   30.0        # odd spacing stays\n", "")
    assert unset_key(path, "global", "timeout") is False
    assert unset_key(tmp_path / "missing.toml", "global", "cert") is False


def test_crlf_line_endings_kept(tmp_path: Path) -> None:
    path = tmp_path / "inst.toml"
    path.write_bytes(ORIGINAL.replace("\n", "\r\n").encode())
    set_key(path, "global", "retries", 2)
    set_key(path, "install", "pre", True)
    data = path.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"retries = 2\r\n" in data
    assert data.startswith(b"# inst settings for this machine\r\n# (keep this header)\r\n")


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_mode_kept(tmp_path: Path) -> None:
    path = tmp_path / "inst.toml"
    path.write_text(ORIGINAL)
    path.chmod(0o600)
    set_key(path, "global", "retries", 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_parent_folders_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "inst" / "inst.toml"
    set_key(path, "global", "cert", "/x.pem")
    assert path.read_text() == '[global]\ncert = "/x.pem"\n'
    assert lock_path(path).exists()


def test_invalid_result_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "inst.toml"
    path.write_text(ORIGINAL)
    with pytest.raises(ConfigErrors) as exc:
        set_key(path, "global", "timeout", "soon")
    assert exc.value.errors[0].message == (
        f'{path}:7: global.timeout: expected a number (seconds), got "soon"')
    assert path.read_text() == ORIGINAL
    with pytest.raises(ConfigErrors):
        replace_text(path, "[global\n")
    assert path.read_text() == ORIGINAL
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_error_invalid_toml_file_is_not_edited(tmp_path: Path) -> None:
    path = tmp_path / "inst.toml"
    path.write_text("[global]\ncert = \n")
    with pytest.raises(ConfigErrors) as exc:
        set_key(path, "global", "retries", 1)
    assert exc.value.errors[0].message == f"{path}:2:8: invalid TOML: invalid value"
    assert path.read_text() == "[global]\ncert = \n"


def test_pyproject_tool_inst_editing(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    original = '[project]\nname = "demo"  # the name\n\n[tool.ruff]\nline-length = 100\n'
    path.write_text(original)
    set_key(path, "global", "cert", "/ca.pem", pyproject=True)
    set_key(path, "install", "retries", 2, pyproject=True)
    text = path.read_text()
    assert text.startswith(original)
    data = toml_loads(text)
    assert data["tool"]["inst"] == {"global": {"cert": "/ca.pem"}, "install": {"retries": 2}}
    assert data["tool"]["ruff"] == {"line-length": 100}
    assert unset_key(path, "global", "cert", pyproject=True)
    assert "cert" not in toml_loads(path.read_text())["tool"]["inst"]["global"]


def test_atomic_replace_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "inst.toml"
    for i in range(5):
        set_key(path, "global", "retries", i)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".inst.toml.lock", "inst.toml"]


PARALLEL = {
    "cert": "/ca.pem", "client-cert": "/me.pem", "proxy": "http://proxy:3128", "timeout": "9",
    "retries": "4", "concurrency": "3", "index-url": "https://i.example/simple", "trust": "system",
}


def test_parallel_sets_all_land_while_reader_always_parses(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "inst.toml"
    path.parent.mkdir()
    path.write_text("# shared file\n[global]\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen([sys.executable, "-m", "installer", "config", "set", "--file",
                          str(path), f"global.{key}", value], env=env, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for key, value in PARALLEL.items()
    ]
    reads = 0
    while any(p.poll() is None for p in procs):
        toml_loads(path.read_text())  # never a torn or half-written file
        reads += 1
    for p in procs:
        assert p.wait() == 0, p.stderr.read() if p.stderr else ""
    data = toml_loads(path.read_text())
    assert set(data["global"]) == set(PARALLEL)
    assert path.read_text().startswith("# shared file\n[global]\n")
    assert reads > 0
