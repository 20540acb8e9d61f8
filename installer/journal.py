"""The environment lock, the transaction journal and recovery after a crash.

A :class:`installer.txn.Transaction` holds :func:`env_lock` from start to end, writes its
journal (``<prefix>/.inst-txn-<id>/journal.json``) before it changes anything, and applies
the journaled ops in order. :func:`recover` reads a journal left by a killed run and finishes
it (state "committed": only empty folders to prune) or undoes it (any other state).

Journal ops, undone in reverse order by :func:`undo_ops` (idempotent: each undo decides from
what exists, so it also serves a crash at any point of the apply or of an earlier undo)::

    {"op": "backup", "path": P, "to": B}      # P moved aside to B (restored from B)
    {"op": "create", "dirs": [D, ...],        # new folders, parents first (removed if empty)
     "paths": [P, ...]}                       # new files linked or written in place (removed)
    {"op": "place", "from": S, "path": P}     # staged file S renamed to P (P removed)

A ``create`` path or folder did not exist when the journal was written, and nothing else
changes the environment while the lock is held, so any listed path that exists was made by
the transaction. Earlier versions wrote one ``mkdir``/``create`` op per path (``"path":
P``); :func:`undo_ops` still reads that form, so their journals are recovered too.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from installer.errors import InstallError
from installer.models import Environment, state_root

LOCK_NAME = ".inst.lock"
TXN_PREFIX = ".inst-txn-"
JOURNAL = "journal.json"
#: Test hook: send this process SIGKILL (or SIGINT with a ":INT" suffix) at a named step
#: ("staged", "journal", "op-<i>", "committed"), so tests can prove that rollback and
#: recover() restore a consistent environment. "op-<i>" counts single changes: each folder
#: and file of the ``create`` op is one step, so the kill can land inside it.
CRASH_ENV = "INST_TEST_CRASH_AT"

Op = dict[str, Any]


class CrashHook:
    """The :data:`CRASH_ENV` test hook, read once per commit (not once per file)."""

    __slots__ = ("point", "sig", "step")

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        point, _, sig = environ.get(CRASH_ENV, "").partition(":")
        self.point = point
        self.sig = signal.SIGINT if sig == "INT" else signal.SIGKILL
        num = point[3:] if point.startswith("op-") else ""
        self.step = int(num) if num.isdigit() else -1

    def at(self, name: str) -> None:
        """Fire when the hook names the step *name* ("staged", "journal", "committed")."""
        if self.point == name:
            self.fire()

    def stop_in(self, first: int, count: int) -> int | None:
        """The index within the *count* steps numbered from *first* after which to fire."""
        return self.step - first if first <= self.step < first + count else None

    def fire(self) -> None:
        """Send the signal now (SIGINT raises KeyboardInterrupt right after this returns)."""
        os.kill(os.getpid(), self.sig)


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


def write_json_atomic(path: Path, data: object) -> None:
    """Write *data* as compact JSON through a synced temp file, rename, sync the folder."""
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


def move(src: str, dst: str) -> None:
    """Rename *src* to *dst*; copy and delete across filesystems."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        import shutil  # here, not at the top: a no-op install imports this module

        shutil.copy2(src, dst, follow_symlinks=False)
        os.unlink(src)


def do_op(op: Op) -> None:
    """Apply one single-path op (backup or place); batches are applied by the Transaction."""
    if op["op"] == "backup":
        move(op["path"], op["to"])
    else:
        move(op["from"], op["path"])


def _paths(op: Op) -> Sequence[str]:
    paths: Sequence[str] | None = op.get("paths")
    return [op["path"]] if paths is None else paths


def undo_ops(ops: Iterable[Op]) -> list[str]:
    """Undo *ops* in reverse; idempotent (decides from what exists), so it also serves
    recovery after a crash at any point. Returns the errors it could not fix."""
    errors: list[str] = []
    for op in reversed(list(ops)):
        kind = op["op"]
        if kind == "create":
            # Listed paths did not exist when the journal was written (under the lock); a
            # file that replaced an existing one is staged and placed instead.
            for path in _paths(op):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    errors.append(f"{path}: {exc}")
            _remove_dirs(op.get("dirs", ()))
        elif kind == "mkdir":
            _remove_dirs(_paths(op))
        else:
            path = op["path"]
            try:
                if kind == "place" and not os.path.lexists(op["from"]) and \
                        os.path.lexists(path):
                    os.unlink(path)
                elif kind == "backup" and os.path.lexists(op["to"]):
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.replace(op["to"], path)
            except OSError as exc:
                errors.append(f"{path}: {exc}")
    return errors


def _remove_dirs(dirs: Sequence[str]) -> None:
    """Remove the folders a transaction made (listed parents first), where empty."""
    for path in reversed(dirs):
        with contextlib.suppress(OSError):  # not empty (foreign files) or not ours
            os.rmdir(path)


def prune_dirs(dirs: Iterable[str]) -> None:
    """Remove the folders among *dirs* that are empty, deepest first."""
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
            journal = json.loads((txn / JOURNAL).read_text("utf-8"))
        except (OSError, ValueError):
            journal = None
        if journal and journal.get("state") == "committed":
            prune_dirs(journal.get("prune", []))
            done.append(f"finished an interrupted install ({txn.name})")
        elif journal:
            errors = undo_ops(journal.get("ops", []))
            if errors:
                raise InstallError(f"could not roll back {txn}: {errors[0]}")
            done.append(f"rolled back an interrupted install ({txn.name})")
        else:
            done.append(f"discarded an interrupted install that changed nothing ({txn.name})")
        import shutil

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
