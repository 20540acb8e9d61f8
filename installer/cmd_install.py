"""``inst install``: resolve, download (parallel, hash-checked) and install atomically.

Also home of the steps ``inst download`` shares: reading requirements from arguments and
files, and resolving them against the configured indexes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer import app
from installer.context import Context
from installer.errors import RequirementError, UsageError
from installer.models import Environment
from installer.progress import BarReporter

if TYPE_CHECKING:
    from collections.abc import Callable

    from installer.cache import Cache
    from installer.prefetch import Prefetcher


def add_requirement_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by install and download: packages, -r, -c, --group, dry-run, report."""
    parser.add_argument("packages", nargs="*", metavar="PACKAGE",
                        help="PEP 508 requirements, `name @ URL`, wheel paths, or a project "
                             "folder such as `.` (its [project.dependencies]).")
    parser.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE",
                        help="Install from a requirements file (repeatable).")
    parser.add_argument("-c", "--constraint", action="append", default=[], metavar="FILE",
                        help="Constrain versions with a constraints file (repeatable).")
    parser.add_argument("--group", action="append", default=[], metavar="[PATH:]NAME",
                        help="A PEP 735 dependency group from pyproject.toml.")
    parser.add_argument("--dry-run", action="store_true",
                        help="Resolve and print what would be installed; change nothing.")
    parser.add_argument("--report", metavar="FILE",
                        help="Write a pip-format installation report (JSON) to FILE, or - "
                             "for stdout.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """install's own arguments (the settings flags are added by cli)."""
    add_requirement_arguments(parser)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--target", metavar="DIR", help="Install into DIR instead of the "
                       "environment's site-packages.")
    where.add_argument("--prefix", metavar="DIR", help="Install under the prefix DIR.")


def gather(ctx: Context) -> Any:
    """Every requirement and constraint from arguments, -r and -c files and --group."""
    from installer.reqfile import ParsedRequirements, parse_args, parse_requirements_file

    args = ctx.args
    parsed = ParsedRequirements(tuple(parse_args(args.packages, groups=args.group,
                                                 cwd=ctx.cwd)))
    for path in args.requirement:
        parsed = parsed.merged(parse_requirements_file(ctx.cwd / path, environ=ctx.environ))
    for path in args.constraint:
        parsed = parsed.merged(parse_requirements_file(ctx.cwd / path, constraint=True,
                                                       environ=ctx.environ))
    if not parsed.requirements:
        raise UsageError("no requirements given",
                         hint=f"inst {ctx.command} PACKAGE..., or -r requirements.txt")
    return parsed


def check_hash_mode(parsed: Any) -> None:
    """In hash-checking mode every requirement is pinned with == and carries a hash (pip)."""
    for req in parsed.requirements:
        pinned = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in
                  s.version]
        if req.url is None and not pinned:
            raise RequirementError(
                f"{req} ({req.source}) is not pinned with ==, and hash-checking mode is on",
                hint="pin every requirement with == and add --hash=sha256:...")
        if not req.hashes:
            raise RequirementError(
                f"{req} ({req.source}) has no --hash, and hash-checking mode is on",
                hint="add --hash=sha256:<digest> (pip hash FILE prints one)")


def resolve_options(ctx: Context, parsed: Any, *, ignore_installed: bool) -> Any:
    """ResolveOptions from settings (and a requirements file's --pre)."""
    from installer.resolver import ResolveOptions

    s = ctx.settings

    def names(key: str) -> frozenset[str]:
        from installer.models import canonical

        return frozenset(v if v.startswith(":") else canonical(v) for v in s[key])

    install = ctx.command == "install"
    return ResolveOptions(
        pre=bool(s["pre"] or parsed.pre),
        upgrade=bool(install and s["upgrade"]),
        upgrade_packages=names("upgrade-package") if install else frozenset(),
        force_reinstall=bool(install and s["force-reinstall"]),
        no_deps=bool(s["no-deps"]), only_binary=names("only-binary"),
        no_binary=names("no-binary"), ignore_installed=ignore_installed)


def file_index_options(parsed: Any) -> dict[str, Any]:
    """Index options from requirements files, in the shape app.finder_session takes."""
    return {"index_url": parsed.index_url, "extra_index_urls": parsed.extra_index_urls,
            "find_links": parsed.find_links, "no_index": parsed.no_index}


def write_report(ctx: Context, resolution: Any, env: Environment) -> None:
    """pip's installation report to --report FILE (``-`` is stdout)."""
    if not ctx.args.report:
        return
    from installer.report import build_report  # email, only for --report

    text = json.dumps(build_report(resolution, env), indent=2, sort_keys=False)
    if ctx.args.report == "-":
        ctx.out.result(text)
    else:
        Path(ctx.cwd / ctx.args.report).write_text(text + "\n", encoding="utf-8")


