"""The CLI contract: --version, --help, help COMMAND, exit codes, generated flags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from installer import __version__
from installer.cli import build_parser
from installer.options import OPTIONS


def test_version(run_inst: Any) -> None:
    proc = run_inst("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"inst {__version__}"


def test_python_dash_m_and_help(run_inst: Any) -> None:
    proc = run_inst("--help")
    assert proc.returncode == 0
    for command in ("install", "config", "debug", "venv"):
        assert command in proc.stdout


def test_help_command_shows_generated_flags(run_inst: Any) -> None:
    proc = run_inst("help", "install")
    assert proc.returncode == 0
    assert "--index-url" in proc.stdout and "--cert" in proc.stdout
    assert "INST_CERT" in proc.stdout


def test_error_unknown_command_exit_2(run_inst: Any) -> None:
    proc = run_inst("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice: 'frobnicate'" in proc.stderr


def test_error_help_unknown_topic(run_inst: Any) -> None:
    proc = run_inst("help", "frobnicate")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == "error: unknown command 'frobnicate'"


def test_error_bad_flag_value_names_flag(run_inst: Any) -> None:
    proc = run_inst("install", "--timeout", "soon", "--show-settings")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --timeout: ")


def test_no_command_is_usage_error(run_inst: Any) -> None:
    assert run_inst().returncode == 2


def test_every_flag_generated_from_table() -> None:
    parser = build_parser("install")
    text = parser._subparsers._group_actions[0].choices["install"].format_help()  # type: ignore[union-attr]
    for option in OPTIONS:
        if "install" in option.commands and option.flag_name:
            assert option.flag_name in text, option.key


def test_console_script_installed() -> None:
    script = Path(sys.executable).parent / "inst"
    if not script.exists():
        import pytest

        pytest.skip("inst console script not installed in this environment")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert proc.stdout.strip() == f"inst {__version__}"


def test_help_before_a_command_still_lists_every_command(run_inst: Any) -> None:
    # Running a command builds only its own parser; help must still see them all.
    proc = run_inst("--help", "install")
    assert proc.returncode == 0
    for command in ("install", "uninstall", "config", "debug", "venv", "cache"):
        assert command in proc.stdout
    bad = run_inst("instal", "requests")
    assert bad.returncode == 2 and "(choose from 'install', 'download'" in bad.stderr


def test_profilers_still_get_their_exit(tmp_path: Path) -> None:
    # The console script ends with os._exit (no interpreter teardown), except under a
    # profiler or coverage, which write their data at normal exit.
    out = tmp_path / "inst.prof"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "installer",
                           "config", "list"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
