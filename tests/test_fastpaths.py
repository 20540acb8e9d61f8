"""The install hot path's shortcuts keep their promises: "already satisfied" without the index,
in-place creation of new files (hard links into the cache tree) and parallel unpacking."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from installer._record import replace
from installer.cache import Cache
from installer.errors import WheelError
from installer.models import Environment
from installer.reqfile import parse_args, parse_requirement
from installer.resolver import ResolveOptions, resolve, resolve_installed
from installer.txn import Transaction, check_environment, installed_distributions
from installer.wheel import record_hash
from tests.helpers.install_env import make_venv, tree_digest
from tests.helpers.resolver_index import RecordingIndex, build_index, installed_dist, make_env
from tests.helpers.wheels import make_wheel, sha256_file

INDEX = {"a": [{"version": "1.0", "requires": ["b>=1"]}, {"version": "2.0", "requires": ["b"]}],
         "b": ["1.0", "2.0"]}


def _installed(tmp_path: Path, b_version: str = "1.0") -> Environment:
    return make_env(installed=[installed_dist(tmp_path, "a", "1.0", ["b>=1"]),
                               installed_dist(tmp_path, "b", b_version)])


def _resolve(env: Environment, args: list[str], constraints: list[str] = (),  # type: ignore[assignment]
             **options: Any) -> tuple[Any, RecordingIndex]:
    index = RecordingIndex(build_index(INDEX))
    cons = [replace(parse_requirement(c, source="c.txt:1"), is_constraint=True,
                    user_supplied=False) for c in constraints]
    return resolve(parse_args(args), cons, index, env, ResolveOptions(**options)), index


def test_satisfied_requirements_never_touch_the_index(tmp_path: Path) -> None:
    env = _installed(tmp_path)
    res, index = _resolve(env, ["a"])
    assert [(p.name, p.version, p.action, p.requested) for p in res] == [
        ("b", "1.0", "keep", False), ("a", "1.0", "keep", True)]
    assert (index.page_requests, index.prefetched, index.metadata_reads) == (0, [], [])


@pytest.mark.parametrize(("args", "constraints", "options"), [
    (["a>=2"], [], {}),                    # installed a does not satisfy
    (["a"], ["b>=2"], {}),                 # a constraint rules out the installed b
    (["a", "c"], [], {}),                  # c is not installed
    (["a"], [], {"upgrade": True}),
    (["a"], [], {"force_reinstall": True}),
], ids=["not-satisfied", "constraint", "missing", "upgrade", "force-reinstall"])
def test_anything_unsatisfied_falls_back_to_the_resolver(
        tmp_path: Path, args: list[str], constraints: list[str], options: dict[str, Any]) -> None:
    env = _installed(tmp_path)
    cons = [replace(parse_requirement(c, source="c.txt:1"), is_constraint=True,
                    user_supplied=False) for c in constraints]
    assert resolve_installed(parse_args(args), cons, env, ResolveOptions(**options)) is None


def test_a_missing_dependency_of_an_installed_dist_is_fetched(tmp_path: Path) -> None:
    env = make_env(installed=[installed_dist(tmp_path, "a", "1.0", ["b>=1"])])
    res, index = _resolve(env, ["a"])
    assert {p.name: p.action for p in res} == {"a": "keep", "b": "install"}
    assert index.page_requests > 0


def test_new_files_are_hard_links_into_the_cache_tree(tmp_path: Path) -> None:
    env = make_venv(tmp_path / "venv")
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "X = 1\n"})
    cache = Cache(tmp_path / "cache")
    with Transaction(env, cache) as txn:
        txn.install(wheel)
    target = Path(env.paths["purelib"]) / "demo" / "__init__.py"
    (tree,) = (cache.root / "unpacked").glob("*/tree")
    assert os.path.samefile(target, tree / "demo" / "__init__.py")
    assert check_environment(env) == []


def test_prepare_unpacks_in_parallel_and_errors_stay_with_their_wheel(tmp_path: Path) -> None:
    env = make_venv(tmp_path / "venv")
    good = [make_wheel(tmp_path, f"p{i}", "1.0", files={f"p{i}/__init__.py": f"I = {i}\n"})
            for i in range(5)]
    bad = make_wheel(tmp_path, "q", "1.0", files={"q/__init__.py": "x"},
                     record_overrides={"q/__init__.py": "sha256=AAAA"})
    before = tree_digest(Path(env.prefix))
    with pytest.raises(WheelError) as exc, Transaction(env, Cache(tmp_path / "c")) as txn:
        txn.prepare([(w, None) for w in [*good, bad]])
        for wheel in good:
            txn.install(wheel)
        txn.install(bad)
    assert exc.value.wheel == bad.name and "hash does not match RECORD" in str(exc.value)
    assert tree_digest(Path(env.prefix)) == before  # rolled back: nothing installed
    with Transaction(env, Cache(tmp_path / "c")) as txn:
        txn.prepare([(w, None) for w in good])
        for wheel in good:
            txn.install(wheel)
    assert sorted(d.name for d in installed_distributions(env)) == [f"p{i}" for i in range(5)]
    assert check_environment(env) == []


def test_install_only_lookups_skip_rehashing_but_downloads_still_verify(tmp_path: Path) -> None:
    env = make_venv(tmp_path / "venv")
    cache = Cache(tmp_path / "cache")
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "X = 1\n"})
    sha = sha256_file(wheel)
    with cache.temp_file() as tmp:
        tmp.write_bytes(wheel.read_bytes())
        cached = cache.add_wheel(tmp, sha, wheel.name)
    assert cache.get_wheel_for_install(sha, wheel.name) == cached  # no tree yet: re-hashed
    with Transaction(env, cache) as txn:
        txn.install(cached, sha256=sha)
    cached.write_bytes(b"corrupted")  # the tree stays verified; the wheel no longer is
    assert cache.get_wheel_for_install(sha, wheel.name) == cached
    assert cache.get_wheel(sha, wheel.name) is None  # what `inst download` hands out


_PREPARE_SCRIPT = """
import os, sys, threading
from pathlib import Path
from installer.cache import Cache
from installer.environment import query_environment
from installer.errors import WheelError
from installer.txn import Transaction
python, cache, *wheels = sys.argv[1:]
env = query_environment(Path(python), None)
assert threading.active_count() == 1
try:
    with Transaction(env, Cache(Path(cache))) as txn:
        txn.prepare([(Path(w), None) for w in wheels])
        # the worker processes ran (one CPU: install() unpacks one by one)
        assert len(txn._ready) == (len(wheels) if (os.cpu_count() or 1) > 1 else 0)
        for w in wheels:
            txn.install(Path(w))
