"""Bad configuration input: exact messages for invalid TOML, wrong types, unknown keys, bad env."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.config import load_settings, parse_config_text
from installer.errors import ConfigErrors


def _messages(exc: pytest.ExceptionInfo[ConfigErrors]) -> list[str]:
    return [e.message for e in exc.value.errors]


def _user(home: Path, text: str) -> Path:
    path = home / ".config" / "inst" / "inst.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _load(cwd: Path, env: dict[str, str] | None = None, **kw: object) -> object:
    import os

    environ = dict(os.environ)
    environ.update(env or {})
    return load_settings("install", cwd=cwd, environ=environ, flags={},
                         config_file=kw.get("config_file"),  # type: ignore[arg-type]
                         no_config=False)


def test_error_invalid_toml_names_path_line_col(clean_env: Path, tmp_path: Path) -> None:
    path = _user(clean_env, "[global]\ncert = '/a.pem'\ntimeout = = 3\n")
    with pytest.raises(ConfigErrors) as exc:
        _load(tmp_path)
    assert _messages(exc) == [f"{path}:3:11: invalid TOML: invalid value"]
    assert exc.value.exit_code == 2


def test_error_invalid_toml_at_end_of_document(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as exc:
        parse_config_text("[global]\nextra-index-url = [\n", "/x/inst.toml")
    assert _messages(exc) == ["/x/inst.toml:3:1: invalid TOML: invalid value"]


def test_error_every_type_problem_of_a_file_in_one_run(clean_env: Path, tmp_path: Path) -> None:
    path = _user(clean_env, "\n".join([
        "# comment",
        "[global]",
        'timeout = "fast"',
        'trust = "sytem"',
        "retries = 2.5",
        "",
        "[install]",
        'no-deps = "yes"',
        'extra-index-url = ["https://ok.example/simple", "ftp://bad"]',
        "",
        "[[index]]",
        'name = "corp"',
        "url = 3",
        "",
    ]))
    with pytest.raises(ConfigErrors) as exc:
        _load(tmp_path)
    assert _messages(exc) == [
        f'{path}:3: global.timeout: expected a number (seconds), got "fast"',
        f'{path}:4: global.trust: expected one of "certifi", "system", "system+certifi", '
        'got "sytem"',
        f"{path}:5: global.retries: expected an integer, got 2.5",
        f'{path}:8: install.no-deps: expected true or false, got "yes"',
        f"{path}:9: install.extra-index-url[1]: expected an http, https or file URL, "
        'got "ftp://bad"',
        f"{path}:13: index[0].url: expected a string, got 3",
    ]
    assert [e.key for e in exc.value.errors][:2] == ["global.timeout", "global.trust"]
    assert [e.line for e in exc.value.errors] == [3, 4, 5, 8, 9, 13]


def test_error_wrong_type_in_pyproject_names_tool_inst(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.inst.global]\n"
                                            "cert = 3\n")
    with pytest.raises(ConfigErrors) as exc:
        _load(tmp_path)
    assert _messages(exc) == [
        f"{tmp_path / 'pyproject.toml'}:5: tool.inst.global.cert: expected a path (string), got 3"]


def test_error_unknown_key_warning_names_file_line_key_closest(clean_env: Path,
                                                                tmp_path: Path) -> None:
    path = _user(clean_env, "[global]\ncert = '/a.pem'\ncerts = '/b.pem'\n[instal]\nx = 1\n"
                            "[download]\nupgrade = true\n")
    result = _load(tmp_path)
    assert result.warnings == [  # type: ignore[attr-defined]
        f"{path}:3: unknown key 'certs' in [global] (did you mean 'cert'?)",
        f"{path}:4: unknown table 'instal' (did you mean 'install'?)",
        f"{path}:7: 'upgrade' has no effect in [download] (inst download does not read it)",
    ]


def test_error_bad_inst_env_values_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as exc:
        _load(tmp_path, {"INST_TIMEOUT": "soon", "INST_NO_CACHE": "maybe", "INST_TRUST": "os"})
    assert _messages(exc) == [
        'environment variable INST_NO_CACHE: expected one of 1, 0, true, false, yes, no, on, '
        'off, got "maybe"',
        'environment variable INST_TIMEOUT: expected a number (seconds), got "soon"',
        'environment variable INST_TRUST: expected one of "certifi", "system", '
        '"system+certifi", got "os"',
    ]


def test_error_bad_inst_no_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as exc:
        _load(tmp_path, {"INST_NO_CONFIG": "please"})
    assert _messages(exc) == [
        'environment variable INST_NO_CONFIG: expected one of 1, 0, true, false, yes, no, on, '
        'off, got "please"']


def test_error_unknown_inst_variable_is_a_warning(tmp_path: Path) -> None:
    result = _load(tmp_path, {"INST_CERTT": "/x.pem"})
    assert result.warnings == [  # type: ignore[attr-defined]
        "unknown environment variable INST_CERTT (did you mean INST_CERT?)"]


def test_error_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as exc:
        _load(tmp_path, config_file=str(tmp_path / "nope.toml"))
    assert _messages(exc) == [
        f"--config-file: config file not found: {tmp_path / 'nope.toml'}"]
    with pytest.raises(ConfigErrors) as exc:
        _load(tmp_path, {"INST_CONFIG_FILE": "nope.toml"})
    assert _messages(exc) == [
        f"INST_CONFIG_FILE: config file not found: {tmp_path / 'nope.toml'}"]


def test_error_url_credentials_never_in_messages(clean_env: Path, tmp_path: Path) -> None:
    _user(clean_env, "[global]\nindex-url = 'ftp://me:s3cret@host/simple'\n")
    with pytest.raises(ConfigErrors) as exc:
        _load(tmp_path)
    assert "s3cret" not in str(exc.value)
    assert "ftp://me:****@host/simple" in str(exc.value)


def test_error_key_outside_table(tmp_path: Path) -> None:
    parsed = parse_config_text("cert = '/x.pem'\n", "/x/inst.toml")
    assert parsed.warnings == [
        "/x/inst.toml:1: key 'cert' outside a table is ignored (put it under [global])"]
    assert parsed.sections == {}


def test_error_index_missing_url(tmp_path: Path) -> None:
    parsed = parse_config_text("[[index]]\nname = 'a'\nurl = 'https://a'\n\n[[index]]\n"
                               "name = 'b'\n", "/x/inst.toml")
    assert [e.message for e in parsed.errors] == [
        "/x/inst.toml:5: index[1]: expected an [[index]] table with name and url "
        "(missing url), got a table"]
