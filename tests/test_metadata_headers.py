"""installer.models.metadata_headers answers exactly what the email package does.

The stdlib parser (compat32 policy, which is what inst used before) is the oracle: every case,
real METADATA files of the installed packages included, must give the same fields and values.
"""

from __future__ import annotations

import email.parser
import email.policy
import sys
from pathlib import Path

import pytest

from installer.models import metadata_headers
from installer.resolved import parse_metadata


def _oracle(raw: bytes) -> dict[str, list[str]]:
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    out: dict[str, list[str]] = {}
    for key, value in msg.items():
        out.setdefault(key.lower(), []).append(str(value))
    return out


CASES = [
    b"Metadata-Version: 2.1\nName: a\nVersion: 1\n\nbody\nName: not-a-header\n",
    b"Name: a\r\nVersion: 1\r\nRequires-Dist: b>=1\r\nRequires-Dist: c; extra == 'x'\r\n\r\nB",
    b"Name: a\rVersion: 1\r\rbody",
    b"Name: a\nSummary: one\n  two\n\tthree\nVersion: 2\n",
    b"Name:a\nVersion:\t  3\n",
    b"Name: a\nthis is not a header\nVersion: 1\n",
    b"From someone\nName: a\nVersion: 1\n",
    b"  leading continuation\nName: a\n",
    b"Name: a\nVersion: 1\n \nRequires-Dist: after-blank-continuation\n\nbody",
    b"Name: a\nVersion: 1\n\n\nName: b\n",
    b"",
    b"\nName: a\n",
    b"Name: a\nRequires-Dist: x\nrequires-dist: y\nREQUIRES-DIST: z\n",
    b"Name: a\nKey With Space: v\nVersion: 1\n",
]


@pytest.mark.parametrize("raw", CASES)
def test_same_as_email_parser(raw: bytes) -> None:
    assert metadata_headers(raw) == _oracle(raw)


def _installed_metadata() -> list[Path]:
    site = next(p for p in sys.path if p.endswith("site-packages"))
    return sorted(Path(site).glob("*.dist-info/METADATA"))


def test_same_as_email_parser_on_installed_packages() -> None:
    files = _installed_metadata()
    assert len(files) >= 5  # pytest, trustme, packaging, ... are installed here
    for path in files:
        raw = path.read_bytes()
        if any(b > 127 for b in raw.partition(b"\n\n")[0]):
            continue  # non-ASCII headers: email gives replacement characters, inst UTF-8
        assert metadata_headers(raw) == _oracle(raw), path


def test_parse_metadata_fields() -> None:
    raw = (b"Metadata-Version: 2.1\nName: Foo.Bar\nVersion: 1.0 \nRequires-Python: >=3.8\n"
           b"Requires-Dist: b>=1\nRequires-Dist: c ; extra == 'x'\nProvides-Extra: x\n\n"
           b"Requires-Dist: in-the-body\n")
    meta = parse_metadata(raw)
    assert (meta.name, meta.version, meta.requires_python) == ("Foo.Bar", "1.0", ">=3.8")
    assert meta.requires_dist == ("b>=1", "c ; extra == 'x'")
    assert meta.provides_extra == ("x",)
    assert meta.raw == raw


def test_non_ascii_is_utf8() -> None:
    meta = parse_metadata("Name: a\nVersion: 1\nAuthor: Jürgen\n".encode())
    assert metadata_headers(meta.raw)["author"] == ["Jürgen"]
