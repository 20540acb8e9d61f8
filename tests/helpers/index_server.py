"""A real simple index for tests: wheels made in the test, served over HTTPS (trustme CA).

    index = SimpleIndex(tmp_path / "idx")
    index.add_wheel("demo", "1.0", requires=["dep>=1"])          # make_wheel + register
    index.add_wheel("dep", "1.0", metadata_file=False)           # no PEP 658 file
    with IndexServer(index, pki, flavour="json") as srv:
        srv.url                                                  # https://127.0.0.1:P/simple
        srv.count("/simple/demo/")                               # requests seen for a path

Pages are rendered per request from the registered files: PEP 503 HTML (relative hrefs,
``#sha256=``, data-requires-python, data-yanked, data-core-metadata) or PEP 691 JSON, chosen
by ``Accept`` (``flavour="both"``) or fixed. Files support single ``Range`` requests (unless
``ranges=False``); pages carry ETag/Last-Modified and answer ``If-None-Match`` with 304. A
non-normalized project path is redirected (301) to the normalized one, as PyPI does.
``overrides`` maps a request path to a behaviour for fault injection.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.helpers.tls_servers import (
    Behaviour,
    Handler,
    HTTPSServer,
    TestPKI,
    reply_with_range,
    server_context,
)
from tests.helpers.wheels import make_wheel, wheel_metadata

LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"


def normalize(name: str) -> str:
    """PEP 503 normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class IndexFile:
    """One file on the index and how the index describes it."""

    path: Path
    yanked: str | None = None
    requires_python: str | None = None
    metadata_file: bool = True
    metadata_attr: str = "data-core-metadata"  # or "data-dist-info-metadata"
    metadata_hash: bool = True
    served_metadata: bytes | None = None  # serve these bytes instead (hash-mismatch tests)
    hash_in_url: bool = True
    href: str | None = None  # override the file's href (hostile-name tests)

    @property
    def filename(self) -> str:
        """The file's name."""
        return self.path.name

    @property
    def sha256(self) -> str:
        """Hex sha256 of the file."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def metadata(self) -> bytes:
        """The METADATA the index announces (the wheel's own)."""
        return wheel_metadata(self.path)


@dataclass
class SimpleIndex:
    """Files grouped by project; ``files`` dir holds the wheels."""

    root: Path
    projects: dict[str, list[IndexFile]] = field(default_factory=dict)
    empty_projects: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.files_dir.mkdir(parents=True, exist_ok=True)

    @property
    def files_dir(self) -> Path:
        """Where the wheels are."""
        return self.root / "files"

    def add(self, wheel: Path, project: str | None = None, **kw: Any) -> IndexFile:
        """Register an existing wheel (copied into ``files``)."""
        dest = self.files_dir / wheel.name
        if wheel.resolve() != dest.resolve():
            dest.write_bytes(wheel.read_bytes())
        entry = IndexFile(dest, **kw)
        name = normalize(project or wheel.name.split("-")[0])
        self.projects.setdefault(name, []).append(entry)
        return entry

    def add_wheel(self, name: str, version: str, *, yanked: str | None = None,
                  metadata_file: bool = True, index_requires_python: str | None = None,
                  **wheel_kw: Any) -> IndexFile:
        """``make_wheel`` then :meth:`add`. ``requires_python`` goes in METADATA and, unless
        *index_requires_python* says otherwise, on the page too."""
        wheel = make_wheel(self.files_dir, name, version, **wheel_kw)
        rp = index_requires_python or wheel_kw.get("requires_python")
        return self.add(wheel, yanked=yanked, requires_python=rp, metadata_file=metadata_file)

    def entries(self, project: str) -> list[IndexFile] | None:
        """The project's files, None if the index has no such project."""
        if project in self.empty_projects:
            return []
        return self.projects.get(project)

    def html_page(self, project: str) -> bytes:
        """PEP 503 page with hrefs relative to ``/simple/<project>/``."""
        rows = []
        for f in self.entries(project) or []:
            href = f.href or f"../../files/{f.filename}"
            if f.hash_in_url and f.href is None:
                href += f"#sha256={f.sha256}"
            attrs = [f'href="{html.escape(href)}"']
            if f.requires_python:
                attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
            if f.yanked is not None:
                attrs.append(f'data-yanked="{html.escape(f.yanked)}"')
            if f.metadata_file:
                value = (f"sha256={hashlib.sha256(f.metadata).hexdigest()}"
                         if f.metadata_hash else "true")
                attrs.append(f'{f.metadata_attr}="{value}"')
            rows.append(f"<a {' '.join(attrs)}>{html.escape(f.filename)}</a><br/>")
        body = ("<!DOCTYPE html><html><head>"
                '<meta name="pypi:repository-version" content="1.1">'
                f"<title>Links for {project}</title></head><body>"
                f"<h1>Links for {project}</h1>{''.join(rows)}</body></html>")
        return body.encode()

    def json_page(self, project: str) -> bytes:
        """PEP 691 v1 page with root-relative urls."""
        files = []
        for f in self.entries(project) or []:
            item: dict[str, Any] = {
                "filename": f.filename, "url": f.href or f"/files/{f.filename}",
                "hashes": {"sha256": f.sha256} if f.hash_in_url else {},
                "size": f.path.stat().st_size,
            }
            if f.requires_python:
                item["requires-python"] = f.requires_python
            if f.yanked is not None:
                item["yanked"] = f.yanked or True
            if f.metadata_file:
                meta: Any = ({"sha256": hashlib.sha256(f.metadata).hexdigest()}
                             if f.metadata_hash else True)
                key = ("core-metadata" if f.metadata_attr == "data-core-metadata"
                       else "dist-info-metadata")
                item[key] = meta
            files.append(item)
        return json.dumps({"meta": {"api-version": "1.1"}, "name": project,
                           "files": files, "versions": []}).encode()

    def metadata_for(self, filename: str) -> bytes | None:
        """What ``/files/<filename>.metadata`` serves, None for 404."""
        for entries in self.projects.values():
            for f in entries:
                if f.filename == filename and f.metadata_file:
                    return f.served_metadata if f.served_metadata is not None else f.metadata
        return None

    def write_static(self, out: Path) -> Path:
        """Write ``out/simple/<project>/index.html`` (+ files); returns ``out/simple``."""
        for project in set(self.projects) | self.empty_projects:
            page = out / "simple" / project
            page.mkdir(parents=True, exist_ok=True)
            (page / "index.html").write_bytes(self.html_page(project))
        files = out / "files"
        files.mkdir(parents=True, exist_ok=True)
        for entries in self.projects.values():
            for f in entries:
                (files / f.filename).write_bytes(f.path.read_bytes())
                if f.metadata_file:
                    (files / f"{f.filename}.metadata").write_bytes(
                        self.metadata_for(f.filename) or b"")
        return out / "simple"


class IndexServer:
    """Serve a :class:`SimpleIndex` over HTTPS; a context manager."""

    def __init__(self, index: SimpleIndex, pki: TestPKI, *,
                 flavour: Literal["both", "json", "html"] = "both", ranges: bool = True,
                 cache_control: str = "max-age=600, public", validators: bool = True) -> None:
        self.index, self.flavour, self.ranges = index, flavour, ranges
        self.cache_control, self.validators = cache_control, validators
        self.overrides: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self._server = HTTPSServer(self._handle, server_context(pki.leaf()))
        self.url = self._server.url + "simple"

    @property
    def origin(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return self._server.url.rstrip("/")

    @property
    def requests(self) -> list[Any]:
        """Every request seen (RequestRecord: method, path, headers)."""
        return self._server.requests

    def count(self, path: str) -> int:
        """Requests whose path (without query) equals *path*."""
        return sum(1 for r in self.requests if r.path.split("?")[0] == path)

    def range_requests(self, filename: str) -> int:
        """Ranged GETs for ``/files/<filename>``."""
        return sum(1 for r in self.requests
                   if r.path == f"/files/{filename}" and "Range" in r.headers)

    def __enter__(self) -> IndexServer:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    # --- behaviour -----------------------------------------------------------------------

    def _handle(self, h: Handler) -> None:
        path = h.path.split("?")[0]
        override = self.overrides.get(path)
        if override is not None:
            override(h)
        elif path.startswith("/simple/"):
            self._page(h, path[len("/simple/"):].strip("/"))
        elif path.startswith("/files/"):
            self._file(h, path[len("/files/"):])
        else:
            h.reply(404, b"not found")

    def _page(self, h: Handler, project: str) -> None:
        if normalize(project) != project:
            h.reply(301, b"", {"Location": f"/simple/{normalize(project)}/"})
            return
        if self.index.entries(project) is None:
            h.reply(404, b"not found", {"Content-Type": "text/plain"})
            return
        as_json = self._wants_json(h.headers.get("Accept", ""))
        body = self.index.json_page(project) if as_json else self.index.html_page(project)
        ctype = JSON_TYPE if as_json else HTML_TYPE
        headers = {"Content-Type": ctype, "Vary": "Accept"}
        if self.cache_control:  # "" sends none, as a plain static file server does
            headers["Cache-Control"] = self.cache_control
        if self.validators:
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            headers |= {"ETag": etag, "Last-Modified": LAST_MODIFIED}
            if h.headers.get("If-None-Match") == etag:
                h.reply(304, b"", {k: v for k, v in headers.items() if k != "Content-Type"})
                return
        h.reply(200, body, headers)

    def _wants_json(self, accept: str) -> bool:
        if self.flavour != "both":
            return self.flavour == "json"
        prefs = _accept_q(accept)
        q_json = prefs.get(JSON_TYPE, 0.0)
        return q_json > 0 and q_json >= max(prefs.get(HTML_TYPE, 0.0), prefs.get("text/html", 0.0))

    def _file(self, h: Handler, name: str) -> None:
        from urllib.parse import unquote

        name = unquote(name)
        if name.endswith(".metadata"):
            data = self.index.metadata_for(name[: -len(".metadata")])
            if data is None:
                h.reply(404, b"not found")
            else:
                h.reply(200, data, {"Content-Type": "application/octet-stream"})
            return
        path = self.index.files_dir / name
        if "/" in name or not path.is_file():
            h.reply(404, b"not found")
            return
        self._send_file(h, path.read_bytes())

    def _send_file(self, h: Handler, data: bytes) -> None:
        headers = {"Content-Type": "application/octet-stream"}
        if self.ranges:
            headers["Accept-Ranges"] = "bytes"
        reply_with_range(h, data, headers, self.ranges)


def _accept_q(accept: str) -> Mapping[str, float]:
    prefs: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media:
            prefs[media.lower()] = q
    return prefs


def iter_links(page: bytes) -> Iterator[str]:
    """hrefs of an HTML page (for assertions)."""
    yield from re.findall(r'href="([^"]*)"', page.decode())
