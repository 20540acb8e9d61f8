"""Resolver tests, data-driven from in-memory indexes (tests/helpers/resolver_index.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from installer._record import replace
from installer.errors import ResolutionError
from installer.models import Link, MemoryIndex
from installer.reqfile import InstallRequirement, parse_args, parse_requirement
from installer.resolver import (
    MetadataError,
    Resolution,
    ResolveOptions,
    link_from_url,
    parse_metadata,
    resolve,
)
from tests.helpers.resolver_index import (
    TAGS,
    RecordingIndex,
    build_index,
    installed_dist,
    make_env,
)
from tests.helpers.wheels import make_wheel, metadata_text


def run(index: MemoryIndex, args: list[str], constraints: list[str] = (),  # type: ignore[assignment]
        env: Any = None, **options: Any) -> Resolution:
    cons = [replace(parse_requirement(c, source="constraints.txt:1"), is_constraint=True,
                    user_supplied=False) for c in constraints]
    return resolve(parse_args(args), cons, index, env or make_env(), ResolveOptions(**options))


def pins(resolution: Resolution) -> dict[str, str]:
    return {p.name: p.version for p in resolution}


def failure(index: MemoryIndex, args: list[str], constraints: list[str] = (),  # type: ignore[assignment]
            env: Any = None, **options: Any) -> ResolutionError:
    with pytest.raises(ResolutionError) as info:
        run(index, args, constraints, env, **options)
    return info.value


# --- data-driven successes ----------------------------------------------------------------------

CASES: list[tuple[str, dict[str, list[Any]], list[str], list[str], dict[str, Any],
                  dict[str, str]]] = [
    ("newest", {"a": ["1.0", "2.0", "1.5"]}, ["a"], [], {}, {"a": "2.0"}),
    ("specifier", {"a": ["1.0", "2.0", "1.5"]}, ["a<2"], [], {}, {"a": "1.5"}),
    ("transitive", {"a": [{"version": "1.0", "requires": ["b>=1"]}],
                    "b": ["0.5", "1.0", "1.1"], "c": ["1.0"]},
     ["a"], [], {}, {"a": "1.0", "b": "1.1"}),
    ("normalized-names", {"Foo-Bar": [{"version": "1.0", "requires": ["Zope.Interface"]}],
                          "zope-interface": ["5.0"]},
     ["foo_bar"], [], {}, {"foo-bar": "1.0", "zope-interface": "5.0"}),
    # The classic: newest a needs a b that c forbids, so a goes back to 1.0.
    ("backtrack-classic", {"a": [{"version": "2.0", "requires": ["b>=2"]},
                                 {"version": "1.0", "requires": ["b<2"]}],
                           "b": ["1.0", "2.0"], "c": [{"version": "1.0", "requires": ["b<2"]}]},
     ["a", "c"], [], {}, {"a": "1.0", "b": "1.0", "c": "1.0"}),
    ("backtrack-two-levels", {
        "a": [{"version": "3.0", "requires": ["x>=2"]}, {"version": "2.0", "requires": ["x>=1"]}],
        "x": [{"version": "2.0", "requires": ["y>=2"]}, {"version": "1.0", "requires": ["y"]}],
        "y": ["1.0", "2.0"], "z": [{"version": "1.0", "requires": ["y<2"]}]},
     ["a", "z"], [], {}, {"a": "2.0", "x": "1.0", "y": "1.0", "z": "1.0"}),
    ("extras", {"a": [{"version": "1.0", "requires": ["b"],
                       "extras": {"sec": ["crypto>=2"], "other": ["never"]}}],
                "b": ["1.0"], "crypto": ["1.0", "2.0"]},
     ["a[sec]"], [], {}, {"a": "1.0", "b": "1.0", "crypto": "2.0"}),
    ("extras-of-dependency", {"top": [{"version": "1.0", "requires": ["a[sec]<2"]}],
                              "a": [{"version": "1.0", "extras": {"sec": ["crypto"]}},
                                    {"version": "2.0", "extras": {"sec": ["crypto"]}}],
                              "crypto": ["1.0"]},
     ["top"], [], {}, {"top": "1.0", "a": "1.0", "crypto": "1.0"}),
    ("extra-with-marker", {"a": [{"version": "1.0", "extras": {
        "sec": ["old; python_version < '3.8'", "new; python_version >= '3.8'"]}}],
        "old": ["1.0"], "new": ["1.0"]},
     ["a[sec]"], [], {}, {"a": "1.0", "new": "1.0"}),
    ("markers", {"a": [{"version": "1.0", "requires": [
        "linuxonly; sys_platform == 'linux'", "winonly; sys_platform == 'win32'",
        "oldpy; python_version < '3.10'", "newpy; python_full_version >= '3.11.7'"]}],
        "linuxonly": ["1"], "winonly": ["1"], "oldpy": ["1"], "newpy": ["1"]},
     ["a"], [], {}, {"a": "1.0", "linuxonly": "1", "newpy": "1"}),
    ("root-marker-false", {"a": ["1.0"], "b": ["1.0"]},
     ["a", "b; python_version < '3'"], [], {}, {"a": "1.0"}),
    ("pre-skipped", {"a": ["1.0", "2.0b1"]}, ["a"], [], {}, {"a": "1.0"}),
    ("pre-flag", {"a": ["1.0", "2.0b1"]}, ["a"], [], {"pre": True}, {"a": "2.0b1"}),
    ("pre-named", {"a": ["1.0", "2.0b1", "2.0b2"]}, ["a>=2.0b1"], [], {}, {"a": "2.0b2"}),
    # Like pip (packaging's filter): when nothing but pre-releases match, they are used.
    ("pre-only", {"a": ["2.0rc1"]}, ["a"], [], {}, {"a": "2.0rc1"}),
    ("pre-dependency-skipped", {"a": [{"version": "1.0", "requires": ["b"]}],
                                "b": ["1.0", "1.1.dev0"]},
     ["a"], [], {}, {"a": "1.0", "b": "1.0"}),
    ("yanked-skipped", {"a": ["1.0", {"version": "2.0", "yanked": "broken"}]},
     ["a"], [], {}, {"a": "1.0"}),
    ("yanked-pinned", {"a": ["1.0", {"version": "2.0", "yanked": "broken"}]},
     ["a==2.0"], [], {}, {"a": "2.0"}),
    ("link-requires-python", {"a": ["1.0", {"version": "2.0", "link_requires_python": ">=3.12"}]},
     ["a"], [], {}, {"a": "1.0"}),
    ("metadata-requires-python", {"a": ["1.0", {"version": "2.0", "requires_python": ">=3.12"}]},
     ["a"], [], {}, {"a": "1.0"}),
    ("incompatible-tags-skipped",
     {"a": ["1.0", {"version": "2.0", "tags": ["cp39-cp39-win_amd64"]}]},
     ["a"], [], {}, {"a": "1.0"}),
    ("sdist-only-skipped", {"a": ["1.0", {"version": "2.0", "tags": [], "sdist": True}]},
     ["a"], [], {}, {"a": "1.0"}),
    ("local-version", {"a": ["1.0", "1.0+local"]}, ["a==1.0"], [], {}, {"a": "1.0+local"}),
    ("constraint-restricts", {"a": [{"version": "1.0", "requires": ["b"]}], "b": ["1.0", "2.0"]},
     ["a"], ["b<2"], {}, {"a": "1.0", "b": "1.0"}),
    ("constraint-does-not-add", {"a": ["1.0"], "b": ["1.0"]}, ["a"], ["b==1.0"], {}, {"a": "1.0"}),
    ("constraint-marker-false", {"a": ["1.0", "2.0"]}, ["a"], ["a<2; python_version < '3'"], {},
     {"a": "2.0"}),
    ("no-deps", {"a": [{"version": "1.0", "requires": ["b"]}], "b": ["1.0"]},
     ["a"], [], {"no_deps": True}, {"a": "1.0"}),
    ("no-deps-with-extras", {"a": [{"version": "1.0", "extras": {"x": ["b"]}}], "b": ["1.0"]},
     ["a[x]"], [], {"no_deps": True}, {"a": "1.0"}),
    ("no-binary-other", {"a": ["1.0"], "b": ["1.0"]}, ["a"], [], {"no_binary": frozenset({"b"})},
     {"a": "1.0"}),
    ("dependency-cycle", {"a": [{"version": "1.0", "requires": ["b"]}],
                          "b": [{"version": "1.0", "requires": ["a"]}]},
     ["a"], [], {}, {"a": "1.0", "b": "1.0"}),
]


@pytest.mark.parametrize(("index", "args", "constraints", "options", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_resolves(index: dict[str, list[Any]], args: list[str], constraints: list[str],
                  options: dict[str, Any], expected: dict[str, str]) -> None:
    assert pins(run(build_index(index), args, constraints, **options)) == expected


# --- details of the chosen pins -----------------------------------------------------------------

def test_best_tag_is_chosen_among_wheels() -> None:
    index = build_index({"a": [{"version": "1.0", "tags": [
        "py3-none-any", "cp311-cp311-manylinux_2_17_x86_64", "cp311-abi3-manylinux_2_17_x86_64",
        "cp312-cp312-manylinux_2_17_x86_64"]}]})
    pin = run(index, ["a"]).pins[0]
    assert pin.link is not None
    assert pin.link.filename == "a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"


def test_tag_order_follows_the_environment() -> None:
    index = build_index({"a": [{"version": "1.0", "tags": [
        "py3-none-any", "cp311-cp311-manylinux_2_17_x86_64"]}]})
    env = make_env(tags=("py3-none-any", *TAGS))
    pin = run(index, ["a"], env=env).pins[0]
    assert pin.link is not None and pin.link.filename == "a-1.0-py3-none-any.whl"


def test_install_order_puts_dependencies_first() -> None:
    index = build_index({"app": [{"version": "1.0", "requires": ["web", "db"]}],
                         "web": [{"version": "1.0", "requires": ["util"]}],
                         "db": [{"version": "1.0", "requires": ["util"]}], "util": ["1.0"]})
    order = [p.name for p in run(index, ["app"])]
    assert order.index("util") < order.index("web") < order.index("app")
    assert order.index("db") < order.index("app")


def test_pin_fields_for_requested_and_dependencies() -> None:
    index = build_index({"a": [{"version": "1.0", "requires": ["b"],
                                "extras": {"x": ["c"]}}], "b": ["1.0"], "c": ["1.0"]})
    res = run(index, ["A[x]"])
    a, b = res.get("a"), res.get("b")
    assert a is not None and b is not None
    assert (a.display_name, a.requested, a.requested_extras, a.extras) == (
        "a", True, frozenset({"x"}), frozenset({"x"}))
    assert (b.requested, b.action, b.is_direct, b.installed) == (False, "install", False, None)
    assert a.metadata.requires_dist == ("b", "c; extra == 'x'")
    assert a.metadata.raw.startswith(b"Metadata-Version: 2.1")


def test_hash_option_selects_the_matching_file() -> None:
    index = build_index({"a": ["1.0", "2.0"]})
    link = index.projects["a"][0][0]  # a 1.0
    req = replace(parse_requirement("a"), hashes=(f"sha256:{link.sha256}",))
    res = resolve([req], [], index, make_env(), ResolveOptions())
    assert pins(res) == {"a": "1.0"}
    assert res.pins[0].hashes == frozenset({f"sha256:{link.sha256}"})


def test_missing_extra_is_a_warning() -> None:
    res = run(build_index({"a": ["1.0"]}), ["a[nope]"])
    assert pins(res) == {"a": "1.0"}
    assert res.warnings == ("a 1.0 does not provide the extra 'nope'",)


def test_prefetch_hints_dependencies_and_metadata_is_read_once() -> None:
    index = RecordingIndex(build_index({
        "a": [{"version": "1.0", "requires": ["b", "c"]}],
        "b": [{"version": "1.0", "requires": ["c"]}], "c": ["1.0"]}))
    run(index, ["a"])
    assert index.prefetched[0] == ["a"]
    assert ["b", "c"] in index.prefetched
    assert sorted(index.metadata_reads) == sorted(set(index.metadata_reads))
    assert index.page_requests == 3


# --- direct URLs --------------------------------------------------------------------------------

def test_direct_url_to_local_wheel(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "local", "3.1", requires=["b"])
    res = run(build_index({"local": ["1.0"], "b": ["1.0"]}), [str(wheel)])
    pin = res.get("local")
    assert pin is not None and pin.link is not None
    assert (pin.version, pin.is_direct, pin.requested) == ("3.1", True, True)
    assert pin.link.url == wheel.as_uri() and pin.link.sha256 is not None
    assert pins(res) == {"local": "3.1", "b": "1.0"}


def test_direct_url_over_http_uses_source_metadata() -> None:
    index = build_index({"b": ["1.0"]})
    url = "https://files.test/x/direct-2.0-py3-none-any.whl#sha256=" + "ab" * 32
    index.add(link_from_url(url), metadata_text("direct", "2.0", ["b"]).encode())
    res = run(index, [f"direct @ {url}"])
    pin = res.get("direct")
    assert pin is not None and pin.is_direct and pin.link is not None
    assert pin.link.hashes == {"sha256": "ab" * 32}
    assert pins(res) == {"direct": "2.0", "b": "1.0"}


def test_direct_url_wins_over_index_for_dependents(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "b", "9.0")
    index = build_index({"a": [{"version": "1.0", "requires": ["b>=1"]}], "b": ["1.0"]})
    assert pins(run(index, ["a", f"b @ {wheel.as_uri()}"])) == {"a": "1.0", "b": "9.0"}


# --- installed distributions --------------------------------------------------------------------

INSTALLED_INDEX = {"a": [{"version": "1.0", "requires": ["b"]},
                         {"version": "2.0", "requires": ["b"]}],
                   "b": ["1.0", "2.0"]}


@pytest.mark.parametrize(("args", "options", "expected"), [
    (["a"], {}, {"a": ("1.0", "keep"), "b": ("1.0", "keep")}),
    (["a"], {"upgrade": True}, {"a": ("2.0", "upgrade"), "b": ("1.0", "keep")}),
    (["a"], {"upgrade_packages": frozenset({"b"})},
     {"a": ("1.0", "keep"), "b": ("2.0", "upgrade")}),
    (["a"], {"force_reinstall": True}, {"a": ("1.0", "reinstall"), "b": ("1.0", "reinstall")}),
    (["a"], {"force_reinstall": True, "upgrade": True},
     {"a": ("2.0", "upgrade"), "b": ("1.0", "reinstall")}),
    (["a>=2"], {}, {"a": ("2.0", "upgrade"), "b": ("1.0", "keep")}),
    (["a<1"], {}, None),
    (["a", "b<1.0"], {}, None),
    (["a", "b==2.0"], {}, {"a": ("1.0", "keep"), "b": ("2.0", "upgrade")}),
    (["a"], {"ignore_installed": True}, {"a": ("2.0", "install"), "b": ("2.0", "install")}),
], ids=["keep", "upgrade", "upgrade-package", "force-reinstall", "force-and-upgrade",
        "not-satisfied", "no-version", "dep-conflict", "dep-upgrade-needed", "ignore-installed"])
def test_installed_policy(tmp_path: Path, args: list[str], options: dict[str, Any],
                          expected: dict[str, tuple[str, str]] | None) -> None:
    env = make_env(installed=[installed_dist(tmp_path, "a", "1.0", ["b"]),
                              installed_dist(tmp_path, "b", "1.0")])
    index = build_index(INSTALLED_INDEX)
    if expected is None:
        with pytest.raises(ResolutionError):
            run(index, args, env=env, **options)
        return
    res = run(index, args, env=env, **options)
    assert {p.name: (p.version, p.action) for p in res} == expected
    for pin in res:
        assert (pin.link is None) == (pin.action == "keep")
        assert (pin.installed is None) == bool(options.get("ignore_installed"))


def test_downgrade_is_named(tmp_path: Path) -> None:
    env = make_env(installed=[installed_dist(tmp_path, "a", "2.0")])
    res = run(build_index({"a": ["1.0", "2.0"]}), ["a<2"], env=env)
    assert [(p.version, p.action) for p in res] == [("1.0", "downgrade")]


def test_installed_metadata_drives_dependencies(tmp_path: Path) -> None:
    # The installed a 1.0 needs c (the index's a 1.0 does not): the installed METADATA counts.
    env = make_env(installed=[installed_dist(tmp_path, "a", "1.0", ["c"])])
    res = run(build_index({"a": ["1.0"], "c": ["1.0"]}), ["a"], env=env)
    assert {p.name: p.action for p in res} == {"a": "keep", "c": "install"}


def test_installed_from_same_direct_url_is_kept(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "d", "1.0")
    env = make_env(installed=[installed_dist(tmp_path / "site", "d", "1.0",
                                             direct_url=wheel.as_uri())])
    res = run(MemoryIndex(), [f"d @ {wheel.as_uri()}"], env=env)
    assert [(p.action, p.link) for p in res] == [("keep", None)]
    res = run(MemoryIndex(), [f"d @ {wheel.as_uri()}"], env=env, force_reinstall=True)
    assert [p.action for p in res] == ["reinstall"]


# --- metadata -----------------------------------------------------------------------------------

def test_error_metadata_name_mismatch() -> None:
    index = build_index({"a": [{"version": "1.0", "name": "other"}]})
    with pytest.raises(MetadataError) as info:
        run(index, ["a"])
    assert str(info.value) == ("a-1.0-py3-none-any.whl: metadata says other 1.0, expected a 1.0")


def test_parse_metadata_reads_headers_only() -> None:
    raw = (metadata_text("x", "1.0", ["y>=1"], ">=3.8", {"e": ["z"]}) + "Body text\n").encode()
    meta = parse_metadata(raw)
    assert (meta.name, meta.version, meta.requires_python) == ("x", "1.0", ">=3.8")
    assert meta.requires_dist == ("y>=1", "z; extra == 'e'")
    assert meta.provides_extra == ("e",)


def test_link_from_url_takes_hash_fragment() -> None:
    link = link_from_url("https://h.test/p/x-1.0-py3-none-any.whl#sha256=" + "AB" * 32)
    assert (link.filename, link.hashes) == ("x-1.0-py3-none-any.whl", {"sha256": "ab" * 32})


# --- failures, explained ------------------------------------------------------------------------

def test_error_conflict_names_both_requirers() -> None:
    index = build_index({"a": [{"version": "2.0", "requires": ["b>=2"]}],
                         "b": ["1.0", "2.0"], "c": [{"version": "1.0", "requires": ["b<2"]}]})
    assert str(failure(index, ["a", "c"])) == (
        "no version of b satisfies the requirements:\n"
        "  b>=2 required by a 2.0 <- command line\n"
        "  b<2 required by c 1.0 <- command line\n"
        "  b 2.0: excluded by b<2\n"
        "  b 1.0: excluded by b>=2")


def test_error_conflicting_pins_from_files() -> None:
    index = build_index({"a": ["1.0", "2.0"]})
    reqs = [parse_requirement("a==1.0", source="requirements.txt:3"),
            parse_requirement("a==2.0", source="more.txt:1")]
    with pytest.raises(ResolutionError) as info:
        resolve(reqs, [], index, make_env(), ResolveOptions())
    assert str(info.value) == (
        "no version of a satisfies the requirements:\n"
        "  a==1.0 required by requirements.txt:3\n"
        "  a==2.0 required by more.txt:1\n"
        "  a 2.0: excluded by a==1.0\n"
        "  a 1.0: excluded by a==2.0")


def test_error_chain_through_dependencies() -> None:
    index = build_index({"app": [{"version": "1.0", "requires": ["flask>=3"]}],
                         "flask": [{"version": "3.0.0", "requires": ["werkzeug>=3"]}],
                         "werkzeug": ["2.3.0", "3.0.1"]})
    reqs = [parse_requirement("app", source="requirements.txt:1"),
            parse_requirement("werkzeug<3", source="requirements.txt:2")]
    with pytest.raises(ResolutionError) as info:
        resolve(reqs, [], index, make_env(), ResolveOptions())
    assert str(info.value) == (
        "no version of werkzeug satisfies the requirements:\n"
        "  werkzeug<3 required by requirements.txt:2\n"
        "  werkzeug>=3 required by flask 3.0.0 <- app 1.0 <- requirements.txt:1\n"
        "  werkzeug 3.0.1: excluded by werkzeug<3\n"
        "  werkzeug 2.3.0: excluded by werkzeug>=3")


def test_error_unknown_project() -> None:
    err = failure(build_index({"a": ["1.0"]}), ["nothere>=1"])
    assert str(err) == ("no project named 'nothere' was found on the configured indexes\n"
                        "  nothere>=1 required by command line")
    assert err.hint == ("check the name, and the index-url, extra-index-url and find-links "
                        "settings")


def test_error_unknown_dependency() -> None:
    index = build_index({"a": [{"version": "1.0", "requires": ["ghost"]}]})
    assert str(failure(index, ["a"])) == (
        "no project named 'ghost' was found on the configured indexes\n"
        "  ghost required by a 1.0 <- command line")


def test_error_every_version_rejected_with_reasons() -> None:
    index = build_index({"a": [
        {"version": "5.0", "link_requires_python": ">=3.12"},
        {"version": "4.0", "tags": ["cp39-cp39-win_amd64", "cp39-cp39-macosx_11_0_arm64"]},
        {"version": "3.0", "tags": [], "sdist": True},
        {"version": "2.0", "yanked": "broken build"},
        {"version": "1.5", "yanked": ""},
        "1.0"]})
    assert str(failure(index, ["a>=1.5"])) == (
        "no version of a satisfies the requirements:\n"
        "  a>=1.5 required by command line\n"
        "  a 5.0: requires Python >=3.12, the target Python is 3.11.7\n"
        "  a 4.0: no wheel for this environment (found cp39-cp39-macosx_11_0_arm64, "
        "cp39-cp39-win_amd64)\n"
        "  a 3.0: source distribution only (inst installs wheels only)\n"
        "  a 2.0: yanked (broken build)\n"
        "  a 1.5: yanked\n"
        "  a 1.0: excluded by a>=1.5")


def test_error_metadata_requires_python() -> None:
    index = build_index({"top": [{"version": "1.0", "requires": ["a"]}],
                         "a": [{"version": "1.0", "requires_python": ">=3.12"}]})
    assert str(failure(index, ["top"])) == (
        "the target Python 3.11.7 is not supported:\n"
        "  a 1.0 requires Python >=3.12 (via top 1.0 <- command line)")


def test_error_backtracking_explains_rejected_versions() -> None:
    index = build_index({"a": [{"version": "2.0", "requires": ["b>=2"]},
                               {"version": "1.0", "requires": ["b>=3"]}],
                         "b": ["1.0", "2.0", "3.0"]})
    assert str(failure(index, ["a", "b<2"])) == (
        "no version of b satisfies the requirements:\n"
        "  b<2 required by command line\n"
        "  b>=2 required by a 2.0 <- command line\n"
        "  b>=3 required by a 1.0 <- command line\n"
        "  b 3.0: excluded by b<2\n"
        "  b 2.0: excluded by b<2\n"
        "  b 1.0: excluded by b>=2")


def test_error_backtracking_lists_every_requirer() -> None:
    index = build_index({"a": [{"version": "2.0", "requires": ["b>=2"]},
                               {"version": "1.0", "requires": ["b>=3"]}],
                         "b": ["1.0", "2.0", "3.0"],
                         "c": [{"version": "1.0", "requires": ["b<2"]}]})
    assert str(failure(index, ["c", "a"])) == (
        "no version of b satisfies the requirements:\n"
        "  b<2 required by c 1.0 <- command line\n"
        "  b>=2 required by a 2.0 <- command line\n"
        "  b>=3 required by a 1.0 <- command line\n"
        "  b 3.0: excluded by b<2\n"
        "  b 2.0: excluded by b<2\n"
        "  b 1.0: excluded by b>=2")


def test_error_extras_conflict_names_the_extra() -> None:
    index = build_index({"a": [{"version": "2.0", "requires": ["b[x]>=2"]},
                               {"version": "1.0", "requires": ["b[x]>=3"]}],
                         "b": [{"version": v, "extras": {"x": []}} for v in ("1.0", "2.0", "3.0")]})
    assert str(failure(index, ["b<2", "a"])) == (
        "no version of b satisfies the requirements:\n"
        "  b<2 required by command line\n"
        "  b==3.0 required by b[x] 3.0 <- a 1.0 <- command line\n"
        "  b 3.0: excluded by b<2\n"
        "  b 2.0: excluded by b<2\n"
        "  b 1.0: excluded by b==3.0")


def test_error_no_binary_leaves_nothing() -> None:
    err = failure(build_index({"a": ["1.0"]}), ["a"], no_binary=frozenset({":all:"}))
    assert str(err) == ("no version of a satisfies the requirements:\n"
                        "  a required by command line\n"
                        "  a 1.0: wheels refused by --no-binary")


def test_error_constraint_excludes() -> None:
    err = failure(build_index({"a": ["1.0", "2.0"]}), ["a>=2"], ["a<2"])
    assert str(err) == ("no version of a satisfies the requirements:\n"
                        "  a>=2 required by command line\n"
                        "  a 2.0: excluded by constraint a<2 (constraints.txt:1)\n"
                        "  a 1.0: excluded by a>=2")


def test_error_direct_url_not_a_wheel_and_redacted() -> None:
    err = failure(MemoryIndex(), ["a @ https://user:s3cret@files.test/a-1.0.tar.gz"])
    assert "s3cret" not in str(err)
    assert str(err) == (
        "cannot use a @ https://user:****@files.test/a-1.0.tar.gz: "
        "https://user:****@files.test/a-1.0.tar.gz is not a wheel (inst installs wheels only)\n"
        "  a @ https://user:****@files.test/a-1.0.tar.gz required by command line")


def test_error_many_versions_are_cut_short() -> None:
    index = build_index({"a": [f"1.{i}" for i in range(12)]})
    lines = str(failure(index, ["a>=2"])).splitlines()
    assert lines[2:4] == ["  a 1.11: excluded by a>=2", "  a 1.10: excluded by a>=2"]
    assert lines[-1] == "  ... and 4 older versions"
    assert len(lines) == 2 + 8 + 1


def test_requirement_objects_are_frozen() -> None:
    req: InstallRequirement = parse_requirement("a>=1")
    with pytest.raises(AttributeError):
        req.source = "x"  # type: ignore[misc]
    assert isinstance(Link("a-1.0-py3-none-any.whl", "https://x/a"), Link)


def test_synthetic_fifty_project_web() -> None:
    from tests.helpers.resolver_bench import UrlIndex, synthetic_index

    index = UrlIndex(build_index(synthetic_index(50, 8)))
    res = run(index, ["pkg000", "pkg001", "pkg002"])
    # Each newest release needs a version of its first dependency that does not exist.
    assert pins(res) == {f"pkg{i:03d}": "8.0" if i == 49 else "7.0" for i in range(50)}
    assert res.pins[0].name == "pkg049"
