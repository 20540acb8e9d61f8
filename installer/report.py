"""pip's installation report, version "1", built from a :class:`~installer.resolver.Resolution`.

Format: https://pip.pypa.io/en/stable/reference/installation-report/ — ``download_info`` is a
PEP 610 direct URL object and ``metadata`` is core metadata turned into JSON the PEP 566 way.
Only what would be installed is listed (kept distributions are not), like pip.
"""

from __future__ import annotations

import email.header
import email.message
import email.parser
import email.policy
from collections.abc import Mapping
from typing import Any

from installer import __version__
from installer.errors import redact_url
from installer.models import Environment
from installer.resolver import Resolution, ResolvedPin

REPORT_VERSION = "1"

#: (field, multiple-use) in the order pip emits them.
_FIELDS: tuple[tuple[str, bool], ...] = (
    ("Metadata-Version", False), ("Name", False), ("Version", False), ("Dynamic", True),
    ("Platform", True), ("Supported-Platform", True), ("Summary", False),
    ("Description", False), ("Description-Content-Type", False), ("Keywords", False),
    ("Home-page", False), ("Download-URL", False), ("Author", False), ("Author-email", False),
    ("Maintainer", False), ("Maintainer-email", False), ("License", False),
    ("License-Expression", False), ("License-File", True), ("Classifier", True),
    ("Requires-Dist", True), ("Requires-Python", False), ("Requires-External", True),
    ("Project-URL", True), ("Provides-Extra", True), ("Provides-Dist", True),
    ("Obsoletes-Dist", True),
)


def _header_text(value: object) -> str:
    if isinstance(value, email.header.Header):
        return str(email.header.make_header(email.header.decode_header(value)))
    return str(value)


def metadata_to_json(raw: bytes) -> dict[str, Any]:
    """PEP 566: keys lower-cased with ``_`` for ``-``, multiple-use fields as lists, keywords
    split into a list, the message body as ``description``."""
    msg: email.message.Message = email.parser.BytesParser(
        policy=email.policy.compat32).parsebytes(raw)
    result: dict[str, Any] = {}
    for name, multiple in _FIELDS:
        if name not in msg:
            continue
        key = name.lower().replace("-", "_")
        if multiple:
            result[key] = [_header_text(v) for v in msg.get_all(name) or ()]
            continue
        value = _header_text(msg.get(name))
        if key == "keywords":
            result[key] = ([v.strip() for v in value.split(",")] if "," in value
                           else value.split())
        else:
            result[key] = value
    body = msg.get_payload()
    if isinstance(body, str) and body.strip():
        result["description"] = body
    return result


def _download_info(pin: ResolvedPin) -> dict[str, Any]:
    assert pin.link is not None
    url = redact_url(pin.link.url.partition("#")[0])
    archive: dict[str, Any] = {}
    hashes = dict(pin.link.hashes)
    if hashes:
        algo = "sha256" if "sha256" in hashes else sorted(hashes)[0]
        archive["hash"] = f"{algo}={hashes[algo]}"
        archive["hashes"] = hashes
    return {"url": url, "archive_info": archive}


def report_item(pin: ResolvedPin) -> dict[str, Any]:
    """One ``InstallationReportItem``."""
    assert pin.link is not None, "kept distributions are not reported"
    item: dict[str, Any] = {
        "download_info": _download_info(pin),
        "is_direct": pin.is_direct,
        "is_yanked": pin.link.yanked is not None,
        "requested": pin.requested,
        "metadata": metadata_to_json(pin.metadata.raw),
    }
    if pin.requested and pin.requested_extras:
        item["requested_extras"] = sorted(pin.requested_extras)
    return item


def build_report(resolution: Resolution, env: Environment | Mapping[str, str]) -> dict[str, Any]:
    """The installation report (version "1") as a JSON-ready dict.

    ``pip_version`` carries inst's own version (``"inst 0.1.0"``): the field is a free string.
    """
    markers = env.markers if isinstance(env, Environment) else env
    return {
        "version": REPORT_VERSION,
        "pip_version": f"inst {__version__}",
        "install": [report_item(p) for p in resolution.pins if p.link is not None],
        "environment": {k: str(v) for k, v in markers.items() if k != "extra"},
    }
