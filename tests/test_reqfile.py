"""Requirement inputs: arguments, requirements files (nested, options, hashes), pyproject."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.errors import RequirementError
from installer.reqfile import (
    FileOption,
    ParsedRequirements,
    parse_args,
    parse_requirement,
    parse_requirements_file,
)
from tests.helpers.wheels import make_wheel

H1 = "a" * 64
H2 = "b" * 64


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def summary(parsed: ParsedRequirements) -> list[tuple[str, str]]:
    return [(str(r), r.source) for r in parsed.requirements]


# --- arguments ----------------------------------------------------------------------------------

def test_pep508_argument_with_extras_and_marker() -> None:
    [req] = parse_args(["Foo_Bar[Sec, other]>=1.0,<2; python_version >= '3.8'"])
    assert (req.name, req.display_name, req.extras) == (
        "foo-bar", "Foo_Bar", frozenset({"sec", "other"}))
    assert str(req.specifier) == "<2,>=1.0"
    assert str(req.marker) == 'python_version >= "3.8"'
    assert (req.source, req.user_supplied, req.is_constraint, req.editable) == (
        "command line", True, False, False)


def test_named_url_argument() -> None:
    [req] = parse_args(["pkg @ https://files.test/pkg-1.0-py3-none-any.whl"])
    assert (req.name, req.url) == ("pkg", "https://files.test/pkg-1.0-py3-none-any.whl")


def test_bare_wheel_url_takes_name_from_file() -> None:
    [req] = parse_args(["https://files.test/x/My_Pkg-2.0-py3-none-any.whl#sha256=" + H1])
    assert req.name == "my-pkg"
    assert req.url == "https://files.test/x/My_Pkg-2.0-py3-none-any.whl#sha256=" + H1


def test_local_wheel_path(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "loc", "1.0")
    [req] = parse_args(["./loc-1.0-py3-none-any.whl"], cwd=tmp_path)
    assert (req.name, req.url) == ("loc", wheel.resolve().as_uri())


def test_project_folder_dependencies_and_extras(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", """
[project]
name = "proj"
dependencies = ["requests>=2", "attrs"]
[project.optional-dependencies]
test = ["pytest", "proj[lint]"]
lint = ["ruff"]
""")
    reqs = parse_args([".[test]"], cwd=tmp_path)
    assert [str(r) for r in reqs] == ["requests>=2", "attrs", "pytest", "ruff"]
    assert reqs[0].source == f"{tmp_path / 'pyproject.toml'} [project.dependencies]"
    assert reqs[2].source == (
        f"{tmp_path / 'pyproject.toml'} [project.optional-dependencies.test]")
    assert [str(r) for r in parse_args(["."], cwd=tmp_path)] == ["requests>=2", "attrs"]


def test_dependency_groups_with_includes(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", """
[dependency-groups]
test = ["pytest>=8", {include-group = "Lint"}]
lint = ["ruff"]
""")
    reqs = parse_args([], groups=["test"], cwd=tmp_path)
    assert [(str(r), r.source) for r in reqs] == [
        ("pytest>=8", f"{tmp_path / 'pyproject.toml'} [dependency-groups.test]"),
        ("ruff", f"{tmp_path / 'pyproject.toml'} [dependency-groups.lint]"),
    ]
    other = write(tmp_path / "sub" / "pyproject.toml", '[dependency-groups]\nx = ["six"]\n')
    assert [str(r) for r in parse_args([], groups=[f"{other.parent}:x"], cwd=tmp_path)] == [
        "six"]


def test_error_dependency_group_cycle(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", """
[dependency-groups]
a = [{include-group = "b"}]
b = [{include-group = "a"}]
""")
    with pytest.raises(RequirementError) as info:
        parse_args([], groups=["a"], cwd=tmp_path)
    assert str(info.value) == f"{path}: dependency group cycle: a -> b -> a"


def test_error_unknown_dependency_group(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", '[dependency-groups]\ndev = ["x"]\n')
    with pytest.raises(RequirementError) as info:
        parse_args([], groups=["docs"], cwd=tmp_path)
    assert str(info.value) == f"{path}: no dependency group 'docs' in [dependency-groups]"


def test_error_invalid_argument() -> None:
    with pytest.raises(RequirementError) as info:
        parse_args(["foo>>1"])
    assert str(info.value) == ("invalid requirement 'foo>>1': Expected semicolon (after name "
                               "with no version specifier) or end")


def test_error_url_without_name_is_redacted() -> None:
    with pytest.raises(RequirementError) as info:
        parse_args(["https://u:secret@files.test/archive.tar.gz"])
    assert str(info.value) == (
        "invalid requirement 'https://u:****@files.test/archive.tar.gz': cannot tell the "
        "project name from 'https://u:****@files.test/archive.tar.gz'; write it as 'name @ URL'")


def test_error_missing_wheel_file(tmp_path: Path) -> None:
    with pytest.raises(RequirementError) as info:
        parse_args(["./gone-1.0-py3-none-any.whl"], cwd=tmp_path)
    assert str(info.value) == (
        "invalid requirement './gone-1.0-py3-none-any.whl': wheel file not found: "
        f"{tmp_path / 'gone-1.0-py3-none-any.whl'}")


def test_error_folder_without_pyproject(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RequirementError) as info:
        parse_args(["./empty"], cwd=tmp_path)
    assert str(info.value) == (f"{tmp_path / 'empty'} has no pyproject.toml (inst installs "
                               "requirements, not source trees)")


# --- requirements files -------------------------------------------------------------------------

def test_file_comments_continuations_and_markers(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", (
        "# a comment\n"
        "\n"
        "alpha>=1  # trailing comment\n"
        "beta >=2, \\\n"
        "    <3 ; python_version >= '3.8'\n"
        "gamma @ https://files.test/gamma-1.0-py3-none-any.whl#sha256=" + H1 + "\n"
        "   # indented comment\n"
        "delta\\\n"
        "\n"))
    parsed = parse_requirements_file(path)
    assert summary(parsed) == [
        ("alpha>=1", f"{path}:3"),
        ('beta<3,>=2; python_version >= "3.8"', f"{path}:4"),
        ("gamma @ https://files.test/gamma-1.0-py3-none-any.whl#sha256=" + H1, f"{path}:6"),
        ("delta", f"{path}:8"),
    ]


def test_file_hashes_per_requirement(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", (
        f"alpha==1.0 --hash=sha256:{H1} \\\n"
        f"    --hash sha256:{H2.upper()}\n"
        "beta==2.0\n"))
    parsed = parse_requirements_file(path)
    assert [r.hashes for r in parsed.requirements] == [(f"sha256:{H1}", f"sha256:{H2}"), ()]
    assert parsed.require_hashes is True


def test_file_options(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", (
        "--index-url https://idx.test/simple\n"
        "-i https://idx2.test/simple\n"
        "--extra-index-url=https://extra.test/simple\n"
        "-f ./wheels\n"
        "--find-links https://links.test/\n"
        "--no-index\n"
        "--pre\n"
        "--require-hashes\n"
        "--trusted-host idx.test\n"
        "alpha\n"))
    parsed = parse_requirements_file(path)
    assert parsed.index_url == "https://idx2.test/simple"
    assert parsed.extra_index_urls == ("https://extra.test/simple",)
    assert parsed.find_links == (str((tmp_path / "wheels").resolve()), "https://links.test/")
    assert (parsed.no_index, parsed.pre, parsed.require_hashes) == (True, True, True)
    assert parsed.options[0] == FileOption("index-url", "https://idx.test/simple", str(path), 1)
    assert parsed.options[-1] == FileOption("trusted-host", "idx.test", str(path), 9)
    assert summary(parsed) == [("alpha", f"{path}:10")]


def test_nested_requirements_and_constraints(tmp_path: Path) -> None:
    top = write(tmp_path / "requirements.txt", "-r sub/more.txt\n-c constraints.txt\ntop\n")
    write(tmp_path / "sub" / "more.txt", "--requirement=deeper.txt\nmore\n")
    write(tmp_path / "sub" / "deeper.txt", "deep\n")
    write(tmp_path / "constraints.txt", "-r nested-constraints.txt\nmore<2\n")
    write(tmp_path / "nested-constraints.txt", "deep==1.0\n")
    parsed = parse_requirements_file(top)
    assert [r.name for r in parsed.requirements] == ["deep", "more", "top"]
    assert [(str(c), c.is_constraint, c.user_supplied) for c in parsed.constraints] == [
        ("deep==1.0", True, False), ("more<2", True, False)]
    assert parsed.requirements[0].source == f"{tmp_path / 'sub' / 'deeper.txt'}:1"


def test_constraint_file_top_level(tmp_path: Path) -> None:
    path = write(tmp_path / "c.txt", "a<2\n")
    parsed = parse_requirements_file(path, constraint=True)
    assert parsed.requirements == () and [str(c) for c in parsed.constraints] == ["a<2"]


def test_same_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    top = write(tmp_path / "r.txt", "-r common.txt\n-r other.txt\n")
    write(tmp_path / "other.txt", "-r common.txt\n")
    write(tmp_path / "common.txt", "six\n")
    assert [r.name for r in parse_requirements_file(top).requirements] == ["six", "six"]


def test_environment_variables_expand(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", "--index-url https://${TOKEN}@idx.test/simple\npkg\n")
    parsed = parse_requirements_file(path, environ={"TOKEN": "abc"})
    assert parsed.index_url == "https://abc@idx.test/simple"


def test_project_folder_line(tmp_path: Path) -> None:
    write(tmp_path / "proj" / "pyproject.toml", '[project]\nname = "p"\ndependencies = ["x"]\n')
    path = write(tmp_path / "r.txt", "./proj\n")
    assert [r.name for r in parse_requirements_file(path).requirements] == ["x"]


def test_merged_keeps_order() -> None:
    a = ParsedRequirements((parse_requirement("a"),), (), ())
    b = ParsedRequirements((parse_requirement("b"),), (), ())
    assert [r.name for r in a.merged(b).requirements] == ["a", "b"]


def _error(tmp_path: Path, text: str, name: str = "requirements.txt") -> str:
    path = write(tmp_path / name, text)
    with pytest.raises(RequirementError) as info:
        parse_requirements_file(path)
    return str(info.value).replace(str(tmp_path), "T")


def test_error_unknown_option(tmp_path: Path) -> None:
    assert _error(tmp_path, "a\n--frobnicate\n") == (
        "T/requirements.txt:2: unknown option '--frobnicate'")


def test_error_invalid_requirement_line(tmp_path: Path) -> None:
    assert _error(tmp_path, "ok\n\nbad>>1\n") == (
        "T/requirements.txt:3: invalid requirement 'bad>>1': Expected semicolon (after name "
        "with no version specifier) or end")


def test_error_option_needs_value(tmp_path: Path) -> None:
    assert _error(tmp_path, "--index-url\n") == (
        "T/requirements.txt:1: option '--index-url' needs a value")


def test_error_weak_hash(tmp_path: Path) -> None:
    assert _error(tmp_path, "a==1 --hash=md5:abc\n") == (
        "T/requirements.txt:1: --hash needs 'sha256:<64 hex digits>' (or sha384/sha512), "
        "got 'md5:abc'")


def test_error_other_option_after_requirement(tmp_path: Path) -> None:
    assert _error(tmp_path, "a==1 --global-option=x\n") == (
        "T/requirements.txt:1: option '--global-option' is not allowed after a requirement "
        "(only --hash is)")


def test_error_hash_alone(tmp_path: Path) -> None:
    assert _error(tmp_path, f"--hash=sha256:{H1}\n") == (
        "T/requirements.txt:1: --hash must follow a requirement on the same line")


def test_error_editable(tmp_path: Path) -> None:
    assert _error(tmp_path, "-e .\n") == (
        "T/requirements.txt:1: editable requirements (-e) are not supported")


def test_error_missing_nested_file(tmp_path: Path) -> None:
    assert _error(tmp_path, "a\n-r missing.txt\n") == (
        "T/requirements.txt:2: cannot read requirements file 'T/missing.txt': "
        "No such file or directory")


def test_error_missing_top_file(tmp_path: Path) -> None:
    with pytest.raises(RequirementError) as info:
        parse_requirements_file(tmp_path / "nope.txt")
    assert str(info.value) == (
        f"cannot read requirements file '{tmp_path / 'nope.txt'}': No such file or directory")


def test_error_include_cycle(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "-r a.txt\n")
    real = str(tmp_path.resolve()).replace(str(tmp_path), "T")
    assert _error(tmp_path, "x\n-r b.txt\n", "a.txt") == (
        f"T/b.txt:1: requirements files include each other: "
        f"{real}/a.txt -> {real}/b.txt -> {real}/a.txt")


def test_error_constraint_with_extras(tmp_path: Path) -> None:
    path = write(tmp_path / "c.txt", "a[x]<2\n")
    with pytest.raises(RequirementError) as info:
        parse_requirements_file(path, constraint=True)
    assert str(info.value) == f"{path}:1: constraints cannot have extras: 'a[x]<2'"
