"""Install wheels into an environment transactionally (PEP 376/627/610).

Wheels are validated and unpacked by :mod:`installer.wheel` and their files planned by
:mod:`installer.plan`; this module stages them, and commits through a journal that
:func:`recover` finishes or undoes after a crash.

Public API::

    env_lock(env, on_wait=None)                           # context manager, <prefix>/.inst.lock
    recover(env) -> list[str]                             # finish/undo interrupted transactions
    Transaction(env, cache=None, link_mode="hardlink", compile_bytecode=False, on_wait=None)
        .install(wheel, *, requested=True, direct_url=None, sha256=None) -> WheelInfo
        .remove(name) -> InstalledDist | None
        .commit() / .rollback(); use as ``with Transaction(...) as txn:``
    install_wheels(env, wheels, ...) -> InstallResult
    uninstall(env, names, ...) -> list[InstalledDist]
    check_environment(env) -> list[str]
    installed_distributions(env) -> list[InstalledDist]
"""

from __future__ import annotations

import base64
import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from pathlib import Path

from installer.cache import MARKER, Cache
from installer.errors import InstallError, WheelError
from installer.models import Environment, InstalledDist, canonical
from installer.plan import NewFile, generated, install_scheme, plan_wheel, state_root, within
from installer.wheel import (
    LinkMode,
    UnpackPool,
    UnpackResult,
    WheelInfo,
    unpack_to_cache,
)

LOCK_NAME = ".inst.lock"
TXN_PREFIX = ".inst-txn-"
_JOURNAL = "journal.json"
#: Test hook: send this process SIGKILL (or SIGINT with a ":INT" suffix) at a named step
#: ("staged", "journal", "op-<i>", "committed"), so tests can prove that rollback and
#: recover() restore a consistent environment.
CRASH_ENV = "INST_TEST_CRASH_AT"
_INST_DIR = os.path.realpath(os.path.dirname(__file__))


def _env_roots(env: Environment) -> list[str]:
    roots = {os.path.realpath(state_root(env))}
    keys = ("purelib", "platlib", "scripts", "data")
    roots.update(os.path.realpath(env.paths[k]) for k in keys)
    return sorted(roots)


def _crash_point(name: str) -> None:
    point, _, sig = os.environ.get(CRASH_ENV, "").partition(":")
    if point == name:
        os.kill(os.getpid(), signal.SIGINT if sig == "INT" else signal.SIGKILL)


def _site_dirs(env: Environment) -> list[str]:
    out: list[str] = []
    for key in ("purelib", "platlib"):
        path = os.path.normpath(env.paths[key])
        if path not in out:
            out.append(path)
    return out



def _inside_env(path: str, roots: list[str]) -> bool:
    """True when *path* (not following its last component) lies inside the environment."""
    real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    return any(within(real, root) for root in roots)


def _read_dist(dist_info: Path) -> InstalledDist:
    try:
        meta = BytesParser().parsebytes((dist_info / "METADATA").read_bytes(), headersonly=True)
        name, version = str(meta.get("Name") or ""), str(meta.get("Version") or "")
    except OSError:
        name = version = ""
    if not name:
        name, _, version = dist_info.name[: -len(".dist-info")].partition("-")
    try:
        installer: str | None = (dist_info / "INSTALLER").read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        installer = None
    return InstalledDist(canonical(name), name, version, dist_info, installer,
                         (dist_info / "REQUESTED").exists())


def installed_distributions(env: Environment) -> list[InstalledDist]:
    """Every ``*.dist-info`` in the environment's site dirs, read now (not a cached snapshot)."""
    out: list[InstalledDist] = []
    for site in _site_dirs(env):
        with contextlib.suppress(OSError):
            for child in sorted(Path(site).iterdir()):
                if child.name.endswith(".dist-info") and child.is_dir():
                    out.append(_read_dist(child))
    return out


def _record_rows(dist: InstalledDist) -> list[tuple[str, str, str]] | None:
    try:
        text = (dist.dist_info / "RECORD").read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    rows = []
    for row in csv.reader(io.StringIO(text)):
        if row and row[0]:
            rows.append((row[0], row[1] if len(row) > 1 else "", row[2] if len(row) > 2 else ""))
    return rows


