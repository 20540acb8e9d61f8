"""The warm path of ``download_all(for_install=True)``: wheels whose verified unpacked tree is
in the cache are taken without threads, without re-hashing, and their METADATA is checked
against what the resolver used from the tree instead of the ZIP; the check still bites."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from installer.cache import Cache
from installer.download import Downloaded, DownloadItem, MetadataMismatch, download_all
from installer.errors import NetworkError
from installer.models import Link
from installer.wheel import unpack_to_cache
from tests.helpers.wheels import make_wheel, metadata_text, sha256_file, wheel_metadata


def _cached(tmp_path: Path, n: int = 3) -> tuple[Cache, list[Path]]:
    """*n* wheels (pkg0 requires dep) added to a cache, each with its verified unpacked tree."""
    cache = Cache(tmp_path / "cache")
    src = tmp_path / "src"
    src.mkdir()
    cached = []
    for i in range(n):
        wheel = make_wheel(src, f"pkg{i}", "1.0", requires=["dep>=1"] if i == 0 else [],
                           files={f"pkg{i}/__init__.py": f"X = {i}\n"})
        sha = sha256_file(wheel)
        with cache.temp_file() as tmp:
            tmp.write_bytes(wheel.read_bytes())
            path = cache.add_wheel(tmp, sha, wheel.name)
        unpack_to_cache(cache, path, sha)
        cached.append(path)
    return cache, cached


def _item(path: Path, metadata: bytes | None = None) -> DownloadItem:
    link = Link(path.name, f"https://index.invalid/files/{path.name}",
                {"sha256": sha256_file(path)}, metadata_hashes={})
    return DownloadItem(link, metadata=metadata)


def test_all_cached_needs_no_thread_and_no_client(tmp_path: Path) -> None:
    cache, paths = _cached(tmp_path)
    items = [_item(p, wheel_metadata(p)) for p in paths]
    seen: list[tuple[str, str]] = []
    before = threading.active_count()
    got = download_all(items, cache=cache, client=None, concurrency=8, for_install=True,
                       on_file=lambda d: seen.append((d.link.filename,
                                                      threading.current_thread().name)))
    assert [(d.path, d.from_cache) for d in got] == [(p, True) for p in paths]
    assert seen == [(p.name, threading.main_thread().name) for p in paths]
    assert threading.active_count() == before


def test_cached_wheel_without_tree_still_goes_through_the_full_check(tmp_path: Path) -> None:
    cache, paths = _cached(tmp_path, n=2)
    os.remove(cache.unpacked_dir(sha256_file(paths[1])) / "verified.json")
    items = [_item(p) for p in paths]
    got = download_all(items, cache=cache, client=None, concurrency=8, for_install=True)
    assert [d.from_cache for d in got] == [True, True]  # the second one re-hashed
    paths[1].write_bytes(b"garbage")  # no tree to vouch for it: the hash check catches it
    with pytest.raises(NetworkError) as info:
        download_all(items, cache=cache, client=None, for_install=True)
    assert info.value.message.startswith("no network client to download with")
    assert not paths[1].exists()  # the bad entry was deleted


def test_error_metadata_mismatch_from_the_cached_tree(tmp_path: Path) -> None:
    cache, paths = _cached(tmp_path)
    lie = metadata_text("pkg0", "1.0").encode()  # leaves out Requires-Dist: dep>=1
    items = [_item(p, wheel_metadata(p)) for p in paths]
    items[0] = _item(paths[0], lie)
    with pytest.raises(MetadataMismatch) as info:
        download_all(items, cache=cache, client=None, for_install=True)
    assert info.value.message == (
        "pkg0-1.0-py3-none-any.whl: the wheel's METADATA disagrees with the metadata file the "
        "index served (Requires-Dist): https://index.invalid/files/pkg0-1.0-py3-none-any.whl")


def test_metadata_is_read_from_the_tree_not_the_zip(tmp_path: Path) -> None:
    # The installer never reads a wheel whose tree is cached again, so neither does the check:
    # with the cached wheel's bytes destroyed, the tree still answers both ways.
    cache, paths = _cached(tmp_path, n=1)
    good = _item(paths[0], wheel_metadata(paths[0]))
    lying = _item(paths[0], metadata_text("pkg0", "1.0").encode())
    paths[0].write_bytes(b"not a zip any more")
    [got] = download_all([good], cache=cache, client=None, for_install=True)
    assert got.from_cache and got.path == paths[0]
    with pytest.raises(MetadataMismatch):
        download_all([lying], cache=cache, client=None, for_install=True)


def test_tree_metadata_changed_after_verification_falls_back_to_the_wheel(
        tmp_path: Path) -> None:
    # A tree file edited in place (e.g. through a hard link from an environment) is newer than
    # the marker: the check must not trust it and reads the wheel's own METADATA instead.
    cache, paths = _cached(tmp_path, n=1)
    lie = metadata_text("pkg0", "1.0").encode()
    sha = sha256_file(paths[0])
    tree_meta = cache.unpacked_dir(sha) / "tree" / "pkg0-1.0.dist-info" / "METADATA"
    assert tree_meta.read_bytes() == wheel_metadata(paths[0])
    time.sleep(0.01)
    tree_meta.write_bytes(lie)
    future = time.time_ns() + 10**9  # strictly newer than the marker, whatever the clock tick
    os.utime(tree_meta, ns=(future, future))
    assert cache.unpacked_metadata(sha, "pkg0") is None
    with pytest.raises(MetadataMismatch):
        download_all([_item(paths[0], lie)], cache=cache, client=None, for_install=True)


def test_unpacked_metadata(tmp_path: Path) -> None:
    cache, paths = _cached(tmp_path, n=1)
    sha = sha256_file(paths[0])
    assert cache.unpacked_metadata(sha, "pkg0") == wheel_metadata(paths[0])
    assert cache.unpacked_metadata(sha, "other") is None
    assert cache.unpacked_metadata("0" * 64, "pkg0") is None
    assert cache.unpacked_metadata("not-hex", "pkg0") is None


def test_mixed_hits_and_misses_keep_the_order(tmp_path: Path) -> None:
    cache, paths = _cached(tmp_path, n=3)
    os.remove(cache.unpacked_dir(sha256_file(paths[1])) / "verified.json")
    files: list[Downloaded] = []
    got = download_all([_item(p) for p in paths], cache=cache, client=None, concurrency=4,
                       for_install=True, on_file=files.append)
    assert [d.path for d in got] == paths
    assert sorted(d.path for d in files) == sorted(paths)
