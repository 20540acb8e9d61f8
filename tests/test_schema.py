"""The generated schema and settings reference: fresh, well-formed, complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from installer.config import parse_toml
from installer.options import COMMANDS, OPTIONS, options_for
from installer.schema import (
    REGENERATE,
    ROOT,
    build_schema,
    build_settings_doc,
    generated,
    stale_files,
    write_all,
)

_JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool,
               "number": (int, float), "integer": int}


def toml_loads(text: str) -> dict[str, Any]:
    return parse_toml(text, "test.toml")


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/"), ref
        node = schema["$defs"][ref[len("#/$defs/"):]]
    return node


def validate(schema: dict[str, Any], node: dict[str, Any], value: Any, where: str = "") -> None:
    """A small validator for the keywords the generator uses (no jsonschema dependency)."""
    node = _resolve(schema, node)
    kind = node.get("type")
    if kind:
        assert isinstance(value, _JSON_TYPES[kind]), f"{where}: {value!r} is not {kind}"
        if kind in ("number", "integer"):
            assert not isinstance(value, bool), f"{where}: {value!r} is not {kind}"
    if "enum" in node:
        assert value in node["enum"], where
    if "pattern" in node:
        assert re.search(node["pattern"], value), where
    if kind == "array":
        for i, item in enumerate(value):
            validate(schema, node["items"], item, f"{where}[{i}]")
    if kind == "object":
        for name in node.get("required", []):
            assert name in value, f"{where}: missing {name}"
        for name, item in value.items():
            if name not in node.get("properties", {}):
                assert node.get("additionalProperties", True) is not False, f"{where}.{name}"
                continue
            validate(schema, node["properties"][name], item, f"{where}.{name}")


def test_generated_files_are_fresh() -> None:
    stale = [str(p.relative_to(ROOT)) for p in stale_files()]
    assert not stale, f"generated files are stale: {', '.join(stale)}; run: {REGENERATE}"


def test_check_command_names_stale_files(tmp_path: Path) -> None:
    assert write_all(tmp_path) == list(generated(tmp_path))
    assert stale_files(tmp_path) == []
    (tmp_path / "docs" / "reference" / "settings.md").write_text("old\n")
    assert stale_files(tmp_path) == [tmp_path / "docs" / "reference" / "settings.md"]
    result = subprocess.run([sys.executable, "-m", "installer.schema", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")


def test_schema_shape_is_2020_12() -> None:
    schema = build_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"global", *COMMANDS, "index"}  # type: ignore[arg-type]
    text = str(schema)
    for ref in re.findall(r"'\$ref': '#/\$defs/([^']+)'", text):
        assert ref in schema["$defs"]  # type: ignore[operator]


def test_every_option_appears_where_it_applies() -> None:
    schema: dict[str, Any] = build_schema()
    assert set(schema["properties"]["global"]["properties"]) == {o.key for o in OPTIONS}
    for command in COMMANDS:
        assert set(schema["properties"][command]["properties"]) == {
            o.key for o in options_for(command)}
    doc = build_settings_doc()
    for option in OPTIONS:
        assert f"### `{option.key}`" in doc
        assert option.help in doc
        if option.env_var:
            assert f"`{option.env_var}`" in doc
    for meta in ("INST_CONFIG_FILE", "INST_NO_CONFIG", "--config-file", "--no-config"):
        assert meta in doc


def test_examples_and_defaults_validate_against_schema() -> None:
    schema: dict[str, Any] = build_schema()
    for option in OPTIONS:
        node = schema["$defs"][option.key]
        validate(schema, node, option.example, option.key)
        if option.default is not None:
            validate(schema, node, option.default, option.key)


def test_doc_examples_are_valid_config() -> None:
    """Every TOML example in the reference parses and validates against the schema."""
    from installer.config import parse_config_text

    schema: dict[str, Any] = build_schema()
    for block in re.findall(r"```toml\n(.*?)```", build_settings_doc(), re.S):
        validate(schema, schema, toml_loads(block))
        parsed = parse_config_text(block, "example.toml")
        assert (parsed.errors, parsed.warnings) == ([], [])


def test_schema_rejects_a_typo_section() -> None:
    schema: dict[str, Any] = build_schema()
    try:
        validate(schema, schema, {"instal": {}})
    except AssertionError:
        return
    raise AssertionError("unknown table accepted")