def _record_paths(dist: InstalledDist) -> list[str]:
    site = str(dist.dist_info.parent)
    return [os.path.normpath(os.path.join(site, p)) for p, _h, _s in _record_rows(dist) or []]


def _file_hash(path: str, algo: str = "sha256") -> tuple[str, int]:
    h = hashlib.new(algo)
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return f"{algo}=" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode(), size


def check_environment(env: Environment) -> list[str]:
    """Problems in the environment: a dist-info without RECORD, a RECORD file that is missing
    or whose hash/size differs, a leftover transaction. Empty when consistent."""
    problems: list[str] = []
    roots = _env_roots(env)
    problems += [f"unfinished transaction {p}" for p in state_root(env).glob(TXN_PREFIX + "*")]
    for dist in installed_distributions(env):
        rows = _record_rows(dist)
        if rows is None:
            problems.append(f"{dist.display_name} {dist.version}: no RECORD")
            continue
        for rel, digest, size in rows:
            path = os.path.normpath(os.path.join(dist.dist_info.parent, rel))
            if not digest or not _inside_env(path, roots):
                continue
            try:
                actual, actual_size = _file_hash(path, digest.partition("=")[0])
            except (OSError, ValueError):
                problems.append(f"{dist.display_name}: missing {rel}")
                continue
            if actual != digest or (size and int(size) != actual_size):
                problems.append(f"{dist.display_name}: {rel} does not match RECORD")
    return problems


# -- lock and journal ----------------------------------------------------------------------


