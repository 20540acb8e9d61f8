"""Simple Repository API pages -> :class:`~installer.models.Link` values: PEP 503 HTML and
PEP 691 JSON (with PEP 658/714 metadata attributes and PEP 700 fields), for
:mod:`installer.index`. Hostile file names are skipped with a warning.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

from installer._types import NormalizedName
from installer.errors import IndexError_, redact_url
from installer.httpcache import CachedResponse
from installer.models import Link, canonical

if TYPE_CHECKING:  # imported when first needed: a JSON index needs no HTML parser
    from html.parser import HTMLParser

ACCEPT = ("application/vnd.pypi.simple.v1+json, "
          "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01")
JSON_TYPES = ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json",
               "application/json")
_HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.latest+html",
               "text/html")
_HASH_NAMES = frozenset({"sha256", "sha384", "sha512", "sha224", "sha1", "md5", "blake2b"})
_BAD_IN_NAME = ("/", "\\", ":", "\0", "..", "%")

Warn = Callable[[str], None]


def no_warn(_message: str) -> None:
    return None


# --- file names -------------------------------------------------------------------------------


def is_safe_filename(filename: str) -> bool:
    """False for names that could escape a folder: separators, ``..``, ``%`` left after one
    decode (``%252F``), drive colons, control characters, or a leading dot."""
    if not filename or filename.startswith(".") or any(b in filename for b in _BAD_IN_NAME):
        return False
    return all(ord(c) >= 32 and c != "\x7f" for c in filename)


def project_of(filename: str) -> NormalizedName | None:
    """The normalized project a wheel or sdist file name belongs to (None if unparseable)."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            return NormalizedName(parse_wheel_filename(filename)[0])
        if filename.endswith((".tar.gz", ".zip")):
            return NormalizedName(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _hashes_from_fragment(fragment: str) -> dict[str, str]:
    name, sep, value = fragment.partition("=")
    name = name.lower()
    if sep and name in _HASH_NAMES and _is_hex(value):
        return {name: value.lower()}
    return {}


def _is_hex(value: str) -> bool:
    return bool(value) and all(c in "0123456789abcdefABCDEF" for c in value)


def _metadata_attr(value: str | None) -> dict[str, str] | None:
    """PEP 658/714 attribute value: "true", or "<hashname>=<hex>"; anything else is absent."""
    if value is None:
        return None
    value = value.strip()
    if value.lower() == "true":
        return {}
    hashes = _hashes_from_fragment(value)
    return hashes or None


# --- PEP 503 HTML -----------------------------------------------------------------------------


@functools.cache
def _anchor_parser_class() -> type[HTMLParser]:
    """The parser class collecting anchors, ``<base href>`` and the repository version meta;
    html.parser (with html.entities, ~2 ms) is imported on the first HTML page only."""
    from html.parser import HTMLParser

    class AnchorParser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.base: str | None = None
            self.anchors: list[dict[str, str | None]] = []
            self.repo_version: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            attr = dict(attrs)
            if tag == "a" and attr.get("href"):
                self.anchors.append(attr)
            elif tag == "base" and self.base is None and attr.get("href"):
                self.base = attr["href"]
            elif tag == "meta" and attr.get("name") == "pypi:repository-version":
                self.repo_version = attr.get("content")

    return AnchorParser


def _check_api_version(version: str | None, url: str) -> None:
    if version is not None and version.strip().split(".")[0] != "1":
        raise IndexError_(url, f"unsupported simple API version {version!r}")


def parse_html(page: bytes, base_url: str, *, warn: Warn | None = None, index: str = "",
               encoding: str = "utf-8") -> list[Link]:
    """Every file link on a PEP 503 page (with PEP 592 yanked, PEP 658/714 metadata).

    Relative hrefs are resolved against ``<base href>`` or *base_url*; the file name is the
    URL's last path segment, decoded once. Unsafe names are skipped with a *warn* message.
    """
    parser: Any = _anchor_parser_class()()
    parser.feed(page.decode(encoding, errors="replace"))
    parser.close()
    _check_api_version(parser.repo_version, base_url)
    base = urljoin(base_url, parser.base) if parser.base else base_url
    links = []
    for attr in parser.anchors:
        link = _html_link(attr, base, warn or no_warn, index or redact_url(base_url))
        if link is not None:
            links.append(link)
    return links


def _html_link(attr: Mapping[str, str | None], base: str, warn: Warn, index: str) -> Link | None:
    url, _, fragment = urljoin(base, str(attr["href"]).strip()).partition("#")
    filename = unquote(urlsplit(url).path.rpartition("/")[2])
    if not _accept_name(filename, index, warn):
        return None
    meta = attr.get("data-core-metadata", attr.get("data-dist-info-metadata"))
    if "data-core-metadata" not in attr and "data-dist-info-metadata" not in attr:
        meta = None
    elif meta is None:  # a bare attribute means "true"
        meta = "true"
    yanked = attr.get("data-yanked", None) if "data-yanked" in attr else None
    return Link(filename=filename, url=url, hashes=_hashes_from_fragment(fragment),
                requires_python=(attr.get("data-requires-python") or "").strip() or None,
                yanked=(yanked or "") if "data-yanked" in attr else None,
                metadata_hashes=_metadata_attr(meta), index=index)


def _accept_name(filename: str, index: str, warn: Warn) -> bool:
    if is_safe_filename(filename):
        return True
    warn(f"skipping a file with an unsafe name {filename!r} from {index}")
    return False


# --- PEP 691 JSON -----------------------------------------------------------------------------


def parse_json(page: bytes, base_url: str, *, warn: Warn | None = None,
               index: str = "") -> list[Link]:
    """Every file of a PEP 691 (v1) JSON project page."""
    return json_links(load_json(page, base_url), base_url, warn=warn, index=index)


def json_links(data: dict[str, Any], base_url: str, *, warn: Warn | None,
                index: str) -> list[Link]:
    meta = data.get("meta")
    _check_api_version(meta.get("api-version") if isinstance(meta, dict) else None, base_url)
    files = data.get("files")
    if not isinstance(files, list):
        raise IndexError_(base_url, "malformed JSON page (no files list)")
    links = []
    for entry in files:
        link = _json_link(entry, base_url, warn or no_warn, index or redact_url(base_url))
        if link is not None:
            links.append(link)
    return links


def project_name_of_json(page: bytes, base_url: str) -> NormalizedName | None:
    """The ``name`` a PEP 691 page claims, normalized (None if absent)."""
    return json_name(load_json(page, base_url))


def json_name(data: dict[str, Any]) -> NormalizedName | None:
    name = data.get("name")
    return canonical(name) if isinstance(name, str) else None


def load_json(page: bytes, base_url: str) -> dict[str, Any]:
    try:
        data = json.loads(page)
    except ValueError as exc:
        raise IndexError_(base_url, "malformed JSON page (truncated or not JSON)") from exc
    if not isinstance(data, dict):
        raise IndexError_(base_url, "malformed JSON page (not an object)")
    return data


def _json_link(entry: object, base_url: str, warn: Warn, index: str) -> Link | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str) \
            or not isinstance(entry.get("url"), str):
        raise IndexError_(base_url, "malformed JSON page (a file without filename or url)")
    filename: str = entry["filename"]
    if not _accept_name(filename, index, warn):
        return None
    url, _, fragment = urljoin(base_url, entry["url"]).partition("#")
    hashes = _json_hashes(entry.get("hashes")) or _hashes_from_fragment(fragment)
    yanked = entry.get("yanked", False)
    meta = entry.get("core-metadata", entry.get("dist-info-metadata", False))
    rp = entry.get("requires-python")
    size = entry.get("size")
    return Link(filename=filename, url=url, hashes=hashes,
                requires_python=rp.strip() or None if isinstance(rp, str) else None,
                yanked=(yanked if isinstance(yanked, str) else "") if yanked else None,
                metadata_hashes=(_json_hashes(meta) if isinstance(meta, dict)
                                 else {} if meta is True else None),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                index=index)


def _json_hashes(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k).lower(): str(v).lower() for k, v in value.items()
            if str(k).lower() in _HASH_NAMES and isinstance(v, str) and _is_hex(v)}


def parse_page(resp: CachedResponse, *, warn: Warn | None = None,
               index: str = "") -> list[Link]:
    """Parse a fetched page by its Content-Type; anything but HTML or JSON is an error."""
    ctype = resp.content_type
    if ctype in JSON_TYPES:
        return parse_json(resp.body, resp.url, warn=warn, index=index)
    if ctype in _HTML_TYPES:
        charset = _charset(resp.headers.get("content-type", ""))
        return parse_html(resp.body, resp.url, warn=warn, index=index, encoding=charset)
    raise IndexError_(resp.url, f"the index answered with neither HTML nor JSON "
                                f"(Content-Type: {ctype or 'none'})")


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            import codecs

            try:
                return codecs.lookup(value.strip().strip('"')).name
            except LookupError:
                return "utf-8"
    return "utf-8"


# --- sources ----------------------------------------------------------------------------------