def direct_url(pin: Any) -> dict[str, Any] | None:
    """PEP 610 direct_url.json content for a URL or path requirement."""
    if not pin.is_direct or pin.link is None:
        return None
    url = pin.link.url.partition("#")[0]
    info: dict[str, Any] = {}
    if pin.link.sha256:
        info = {"hashes": {"sha256": pin.link.sha256}, "hash": f"sha256={pin.link.sha256}"}
    return {"url": url, "archive_info": info}


@contextmanager
def resolved(ctx: Context, env: Environment, *, ignore_installed: bool,
             early: Callable[[Any], Prefetcher | None] | None = None) -> Iterator[Any]:
    """Gather requirements, resolve them, and yield (parsed, resolution, finder).

    When the installed distributions already satisfy everything, no index is opened (no HTTP
    client, no request) and finder is None: there is nothing to download. Otherwise *early*
    (called with the parsed requirements, before any thread starts) may return a
    :class:`~installer.prefetch.Prefetcher`, which fetches pinned wheels while resolving.
    """
    from installer.resolver import resolve, resolve_installed

    parsed = gather(ctx)
    if ctx.settings["require-hashes"] or parsed.require_hashes:
        check_hash_mode(parsed)
    options = resolve_options(ctx, parsed, ignore_installed=ignore_installed)
    kept = resolve_installed(parsed.requirements, parsed.constraints, env, options)
    if kept is not None:
        for warning in kept.warnings:
            ctx.out.warn(warning)
        yield parsed, kept, None
        return
    prefetcher = early(parsed) if early is not None else None
    with app.finder_session(ctx.settings, ctx.out.warn, ctx.cwd,
                            extra=file_index_options(parsed)) as finder:
        if prefetcher is not None:
            client: Any = finder.http  # the session's (lazy) client serves downloads too
            prefetcher.bind(client)
        try:
            resolution = resolve(parsed.requirements, parsed.constraints, finder, env, options,
                                 on_pin=None if prefetcher is None else prefetcher.pinned)
        finally:
            if prefetcher is not None:
                prefetcher.stop()
        for warning in resolution.warnings:
            ctx.out.warn(warning)
        yield parsed, resolution, finder


@contextmanager
def download_cache(ctx: Context) -> Iterator[Cache]:
    """The wheel cache, or under ``no-cache`` a temporary one deleted afterwards."""
    from installer.cache import Cache

    if not ctx.settings["no-cache"]:
        yield Cache(app.cache_root(ctx.settings))
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="inst-nocache-") as tmp:
        yield Cache(Path(tmp))


def download(ctx: Context, resolution: Any, finder: Any, parsed: Any,
             cache: Cache, *, for_install: bool = False, on_file: Any = None,
             prefetched: Prefetcher | None = None) -> list[Any]:
    """Fetch every pin that needs a file, in parallel, verified; returns Downloaded items.

    Each wheel's own METADATA must agree with the metadata the resolver used.
    *for_install*, *on_file*: see :func:`installer.download.download_all` (never
    *for_install* for ``inst download``). Files *prefetched* (or being prefetched) are taken
    from there, with their errors, instead of being asked for again.
    """
    from installer.download import DownloadItem, MetadataMismatch, download_all

    pins = [p for p in resolution.to_install if p.link is not None]
    items = [DownloadItem(p.link, allowed=_allowed(p.hashes), metadata=p.metadata.raw or None)
             for p in pins]
    taken = prefetched.take(i.link.url for i in items) if prefetched is not None else {}
    items = [i for i in items if i.link.url not in taken]
    reporter = BarReporter(len(items), sys.stderr) if ctx.out.show_progress else None
    try:
        files: list[Any] = download_all(
            items, cache=cache, client=finder.http, concurrency=int(ctx.settings["concurrency"]),
            require_hashes=bool(ctx.settings["require-hashes"] or parsed.require_hashes),
            reporter=reporter, for_install=for_install, on_file=on_file)
        files += [future.result() for future in taken.values()]
    except MetadataMismatch as exc:
        finder.forget_metadata(exc.link)  # it proved to be a lie: don't keep it cached
        raise
    return files


def _allowed(hashes: Any) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for item in hashes:
        algo, _, digest = str(item).partition(":")
        out.setdefault(algo, set()).add(digest.lower())
    return {k: frozenset(v) for k, v in out.items()}


