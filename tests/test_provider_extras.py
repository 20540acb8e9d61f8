"""The Requires-Dist fast path: a line skipped without parsing must be one packaging's marker
evaluation rejects for a candidate without extras (packaging is the oracle)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from installer.provider import _only_for_an_extra
from installer.resolved import parse_metadata

LINES = [
    ('a; extra == "x"', True),
    ("a>=1 ; extra=='x'", True),
    ('a; (sys_platform != "win32") and extra == "uv"', True),
    ('a; (platform_version == ")") and extra == "x"', True),
    ('a; (platform_version == "(" or python_version > "1") and extra == "x"', True),
    ('a; (x == "1") or (y == "2") and extra == "x"', False),
    ('a; python_version > "1" or extra == "x"', False),
    ('a; extra == "x" or python_version > "1"', False),
    ('a; (python_version > "1") and (os_name == "posix") and extra == "x"', False),
    ('a; python_version > "1"', False),
    ("a", False),
    ('a @ https://example.com/a.whl ; extra == "x"', False),
]


def _false_without_extras(text: str) -> bool:
    req = Requirement(text)
    return req.marker is not None and not req.marker.evaluate(
        {**default_environment(), "extra": ""})


@pytest.mark.parametrize(("text", "skipped"), LINES)
def test_fast_path_cases(text: str, skipped: bool) -> None:
    assert _only_for_an_extra(text) is skipped
    if skipped:
        assert _false_without_extras(text)


def test_fast_path_agrees_with_packaging_on_installed_metadata() -> None:
    site = next(p for p in sys.path if p.endswith("site-packages"))
    lines = [line for path in Path(site).glob("*.dist-info/METADATA")
             for line in parse_metadata(path.read_bytes()).requires_dist]
    skipped = [line for line in lines if _only_for_an_extra(line)]
    assert len(skipped) >= 10  # pytest, trustme, mypy, ... declare optional extras here
    for line in skipped:
        assert _false_without_extras(line), line
