"""Precedence rules of the layered configuration, table-driven.

The pure ``merge`` is tested with hand-made layers; ``load_settings`` with real files, real
environment mappings and flags.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from installer._types import LAYER_ORDER, Origin, OriginKind
from installer.config import Layer, load_settings, merge
from installer.errors import ConfigErrors

# --- pure merge ---------------------------------------------------------------------------------


def layer(kind: OriginKind, **sections: dict[str, object]) -> Layer:
    """A layer whose values carry an origin naming the layer and table."""
    return Layer(kind, None, True, {
        table: {k: (v, Origin(kind, section=table, name=f"{kind}:{table}"))
                for k, v in keys.items()}
        for table, keys in sections.items()
    })


ADJACENT = [(LAYER_ORDER[i], LAYER_ORDER[i + 1]) for i in range(len(LAYER_ORDER) - 1)]


@pytest.mark.parametrize(("lower", "higher"), ADJACENT, ids=[f"{h}>{lo}" for lo, h in ADJACENT])
def test_each_layer_beats_the_one_below(lower: OriginKind, higher: OriginKind) -> None:
    layers = [layer(lower, **{"global": {"timeout": 1.0}}),
              layer(higher, **{"global": {"timeout": 2.0}})]
    setting = merge(layers, "install").setting("timeout")
    assert setting.value == 2.0
    assert setting.origin.kind == higher
    assert [o.kind for _, o in setting.shadowed] == [lower]


@pytest.mark.parametrize(("lower", "higher"), ADJACENT, ids=[f"{h}>{lo}" for lo, h in ADJACENT])
def test_higher_global_beats_lower_command_table(lower: OriginKind, higher: OriginKind) -> None:
    layers = [layer(lower, install={"timeout": 1.0}), layer(higher, **{"global": {"timeout": 2.0}})]
    assert merge(layers, "install")["timeout"] == 2.0


MERGE_CASES = [
    # (id, layers, command, key, expected value, expected origin name)
    ("command table beats global in one layer",
     [layer("user", **{"global": {"retries": 1}, "install": {"retries": 2}})],
     "install", "retries", 2, "user:install"),
    ("other command's table is ignored",
     [layer("user", **{"global": {"retries": 1}, "download": {"retries": 2}})],
     "install", "retries", 1, "user:global"),
    ("no command: only global",
     [layer("user", **{"global": {"retries": 1}, "install": {"retries": 2}})],
     None, "retries", 1, "user:global"),
    ("higher layer's global beats lower layer's command table",
     [layer("site", install={"cert": "/site.pem"}),
      layer("user", **{"global": {"cert": "/u.pem"}})],
     "install", "cert", "/u.pem", "user:global"),
    ("lower layer's command table beats nothing above",
     [layer("site", install={"cert": "/site.pem"}), layer("user", **{"global": {"retries": 1}})],
     "install", "cert", "/site.pem", "site:install"),
    ("list from higher layer replaces, not concatenates",
     [layer("user", **{"global": {"trusted-host": ["a", "b"]}}),
      layer("project", **{"global": {"trusted-host": ["c"]}})],
     "install", "trusted-host", ["c"], "project:global"),
    ("empty list from higher layer replaces",
     [layer("user", **{"global": {"extra-index-url": ["https://a"]}}),
      layer("env", **{"global": {"extra-index-url": []}})],
     "install", "extra-index-url", [], "env:global"),
    ("index tables replace as a list",
     [layer("user", **{"global": {"index": [{"name": "a", "url": "https://a"}]}}),
      layer("project", **{"global": {"index": [{"name": "b", "url": "https://b"}]}})],
     "install", "index", [{"name": "b", "url": "https://b"}], "project:global"),
    ("flag beats ambient REQUESTS_CA_BUNDLE",
     [layer("ambient", **{"global": {"cert": "/requests.pem"}}),
      layer("flag", **{"global": {"cert": "/flag.pem"}})],
     "install", "cert", "/flag.pem", "flag:global"),
    ("skipped layers do not count",
     [layer("user", **{"global": {"retries": 1}}),
      Layer("project", None, True, {"global": {"retries": (2, Origin("project"))}}, skipped=True)],
     "install", "retries", 1, "user:global"),
]


@pytest.mark.parametrize(("layers", "command", "key", "value", "origin"),
                         [c[1:] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES])
def test_merge_table(layers: list[Layer], command: str | None, key: str, value: object,
                     origin: str) -> None:
    setting = merge(layers, command).setting(key)
    assert setting.value == value
    assert setting.origin.name == origin


def test_merge_without_layers_gives_defaults() -> None:
    settings = merge([], "install")
    assert settings["index-url"] == "https://pypi.org/simple"
    assert settings.origin("cert").kind == "default"
    assert settings["cert"] is None


def test_shadowed_values_highest_first() -> None:
    layers = [layer("user", **{"global": {"retries": 1}, "install": {"retries": 2}}),
              layer("env", **{"global": {"retries": 3}})]
    shadowed = merge(layers, "install").setting("retries").shadowed
    assert [(v, o.name) for v, o in shadowed] == [(2, "user:install"), (1, "user:global")]


# --- load_settings with real files and environments -------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """Folders for a site dir pair, a user dir and a project tree."""
    paths = {
        "home": tmp_path / "home", "site1": tmp_path / "xdg1", "site2": tmp_path / "xdg2",
        "project": tmp_path / "proj", "cwd": tmp_path / "proj" / "src" / "pkg",
    }
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    return paths


def base_env(world: dict[str, Path], **extra: str) -> dict[str, str]:
    env = {
        "HOME": str(world["home"]),
        "XDG_CONFIG_HOME": str(world["home"] / ".config"),
        "XDG_CONFIG_DIRS": os.pathsep.join([str(world["site1"]), str(world["site2"])]),
    }
    env.update(extra)
    return env


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def user_file(world: dict[str, Path]) -> Path:
    return world["home"] / ".config" / "inst" / "inst.toml"


def load(world: dict[str, Path], env: dict[str, str] | None = None, *, command: str = "install",
         flags: dict[str, tuple[object, str]] | None = None, config_file: str | None = None,
         no_config: bool = False) -> tuple[object, list[str]]:
    result = load_settings(command, cwd=world["cwd"], environ=env or base_env(world),
                           flags=flags or {}, config_file=config_file, no_config=no_config)
    return result.settings, result.warnings


needs_xdg = pytest.mark.skipif(os.name == "nt" or os.uname().sysname == "Darwin",
                               reason="XDG layout")


@needs_xdg
def test_xdg_config_dirs_first_directory_highest(world: dict[str, Path]) -> None:
    write(world["site1"] / "inst" / "inst.toml", "[global]\nretries = 1\n")
    write(world["site2"] / "inst" / "inst.toml", "[global]\nretries = 2\ntimeout = 7\n")
    settings, _ = load(world)
    assert settings["retries"] == 1  # type: ignore[index]
    assert settings["timeout"] == 7.0  # type: ignore[index]
    assert settings.origin("retries").path == str(  # type: ignore[attr-defined]
        world["site1"] / "inst" / "inst.toml")


FILE_CASES = [
    # (id, {file: text}, expected retries, winner)
    ("user beats site", {"site": "retries = 1", "user": "retries = 2"}, 2, "user"),
    ("project beats user", {"user": "retries = 2", "project": "retries = 3"}, 3, "project"),
    ("config-file beats project", {"project": "retries = 3", "config": "retries = 4"}, 4,
     "config-file"),
]


@needs_xdg
@pytest.mark.parametrize(("files", "expected", "winner"), [c[1:] for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_file_layers(world: dict[str, Path], files: dict[str, str], expected: int,
                     winner: str) -> None:
    places = {"site": world["site1"] / "inst" / "inst.toml", "user": user_file(world),
              "project": world["project"] / "inst.toml", "config": world["home"] / "extra.toml"}
    for name, body in files.items():
        write(places[name], f"[global]\n{body}\n")
    config_file = str(places["config"]) if "config" in files else None
    settings, _ = load(world, config_file=config_file)
    assert settings["retries"] == expected  # type: ignore[index]
    assert settings.origin("retries").kind == winner  # type: ignore[attr-defined]


def test_inst_env_beats_config_file_and_flag_beats_env(world: dict[str, Path]) -> None:
    extra = write(world["home"] / "extra.toml", "[global]\nretries = 4\n")
    env = base_env(world, INST_RETRIES="5")
    settings, _ = load(world, env, config_file=str(extra))
    assert (settings["retries"], settings.origin("retries").name) == (5, "INST_RETRIES")  # type: ignore
    settings, _ = load(world, env, config_file=str(extra), flags={"retries": (6, "--retries")})
    assert (settings["retries"], settings.origin("retries").name) == (6, "--retries")  # type: ignore


def test_files_beat_ambient_env(world: dict[str, Path]) -> None:
    write(user_file(world), "[global]\ncert = '/user.pem'\nproxy = 'http://file:1'\n")
    env = base_env(world, REQUESTS_CA_BUNDLE="/requests.pem", HTTPS_PROXY="http://env:2")
    settings, _ = load(world, env)
    assert settings["cert"] == "/user.pem"  # type: ignore[index]
    assert settings["proxy"] == "http://file:1"  # type: ignore[index]
    shadowed = settings.setting("cert").shadowed  # type: ignore[attr-defined]
    assert shadowed[0] == ("/requests.pem", Origin("ambient", name="REQUESTS_CA_BUNDLE"))


def test_cert_flag_beats_requests_ca_bundle(world: dict[str, Path]) -> None:
    env = base_env(world, REQUESTS_CA_BUNDLE="/requests.pem")
    settings, _ = load(world, env, flags={"cert": ("/flag.pem", "--cert")})
    assert settings["cert"] == "/flag.pem"  # type: ignore[index]
    assert str(settings.origin("cert")) == "flag --cert"  # type: ignore[attr-defined]


def test_inst_cert_beats_files_beats_requests_ca_bundle(world: dict[str, Path]) -> None:
    write(user_file(world), "[global]\ncert = '/user.pem'\n")
    env = base_env(world, REQUESTS_CA_BUNDLE="/requests.pem", INST_CERT="/inst.pem")
    settings, _ = load(world, env)
    values = [settings["cert"]] + [v for v, _ in settings.setting("cert").shadowed]  # type: ignore
    assert values == ["/inst.pem", "/user.pem", "/requests.pem", None]


AMBIENT_CASES = [
    ({"REQUESTS_CA_BUNDLE": "/r.pem", "CURL_CA_BUNDLE": "/c.pem", "SSL_CERT_FILE": "/s.pem"},
     "cert", "/r.pem", "REQUESTS_CA_BUNDLE"),
    ({"CURL_CA_BUNDLE": "/c.pem", "SSL_CERT_FILE": "/s.pem"}, "cert", "/c.pem", "CURL_CA_BUNDLE"),
    ({"SSL_CERT_FILE": "/s.pem"}, "cert", "/s.pem", "SSL_CERT_FILE"),
    ({"REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": "/s.pem"}, "cert", "/s.pem", "SSL_CERT_FILE"),
    ({"HTTPS_PROXY": "http://a:1", "https_proxy": "http://b:1", "HTTP_PROXY": "http://c:1"},
     "proxy", "http://a:1", "HTTPS_PROXY"),
    ({"https_proxy": "http://b:1", "HTTP_PROXY": "http://c:1"}, "proxy", "http://b:1",
     "https_proxy"),
    ({"HTTP_PROXY": "http://c:1", "http_proxy": "http://d:1"}, "proxy", "http://c:1", "HTTP_PROXY"),
    ({"http_proxy": "http://d:1"}, "proxy", "http://d:1", "http_proxy"),
    ({"NO_PROXY": "localhost, .corp.example  10.0.0.1"}, "no-proxy",
     ["localhost", ".corp.example", "10.0.0.1"], "NO_PROXY"),
    ({"no_proxy": "a,b"}, "no-proxy", ["a", "b"], "no_proxy"),
]


@pytest.mark.parametrize(("extra", "key", "value", "name"), AMBIENT_CASES)
def test_ambient_mapping(world: dict[str, Path], extra: dict[str, str], key: str, value: object,
                         name: str) -> None:
    settings, _ = load(world, base_env(world, **extra))
    assert settings[key] == value  # type: ignore[index]
    assert settings.origin(key) == Origin("ambient", name=name)  # type: ignore[attr-defined]


def test_no_config_skips_discovered_files_but_config_file_applies(world: dict[str, Path]) -> None:
    write(world["site1"] / "inst" / "inst.toml", "[global]\ntimeout = 1\n")
    write(user_file(world), "[global]\nretries = 2\n")
    write(world["project"] / "inst.toml", "[global]\nconcurrency = 3\n")
    extra = write(world["home"] / "extra.toml", "[global]\nno-cache = true\n")
    for kwargs, env in [({"no_config": True}, base_env(world)),
                        ({}, base_env(world, INST_NO_CONFIG="yes"))]:
        settings, _ = load(world, env, config_file=str(extra), **kwargs)  # type: ignore[arg-type]
        assert settings["no-cache"] is True  # type: ignore[index]
        assert [settings.origin(k).kind for k in ("timeout", "retries", "concurrency")] == [  # type: ignore
            "default", "default", "default"]


def test_inst_config_file_env(world: dict[str, Path]) -> None:
    extra = write(world["home"] / "extra.toml", "[install]\nretries = 9\n")
    settings, _ = load(world, base_env(world, INST_CONFIG_FILE=str(extra)))
    assert settings["retries"] == 9  # type: ignore[index]
    assert settings.origin("retries").kind == "config-file"  # type: ignore[attr-defined]


def test_config_flag_beats_inst_config_file(world: dict[str, Path]) -> None:
    a = write(world["home"] / "a.toml", "[global]\nretries = 1\n")
    b = write(world["home"] / "b.toml", "[global]\nretries = 2\n")
    settings, _ = load(world, base_env(world, INST_CONFIG_FILE=str(a)), config_file=str(b))
    assert settings["retries"] == 2  # type: ignore[index]


def test_inst_toml_beats_pyproject_in_same_dir_with_warning(world: dict[str, Path]) -> None:
    write(world["project"] / "pyproject.toml", "[tool.inst.global]\nretries = 1\ntimeout = 2\n")
    write(world["project"] / "inst.toml", "[global]\nretries = 3\n")
    settings, warnings = load(world)
    assert settings["retries"] == 3  # type: ignore[index]
    assert settings["timeout"] == 15.0  # type: ignore[index]
    assert warnings == [
        f"{world['project'] / 'inst.toml'} wins over [tool.inst] in "
        f"{world['project'] / 'pyproject.toml'}; the pyproject settings are ignored"]


def test_pyproject_tool_inst_is_a_project_file(world: dict[str, Path]) -> None:
    path = write(world["project"] / "pyproject.toml",
                 "[project]\nname = 'x'\n\n[tool.inst.install]\nretries = 1\n")
    settings, _ = load(world)
    assert settings["retries"] == 1  # type: ignore[index]
    assert settings.origin("retries") == Origin(  # type: ignore[attr-defined]
        "project", str(path), 5, section="tool.inst.install")


def test_nearest_project_file_upward(world: dict[str, Path]) -> None:
    write(world["project"] / "inst.toml", "[global]\nretries = 1\n")
    write(world["project"] / "src" / "inst.toml", "[global]\nretries = 2\n")
    # A pyproject without [tool.inst] is skipped on the way up.
    write(world["cwd"] / "pyproject.toml", "[project]\nname = 'x'\n")
    settings, _ = load(world)
    assert settings["retries"] == 2  # type: ignore[index]
    assert settings.origin("retries").path == str(  # type: ignore[attr-defined]
        world["project"] / "src" / "inst.toml")


def test_relative_paths_resolve_against_file_folder_and_cwd(world: dict[str, Path]) -> None:
    write(world["project"] / "inst.toml",
          "[global]\ncert = 'certs/ca.pem'\nclient-cert = '~/me.pem'\n")
    settings, _ = load(world, base_env(world))
    assert settings["cert"] == str(world["project"] / "certs" / "ca.pem")  # type: ignore[index]
    assert settings["client-cert"] == os.path.expanduser("~/me.pem")  # type: ignore[index]
    settings, _ = load(world, base_env(world, INST_CERT="rel.pem"))
    assert settings["cert"] == str(world["cwd"] / "rel.pem")  # type: ignore[index]


ENV_VALUE_CASES = [
    ("INST_NO_CACHE", "on", "no-cache", True),
    ("INST_NO_CACHE", "0", "no-cache", False),
    ("INST_NO_CACHE", "Yes", "no-cache", True),
    ("INST_NO_CACHE", "off", "no-cache", False),
    ("INST_TIMEOUT", "2.5", "timeout", 2.5),
    ("INST_RETRIES", "7", "retries", 7),
    ("INST_TRUSTED_HOST", " a.example  b.example:8443 ", "trusted-host",
     ["a.example", "b.example:8443"]),
    ("INST_INDEX_URL", "https://x.example/simple", "index-url", "https://x.example/simple"),
    ("INST_TRUST", "system", "trust", "system"),
]


@pytest.mark.parametrize(("var", "text", "key", "value"), ENV_VALUE_CASES)
def test_inst_env_values(world: dict[str, Path], var: str, text: str, key: str,
                         value: object) -> None:
    settings, _ = load(world, base_env(world, **{var: text}))
    assert settings[key] == value  # type: ignore[index]
    assert settings.origin(key) == Origin("env", name=var)  # type: ignore[attr-defined]


def test_missing_config_file_is_an_error(world: dict[str, Path]) -> None:
    with pytest.raises(ConfigErrors):
        load(world, config_file=str(world["home"] / "nope.toml"))


@pytest.mark.parametrize("text", [
    "[tool.inst.global]\nretries = 4\n",
    "[ tool . inst . global ]\nretries = 4\n",
    "[tool.\"inst\".global]\nretries = 4\n",
    "[tool.'inst']\nglobal = {retries = 4}\n",
    "tool.inst.global.retries = 4\n",
    "[tool]\ninst = {global = {retries = 4}}\n",
    "[tool]\ninst.global.retries = 4\n",
    "tool = {inst = {global = {retries = 4}}}\n",
    "[tool.\"\\u0069nst\".global]\nretries = 4\n",
])
def test_every_spelling_of_tool_inst_is_found(world: dict[str, Path], text: str) -> None:
    # The pre-check that skips parsing a pyproject must never miss a real [tool.inst].
    write(world["project"] / "pyproject.toml", text + "[project]\nname = 'x'\n")
    settings, _ = load(world)
    assert settings["retries"] == 4  # type: ignore[index]


def test_pyproject_mentioning_inst_elsewhere_is_not_a_project_file(
        world: dict[str, Path]) -> None:
    write(world["project"] / "pyproject.toml",
          "[project]\nname = 'installer-inst'\n# see tool.inst docs\n[tool.instx]\nretries = 5\n")
    settings, _ = load(world)
    assert settings.origin("retries").kind == "default"  # type: ignore[attr-defined]