def run(ctx: Context) -> int:
    """Resolve, then (unless --dry-run) download and install in one transaction."""
    start = time.perf_counter()
    env = app.recovered(app.target_environment(ctx.settings, ctx.environ, ctx.cwd,
                                               target=ctx.args.target, prefix=ctx.args.prefix),
                        ctx.out)
    with download_cache(ctx) as cache, ExitStack() as stack:
        early: list[Prefetcher] = []

        def prefetch(parsed: Any) -> Prefetcher | None:
            found = _prefetcher(ctx, cache, parsed)
            if found is not None:
                stack.callback(found.pool.close)
                stack.callback(found.close)  # first on the way out: no download left running
                early.append(found)
            return found

        with resolved(ctx, env, ignore_installed=False, early=prefetch) as (
                parsed, resolution, finder):
            write_report(ctx, resolution, env)
            changes = resolution.to_install
            if ctx.args.dry_run:
                _print_plan(ctx, changes, would=True)
                return 0
            if not changes:
                ctx.out.info(f"Audited {_packages(len(resolution.pins))} in "
                             f"{time.perf_counter() - start:.2f}s; nothing to do")
                return 0
            if early:
                finder.close()  # its page threads; the downloads below still use its client
                pool = early[0].pool
            else:
                pool = _unpack_pool(ctx, finder, cache, changes)
                if pool is not None:
                    stack.callback(pool.close)
            files = download(ctx, resolution, finder, parsed, cache,
                             for_install=not ctx.settings["no-cache"],
                             on_file=None if pool is None else _submitter(pool),
                             prefetched=early[0] if early else None)
        # The index session (connections, prefetch threads) ends first: without a pool the
        # transaction forks its own workers, which wants a single-threaded parent.
        result = _install(ctx, env, changes, files, cache, pool)
    ctx.out.info(f"Installed {_packages(len(result.installed))} in "
                 f"{time.perf_counter() - start:.2f}s")
    _print_plan(ctx, changes, would=False)
    for warning in result.warnings:
        ctx.out.warn(warning)
    return 0


def _packages(n: int) -> str:
    return f"{n} package{'' if n == 1 else 's'}"


def _prefetcher(ctx: Context, cache: Cache, parsed: Any) -> Prefetcher | None:
    """A Prefetcher with freshly forked unpack workers, for a cache that holds no wheel yet
    (so everything will be downloaded; a warm run forks nothing here). None for --dry-run,
    no-cache, hash-checking mode, or where the workers cannot be forked."""
    from installer.prefetch import Prefetcher, cache_is_empty
    from installer.unpackpool import UnpackPool

    if ctx.args.dry_run or ctx.settings["no-cache"] or ctx.settings["require-hashes"] or \
            parsed.require_hashes or \
            any(r.hashes for r in (*parsed.requirements, *parsed.constraints)) or \
            not cache_is_empty(cache):
        return None
    pool = UnpackPool.start(cache)
    return None if pool is None else Prefetcher(cache, pool)


def _unpack_pool(ctx: Context, finder: Any, cache: Cache, changes: Any) -> Any:
    """Worker processes that unpack each wheel as soon as its download is done (instead of
    after the last one); None when every wheel's tree is already in the cache, under
    ``no-cache`` (the transaction unpacks next to the environment) or without fork."""
    from installer.cache import MARKER
    from installer.unpackpool import UnpackPool

    if ctx.settings["no-cache"] or finder is None:
        return None
    try:
        if all(p.link.sha256 and (cache.unpacked_dir(p.link.sha256) / MARKER).is_file()
               for p in changes):
            return None
    except ValueError:  # not a hex sha256: let the pool find out
        pass
    finder.close()  # resolution is done: stop its page threads, then fork single-threaded
    return UnpackPool.start(cache)


def _submitter(pool: Any) -> Any:
    return lambda got: pool.submit(got.path, got.sha256)


def _install(ctx: Context, env: Environment, changes: Any, files: list[Any],
             cache: Cache, pool: Any = None) -> Any:
    from installer.txn import Transaction

    by_url = {f.link.url: f for f in files}
    # Under no-cache the transaction unpacks into its own folder (same filesystem as env).
    own = None if ctx.settings["no-cache"] else cache
    with Transaction(env, own, link_mode=ctx.settings["link-mode"],
                     compile_bytecode=bool(ctx.settings["compile-bytecode"]),
                     on_wait=ctx.out.info) as txn:
        txn.prepare(((by_url[p.link.url].path, by_url[p.link.url].sha256) for p in changes),
                    pool)
        for pin in changes:
            got = by_url[pin.link.url]
            txn.install(got.path, requested=pin.requested, direct_url=direct_url(pin),
                        sha256=got.sha256)
        if pool is not None:  # every wheel is planned: no worker outlives (or sees) commit
            pool.close()
    return txn.result


def _print_plan(ctx: Context, changes: Any, *, would: bool) -> None:
    if would:
        names = " ".join(f"{p.display_name}-{p.version}" for p in changes)
        # With --report - stdout carries the JSON alone, as pip does.
        say = ctx.out.info if ctx.args.report == "-" else ctx.out.result
        say(f"Would install {names}" if changes else "Would install nothing")
        return
    for pin in changes:
        if pin.installed is not None and pin.installed.version != pin.version:
            ctx.out.info(f" - {pin.installed.display_name}=={pin.installed.version}")
        ctx.out.info(f" + {pin.display_name}=={pin.version}")