@contextlib.contextmanager
def env_lock(env: Environment, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive environment lock ``<prefix>/.inst.lock`` (fcntl.flock).

    When another process holds it, ``on_wait(message)`` is called once, then this blocks. The
    lock file is removed on release; a waiter that locked a removed file retries.
    """
    import fcntl

    prefix = state_root(env)
    prefix.mkdir(parents=True, exist_ok=True)
    path = prefix / LOCK_NAME
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None and not waited:
                on_wait(f"waiting for another inst process to finish with {prefix}")
            waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _write_json_atomic(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    # json.dumps runs the C encoder in one go; json.dump to a file iterates in Python.
    text = json.dumps(data, separators=(",", ":"))
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move(src: str, dst: str) -> None:
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copy2(src, dst, follow_symlinks=False)
        os.unlink(src)


def _do_op(op: dict[str, str]) -> None:
    """Apply one journal op; ``create`` ops are applied by the Transaction (it holds the
    file's source or content)."""
    kind, path = op["op"], op["path"]
    if kind == "backup":
        _move(path, op["to"])
    elif kind == "mkdir":
        os.mkdir(path)
    else:
        _move(op["from"], path)


def _undo_ops(ops: list[dict[str, str]]) -> list[str]:
    """Undo *ops* in reverse; idempotent (decides from what exists), so it also serves
    recovery after a crash at any point. Returns the errors it could not fix."""
    errors: list[str] = []
    for op in reversed(ops):
        kind, path = op["op"], op["path"]
        try:
            if kind == "place" and not os.path.lexists(op["from"]) and os.path.lexists(path):
                os.unlink(path)
            elif kind == "create" and os.path.lexists(path):
                # The path did not exist when the journal was written (under the lock), and
                # a file that replaced an existing one is staged and placed instead.
                os.unlink(path)
            elif kind == "mkdir" and os.path.isdir(path):
                with contextlib.suppress(OSError):
                    os.rmdir(path)
            elif kind == "backup" and os.path.lexists(op["to"]):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.replace(op["to"], path)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
    return errors


def _prune_dirs(dirs: Iterable[str]) -> None:
    for path in sorted(set(dirs), key=lambda p: -p.count(os.sep)):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def recover(env: Environment) -> list[str]:
    """Finish (committed) or roll back (uncommitted) transactions left by a killed run.

    Call with :func:`env_lock` held (Transaction does). Returns one line per transaction.
    """
    done: list[str] = []
    for txn in sorted(state_root(env).glob(TXN_PREFIX + "*")):
        try:
            journal = json.loads((txn / _JOURNAL).read_text("utf-8"))
        except (OSError, ValueError):
            journal = None
        if journal and journal.get("state") == "committed":
            _prune_dirs(journal.get("prune", []))
            done.append(f"finished an interrupted install ({txn.name})")
        elif journal:
            errors = _undo_ops(journal.get("ops", []))
            if errors:
                raise InstallError(f"could not roll back {txn}: {errors[0]}")
            done.append(f"rolled back an interrupted install ({txn.name})")
        else:
            done.append(f"discarded an interrupted install that changed nothing ({txn.name})")
        shutil.rmtree(txn, ignore_errors=True)
    return done


def recover_pending(env: Environment, on_wait: Callable[[str], None] | None = None) -> list[str]:
    """Run :func:`recover` under the lock when a killed run left a transaction (cheap no-op
    otherwise). Call it before reading the installed distributions to plan an install: a
    half-applied transaction would otherwise be mistaken for the installed state."""
    if not any(state_root(env).glob(TXN_PREFIX + "*")):
        return []
    with env_lock(env, on_wait):
        return recover(env)


_COMPILE_SCRIPT = r"""
import importlib.util, json, py_compile, sys
jobs = json.load(sys.stdin)
done = {}
for key, (src, dest, out) in jobs.items():
    try:
        py_compile.compile(src, cfile=out, dfile=dest, doraise=True)
    except Exception:
        continue
    done[key] = importlib.util.cache_from_source(dest)
json.dump(done, sys.stdout)
"""


@dataclass
class _WheelPlan:
    info: WheelInfo
    site: str
    # (staged path, file); staged is "" for a file created in place at commit time.
    staged: list[tuple[str, NewFile]]


@dataclass
class InstallResult:
    """What a transaction did (filled in as it goes)."""

    installed: list[WheelInfo] = field(default_factory=list)
    removed: list[InstalledDist] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Transaction:
    """Install and remove a set of distributions atomically.

    ``install``/``remove`` only validate, unpack into the cache and stage files inside
    ``<prefix>/.inst-txn-<id>/``; the environment is untouched until :meth:`commit`, which
    journals every step, moves old files aside, moves the new ones in, and deletes the
    backups. Any error (or KeyboardInterrupt) rolls the whole set back. As a context manager
    it takes the environment lock and runs :func:`recover` on entry, commits on a clean exit
    and rolls back otherwise.
    """

    def __init__(self, env: Environment, cache: Cache | None = None, *,
                 link_mode: LinkMode = "hardlink", compile_bytecode: bool = False,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.env = env
        self.cache = cache
        self.link_mode: LinkMode = link_mode
        self.compile_bytecode = compile_bytecode
        self.on_wait = on_wait
        self.result = InstallResult()
        self._stack = contextlib.ExitStack()
        self._txn: Path | None = None
        self._installed: dict[str, InstalledDist] = {}
        self._plans: list[_WheelPlan] = []
        self._removing: dict[str, InstalledDist] = {}
        self._removals: dict[str, None] = {}
        self._prune: set[str] = set()
        self._counter = 0
        self._roots: list[str] = []
        self._state_root = ""
        self._can_link = True
        self._ops: list[dict[str, str]] = []
        self._applied = 0
        self._creates: dict[str, NewFile] = {}
        # parent folder -> (its realpath, is it a folder); the environment does not change
        # while the lock is held and nothing is applied before commit.
        self._dirs: dict[str, tuple[str, bool]] = {}
        self._ready: dict[tuple[str, str | None], UnpackResult] = {}

    # -- lifecycle --------------------------------------------------------------------------
    def begin(self) -> None:
        """Lock the environment, recover earlier crashes, create the transaction folder."""
        self._stack.enter_context(env_lock(self.env, self.on_wait))
        try:
            self.result.warnings += recover(self.env)
            self._txn = Path(tempfile.mkdtemp(prefix=TXN_PREFIX, dir=state_root(self.env)))
            for sub in ("stage", "backup"):
                (self._txn / sub).mkdir()
            self._installed = {d.name: d for d in installed_distributions(self.env)}
            self._roots = _env_roots(self.env)
            self._state_root = str(state_root(self.env))
            if self.cache is None:
                self.cache = Cache(self._txn / "cache")
        except BaseException:
            self._close()
            raise

    def __enter__(self) -> Transaction:
        self.begin()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._txn is None:
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def _close(self) -> None:
        if self._txn is not None:
            shutil.rmtree(self._txn, ignore_errors=True)
            self._txn = None
        self._stack.close()

    def _require_open(self) -> Path:
        if self._txn is None:
            raise RuntimeError("transaction is not open (use begin() or a with block)")
        return self._txn

    # -- registering changes ----------------------------------------------------------------
    def install(self, wheel: Path, *, requested: bool = True,
                direct_url: Mapping[str, object] | None = None,
                sha256: str | None = None) -> WheelInfo:
        """Validate, unpack and stage *wheel*; an installed version of it will be replaced.

        *direct_url* is the PEP 610 ``direct_url.json`` content for URL/path requirements.
        Raises WheelError (nothing written to the environment).
        """
        self._require_open()
        ready = self._ready.pop((str(wheel), sha256), None)
        try:
            done = ready.result() if ready is not None else None
        except Exception:  # a broken worker pool: unpack here instead
            done = None
        info, tree = done if done is not None else self._unpacked(Path(wheel), sha256)
        if any(p.info.project == info.project for p in self._plans):
            raise WheelError(info.filename, f"{info.name} is already part of this install")
        files = plan_wheel(self.env, info, tree)
        scheme = install_scheme(self.env, info)
        site = scheme["purelib" if info.root_is_purelib else "platlib"]
        files += generated(info, site, requested, direct_url)
        old = self._installed.get(info.project)
        if old is not None and old.name not in self._removing:
            self._remove_dist(old)
        plan = _WheelPlan(info, site, [])
        for nf in files:
            self._check_dest(info, nf.dest)
            plan.staged.append(("", nf))  # created (or staged, if it exists) at commit
        self._plans.append(plan)
        self.result.installed.append(info)
        self.result.warnings += info.warnings
        return info

    def prepare(self, wheels: Iterable[tuple[Path, str | None]],
                pool: UnpackPool | None = None) -> None:
        """Validate and unpack ``(wheel, sha256)`` items into the cache in parallel worker
        processes; :meth:`install` then finds them ready (or waits for them). A wheel that
        failed in a worker is unpacked again by :meth:`install`, which raises its own error.

        With *pool* (started earlier on this transaction's cache, often already busy with
        these wheels) the work goes there and this returns at once. Otherwise a pool is
        started here, biggest wheel first, and this returns when all are done; only on
        Linux, from a single-threaded process (see :class:`UnpackPool`); elsewhere
        :meth:`install` unpacks one by one.
        """
        self._require_open()
        assert self.cache is not None
        cache = self.cache
        todo = [(Path(w), s) for w, s in wheels if (str(w), s) not in self._ready and not (
            s and (cache.unpacked_dir(s) / MARKER).is_file())]  # warm: nothing to unpack
        if pool is not None and pool.cache.root == cache.root:
            self._submit(pool, todo)
            return
        if len(todo) < 2:
            return
        with contextlib.suppress(OSError):
            todo.sort(key=lambda item: -item[0].stat().st_size)
        own = UnpackPool.start(cache, min(len(todo), os.cpu_count() or 1))
        if own is not None:
            with own:
                self._submit(own, todo)

    def _submit(self, pool: UnpackPool, todo: list[tuple[Path, str | None]]) -> None:
        for wheel, sha in todo:
            fut = pool.submit(wheel, sha)
            if fut is not None:
                self._ready[(str(wheel), sha)] = fut

    def remove(self, name: str) -> InstalledDist | None:
        """Schedule the removal of the installed distribution *name* (None if not installed).

        Raises InstallError when it has no RECORD.
        """
        self._require_open()
        dist = self._installed.get(canonical(name))
        if dist is None:
            return None
        if dist.name not in self._removing:
            self._remove_dist(dist)
        return dist

    def _unpacked(self, wheel: Path, sha256: str | None) -> tuple[WheelInfo, Path]:
        assert self.cache is not None
        return unpack_to_cache(self.cache, wheel, sha256)

    def _remove_dist(self, dist: InstalledDist) -> None:
        rows = _record_rows(dist)
        if rows is None:
            raise InstallError(
                f"cannot uninstall {dist.display_name} {dist.version}: no RECORD file in "
                f"{dist.dist_info}",
                hint="it was installed by a tool that does not record its files; "
                "remove it by hand")
        self._removing[dist.name] = dist
        self.result.removed.append(dist)
        paths = _record_paths(dist)
        for dirpath, _dirs, names in os.walk(dist.dist_info):
            paths += [os.path.join(dirpath, n) for n in names]
        for path in paths:
            self._schedule_removal(dist, path)
        self._prune.add(str(dist.dist_info))

    def _schedule_removal(self, dist: InstalledDist, path: str) -> None:
        if not _inside_env(path, self._roots):
            self.result.warnings.append(
                f"{dist.display_name}: not removing {path}: it is outside the environment")
            return
        if not os.path.lexists(path) or (os.path.isdir(path) and not os.path.islink(path)):
            return
        self._removals[path] = None
        parent = os.path.dirname(path)
        if path.endswith(".py"):
            stem = os.path.basename(path)[:-3]
            cache_dir = os.path.join(parent, "__pycache__")
            with contextlib.suppress(OSError):
                for name in os.listdir(cache_dir):
                    if name.startswith(stem + ".") and name.endswith(".pyc"):
                        self._removals[os.path.join(cache_dir, name)] = None
                self._prune.add(cache_dir)
        site_roots = {os.path.normpath(p) for p in self.env.paths.values()}
        while parent not in site_roots and _inside_env(parent, self._roots) and \
                os.path.normpath(parent) != self._state_root:
            self._prune.add(parent)
            parent = os.path.dirname(parent)

    def _dir_info(self, path: str) -> tuple[str, bool]:
        """(realpath, is a folder) of the normalized absolute *path*, from its parent's
        entry: one lstat per existing folder, none below a missing one."""
        hit = self._dirs.get(path)
        if hit is not None:
            return hit
        head, tail = os.path.split(path)
        if not tail or head == path:
            out = (os.path.realpath(path), os.path.isdir(path))
        else:
            real_head, head_is_dir = self._dir_info(head)
            out = (os.path.join(real_head, tail), False)
            if head_is_dir:
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    mode = 0
                if stat.S_ISLNK(mode):
                    out = (os.path.realpath(path), os.path.isdir(path))
                else:
                    out = (out[0], stat.S_ISDIR(mode))
        self._dirs[path] = out
        return out

    def _exists(self, dest: str) -> bool:
        return self._dir_info(os.path.dirname(dest))[1] and os.path.lexists(dest)

    def _check_dest(self, info: WheelInfo, dest: str) -> None:
        parent, name = os.path.split(dest)
        real_parent, parent_is_dir = self._dir_info(parent)
        real = os.path.join(real_parent, name)
        if not any(within(real, root) for root in self._roots):
            raise WheelError(info.filename, "file would be installed outside the environment",
                             entry=os.path.relpath(dest, self._state_root))
        if within(real, _INST_DIR) and info.project != "inst":
            raise WheelError(info.filename, "file would overwrite inst's own files",
                             entry=os.path.relpath(dest, self._state_root))
        if parent_is_dir and os.path.isdir(dest) and not os.path.islink(dest):
            raise WheelError(info.filename, "file would replace a directory",
                             entry=os.path.relpath(dest, self._state_root))

    def _next(self, sub: str) -> str:
        self._counter += 1
        return str(self._require_open() / sub / str(self._counter))

    def _stage(self, nf: NewFile) -> str:
        staged = self._next("stage")
        try:
            if nf.data is not None:
                fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, nf.mode)
                with open(fd, "wb") as f:
                    f.write(nf.data)
            else:
                assert nf.source is not None
                self._link(nf.source, staged)
        except OSError as exc:
            raise InstallError(f"could not stage {nf.dest}: {exc.strerror or exc}") from exc
        return staged

    def _link(self, source: str, staged: str) -> None:
        if self.link_mode == "symlink":
            os.symlink(source, staged)
            return
        if self.link_mode == "hardlink" and self._can_link:
            try:
                os.link(source, staged)
                return
            except OSError:
                self._can_link = False  # EXDEV, EPERM, EMLINK: copy from now on
        shutil.copy2(source, staged)

    def _create(self, nf: NewFile) -> None:
        """Create *nf* at its destination, which did not exist (O_EXCL semantics)."""
        if nf.data is not None:
            fd = os.open(nf.dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, nf.mode)
            with open(fd, "wb") as f:
                f.write(nf.data)
            return
        assert nf.source is not None
        if self.link_mode == "symlink":
            os.symlink(nf.source, nf.dest)
            return
        if self.link_mode == "hardlink" and self._can_link:
            try:
                os.link(nf.source, nf.dest)
                return
            except FileExistsError:
                raise
            except OSError:
                self._can_link = False  # EXDEV, EPERM, EMLINK: copy from now on
        os.close(os.open(nf.dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        shutil.copy2(nf.source, nf.dest)

    # -- commit -----------------------------------------------------------------------------
    def commit(self) -> InstallResult:
        """Apply every staged change; on any error roll everything back and re-raise."""
        txn = self._require_open()
        try:
            self._check_conflicts()
            if self.compile_bytecode:
                self._compile()
            self._stage_records()
            _crash_point("staged")
            self._ops = self._build_ops()
            prune = sorted(self._prune)
            _write_json_atomic(txn / _JOURNAL, {"state": "applying", "ops": self._ops,
                                                "prune": prune})
            _crash_point("journal")
            for i, op in enumerate(self._ops):
                self._applied = i + 1  # op i may be partly applied: rollback undoes it
                if op["op"] == "create":
                    try:
                        self._create(self._creates[op["path"]])
                    except FileExistsError:
                        self._applied = i  # not ours: rollback must not delete it
                        raise
                else:
                    _do_op(op)
                _crash_point(f"op-{i}")
            # recover() only needs the folders to prune once the state is "committed".
            _write_json_atomic(txn / _JOURNAL, {"state": "committed", "prune": prune})
            _crash_point("committed")
        except OSError as exc:
            self.rollback()
            raise InstallError(f"install failed: {exc}; the environment was rolled back") \
                from exc
        except BaseException:
            self.rollback()
            raise
        _prune_dirs(self._prune)
        self._close()
        return self.result

    def rollback(self) -> None:
        """Undo whatever was applied and discard the staged files."""
        if self._txn is None:
            return
        errors = _undo_ops(self._ops[: self._applied])
        if errors:  # keep the journal: the next run's recover() retries
            self._txn = None
            self._stack.close()
            raise InstallError(f"rollback incomplete: {errors[0]}",
                               hint="run inst again to finish the rollback")
        self._close()

    def _check_conflicts(self) -> None:
        owners: dict[str, str] = {}
        for dist in self._installed.values():
            if dist.name not in self._removing:
                owners.update((p, dist.display_name) for p in _record_paths(dist))
        claimed: dict[str, str] = {}
        for plan in self._plans:
            for _staged, nf in plan.staged:
                if nf.dest in owners:
                    raise WheelError(plan.info.filename, "file belongs to the installed "
                                     f"distribution {owners[nf.dest]}",
                                     entry=os.path.relpath(nf.dest, self._state_root))
                if nf.dest in claimed:
                    raise WheelError(plan.info.filename, "file is also installed by "
                                     f"{claimed[nf.dest]}",
                                     entry=os.path.relpath(nf.dest, self._state_root))
                claimed[nf.dest] = plan.info.filename

    def _compile(self) -> None:
        jobs: dict[str, tuple[str, str, str]] = {}
        for i, plan in enumerate(self._plans):
            for j, (staged, nf) in enumerate(plan.staged):
                if nf.dest.endswith(".py") and any(
                        within(nf.dest, s) for s in _site_dirs(self.env)):
                    src = staged or nf.source or self._stage(nf)
                    jobs[f"{i}:{j}"] = (src, nf.dest, self._next("stage"))
        if not jobs:
            return
        proc = subprocess.run(
            [str(self.env.python), "-c", _COMPILE_SCRIPT], input=json.dumps(jobs),
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise InstallError(f"compiling bytecode failed: {proc.stderr.strip()[-500:]}")
        done: dict[str, str] = json.loads(proc.stdout)
        for key, pyc in done.items():
            i = int(key.split(":")[0])
            out = jobs[key][2]
            digest, size = _file_hash(out)
            nf = NewFile(os.path.normpath(pyc), None, None, 0o644, digest, size)
            self._plans[i].staged.append((out, nf))

    def _stage_records(self) -> None:
        for plan in self._plans:
            rows = io.StringIO()
            writer = csv.writer(rows, lineterminator="\n")
            record_path = os.path.join(plan.site, plan.info.dist_info, "RECORD")
            prefix = plan.site + os.sep
            for _staged, nf in plan.staged:
                if nf.dest.startswith(prefix):  # normalized paths: same as relpath
                    rel = nf.dest[len(prefix):]
                else:
                    rel = os.path.relpath(nf.dest, plan.site)
                writer.writerow([rel.replace(os.sep, "/"), nf.record, nf.size])
            writer.writerow([f"{plan.info.dist_info}/RECORD", "", ""])
            data = rows.getvalue().encode()
            nf = NewFile(record_path, None, data, 0o644, "", len(data))
            plan.staged.append(("", nf))

    def _build_ops(self) -> list[dict[str, str]]:
        """backup (files being replaced or removed), mkdir, then place (staged files: those
        that replace an existing file) or create (new paths: linked or written in place,
        no staging copy and no second rename)."""
        backups = dict(self._removals)
        files: list[tuple[str, NewFile]] = []
        for plan in self._plans:
            for staged, nf in plan.staged:
                if self._exists(nf.dest):
                    backups[nf.dest] = None
                    staged = staged or self._stage(nf)
                files.append((staged, nf))
        ops = [{"op": "backup", "path": p, "to": self._next("backup")} for p in backups]
        made: set[str] = set()
        for _staged, nf in files:
            missing: list[str] = []
            parent = os.path.dirname(nf.dest)
            while parent not in made and not self._dir_info(parent)[1]:
                missing.append(parent)
                parent = os.path.dirname(parent)
            for d in reversed(missing):
                made.add(d)
                ops.append({"op": "mkdir", "path": d})
        for staged, nf in files:
            if staged:
                ops.append({"op": "place", "from": staged, "path": nf.dest})
            else:
                self._creates[nf.dest] = nf
                ops.append({"op": "create", "path": nf.dest})
        return ops


def install_wheels(
    env: Environment, wheels: Iterable[tuple[Path, bool, Mapping[str, object] | None]], *,
    cache: Cache | None = None, link_mode: LinkMode = "hardlink",
    compile_bytecode: bool = False, on_wait: Callable[[str], None] | None = None,
) -> InstallResult:
    """Install ``(wheel path, requested, direct_url)`` items in one transaction."""
    with Transaction(env, cache, link_mode=link_mode, compile_bytecode=compile_bytecode,
                     on_wait=on_wait) as txn:
        for path, requested, direct_url in wheels:
            txn.install(path, requested=requested, direct_url=direct_url)
    return txn.result


def uninstall(env: Environment, names: Iterable[str], *,
              on_wait: Callable[[str], None] | None = None) -> InstallResult:
    """Remove the named distributions (by RECORD) in one transaction; names not installed are
    reported in ``result.warnings``. Files outside the environment are never touched."""
    with Transaction(env, on_wait=on_wait) as txn:
        for name in names:
            if txn.remove(name) is None:
                txn.result.warnings.append(f"{name} is not installed")
    return txn.result