except WheelError as exc:
    print("WheelError:", exc)
"""


def test_prepare_in_worker_processes_keeps_each_wheels_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = make_venv(tmp_path / "venv")
    good = [make_wheel(tmp_path, f"p{i}", "1.0", files={f"p{i}/__init__.py": f"I = {i}\n"})
            for i in range(3)]
    bad = make_wheel(tmp_path, "q", "1.0", files={"q/__init__.py": "x"},
                     record_overrides={"q/__init__.py": "sha256=AAAA"})
    before = tree_digest(Path(env.prefix))
    root = Path(__file__).resolve().parents[1]
    run = [sys.executable, "-c", _PREPARE_SCRIPT, str(env.python), str(tmp_path / "c")]
    proc = subprocess.run([*run, *map(str, [*good, bad])], capture_output=True, text=True,
                          cwd=root, check=True)
    assert proc.stdout.startswith(f"WheelError: {bad.name}: hash does not match RECORD")
    assert tree_digest(Path(env.prefix)) == before
    subprocess.run([*run, *map(str, good)], capture_output=True, text=True, cwd=root, check=True)
    assert sorted(d.name for d in installed_distributions(env)) == ["p0", "p1", "p2"]
    assert check_environment(env) == []


# -- unpacking while downloading (UnpackPool), the direct member reader --------------------

_POOL_SCRIPT = """
import sys, threading
from pathlib import Path
from installer.cache import Cache
from installer.environment import query_environment
from installer.errors import WheelError
from installer.txn import Transaction
from installer.unpackpool import UnpackPool
python, cache, *wheels = sys.argv[1:]
env = query_environment(Path(python), None)
cache = Cache(Path(cache))
pool = UnpackPool.start(cache)
assert pool is not None
futures = [pool.submit(Path(w), None) for w in reversed(wheels)]  # "downloaded" last first
assert all(f is not None for f in futures)
try:
    with Transaction(env, cache) as txn:
        txn.prepare([(Path(w), None) for w in wheels], pool)
        assert len(txn._ready) == len(wheels)  # all were already handed to the pool
        for w in wheels:
            txn.install(Path(w))
        pool.close()
