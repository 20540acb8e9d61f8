"""pip's installation report (version "1") built from a resolution."""

from __future__ import annotations

import json
from pathlib import Path

from installer import __version__
from installer.models import MemoryIndex
from installer.report import build_report, metadata_to_json
from installer.reqfile import parse_args
from installer.resolver import ResolveOptions, link_from_url, resolve
from tests.helpers.resolver_index import build_index, installed_dist, make_env
from tests.helpers.wheels import metadata_text

RICH = (
    b"Metadata-Version: 2.1\n"
    b"Name: rich-pkg\n"
    b"Version: 1.0\n"
    b"Summary: A summary\n"
    b"Keywords: web, http ,client\n"
    b"Classifier: A :: B\n"
    b"Classifier: C :: D\n"
    b"Requires-Dist: dep>=1\n"
    b"Requires-Dist: extra-dep; extra == 'x'\n"
    b"Provides-Extra: x\n"
    b"Project-URL: Home, https://example.test\n"
    b"Requires-Python: >=3.8\n"
    b"\n"
    b"The long description.\n"
)


def test_metadata_to_json_pep566() -> None:
    assert metadata_to_json(RICH) == {
        "metadata_version": "2.1", "name": "rich-pkg", "version": "1.0",
        "summary": "A summary", "keywords": ["web", "http", "client"],
        "classifier": ["A :: B", "C :: D"],
        "requires_dist": ["dep>=1", "extra-dep; extra == 'x'"],
        "requires_python": ">=3.8", "project_url": ["Home, https://example.test"],
        "provides_extra": ["x"], "description": "The long description.\n",
    }


def test_metadata_keywords_space_separated() -> None:
    raw = b"Metadata-Version: 2.1\nName: a\nVersion: 1\nKeywords: one two\n\n"
    assert metadata_to_json(raw)["keywords"] == ["one", "two"]


def test_report_structure() -> None:
    index = build_index({"a": [{"version": "1.0", "requires": ["b"], "extras": {"x": ["c"]}}],
                         "b": [{"version": "2.0", "yanked": "bad"}], "c": ["1.0"]})
    env = make_env()
    res = resolve(parse_args(["a[x]", "b==2.0"]), [], index, env, ResolveOptions())
    report = build_report(res, env)
    assert json.loads(json.dumps(report)) == report
    assert report["version"] == "1"
    assert report["pip_version"] == f"inst {__version__}"
    assert report["environment"]["python_full_version"] == "3.11.7"
    assert "extra" not in report["environment"]
    items = {i["metadata"]["name"]: i for i in report["install"]}
    assert set(items) == {"a", "b", "c"} and list(items)[-1] == "a"
    a = items["a"]
    link = res.get("a").link  # type: ignore[union-attr]
    assert link is not None and link.sha256 is not None
    assert a["download_info"] == {
        "url": "https://index.test/files/a-1.0-py3-none-any.whl",
        "archive_info": {"hash": f"sha256={link.sha256}", "hashes": {"sha256": link.sha256}},
    }
    assert (a["is_direct"], a["is_yanked"], a["requested"], a["requested_extras"]) == (
        False, False, True, ["x"])
    assert a["metadata"]["requires_dist"] == ["b", "c; extra == 'x'"]
    assert items["b"]["is_yanked"] is True and items["b"]["requested"] is True
    assert "requested_extras" not in items["b"]
    assert items["c"]["requested"] is False


def test_report_direct_url_redacted() -> None:
    index = MemoryIndex()
    url = "https://user:s3cret@files.test/d-1.0-py3-none-any.whl#sha256=" + "c" * 64
    index.add(link_from_url(url), metadata_text("d", "1.0").encode())
    env = make_env()
    report = build_report(resolve(parse_args([f"d @ {url}"]), [], index, env,
                                  ResolveOptions()), env)
    [item] = report["install"]
    assert item["is_direct"] is True
    assert item["download_info"]["url"] == "https://user:****@files.test/d-1.0-py3-none-any.whl"
    assert "s3cret" not in json.dumps(report)


def test_report_leaves_out_kept_distributions(tmp_path: Path) -> None:
    env = make_env(installed=[installed_dist(tmp_path, "a", "1.0", ["b"])])
    index = build_index({"a": [{"version": "1.0", "requires": ["b"]}], "b": ["1.0"]})
    res = resolve(parse_args(["a"]), [], index, env, ResolveOptions())
    assert [i["metadata"]["name"] for i in build_report(res, env)["install"]] == ["b"]
