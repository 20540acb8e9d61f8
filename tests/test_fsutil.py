"""installer.fsutil: atomic writes and file: URLs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from installer.fsutil import atomic_write, path_from_file_url


def test_file_url_is_decoded_exactly_once() -> None:
    assert path_from_file_url("file:///tmp/a%20b/x%2525.whl") == Path("/tmp/a b/x%25.whl")


def test_atomic_write_replaces_and_sets_mode(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    atomic_write(target, b"new", mode=0o640)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_no_op_path_modules_do_not_import_ssl() -> None:
    # The satisfied-install path imports these; ssl (via urllib.request) costs ~15 ms.
    code = ("import sys, installer.resolver, installer.txn, installer.index, installer.download;"
            "print('ssl' in sys.modules, 'urllib.request' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