except WheelError as exc:
    print("WheelError:", exc)
pool.close()
print("done")
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or os.uname().sysname != "Linux",
                    reason="the pool needs fork and two CPUs")
def test_overlapped_unpack_raises_the_first_failing_wheel_in_install_order(
        tmp_path: Path) -> None:
    import subprocess
    import sys

    env = make_venv(tmp_path / "venv")
    good = [make_wheel(tmp_path, f"p{i}", "1.0", files={f"p{i}/__init__.py": f"I = {i}\n"})
            for i in range(3)]
    bad1 = make_wheel(tmp_path, "q", "1.0", files={"q/__init__.py": "x"},
                      record_overrides={"q/__init__.py": "sha256=AAAA"})
    bad2 = make_wheel(tmp_path, "r", "1.0", files={"r/__init__.py": "y"},
                      record_overrides={"r/__init__.py": "sha256=BBBB"})
    before = tree_digest(Path(env.prefix))
    root = Path(__file__).resolve().parents[1]
    run = [sys.executable, "-c", _POOL_SCRIPT, str(env.python), str(tmp_path / "c")]
    # bad2 is submitted (and fails in its worker) before bad1; bad1 comes first to install.
    order = [good[0], bad1, good[1], bad2, good[2]]
    proc = subprocess.run([*run, *map(str, order)], capture_output=True, text=True, cwd=root,
                          check=True, timeout=120)
    assert proc.stdout.splitlines() == [
        f"WheelError: {bad1.name}: hash does not match RECORD (RECORD sha256=AAAA, file "
        f"{record_hash(b'x')}) (entry 'q/__init__.py')", "done"], proc.stderr
    assert tree_digest(Path(env.prefix)) == before  # byte-identical: nothing installed
    proc = subprocess.run([*run, *map(str, good)], capture_output=True, text=True, cwd=root,
                          check=True, timeout=120)
    assert proc.stdout.splitlines() == ["done"], proc.stderr
    assert sorted(d.name for d in installed_distributions(env)) == ["p0", "p1", "p2"]
    assert check_environment(env) == []


