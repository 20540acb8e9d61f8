"""PEP 503 HTML and PEP 691 JSON page parsing, table-driven."""

from __future__ import annotations

import json
from typing import Any

import pytest

from installer.errors import IndexError_
from installer.httpcache import CachedResponse
from installer.models import Link
from installer.pages import is_safe_filename, parse_html, parse_json, parse_page, project_of

BASE = "https://idx.example/simple/demo/"
W = "demo-1.0-py3-none-any.whl"
H = "a" * 64


def html(*anchors: str, head: str = "") -> bytes:
    return f"<html><head>{head}</head><body>{''.join(anchors)}</body></html>".encode()


def one_html(anchor: str, head: str = "") -> Link:
    links = parse_html(html(anchor, head=head), BASE)
    assert len(links) == 1
    return links[0]


@pytest.mark.parametrize(("href", "url"), [
    (f"../../files/{W}", f"https://idx.example/files/{W}"),
    (f"/files/{W}", f"https://idx.example/files/{W}"),
    (W, f"https://idx.example/simple/demo/{W}"),
    (f"https://cdn.example/x/{W}", f"https://cdn.example/x/{W}"),
    (f"../../files/{W}#sha256={H}", f"https://idx.example/files/{W}"),
])
def test_html_urls_resolved(href: str, url: str) -> None:
    link = one_html(f'<a href="{href}">{W}</a>')
    assert (link.url, link.filename) == (url, W)


def test_html_base_href() -> None:
    link = one_html(f'<a href="{W}">x</a>', head='<base href="/mirror/files/">')
    assert link.url == f"https://idx.example/mirror/files/{W}"


def test_html_percent_encoded_filename_decoded_once() -> None:
    link = one_html('<a href="demo-1.0%2Blocal-py3-none-any.whl">x</a>')
    assert link.filename == "demo-1.0+local-py3-none-any.whl"


@pytest.mark.parametrize(("attrs", "field", "value"), [
    (f'href="{W}#sha256={H.upper()}"', "hashes", {"sha256": H}),
    (f'href="{W}#md5=abcd"', "hashes", {"md5": "abcd"}),
    (f'href="{W}#sha256=nothex"', "hashes", {}),
    (f'href="{W}#egg=demo"', "hashes", {}),
    (f'href="{W}"', "hashes", {}),
    (f'href="{W}" data-requires-python="&gt;=3.8,&lt;4"', "requires_python", ">=3.8,<4"),
    (f'href="{W}" data-requires-python=""', "requires_python", None),
    (f'href="{W}"', "requires_python", None),
    (f'href="{W}" data-yanked', "yanked", ""),
    (f'href="{W}" data-yanked=""', "yanked", ""),
    (f'href="{W}" data-yanked="broken &amp; bad"', "yanked", "broken & bad"),
    (f'href="{W}"', "yanked", None),
    (f'href="{W}" data-core-metadata="true"', "metadata_hashes", {}),
    (f'href="{W}" data-core-metadata', "metadata_hashes", {}),
    (f'href="{W}" data-core-metadata="sha256={H}"', "metadata_hashes", {"sha256": H}),
    (f'href="{W}" data-dist-info-metadata="sha256={H}"', "metadata_hashes", {"sha256": H}),
    (f'href="{W}" data-core-metadata="sha256={H}" data-dist-info-metadata="true"',
     "metadata_hashes", {"sha256": H}),
    (f'href="{W}" data-core-metadata="false"', "metadata_hashes", None),
    (f'href="{W}"', "metadata_hashes", None),
])
def test_html_attributes(attrs: str, field: str, value: object) -> None:
    assert getattr(one_html(f"<a {attrs}>x</a>"), field) == value


def test_html_index_label_and_anchors_without_href() -> None:
    links = parse_html(html("<a>nothing</a>", f'<a href="{W}">x</a>'), BASE, index="corp")
    assert [link.index for link in links] == ["corp"]


def test_html_charset() -> None:
    page = f'<a href="{W}" data-yanked="caf\xe9">x</a>'.encode("latin-1")
    assert parse_html(page, BASE, encoding="latin-1")[0].yanked == "caf\xe9"


@pytest.mark.parametrize("href", [
    "..%2F..%2Fevil-1.0-py3-none-any.whl",
    "evil%252F..-1.0-py3-none-any.whl",
    "a%5Cb-1.0-py3-none-any.whl",
    "C%3Aevil-1.0-py3-none-any.whl",
    "..",
    ".hidden-1.0-py3-none-any.whl",
    "x%00-1.0-py3-none-any.whl",
])
def test_html_hostile_filenames_skipped_with_warning(href: str) -> None:
    warnings: list[str] = []
    page = html(f'<a href="{href}">x</a>', f'<a href="{W}">ok</a>')
    links = parse_html(page, BASE, warn=warnings.append, index="idx")
    assert [link.filename for link in links] == [W]
    assert len(warnings) == 1 and warnings[0].startswith("skipping a file with an unsafe name")


def test_error_html_unsupported_api_version() -> None:
    page = html(head='<meta name="pypi:repository-version" content="2.0">')
    with pytest.raises(IndexError_) as info:
        parse_html(page, BASE)
    assert info.value.message == f"unsupported simple API version '2.0': {BASE}"


# --- JSON -------------------------------------------------------------------------------------


