"""Install wheels into an environment transactionally (PEP 376/627/610).

Wheels are validated and unpacked by :mod:`installer.wheel` and their files planned by
:mod:`installer.plan`; this module checks and stages them, and commits through a journal
(:mod:`installer.journal`) that :func:`recover` finishes or undoes after a crash.

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

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from installer.cache import MARKER, Cache
from installer.errors import InstallError, WheelError
from installer.installed import (
    check_environment,
    env_roots,
    file_hash,
    inside_env,
    installed_distributions,
    record_paths,
    record_rows,
    site_dirs,
)
from installer.journal import (
    CRASH_ENV,
    JOURNAL,
    LOCK_NAME,
    TXN_PREFIX,
    CrashHook,
    Op,
    do_op,
    env_lock,
    prune_dirs,
    recover,
    recover_pending,
    undo_ops,
    write_json_atomic,
)
from installer.models import Environment, InstalledDist, canonical, state_root
from installer.plan import (
    NewFile,
    generated,
    install_scheme,
    plan_wheel,
    record_text,
    within,
)
from installer.txnfs import Destinations, FileMaker, compile_pyc, split
from installer.unpackpool import UnpackPool, UnpackResult
from installer.wheel import LinkMode, WheelInfo, unpack_to_cache

__all__ = [
    "CRASH_ENV", "LOCK_NAME", "TXN_PREFIX", "InstallResult", "Transaction", "check_environment",
    "env_lock", "install_wheels", "installed_distributions", "recover", "recover_pending",
    "uninstall",
]

@dataclass
class _WheelPlan:
    info: WheelInfo
    site: str
    # Checked by install(): created in place at commit, or staged first if they exist.
    files: list[NewFile]
    # The parent folders of *files*, in order of first use.
    dirs: list[str]
    # Added by commit (bytecode, RECORD): (staged path, or "" for a file created in place).
    extra: list[tuple[str, NewFile]] = field(default_factory=list)


@dataclass
class InstallResult:
    """What a transaction did (filled in as it goes)."""

    installed: list[WheelInfo] = field(default_factory=list)
    removed: list[InstalledDist] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Transaction:
    """Install and remove a set of distributions atomically.

    ``install``/``remove`` only validate, unpack into the cache, check and plan; the
    environment is untouched until :meth:`commit`, which journals every step, moves old files
    aside (into ``<prefix>/.inst-txn-<id>/``), moves or links the new ones in, and deletes
    the backups. Any error (or KeyboardInterrupt) rolls the whole set back. As a context
    manager it takes the environment lock and runs :func:`recover` on entry, commits on a
    clean exit and rolls back otherwise.
    """

    def __init__(self, env: Environment, cache: Cache | None = None, *,
                 link_mode: LinkMode = "hardlink", compile_bytecode: bool = False,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.env = env
        self.cache = cache
        self.compile_bytecode = compile_bytecode
        self.on_wait = on_wait
        self.result = InstallResult()
        self._stack = contextlib.ExitStack()
        self._txn: Path | None = None
        self._installed: dict[str, InstalledDist] = {}
        self._plans: list[_WheelPlan] = []
        self._projects: set[str] = set()
        self._removing: dict[str, InstalledDist] = {}
        self._removals: dict[str, None] = {}
        self._prune: set[str] = set()
        self._counter = 0
        self._roots: list[str] = []
        self._site_roots: set[str] = set()
        self._state_root = ""
        self._maker = FileMaker(link_mode)
        self._dests = Destinations([], "")
        self._ops: list[Op] = []
        # Rollback undoes ops[:_applied], the last one as far as _partial says (None: all).
        self._applied = 0
        self._partial: Op | None = None
        self._creates: list[NewFile] = []
        self._links = 0  # how many of _creates (the first ones) are linked or copied
        self._ready: dict[tuple[str, str | None], UnpackResult] = {}

    @property
    def link_mode(self) -> LinkMode:
        """How new files are made from the unpacked tree: hardlink, copy or symlink."""
        return self._maker.link_mode

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
            self._roots = env_roots(self.env)
            self._site_roots = {os.path.normpath(p) for p in self.env.paths.values()}
            self._state_root = str(state_root(self.env))
            self._dests = Destinations(self._roots, self._state_root)
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
        """Validate, unpack and plan *wheel*; an installed version of it will be replaced.

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
        project = info.project
        if project in self._projects:
            raise WheelError(info.filename, f"{info.name} is already part of this install")
        scheme = install_scheme(self.env, info)
        site = scheme["purelib" if info.root_is_purelib else "platlib"]
        files = plan_wheel(self.env, info, tree, scheme)
        files += generated(info, site, requested, direct_url)
        old = self._installed.get(project)
        if old is not None and old.name not in self._removing:
            self._remove_dist(old)
        dirs = self._dests.check(info, files)
        self._plans.append(_WheelPlan(info, site, files, dirs))
        self._projects.add(project)
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
        todo = [(Path(w), s) for w, s in wheels if (str(w), s) not in self._ready]
        if pool is not None and pool.cache.root == cache.root:
            # The pool answers with its future for a wheel it already unpacked in this run
            # (during the downloads, or even during resolution), so install() takes that tree
            # as made instead of re-checking every file of it; None for a tree that was in
            # the cache before.
            self._submit(pool, todo)
            return
        todo = [(w, s) for w, s in todo if not (
            s and (cache.unpacked_dir(s) / MARKER).is_file())]  # warm: nothing to unpack
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
        rows = record_rows(dist)
        if rows is None:
            raise InstallError(
                f"cannot uninstall {dist.display_name} {dist.version}: no RECORD file in "
                f"{dist.dist_info}",
                hint="it was installed by a tool that does not record its files; "
                "remove it by hand")
        self._removing[dist.name] = dist
        self.result.removed.append(dist)
        paths = record_paths(dist)
        for dirpath, _dirs, names in os.walk(dist.dist_info):
            paths += [os.path.join(dirpath, n) for n in names]
        for path in paths:
            self._schedule_removal(dist, path)
        self._prune.add(str(dist.dist_info))

    def _schedule_removal(self, dist: InstalledDist, path: str) -> None:
        if not inside_env(path, self._roots):
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
        while parent not in self._site_roots and inside_env(parent, self._roots) and \
                os.path.normpath(parent) != self._state_root:
            self._prune.add(parent)
            parent = os.path.dirname(parent)

    # -- files ------------------------------------------------------------------------------
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
                self._maker.link(nf.source, staged)
        except OSError as exc:
            raise InstallError(f"could not stage {nf.dest}: {exc.strerror or exc}") from exc
        return staged

    # -- commit -----------------------------------------------------------------------------
    def commit(self) -> InstallResult:
        """Apply every staged change; on any error roll everything back and re-raise."""
        txn = self._require_open()
        crash = CrashHook()
        try:
            self._check_conflicts()
            if self.compile_bytecode:
                self._compile()
            self._stage_records()
            crash.at("staged")
            self._ops = self._build_ops()
            prune = sorted(self._prune)
            write_json_atomic(txn / JOURNAL, {"state": "applying", "ops": self._ops,
                                              "prune": prune})
            crash.at("journal")
            self._apply(crash)
            # recover() only needs the folders to prune once the state is "committed".
            write_json_atomic(txn / JOURNAL, {"state": "committed", "prune": prune})
            crash.at("committed")
        except OSError as exc:
            self.rollback()
            raise InstallError(f"install failed: {exc}; the environment was rolled back") \
                from exc
        except BaseException:
            self.rollback()
            raise
        prune_dirs(self._prune)
        self._close()
        return self.result

    def rollback(self) -> None:
        """Undo whatever was applied and discard the staged files."""
        if self._txn is None:
            return
        ops = self._ops[: self._applied]
        if ops and self._partial is not None:
            ops[-1] = self._partial
        errors = undo_ops(ops)
        if errors:  # keep the journal: the next run's recover() retries
            self._txn = None
            self._stack.close()
            raise InstallError(f"rollback incomplete: {errors[0]}",
                               hint="run inst again to finish the rollback")
        self._close()

    def _apply(self, crash: CrashHook) -> None:
        """Apply the journaled ops in order; a crash step counts each folder and file of
        the ``create`` op."""
        step = 0
        for i, op in enumerate(self._ops):
            # op i may be partly applied: rollback undoes it (create: as far as it got)
            self._applied, self._partial = i + 1, None
            if op["op"] != "create":
                do_op(op)
                if crash.step == step:
                    crash.fire()
                step += 1
                continue
            dirs: list[str] = op["dirs"]
            count = len(dirs) + len(self._creates)
            try:
                self._maker.create_all(dirs, self._creates, self._links,
                                       crash.stop_in(step, count), crash)
            except BaseException:
                made_dirs, made_files = self._maker.partial
                self._partial = {**op, "dirs": made_dirs, "paths": made_files}
                raise
            step += count

    def _check_conflicts(self) -> None:
        owners: dict[str, str] = {}
        for dist in self._installed.values():
            if dist.name not in self._removing:
                owners.update((p, dist.display_name) for p in record_paths(dist))
        claimed: dict[str, str] = {}
        for plan in self._plans:
            filename = plan.info.filename
            for nf in plan.files:
                dest = nf.dest
                if dest in owners:
                    raise WheelError(filename, "file belongs to the installed "
                                     f"distribution {owners[dest]}",
                                     entry=os.path.relpath(dest, self._state_root))
                if dest in claimed:
                    raise WheelError(filename, f"file is also installed by {claimed[dest]}",
                                     entry=os.path.relpath(dest, self._state_root))
                claimed[dest] = filename

    def _compile(self) -> None:
        jobs: dict[str, tuple[str, str, str]] = {}
        sites = site_dirs(self.env)
        for i, plan in enumerate(self._plans):
            for j, nf in enumerate(plan.files):
                if nf.dest.endswith(".py") and any(within(nf.dest, s) for s in sites):
                    src = nf.source or self._stage(nf)
                    jobs[f"{i}:{j}"] = (src, nf.dest, self._next("stage"))
        if not jobs:
            return
        for key, pyc in compile_pyc(str(self.env.python), jobs).items():
            i = int(key.split(":")[0])
            out = jobs[key][2]
            digest, size = file_hash(out)
            nf = NewFile(os.path.normpath(pyc), None, None, 0o644, digest, size)
            self._plans[i].extra.append((out, nf))

    def _stage_records(self) -> None:
        for plan in self._plans:
            files = [*plan.files, *(nf for _staged, nf in plan.extra)]
            record = f"{plan.info.dist_info}/RECORD"
            data = record_text(files, plan.site, record).encode()
            record_path = os.path.join(plan.site, plan.info.dist_info, "RECORD")
            plan.extra.append(("", NewFile(record_path, None, data, 0o644, "", len(data))))

    def _build_ops(self) -> list[Op]:
        """backup (files being replaced or removed), create (one op: the new folders, then
        the new files, linked or written in place: no staging copy, no second rename), then
        place (staged files: those that replace an existing file, and bytecode)."""
        backups = dict(self._removals)
        places: list[Op] = []
        creates: list[NewFile] = []
        existing = self._dests.existing
        for plan in self._plans:
            if not existing:
                creates += plan.files
            else:
                for nf in plan.files:
                    if nf.dest in existing:
                        backups[nf.dest] = None
                        places.append({"op": "place", "from": self._stage(nf), "path": nf.dest})
                    else:
                        creates.append(nf)
            for staged, nf in plan.extra:
                if self._dests.exists(nf.dest):
                    backups[nf.dest] = None
                    staged = staged or self._stage(nf)
                if staged:
                    places.append({"op": "place", "from": staged, "path": nf.dest})
                else:
                    creates.append(nf)
        ops: list[Op] = [{"op": "backup", "path": p, "to": self._next("backup")}
                         for p in backups]
        # Linked or copied files first, then the ones written from data (create_all).
        linked = [nf for nf in creates if nf.data is None]
        self._links = len(linked)
        self._creates = linked + [nf for nf in creates if nf.data is not None]
        dirs = self._missing_dirs()
        if dirs or creates:
            ops.append({"op": "create", "dirs": dirs,
                        "paths": [nf.dest for nf in self._creates]})
        return ops + places

    def _missing_dirs(self) -> list[str]:
        """The folders to make, parents first."""
        made: set[str] = set()
        out: list[str] = []
        for plan in self._plans:
            out += self._dests.missing_dirs(plan.dirs, made)
            out += self._dests.missing_dirs([split(nf.dest)[0] for _s, nf in plan.extra], made)
        return out


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