_ORPHAN_SCRIPT = """
import os, signal, sys
from pathlib import Path
from installer.cache import Cache
from installer.unpackpool import UnpackPool
pool = UnpackPool.start(Cache(Path(sys.argv[1])))
assert pool is not None
print(" ".join(str(p) for p in pool._executor._processes), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or os.uname().sysname != "Linux",
                    reason="the pool needs fork and two CPUs")
def test_unpack_workers_exit_when_inst_is_killed(tmp_path: Path) -> None:
    """kill -9 during the downloads must not leave worker processes behind (holding the
    terminal's or a test's pipes open)."""
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", _ORPHAN_SCRIPT, str(tmp_path / "c")],
                          capture_output=True, text=True, cwd=root, timeout=60)
    assert proc.returncode == -9
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) >= 2

    def alive(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rpartition(")")[2].split()[0] != "Z"

    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)


def _patch_member(wheel: Path, name: str, patch: Any) -> Path:
    """Rewrite the raw (compressed) bytes of member *name* with patch(raw) of the same size,
    keeping the central directory as it was."""
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo(name)
    data = bytearray(wheel.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw = bytes(data[start:start + info.compress_size])
    new = patch(raw)
    assert len(new) == len(raw)
    data[start:start + len(raw)] = new
    wheel.write_bytes(bytes(data))
    return wheel


def _set_flag(wheel: Path, bit: int) -> Path:
    """Set general-purpose flag *bit* on every entry (local headers and central directory)."""
    data = bytearray(wheel.read_bytes())
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.find(sig)
        while i >= 0:
            data[i + off] |= bit
            i = data.find(sig, i + 4)
    wheel.write_bytes(bytes(data))
    return wheel


W = "demo-1.0-py3-none-any.whl"


@pytest.mark.parametrize("patch", [
    lambda raw: raw[:-1] + bytes([raw[-1] ^ 0x01]),
    lambda raw: raw[:8] + bytes(len(raw) - 8),
    lambda raw: bytes(len(raw)),
], ids=["flipped-bit", "zeroed-tail", "zeroed"])
def test_corrupt_member_data_is_refused(tmp_path: Path, patch: Any) -> None:
    """Data that does not inflate, or inflates to something else than the central directory's
    CRC-32 and size: refused as corrupt by both validate_wheel and unpack_wheel."""
    from installer.wheel import unpack_wheel, validate_wheel

    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/data.txt": "hello " * 50})
    _patch_member(wheel, "demo/data.txt", patch)
    (tmp_path / "out").mkdir()
    for check in (validate_wheel, lambda w: unpack_wheel(w, tmp_path / "out")):
        with pytest.raises(WheelError) as exc:
            check(wheel)
        text = str(exc.value)
        assert text.startswith(f"{W}: archive member is corrupt (")
        assert text.endswith(" (entry 'demo/data.txt')")


def test_error_encrypted_member(tmp_path: Path) -> None:
    from installer.wheel import validate_wheel

    wheel = _set_flag(make_wheel(tmp_path, "demo", "1.0", files={"demo/a.py": "a"}), 0x01)
    with pytest.raises(WheelError) as exc:
        validate_wheel(wheel)
    assert str(exc.value) == f"{W}: archive member is encrypted (entry 'demo/a.py')"


def test_error_member_longer_than_central_directory_says(tmp_path: Path) -> None:
    """A deflated member that inflates past its declared size is refused at the size, not
    inflated to the end (a bomb with a lying central directory)."""
    import struct
    import zipfile
    import zlib

    from installer.wheel import unpack_wheel

    big = b"\0" * (3 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = comp.compress(big) + comp.flush()
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/z.bin": big})
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("demo/z.bin")
    assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size == len(raw)
    data = bytearray(wheel.read_bytes())
    # Declare 1 MiB (and that prefix's CRC) in both headers; the data inflates to 3 MiB.
    small, crc = 1 << 20, zlib.crc32(big[:1 << 20])
    local = info.header_offset
    struct.pack_into("<III", data, local + 14, crc, info.compress_size, small)
    central = data.find(b"PK\x01\x02" + data[local + 4:local + 10])
    while data[central + 46:central + 46 + 10] != b"demo/z.bin":
        central = data.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<III", data, central + 16, crc, info.compress_size, small)
    wheel.write_bytes(bytes(data))
    (tmp_path / "out").mkdir()
    with pytest.raises(WheelError) as exc:
        unpack_wheel(wheel, tmp_path / "out")
    assert str(exc.value) == (f"{W}: archive member is corrupt (longer than the central "
                              "directory says) (entry 'demo/z.bin')")


def test_unpacked_marker_lists_what_a_walk_finds(tmp_path: Path) -> None:
    """unpack_wheel's own file list (fstat while writing) is what the cache's walk of the tree
    would record: multi-block members, stored and deflated, folders and top-level files."""
    import random
    import zipfile

    from installer.cache import _tree_state
    from installer.wheel import unpack_wheel, validate_wheel

    noise = random.Random(7).randbytes(3 << 20)  # incompressible: several read blocks
    wheel = make_wheel(tmp_path, "demo", "1.0", files={
        "demo/__init__.py": "X = 1\n", "demo/sub/deep/noise.bin": noise,
        "demo/zeros.bin": bytes(5 << 20), "top.py": "", "demo-1.0.data/scripts/tool": "#!python\n"})
    with zipfile.ZipFile(wheel) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    files: dict[str, list[int]] = {}
    out = tmp_path / "out"
    out.mkdir()
    info = unpack_wheel(wheel, out, files)
    assert files == _tree_state(out)
    assert (out / "demo" / "sub" / "deep" / "noise.bin").read_bytes() == noise
    assert (out / "demo" / "zeros.bin").stat().st_size == 5 << 20
    assert validate_wheel(wheel) == info


def test_download_hashes_only_what_it_checks_and_still_checks_sha512(tmp_path: Path) -> None:
    import hashlib

    from installer.download import DownloadItem, download_one
    from installer.errors import HashMismatch
    from installer.models import Link

    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": "X = 1\n"})
    digest = hashlib.sha512(wheel.read_bytes()).hexdigest()
    cache = Cache(tmp_path / "cache")
    link = Link(wheel.name, str(wheel))
    got = download_one(DownloadItem(link, allowed={"sha512": frozenset({digest})}),
                       cache=cache, client=None)
    assert got.sha256 == sha256_file(wheel)
    with pytest.raises(HashMismatch):
        download_one(DownloadItem(link, allowed={"sha512": frozenset({"0" * 128})}),
                     cache=cache, client=None)