def jpage(*files: dict[str, Any], version: str = "1.1") -> bytes:
    return json.dumps({"meta": {"api-version": version}, "name": "demo",
                       "files": list(files)}).encode()


def one_json(**extra: Any) -> Link:
    entry = {"filename": W, "url": f"../../files/{W}", "hashes": {"sha256": H}, **extra}
    links = parse_json(jpage(entry), BASE)
    assert len(links) == 1
    return links[0]


@pytest.mark.parametrize(("extra", "field", "value"), [
    ({}, "url", f"https://idx.example/files/{W}"),
    ({"url": f"https://cdn.example/{W}"}, "url", f"https://cdn.example/{W}"),
    ({}, "hashes", {"sha256": H}),
    ({"hashes": {"sha256": H, "weird": "zz"}}, "hashes", {"sha256": H}),
    ({"requires-python": ">=3.9"}, "requires_python", ">=3.9"),
    ({"requires-python": None}, "requires_python", None),
    ({"yanked": True}, "yanked", ""),
    ({"yanked": "bad release"}, "yanked", "bad release"),
    ({"yanked": False}, "yanked", None),
    ({}, "yanked", None),
    ({"core-metadata": True}, "metadata_hashes", {}),
    ({"core-metadata": {"sha256": H}}, "metadata_hashes", {"sha256": H}),
    ({"dist-info-metadata": {"sha256": H}}, "metadata_hashes", {"sha256": H}),
    ({"core-metadata": False, "dist-info-metadata": True}, "metadata_hashes", None),
    ({"core-metadata": False}, "metadata_hashes", None),
    ({}, "metadata_hashes", None),
    ({"size": 1234}, "size", 1234),
    ({"size": True}, "size", None),
])
def test_json_fields(extra: dict[str, Any], field: str, value: object) -> None:
    assert getattr(one_json(**extra), field) == value


def test_json_hash_from_url_fragment_when_no_hashes() -> None:
    link = one_json(hashes={}, url=f"/files/{W}#sha256={H}")
    assert (link.url, link.hashes) == (f"https://idx.example/files/{W}", {"sha256": H})


def test_json_hostile_filename_skipped() -> None:
    warnings: list[str] = []
    page = jpage({"filename": "../evil-1.0-py3-none-any.whl", "url": "x.whl", "hashes": {}},
                 {"filename": W, "url": W, "hashes": {}})
    links = parse_json(page, BASE, warn=warnings.append, index="idx")
    assert [link.filename for link in links] == [W]
    assert warnings == ["skipping a file with an unsafe name '../evil-1.0-py3-none-any.whl' "
                        "from idx"]


@pytest.mark.parametrize(("page", "cause"), [
    (b'{"meta": {"api-version": "1.0"}, "files": [', "malformed JSON page (truncated or not JSON)"),
    (b"[]", "malformed JSON page (not an object)"),
    (b'{"meta": {"api-version": "1.0"}}', "malformed JSON page (no files list)"),
    (b'{"files": [{"url": "x"}]}', "malformed JSON page (a file without filename or url)"),
    (b'{"meta": {"api-version": "2.0"}, "files": []}', "unsupported simple API version '2.0'"),
])
def test_error_json_malformed(page: bytes, cause: str) -> None:
    with pytest.raises(IndexError_) as info:
        parse_json(page, BASE)
    assert info.value.message == f"{cause}: {BASE}"


# --- dispatch by content type, names ------------------------------------------------------------


@pytest.mark.parametrize("ctype", [
    "application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json",
])
def test_parse_page_json(ctype: str) -> None:
    resp = CachedResponse(BASE, 200, {"content-type": ctype},
                          jpage({"filename": W, "url": W, "hashes": {}}))
    assert [link.filename for link in parse_page(resp)] == [W]


@pytest.mark.parametrize("ctype", [
    "text/html", "text/html; charset=utf-8", "application/vnd.pypi.simple.v1+html",
])
def test_parse_page_html(ctype: str) -> None:
    resp = CachedResponse(BASE, 200, {"content-type": ctype}, html(f'<a href="{W}">x</a>'))
    assert [link.filename for link in parse_page(resp)] == [W]


def test_error_page_neither_html_nor_json() -> None:
    resp = CachedResponse("https://u:secret@idx.example/simple/demo/", 200,
                          {"content-type": "text/plain"}, b"hello")
    with pytest.raises(IndexError_) as info:
        parse_page(resp)
    assert info.value.message == ("the index answered with neither HTML nor JSON "
                                  "(Content-Type: text/plain): "
                                  "https://u:****@idx.example/simple/demo/")


@pytest.mark.parametrize(("name", "safe"), [
    (W, True), ("demo-1.0.tar.gz", True), ("a/b.whl", False), ("a\\b.whl", False),
    ("..", False), ("a..b.whl", False), ("c:x.whl", False), ("%2F.whl", False), ("", False),
    (".x.whl", False), ("a\nb.whl", False),
])
def test_is_safe_filename(name: str, safe: bool) -> None:
    assert is_safe_filename(name) is safe


@pytest.mark.parametrize(("name", "project"), [
    (W, "demo"), ("Demo_Pkg-1.0-py3-none-any.whl", "demo-pkg"),
    ("demo.pkg-2.0.tar.gz", "demo-pkg"), ("demo-1.0.zip", "demo"), ("demo-1.0.exe", None),
    ("not-a-wheel.whl", None),
])
def test_project_of(name: str, project: str | None) -> None:
    assert project_of(name) == project
