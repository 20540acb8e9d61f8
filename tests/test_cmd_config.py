"""``inst config`` end to end, through ``python -m installer`` in a subprocess."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from installer.config import parse_toml

Run = Any


def toml_loads(text: str) -> dict[str, Any]:
    return parse_toml(text, "test.toml")


def user_file(home: Path) -> Path:
    return home / ".config" / "inst" / "inst.toml"


def test_acceptance_set_then_get_keeps_comments(run_inst: Run, clean_env: Path) -> None:
    path = user_file(clean_env)
    path.parent.mkdir(parents=True)
    path.write_text("# my inst settings\n[global]\n# slow network here\ntimeout = 60.0\n")
    result = run_inst("config", "set", "global.cert", "/path/ca.pem")
    assert result.returncode == 0, result.stderr
    result = run_inst("config", "get", "global.cert")
    assert (result.returncode, result.stdout) == (0, "/path/ca.pem\n")
    assert path.read_text() == (
        "# my inst settings\n[global]\n# slow network here\ntimeout = 60.0\n"
        'cert = "/path/ca.pem"\n')


def test_get_json_has_origin_and_list_one_per_line(run_inst: Run, clean_env: Path) -> None:
    assert run_inst("config", "set", "install.trusted-host", "a.example", "b.example:8443"
                    ).returncode == 0
    result = run_inst("config", "get", "install.trusted-host")
    assert result.stdout == "a.example\nb.example:8443\n"
    data = json.loads(run_inst("config", "get", "install.trusted-host", "--json").stdout)
    assert data["value"] == ["a.example", "b.example:8443"]
    assert data["origin"] == {"kind": "user", "path": str(user_file(clean_env)), "line": 2,
                              "section": "install"}
    # [install] does not apply to the global view
    assert run_inst("config", "get", "global.trusted-host").stdout == ""


def test_list_with_origin_and_redacted_credentials(run_inst: Run, clean_env: Path) -> None:
    run_inst("config", "set", "global.index-url", "https://me:s3cret@pypi.corp.example/simple")
    run_inst("config", "set", "install.retries", "2")
    result = run_inst("config", "list", "--show-origin", env={"INST_TIMEOUT": "5"})
    path = user_file(clean_env)
    assert result.stdout.splitlines() == [
        f'global.index-url = "https://me:****@pypi.corp.example/simple"  (from {path}:2 [global])',
        "global.timeout = 5.0  (from env INST_TIMEOUT)",
        f"install.retries = 2  (from {path}:5 [install])",
    ]
    for args in (("config", "list", "--json"), ("config", "get", "global.index-url")):
        assert "s3cret" not in run_inst(*args).stdout


def test_error_set_bad_value_writes_nothing(run_inst: Run, clean_env: Path) -> None:
    result = run_inst("config", "set", "global.timeout", "soon")
    assert result.returncode == 2
    assert result.stderr == 'error: global.timeout: expected a number (seconds), got "soon"\n'
    assert not user_file(clean_env).exists()
    result = run_inst("config", "set", "global.trust", "os")
    assert result.stderr == ('error: global.trust: expected one of "certifi", "system", '
                             '"system+certifi", got "os"\n')


def test_error_set_unknown_key_did_you_mean(run_inst: Run, clean_env: Path) -> None:
    result = run_inst("config", "set", "global.certt", "/x.pem")
    assert (result.returncode, result.stderr) == (
        2, "error: unknown key 'global.certt' (did you mean 'global.cert'?)\n")
    result = run_inst("config", "get", "instal.cert")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "error: unknown section 'instal' in 'instal.cert' (did you mean 'install.cert'?)")


def test_error_several_values_for_scalar(run_inst: Run) -> None:
    result = run_inst("config", "set", "global.cert", "/a.pem", "/b.pem")
    assert (result.returncode, result.stderr) == (
        2, "error: global.cert takes one value, got 2\n")


def test_scopes_project_site_file(run_inst: Run, clean_env: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    # no project file yet: creates inst.toml in the working directory
    assert run_inst("config", "set", "--project", "global.retries", "1",
                    cwd=project).returncode == 0
    assert (project / "inst.toml").read_text() == "[global]\nretries = 1\n"
    (project / "inst.toml").unlink()
    # pyproject with [tool.inst] and no inst.toml: edits [tool.inst]
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.inst]\n")
    assert run_inst("config", "set", "--project", "install.retries", "2",
                    cwd=project / "sub").returncode == 0
    assert toml_loads((project / "pyproject.toml").read_text())["tool"]["inst"] == {
        "install": {"retries": 2}}
    assert not (project / "inst.toml").exists()
    assert run_inst("config", "get", "install.retries", cwd=project / "sub").stdout == "2\n"
    # site and --file
    assert run_inst("config", "set", "--site", "global.trust", "system").returncode == 0
    site = clean_env / "etc-xdg" / "inst" / "inst.toml"
    assert site.read_text() == '[global]\ntrust = "system"\n'
    other = tmp_path / "other.toml"
    assert run_inst("config", "set", "--file", str(other), "global.no-cache", "yes"
                    ).returncode == 0
    assert other.read_text() == "[global]\nno-cache = true\n"


def test_relative_path_value_stays_meaningful(run_inst: Run, tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    assert run_inst("config", "set", "--project", "global.cert", "certs/ca.pem").returncode == 0
    assert (tmp_path / "inst.toml").read_text() == '[global]\ncert = "certs/ca.pem"\n'
    result = run_inst("config", "get", "global.cert", cwd=tmp_path / "certs")
    assert result.stdout == f"{tmp_path / 'certs' / 'ca.pem'}\n"


def test_unset(run_inst: Run, clean_env: Path) -> None:
    run_inst("config", "set", "global.cert", "/a.pem")
    assert run_inst("config", "unset", "global.cert").returncode == 0
    result = run_inst("config", "unset", "global.cert")
    assert (result.returncode, result.stderr) == (
        1, f"error: global.cert is not set in {user_file(clean_env)}\n")


def _editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.py"
    script.write_text("import sys\npath = sys.argv[1]\n" + body)
    return f"{sys.executable} {script}"


def test_edit_valid(run_inst: Run, clean_env: Path, tmp_path: Path) -> None:
    run_inst("config", "set", "global.cert", "/a.pem")
    editor = _editor(tmp_path, "open(path, 'a').write('retries = 9\\n')\n")
    result = run_inst("config", "edit", env={"EDITOR": editor})
    assert result.returncode == 0, result.stderr
    assert user_file(clean_env).read_text() == '[global]\ncert = "/a.pem"\nretries = 9\n'


def test_error_edit_invalid_keeps_original(run_inst: Run, clean_env: Path,
                                           tmp_path: Path) -> None:
    run_inst("config", "set", "global.cert", "/a.pem")
    editor = _editor(tmp_path, "open(path, 'a').write('timeout = \"x\"\\nretries = [1]\\n')\n")
    result = run_inst("config", "edit", env={"VISUAL": editor})
    path = user_file(clean_env)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        f'error: {path}:3: global.timeout: expected a number (seconds), got "x"',
        f"error: {path}:4: global.retries: expected an integer, got [1]",
    ]
    assert path.read_text() == '[global]\ncert = "/a.pem"\n'


def test_validate(run_inst: Run, clean_env: Path, tmp_path: Path) -> None:
    run_inst("config", "set", "global.cert", "/a.pem")
    result = run_inst("config", "validate")
    assert (result.returncode, result.stdout) == (0, f"ok: {user_file(clean_env)}\n")
    bad = tmp_path / "bad.toml"
    bad.write_text("[global]\ncertz = 1\n")
    result = run_inst("config", "validate", str(bad))
    assert result.returncode == 1
    assert result.stderr == (
        f"warning: {bad}:2: unknown key 'certz' in [global] (did you mean 'cert'?)\n")
    bad.write_text("[global]\nretries = 'x'\n")
    result = run_inst("config", "validate", str(bad))
    assert (result.returncode, result.stderr) == (
        2, f"error: {bad}:2: global.retries: expected an integer, got \"x\"\n")


def test_debug_shows_layers_and_shadowing(run_inst: Run, clean_env: Path) -> None:
    run_inst("config", "set", "global.cert", "/user.pem")
    result = run_inst("config", "debug", "cert",
                      env={"REQUESTS_CA_BUNDLE": "/requests.pem", "INST_CERT": "/env.pem"})
    path = user_file(clean_env)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "layers, lowest precedence first:"
    assert f" 4. user        {path}  (exists)" in lines
    assert " 2. ambient     REQUESTS_CA_BUNDLE" in lines
    assert lines[-5:] == [
        "settings ([global]):",
        'global.cert = "/env.pem"  (from env INST_CERT)',
        f'    shadows "/user.pem"  (from {path}:2 [global])',
        '    shadows "/requests.pem"  (from env REQUESTS_CA_BUNDLE)',
        "    shadows (unset)  (default)",
    ]


def test_show_settings_lists_origins(run_inst: Run, clean_env: Path) -> None:
    run_inst("config", "set", "global.cert", "/user.pem")
    result = run_inst("config", "--show-settings", "--cache-dir", "/tmp/c")
    assert result.returncode == 0
    assert "cache-dir = \"/tmp/c\"  (from flag --cache-dir)" in result.stdout


def test_set_can_repair_a_broken_file(run_inst: Run, clean_env: Path) -> None:
    path = user_file(clean_env)
    path.parent.mkdir(parents=True)
    path.write_text("[global]\nretries = 'x'\n")
    assert run_inst("config", "set", "global.retries", "3").returncode == 0
    assert path.read_text() == "[global]\nretries = 3\n"
