"""Validate and unpack wheels (wheel spec 1.0).

Validation happens before anything is written to the environment: ZIP structure (local headers
vs central directory, duplicates, overlaps, compression, sizes), every member name, the
.dist-info and WHEEL/METADATA/RECORD, and every file's hash and size against RECORD (checked
while the wheel is unpacked into the cache). Installing into an environment is
:mod:`installer.txn`.

Public API::

    validate_wheel(path) -> WheelInfo
    unpack_wheel(path, dest, files=None) -> WheelInfo     # verified extraction
    unpack_to_cache(cache, wheel, sha256=None) -> (WheelInfo, Path)

Worker processes that unpack while the caller downloads: :mod:`installer.unpackpool`.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import mmap
import os
import posixpath
import re
import shutil
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from installer.cache import Cache, sha256_of
from installer.errors import WheelError
from installer.models import canonical, metadata_headers

#: A member bigger than this *and* MAX_RATIO times its compressed size is refused.
RATIO_MIN_SIZE = 100 * 1024 * 1024
MAX_RATIO = 100
#: Total uncompressed size cap of one wheel.
MAX_TOTAL_SIZE = 4 * 1024 * 1024 * 1024
DATA_KEYS = ("purelib", "platlib", "scripts", "headers", "data")
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")
GENERATED_FILES = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json", *_SIGNATURES)
_STRONG_HASHES = ("sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b")
_RESERVED_SCRIPT = re.compile(
    r"^((python|pythonw|pypy|pypyw)[0-9.]*[tw]?|activate(\..*)?|deactivate(\..*)?)$"
)
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# A name made of plain segments (ASCII word characters and a few marks, not starting with a
# dot, none empty) is safe and already normalized; anything else takes the full checks.
_PLAIN_NAME = re.compile(r"[\w+~@=-][\w.+~@=-]*(?:/[\w+~@=-][\w.+~@=-]*)*", re.ASCII)
_DRIVE = re.compile(r"[A-Za-z]:")
#: Members are read, inflated and hashed in blocks of this size.
_BLOCK = 1 << 20


class RecordEntry(NamedTuple):
    """One RECORD row: path (as in the archive), ``algo=digest`` (or ""), size (or None).

    A NamedTuple, not a dataclass: a warm install rebuilds ~7,800 of them from the cache's
    markers, and a tuple is made in a third of the time."""

    path: str
    hash: str
    size: int | None


@dataclass(frozen=True)
class WheelInfo:
    """What a validated wheel is: names, layout, RECORD and non-fatal warnings."""

    filename: str
    name: str  # display name from METADATA
    version: str
    dist_info: str  # "demo-1.0.dist-info"
    root_is_purelib: bool
    wheel_version: str
    records: tuple[RecordEntry, ...]
    warnings: tuple[str, ...] = ()

    @property
    def project(self) -> str:
        """The PEP 503 normalized project name."""
        return canonical(self.name)

    @property
    def data_dir(self) -> str:
        """The ``<name>-<version>.data`` folder name."""
        return self.dist_info[: -len(".dist-info")] + ".data"

    def to_json(self) -> dict[str, object]:
        """A JSON-able form (stored in the unpacked-tree marker)."""
        return {
            "filename": self.filename, "name": self.name, "version": self.version,
            "dist_info": self.dist_info, "root_is_purelib": self.root_is_purelib,
            "wheel_version": self.wheel_version, "warnings": list(self.warnings),
            "records": [[r.path, r.hash, r.size] for r in self.records],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> WheelInfo:
        """Inverse of :meth:`to_json`."""
        records = tuple(RecordEntry(str(p), str(h), s) for p, h, s in data["records"])  # type: ignore[attr-defined]
        return cls(
            filename=str(data["filename"]), name=str(data["name"]),
            version=str(data["version"]), dist_info=str(data["dist_info"]),
            root_is_purelib=bool(data["root_is_purelib"]),
            wheel_version=str(data["wheel_version"]),
            records=records, warnings=tuple(data.get("warnings", ())),  # type: ignore[arg-type]
        )


# -- names ---------------------------------------------------------------------------------


def check_member_name(wheel: str, name: str) -> str:
    """Return the normalized archive path of *name*, or raise WheelError if it is unsafe."""
    if _PLAIN_NAME.fullmatch(name):
        return name
    if not name or _CONTROL.search(name):
        raise WheelError(wheel, "archive member name has control characters", entry=name)
    if "\\" in name:
        raise WheelError(wheel, "archive member name contains a backslash", entry=name)
    if name.startswith("/") or _DRIVE.match(name):
        raise WheelError(wheel, "archive member has an absolute path", entry=name)
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        raise WheelError(wheel, "archive member path contains '..'", entry=name)
    norm = posixpath.normpath(name)
    if norm.startswith(("/", "..")) or norm == ".":
        raise WheelError(wheel, "archive member path escapes the target", entry=name)
    return norm


def check_script_name(wheel: str, name: str, what: str) -> None:
    bad = (
        not name or name in (".", "..") or "/" in name or "\\" in name
        or _CONTROL.search(name) is not None or name.startswith("-")
    )
    if bad:
        raise WheelError(wheel, f"{what} name is not a plain file name", entry=name)
    stem = name.lower()
    stem = stem[:-4] if stem.endswith((".exe", ".bat", ".cmd")) else stem
    if _RESERVED_SCRIPT.match(stem):
        raise WheelError(wheel, f"{what} would replace the environment's own {name!r}",
                         entry=name)


def parse_wheel_filename(filename: str) -> tuple[str, str, str]:
    """(name, version, tag) of a wheel file name; ValueError when malformed."""
    if not filename.endswith(".whl"):
        raise ValueError("not a .whl file")
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6) or not all(parts):
        raise ValueError("expected name-version(-build)?-python-abi-platform.whl")
    return parts[0], parts[1], "-".join(parts[-3:])


def _same_version(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


# -- ZIP structure -------------------------------------------------------------------------


def _check_zip(wheel: str, zf: zipfile.ZipFile, data: memoryview) -> tuple[
        dict[str, zipfile.ZipInfo], dict[int, int]]:
    """Structural checks; returns normalized name -> ZipInfo for file members, and each
    member's data offset (by header offset, from :func:`_check_local_headers`)."""
    infos = zf.infolist()
    starts = _check_local_headers(wheel, infos, data)
    seen: dict[str, zipfile.ZipInfo] = {}
    folded: dict[str, str] = {}
    total = 0
    for info in infos:
        name = info.filename
        if not info.flag_bits & 0x800 and not name.isascii():
            raise WheelError(wheel, "archive member name is not marked as UTF-8", entry=name)
        norm = check_member_name(wheel, name)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise WheelError(wheel, "archive member is a symbolic link", entry=name)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise WheelError(wheel, "archive member is not a regular file", entry=name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise WheelError(wheel, "archive member uses an unsupported compression method",
                             entry=name)
        if info.flag_bits & 0x41:  # traditional or strong encryption
            raise WheelError(wheel, "archive member is encrypted", entry=name)
        if info.flag_bits & 0x20:
            raise WheelError(wheel, "archive member uses compressed patched data",
                             entry=name)
        if name.endswith("/") or kind == stat.S_IFDIR:
            continue
        if norm in seen:
            raise WheelError(wheel, "archive has duplicate entries", entry=name)
        key = unicodedata.normalize("NFC", norm).casefold()
        if key in folded:
            raise WheelError(
                wheel, f"archive member names collide after case or Unicode normalization "
                f"with {folded[key]!r}", entry=name)
        folded[key] = name
        if info.file_size > RATIO_MIN_SIZE and info.file_size > MAX_RATIO * max(
                info.compress_size, 1):
            raise WheelError(wheel, "archive member has a suspicious compression ratio "
                             f"({info.file_size} bytes from {info.compress_size})", entry=name)
        total += info.file_size
        if total > MAX_TOTAL_SIZE:
            raise WheelError(wheel, f"archive expands to more than {MAX_TOTAL_SIZE} bytes",
                             entry=name)
        seen[norm] = info
    return seen, starts


def _check_local_headers(wheel: str, infos: list[zipfile.ZipInfo],
                         data: memoryview) -> dict[int, int]:
    """Each central-directory entry must match its local header; entries must not overlap.
    Returns header offset -> offset of the member's data (what :func:`_extract` reads).
    *data* is the whole archive (mapped, not read)."""
    end_prev, prev_name = 0, ""
    starts: dict[int, int] = {}
    for info in sorted(infos, key=lambda i: i.header_offset):
        central = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        offset = info.header_offset
        head = bytes(data[offset: offset + _LOCAL_HEADER.size + len(central)])
        if len(head) < _LOCAL_HEADER.size:
            raise WheelError(wheel, "archive local header is truncated", entry=info.filename)
        sig, _ver, flags, method, _t, _d, crc, csize, usize, nlen, elen = \
            _LOCAL_HEADER.unpack_from(head)
        local_name = head[_LOCAL_HEADER.size:_LOCAL_HEADER.size + nlen]
        if sig != b"PK\x03\x04" or nlen != len(central) or local_name != central or \
                method != info.compress_type:
            raise WheelError(wheel, "archive central directory and local header disagree",
                             entry=info.filename)
        if not flags & 0x08 and (crc, csize, usize) != (
                info.CRC, info.compress_size, info.file_size):
            raise WheelError(wheel, "archive central directory and local header disagree",
                             entry=info.filename)
        if offset < end_prev:
            raise WheelError(wheel, f"archive entries overlap ({prev_name!r})",
                             entry=info.filename)
        starts[offset] = offset + _LOCAL_HEADER.size + nlen + elen
        end_prev = starts[offset] + info.compress_size
        prev_name = info.filename
    return starts


# -- metadata ------------------------------------------------------------------------------


def _read_small(wheel: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > 16 * 1024 * 1024:
        raise WheelError(wheel, "metadata file is too large", entry=info.filename)
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WheelError(wheel, f"archive member is corrupt ({exc})", entry=info.filename) \
            from exc


def _find_dist_info(wheel: str, names: Iterable[str], name: str, version: str) -> str:
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    dist_infos = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(dist_infos) != 1:
        found = ", ".join(dist_infos) or "none"
        raise WheelError(wheel, f"expected exactly one .dist-info directory, found {found}")
    dist_info = dist_infos[0]
    di_name, sep, di_version = dist_info[: -len(".dist-info")].partition("-")
    if not sep or canonical(di_name) != canonical(name) or not _same_version(di_version,
                                                                             version):
        raise WheelError(wheel, "the .dist-info directory does not match the file name",
                         entry=dist_info)
    data_dir = dist_info[: -len(".dist-info")] + ".data"
    for top in tops:
        if top.endswith(".data") and top != data_dir:
            raise WheelError(wheel, "unexpected .data directory", entry=top)
    return dist_info


def _parse_wheel_file(wheel: str, text: bytes, entry: str) -> tuple[str, bool, list[str]]:
    msg = metadata_headers(text)
    version = (msg.get("wheel-version") or [""])[0].strip()
    m = re.fullmatch(r"(\d+)\.(\d+)", version)
    if not m:
        raise WheelError(wheel, "WHEEL has no valid Wheel-Version", entry=entry)
    warnings = []
    if int(m.group(1)) != 1:
        raise WheelError(wheel, f"unsupported Wheel-Version {version} (inst supports 1.x)",
                         entry=entry)
    if int(m.group(2)) > 0:
        warnings.append(f"{wheel}: Wheel-Version {version} is newer than 1.0; installing anyway")
    purelib = (msg.get("root-is-purelib") or [""])[0].strip().lower() == "true"
    return version, purelib, warnings


def _parse_record(wheel: str, text: bytes, entry: str) -> tuple[RecordEntry, ...]:
    try:
        rows = list(csv.reader(io.StringIO(text.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise WheelError(wheel, f"RECORD is unreadable ({exc})", entry=entry) from exc
    out: list[RecordEntry] = []
    seen: set[str] = set()
    for row in rows:
        if not row or not any(row):
            continue
        if len(row) != 3:
            raise WheelError(wheel, "RECORD row does not have 3 fields", entry=",".join(row))
        path, digest, size = row
        norm = check_member_name(wheel, path)
        if norm in seen:
            raise WheelError(wheel, "RECORD lists a file twice", entry=path)
        seen.add(norm)
        if digest:
            algo, sep, value = digest.partition("=")
            if not sep or algo not in _STRONG_HASHES or not value:
                raise WheelError(wheel, "RECORD has an unsupported or weak hash", entry=path)
        if size and not size.isdigit():
            raise WheelError(wheel, "RECORD has a bad size", entry=path)
        out.append(RecordEntry(norm, digest, int(size) if size else None))
    return tuple(out)


def _check_record(wheel: str, dist_info: str, records: tuple[RecordEntry, ...],
                  members: Iterable[str]) -> None:
    listed = {r.path: r for r in records}
    exempt = {f"{dist_info}/{n}" for n in ("RECORD", *_SIGNATURES)}
    for name in members:
        if name not in listed and name not in exempt:
            raise WheelError(wheel, "file is not listed in RECORD", entry=name)
    member_set = set(members)
    for rec in records:
        if rec.path not in member_set:
            raise WheelError(wheel, "RECORD lists a file that is not in the archive",
                             entry=rec.path)
        if rec.path not in exempt and (not rec.hash or rec.size is None):
            raise WheelError(wheel, "RECORD entry has no hash or size", entry=rec.path)


def _inspect(path: Path, zf: zipfile.ZipFile, data: memoryview) -> tuple[
        WheelInfo, dict[str, zipfile.ZipInfo], dict[int, int]]:
    wheel = path.name
    try:
        fname, fversion, _tag = parse_wheel_filename(wheel)
    except ValueError as exc:
        raise WheelError(wheel, f"invalid wheel file name ({exc})") from exc
    members, starts = _check_zip(wheel, zf, data)
    dist_info = _find_dist_info(wheel, members, fname, fversion)
    for required in ("WHEEL", "METADATA", "RECORD"):
        if f"{dist_info}/{required}" not in members:
            raise WheelError(wheel, f"{required} is missing", entry=f"{dist_info}/{required}")
    wheel_entry, meta_entry, record_entry = (
        f"{dist_info}/WHEEL", f"{dist_info}/METADATA", f"{dist_info}/RECORD")
    wversion, purelib, warnings = _parse_wheel_file(
        wheel, _read_small(wheel, zf, members[wheel_entry]), wheel_entry)
    meta = metadata_headers(_read_small(wheel, zf, members[meta_entry]))
    mname, mversion = ((meta.get(k) or [""])[0].strip() for k in ("name", "version"))
    if canonical(mname) != canonical(fname) or not _same_version(mversion, fversion):
        raise WheelError(
            wheel, f"METADATA says {mname} {mversion}, which does not match the file name",
            entry=meta_entry)
    records = _parse_record(wheel, _read_small(wheel, zf, members[record_entry]), record_entry)
    _check_record(wheel, dist_info, records, members)
    info = WheelInfo(wheel, mname, mversion, dist_info, purelib, wversion, records,
                     tuple(warnings))
    _check_layout(info, members)
    return info, members, starts


def _check_layout(info: WheelInfo, members: Iterable[str]) -> None:
    prefix = info.data_dir + "/"
    for name in members:
        if not name.startswith(prefix):
            continue
        key, _, rest = name[len(prefix):].partition("/")
        if key not in DATA_KEYS or not rest:
            raise WheelError(info.filename, f"unknown .data directory {key!r}", entry=name)
        if key == "scripts":
            check_script_name(info.filename, posixpath.basename(rest), "script")


# -- content ------------------------------------------------------------------------------


def record_hash(data: bytes, algo: str = "sha256") -> str:
    """``algo=urlsafe-b64-nopad`` as written in RECORD."""
    digest = hashlib.new(algo, data).digest()
    return f"{algo}=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _extract(wheel: str, data: memoryview, info: zipfile.ZipInfo, start: int,
             rec: RecordEntry, out: int | None) -> None:
    """Inflate the member *info* whose bytes begin at *start* in *data* (the mapped archive:
    no read calls, no zipfile stream machinery), check its CRC-32 and size against the
    central directory and its hash and size against RECORD; write it to the file descriptor
    *out*."""
    name = info.filename
    algo = rec.hash.partition("=")[0] if rec.hash else "sha256"
    h = hashlib.new(algo)
    crc = size = 0
    expected = info.file_size
    chunk: bytes | memoryview = data[start: start + info.compress_size]
    block: bytes | memoryview
    if len(chunk) < info.compress_size:
        raise WheelError(wheel, "archive member is corrupt (truncated)", entry=name)
    inflate = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    try:
        while chunk:
            if inflate is None:
                block, chunk = chunk, b""
            else:  # at most one block of output per call: a bomb stops at the size check
                block = inflate.decompress(chunk, _BLOCK)
                chunk = inflate.unconsumed_tail
            size += len(block)
            if size > expected:
                raise WheelError(wheel, "archive member is corrupt (longer than the "
                                 "central directory says)", entry=name)
            crc = zlib.crc32(block, crc)
            h.update(block)
            if out is not None:
                _write_all(out, block)
            if inflate is not None and inflate.eof:
                break
    except (OSError, zlib.error) as exc:
        raise WheelError(wheel, f"archive member is corrupt ({exc})", entry=name) from exc
    if (inflate is not None and info.compress_size and not inflate.eof) or size != expected:
        raise WheelError(wheel, "archive member is corrupt (truncated)", entry=name)
    if crc != info.CRC:
        raise WheelError(wheel, f"archive member is corrupt (bad CRC-32 for {name!r})",
                         entry=name)
    actual = f"{algo}=" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    if rec.hash and actual != rec.hash:
        raise WheelError(wheel, f"hash does not match RECORD (RECORD {rec.hash}, file "
                         f"{actual})", entry=name)
    if rec.size is not None and size != rec.size:
        raise WheelError(wheel, f"size does not match RECORD (RECORD {rec.size}, file {size})",
                         entry=name)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tuple[zipfile.ZipFile, memoryview]]:
    """The wheel as a ZipFile (for its central directory) and as a read-only mapping of the
    whole file (members are inflated straight from it)."""
    with open(path, "rb") as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise WheelError(path.name, f"not a valid ZIP archive ({exc})") from exc
        with zf:
            mapped = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
            view = memoryview(mapped)
            try:
                yield zf, view
            finally:
                view.release()
                # Slices still held by an error's traceback keep the mapping exported; it is
                # unmapped when the last of them goes.
                with contextlib.suppress(BufferError):
                    mapped.close()


def validate_wheel(path: Path) -> WheelInfo:
    """Check everything about the wheel at *path* (structure, names, metadata, every file's
    hash and size against RECORD) without writing anything; raises WheelError."""
    with _opened(path) as (zf, data):
        info, members, starts = _inspect(path, zf, data)
        for rec in info.records:
            zinfo = members[rec.path]
            _extract(path.name, data, zinfo, starts[zinfo.header_offset], rec, None)
    return info


def _make_folders(base: str, names: Iterable[str]) -> None:
    """Create every folder the member *names* need under *base* (which exists), parents
    first, one mkdir each."""
    folders: set[str] = set()
    for name in names:
        parent = posixpath.dirname(name)
        while parent and parent not in folders:
            folders.add(parent)
            parent = posixpath.dirname(parent)
    for folder in sorted(folders):  # a parent sorts before its children
        os.mkdir(base + folder.replace("/", os.sep))


def unpack_wheel(path: Path, dest: Path,
                 files: dict[str, list[int]] | None = None) -> WheelInfo:
    """Validate the wheel and extract it into the empty folder *dest*, verifying every file
    against RECORD as it streams. On error *dest* may hold partial files (callers unpack into
    a temp folder they delete). *files* receives each written file's archive path ->
    ``[size, mtime_ns]`` (the cache's marker format)."""
    with _opened(path) as (zf, data):
        info, members, starts = _inspect(path, zf, data)
        by_path = {r.path: r for r in info.records}
        base = str(dest) + os.sep
        os.makedirs(dest, exist_ok=True)
        _make_folders(base, members)
        for name, zinfo in members.items():
            rec = by_path.get(name) or RecordEntry(name, "", None)
            target = base + name.replace("/", os.sep)  # a checked, normalized member name
            executable = (zinfo.external_attr >> 16) & 0o111
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o755 if executable else 0o644)
            try:
                _extract(path.name, data, zinfo, starts[zinfo.header_offset], rec, fd)
                if files is not None:
                    st = os.fstat(fd)
                    files[name] = [st.st_size, st.st_mtime_ns]
            finally:
                os.close(fd)
    return info


def unpack_to_cache(cache: Cache, wheel: Path, sha256: str | None = None) -> tuple[
        WheelInfo, Path]:
    """The verified unpacked tree of *wheel* in *cache*: found (re-checked by the cache) or
    made now by :func:`unpack_wheel`. Safe to call from several threads and processes."""
    try:
        key = sha256 or sha256_of(wheel)
    except OSError as exc:
        raise WheelError(wheel.name, f"cannot read the wheel ({exc.strerror})") from exc
    hit = cache.get_unpacked(key)
    if hit is not None and hit[1].get("wheel", {}).get("filename") == wheel.name:
        return WheelInfo.from_json(hit[1]["wheel"]), hit[0]
    box: list[WheelInfo] = []

    def build(tree: Path) -> dict[str, object]:
        files: dict[str, list[int]] = {}
        box.append(unpack_wheel(wheel, tree, files))
        return {"wheel": box[0].to_json(), "files": files}

    if hit is not None:
        shutil.rmtree(cache.unpacked_dir(key), ignore_errors=True)
    tree, data = cache.put_unpacked(key, build)
    return (box[0] if box else WheelInfo.from_json(data["wheel"])), tree


LinkMode = Literal["hardlink", "copy", "symlink"]
