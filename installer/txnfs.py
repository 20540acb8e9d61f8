"""The file-system side of a transaction: where planned files may go (:class:`Destinations`)
and making the new ones (:class:`FileMaker`).

Both run once per installed file, thousands of times per install, so they work per folder
where they can and keep Python out of the loops around the system calls.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping

from installer.errors import InstallError, WheelError
from installer.journal import CrashHook
from installer.plan import NewFile, within
from installer.wheel import LinkMode, WheelInfo

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

_INST_DIR = os.path.realpath(os.path.dirname(__file__))
_INST_PARENT = os.path.dirname(_INST_DIR)
_POSIX = os.sep == "/"
#: From this many new files on, two threads make the folders and hard links.
THREADED_LINKS = 1024
_CHUNK = 128  # links per chunk of work in _pipeline


def _split_posix(path: str) -> tuple[str, str]:
    """os.path.split for a POSIX path, without its generic Python code."""
    i = path.rfind("/") + 1
    head = path[:i]
    return head.rstrip("/") or head, path[i:]


split = _split_posix if _POSIX else os.path.split


class Destinations:
    """Checks destinations against the environment: inside it (after symlinks), away from
    inst's own files, not replacing a folder; and remembers which of them exist.

    Caches (realpath, is a folder) per folder: the environment does not change while the
    lock is held, and nothing is applied before commit.
    """

    def __init__(self, roots: list[str], state_root: str) -> None:
        self.roots = roots
        self._root_prefixes = [(r, r if r.endswith(os.sep) else r + os.sep) for r in roots]
        self.state_root = state_root
        #: Checked destinations that exist (as files or symlinks).
        self.existing: set[str] = set()
        self._dirs: dict[str, tuple[str, bool]] = {}

    def dir_info(self, path: str) -> tuple[str, bool]:
        """(realpath, is a folder) of the normalized absolute *path*, from its parent's
        entry: one lstat per existing folder, none below a missing one."""
        hit = self._dirs.get(path)
        if hit is not None:
            return hit
        i = path.rfind("/") if _POSIX else -1
        head, tail = (path[:i], path[i + 1:]) if i > 1 else split(path)  # split, inlined
        if not tail or head == path:
            out = (os.path.realpath(path), os.path.isdir(path))
        else:
            real_head, head_is_dir = self._dirs.get(head) or self.dir_info(head)
            out = (real_head + tail if real_head.endswith(os.sep) else
                   real_head + os.sep + tail, False)
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

    def exists(self, dest: str) -> bool:
        """Whether *dest* exists (not following a final symlink)."""
        return self.dir_info(os.path.dirname(dest))[1] and os.path.lexists(dest)

    def check(self, info: WheelInfo, files: list[NewFile]) -> list[str]:
        """Check every destination as :meth:`check_one` does, but per parent folder: a file
        directly in a folder that lies inside the environment (and away from inst's own
        files) does too, and a file in a folder that does not exist yet cannot exist or be a
        folder. Only files in existing folders cost an lstat (which also tells whether they
        exist). On any doubt :meth:`check_one` runs for each file, in order, and raises the
        first error. Returns the parent folders, in order of first use."""
        dests = [nf.dest for nf in files]
        parent_list = [d[:d.rfind("/")] for d in dests] if _POSIX else []
        if not parent_list or min(map(len, parent_list)) < 2:  # not POSIX, or "/x", "//x"
            parent_list = [split(d)[0] for d in dests]
        parents = dict.fromkeys(parent_list)
        suspect = False
        is_inst = info.project == "inst"
        existing_dirs: set[str] = set()
        for parent in parents:
            real_parent, parent_is_dir = self.dir_info(parent)
            if not self._dir_ok(real_parent, is_inst):
                suspect = True
            if parent_is_dir:
                existing_dirs.add(parent)
        if existing_dirs:
            lstat, isdir = os.lstat, stat.S_ISDIR
            for dest, parent in zip(dests, parent_list, strict=True):
                if parent not in existing_dirs:
                    continue
                try:
                    mode = lstat(dest).st_mode
                except OSError:
                    continue
                if isdir(mode):
                    suspect = True
                else:
                    self.existing.add(dest)
        if suspect:
            for dest in dests:
                self.check_one(info, dest)
        return list(parents)

    def _dir_ok(self, real_parent: str, is_inst: bool) -> bool:
        """True when every file directly in the folder *real_parent* (a real path) passes the
        environment checks of :meth:`check_one`; False when that needs a closer look."""
        for root, root_sep in self._root_prefixes:
            if real_parent == root or real_parent.startswith(root_sep):
                break
        else:
            return False
        return is_inst or not (real_parent in (_INST_DIR, _INST_PARENT) or
                               real_parent.startswith(_INST_DIR + os.sep))

    def check_one(self, info: WheelInfo, dest: str) -> None:
        """Raise WheelError when *dest* lies outside the environment, in inst's own files,
        or where a folder is."""
        parent, name = os.path.split(dest)
        real_parent, parent_is_dir = self.dir_info(parent)
        real = os.path.join(real_parent, name)
        if not any(within(real, root) for root in self.roots):
            raise WheelError(info.filename, "file would be installed outside the environment",
                             entry=os.path.relpath(dest, self.state_root))
        if within(real, _INST_DIR) and info.project != "inst":
            raise WheelError(info.filename, "file would overwrite inst's own files",
                             entry=os.path.relpath(dest, self.state_root))
        if parent_is_dir and os.path.isdir(dest) and not os.path.islink(dest):
            raise WheelError(info.filename, "file would replace a directory",
                             entry=os.path.relpath(dest, self.state_root))

    def missing_dirs(self, parents: Iterable[str], made: set[str]) -> list[str]:
        """The folders to make for files in *parents*, parents first, leaving out those in
        *made* (which this updates)."""
        out: list[str] = []
        known = self._dirs
        for parent in parents:
            missing: list[str] = []
            while parent not in made and not (known.get(parent) or self.dir_info(parent))[1]:
                missing.append(parent)
                i = parent.rfind("/") if _POSIX else -1
                parent = parent[:i] if i > 1 else split(parent)[0]  # split, inlined
            made.update(missing)
            out += reversed(missing)
        return out


class _Progress:
    """How far :meth:`FileMaker.create_all` got: what may exist because of it."""

    __slots__ = ("dirs", "runs")

    def __init__(self) -> None:
        self.dirs = 0  # the first folders of the list
        self.runs: dict[int, int] = {}  # start index of a run of files -> how many of it


class FileMaker:
    """Makes new folders and files: files by *link_mode* (hard links fall back to copies
    when the file system refuses them) or from their data.

    :meth:`create_all` records in :attr:`partial`, when it raises, exactly the folders and
    files that may exist because of it, so that a rollback deletes nothing it did not make.
    """

    def __init__(self, link_mode: LinkMode) -> None:
        self.link_mode: LinkMode = link_mode
        self.can_link = True
        self.partial: tuple[list[str], list[str]] = ([], [])

    def link(self, source: str, target: str) -> None:
        """Link (or copy) *source* to *target* by the link mode."""
        if self.link_mode == "symlink":
            os.symlink(source, target)
            return
        if self.link_mode == "hardlink" and self.can_link:
            try:
                os.link(source, target)
                return
            except FileExistsError:
                raise
            except OSError:
                self.can_link = False  # EXDEV, EPERM, EMLINK: copy from now on
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        shutil.copy2(source, target)

    def create(self, nf: NewFile) -> None:
        """Create *nf* at its destination, which did not exist (O_EXCL semantics)."""
        if nf.data is not None:
            fd = os.open(nf.dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, nf.mode)
            with open(fd, "wb") as f:
                f.write(nf.data)
            return
        assert nf.source is not None
        self.link(nf.source, nf.dest)

    def create_all(self, dirs: list[str], files: list[NewFile], links: int,
                   stop: int | None, crash: CrashHook) -> None:
        """Make *dirs* (parents first), then *files*, whose first *links* are linked or
        copied and the rest written from data; or only the first *stop* + 1 of those
        steps, then fire the crash hook."""
        progress = _Progress()
        try:
            if self._threaded(dirs, links, stop):
                self._pipeline(dirs, files, links, progress, crash if stop is not None else None)
                return
            end = len(dirs) + len(files) if stop is None else stop + 1
            self._make_dirs(dirs[:end], progress)
            self._run(files, (0, max(0, end - len(dirs))), progress, [False])
            if stop is not None:
                crash.fire()
        except BaseException:
            self.partial = (dirs[: progress.dirs], [
                files[k].dest for lo, done in progress.runs.items() for k in range(lo, lo + done)])
            raise

    def _threaded(self, dirs: list[str], links: int, stop: int | None) -> bool:
        return _POSIX and links >= THREADED_LINKS and self.link_mode == "hardlink" and \
            self.can_link and (os.cpu_count() or 1) > 1 and \
            (stop is None or len(dirs) <= stop < len(dirs) + links)

    def _make_dirs(self, dirs: list[str], progress: _Progress,
                   made: list[int] | None = None) -> None:
        """mkdir each of *dirs*; ``made[0]`` (when given) tells another thread how many
        exist so far."""
        mkdir = os.mkdir
        k = -1
        try:
            for k, path in enumerate(dirs):
                mkdir(path)
                if made is not None and k & 31 == 31:
                    made[0] = k + 1
        except FileExistsError:  # not ours: rollback must not remove it
            progress.dirs = k
            raise
        except BaseException:
            progress.dirs = k + 1
            raise
        progress.dirs = len(dirs)
        if made is not None:
            made[0] = len(dirs)

    def _pipeline(self, dirs: list[str], files: list[NewFile], links: int,
                  progress: _Progress, crash: CrashHook | None) -> None:
        """Make *dirs* and *files* in two threads (``mkdir`` and ``link`` release the GIL;
        ~0.6x the time on an idle 2-CPU machine). The links (``files[:links]``) go in
        chunks, in order of the folders they need: a helper thread takes chunks from the
        front as soon as their folders exist, while this thread makes the folders and the
        files written from data, then takes chunks from the back. Any error stops both; this
        returns (or raises) only once the helper is done, so that a rollback never races it.
        With *crash*, it fires after this thread's first chunk, while the helper is busy."""
        index = {d: i for i, d in enumerate(dirs)}
        needs = [index.get(nf.dest[: nf.dest.rfind("/")], -1) for nf in files[:links]]
        chunks = deque(range(0, links, _CHUNK))
        ready = {c: max(needs[c: c + _CHUNK]) for c in chunks}  # made[0] must pass this
        made, halt = [0], [False]
        errors: list[BaseException] = []

        def helper() -> None:
            try:
                while not halt[0]:
                    try:
                        c = chunks.popleft()  # atomic: deque is thread-safe
                    except IndexError:
                        return
                    while made[0] <= ready[c] and not halt[0]:
                        time.sleep(0.0002)
                    self._run(files, (c, min(c + _CHUNK, links)), progress, halt)
            except BaseException as exc:
                halt[0] = True
                errors.append(exc)

        thread = threading.Thread(target=helper, name="inst-link", daemon=True)
        thread.start()
        try:
            self._make_dirs(dirs, progress, made)
            self._run(files, (links, len(files)), progress, halt)  # the files written from data
            while not halt[0]:
                try:
                    c = chunks.pop()
                except IndexError:
                    break
                self._run(files, (c, min(c + _CHUNK, links)), progress, halt)
                if crash is not None:
                    crash.fire()
                    crash = None
        except BaseException as exc:
            halt[0] = True
            errors.insert(0, exc)
        finally:
            while True:
                try:
                    thread.join()
                    break
                except BaseException as exc:  # Ctrl-C while waiting: stop the helper first
                    halt[0] = True
                    errors.insert(0, exc)
        if errors:  # a KeyboardInterrupt wins: the caller reports it as such
            raise next((e for e in errors if not isinstance(e, Exception)), errors[0])

    def _run(self, files: list[NewFile], run: tuple[int, int], progress: _Progress,
             halt: list[bool]) -> None:
        """Create ``files[lo:hi]`` in order, until done or ``halt[0]``, counting in
        ``progress.runs[lo]`` the files that may exist because of it."""
        lo, hi = run
        if lo >= hi:
            return
        hard = os.link if self.link_mode == "hardlink" else None
        k = lo - 1
        try:
            for k in range(lo, hi):
                if halt[0]:
                    return
                nf = files[k]
                source = nf.source
                if hard is not None and source is not None and nf.data is None and \
                        self.can_link:
                    try:
                        hard(source, nf.dest)  # the common case, inlined
                    except FileExistsError:
                        raise
                    except OSError:
                        self.can_link = False  # EXDEV, EPERM, EMLINK: copy from now on
                        self.create(nf)
                else:
                    self.create(nf)
                progress.runs[lo] = k + 1 - lo
        except FileExistsError:  # not ours: rollback must not delete it
            raise
        except BaseException:  # file k may be partly written: rollback deletes it
            progress.runs[lo] = k + 1 - lo
            raise


def compile_pyc(python: str, jobs: Mapping[str, tuple[str, str, str]]) -> dict[str, str]:
    """Compile ``key -> (source, installed path, output)`` jobs with the environment's
    *python*, in one subprocess; returns ``key -> the .pyc path the installed file's
    interpreter looks for``, for the jobs that compiled (a file that does not is skipped)."""
    proc = subprocess.run([python, "-c", _COMPILE_SCRIPT], input=json.dumps(jobs),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InstallError(f"compiling bytecode failed: {proc.stderr.strip()[-500:]}")
    done: dict[str, str] = json.loads(proc.stdout)
    return done
