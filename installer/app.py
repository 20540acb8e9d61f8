"""Settings -> value objects: the one place that maps merged settings to core objects."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.models import Environment

if TYPE_CHECKING:  # trust imports ssl (~17 ms): a no-op install needs neither
    from installer.http import HttpClient, HttpConfig, Response
    from installer.index import Finder
    from installer.trust import TrustConfig


def _get(settings: Any, key: str, default: Any = None) -> Any:
    try:
        value = settings[key]
    except KeyError:
        return default
    return default if value is None else value


def _list(settings: Any, key: str) -> tuple[str, ...]:
    """A list setting as a tuple of strings."""
    return tuple(str(item) for item in _get(settings, key, []))


def _origin(settings: Any, key: str) -> str:
    try:
        return str(settings.origin(key))
    except (KeyError, AttributeError):
        return "default"


def _shadowed_certs(settings: Any) -> list[tuple[str, str]]:
    try:
        setting = settings.setting("cert")
    except (KeyError, AttributeError):
        return []
    return [(str(v), str(o)) for v, o in setting.shadowed if v]


def build_trust_config(settings: Any) -> TrustConfig:
    """The TrustConfig from settings trust, cert, client-cert, trusted-host and [[index]]."""
    from installer.trust import TrustConfig, TrustPolicy

    origins = {k: _origin(settings, k) for k in ("trust", "cert", "client-cert")}
    default = TrustPolicy(trust=_get(settings, "trust", "certifi"), cert=_get(settings, "cert"),
                          client_cert=_get(settings, "client-cert"), origins=origins)
    per_index: list[tuple[str, TrustPolicy]] = []
    index_origin = _origin(settings, "index")
    for entry in _get(settings, "index", []):
        cert, client = entry.get("cert"), entry.get("client-cert")
        if not cert and not client:
            continue
        where = f"{index_origin} [[index]] {entry.get('name', '?')}"
        policy = TrustPolicy(
            trust=default.trust, cert=cert or default.cert,
            client_cert=client or default.client_cert,
            origins={"trust": origins["trust"],
                     "cert": where if cert else origins["cert"],
                     "client-cert": where if client else origins["client-cert"]},
        )
        per_index.append((str(entry["url"]), policy))
    return TrustConfig(
        default=default, per_index=tuple(per_index),
        trusted_hosts=_list(settings, "trusted-host"),
        known_bundles=tuple(_shadowed_certs(settings)),
    )


def build_http_config(settings: Any) -> HttpConfig:
    """HttpConfig from settings timeout, retries, proxy, no-proxy and trusted-host."""
    from installer.http import HttpConfig

    return HttpConfig(
        timeout=float(_get(settings, "timeout", 15.0)),
        retries=int(_get(settings, "retries", 5)),
        proxy=_get(settings, "proxy") or None,
        no_proxy=_list(settings, "no-proxy"),
        trusted_hosts=_list(settings, "trusted-host"),
    )


def build_http_client(settings: Any, warn: Callable[[str], None]) -> HttpClient:
    """The HttpClient for a run; warns once for each trusted host actually used."""
    from installer.http import HttpClient, select_proxy

    trust = build_trust_config(settings)
    config = build_http_config(settings)
    where = _origin(settings, "trusted-host")

    def tls_error(url: str, exc: Exception) -> Any:
        return trust.explain(url, exc, proxy=select_proxy(url, config.proxy, config.no_proxy),
                             timeout=min(config.timeout, 5.0))

    def insecure(host: str) -> None:
        warn(f"certificate verification is off for {host} (trusted-host, set by {where})")

    return HttpClient(config, trust.context_for, tls_error, on_insecure=insecure)


class LazyHttpClient:
    """An :class:`~installer.http.HttpClient` made by *factory* on the first request.

    A warm run answers every page and file from the caches: it then never imports urllib3,
    builds no SSL context and starts no connection pool. Whatever the factory or the client
    raises (a bad ``cert`` setting, a TLS failure) surfaces from that first request, as it
    would have from an eagerly built client. Thread-safe: the first requests may race.
    """

    def __init__(self, factory: Callable[[], HttpClient]) -> None:
        self._factory = factory
        self._client: HttpClient | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether a request was made (and so the client built)."""
        return self._client is not None

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (0 while the client is not built)."""
        client = self._client
        return 0 if client is None else client.request_count

    def client(self) -> HttpClient:
        """The real client, built now if it was not yet."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return client

    def get(self, url: str, headers: Mapping[str, str] | None = None, *,
            stream: bool = False, ok: Sequence[int] = (200,)) -> Response:
        """See :meth:`installer.http.HttpClient.get`."""
        return self.client().get(url, headers, stream=stream, ok=ok)

    def request(self, method: str, url: str, headers: Mapping[str, str] | None = None, *,
                stream: bool = False, ok: Sequence[int] = (200,)) -> Response:
        """See :meth:`installer.http.HttpClient.request`."""
        return self.client().request(method, url, headers, stream=stream, ok=ok)

    def close(self) -> None:
        """Close the real client's connections, if it was ever built."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


# --- target environment and cache -------------------------------------------------------------


def cache_root(settings: Any) -> Path:
    """The cache folder: ``cache-dir`` or platformdirs' user cache path for inst."""
    configured = settings["cache-dir"]
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_path("inst"))


def target_environment(settings: Any, environ: Mapping[str, str], cwd: Path, *,
                       target: str | None = None, prefix: str | None = None,
                       fallback: Path | None = None) -> Environment:
    """Find and query the target interpreter (``python`` setting, VIRTUAL_ENV, .venv).

    With *fallback* (``inst download``, like ``pip download``), an unset ``python`` and no
    environment found means: resolve for that interpreter instead of failing.
    """
    from installer.environment import find_interpreter, query_environment, scheme_for_target
    from installer.errors import EnvironmentError_

    try:
        interpreter = find_interpreter(settings["python"], environ, cwd)
    except EnvironmentError_:
        if fallback is None or settings["python"]:
            raise
        interpreter = fallback
    env: Environment = query_environment(
        interpreter, None if settings["no-cache"] else cache_root(settings) / "interpreters")
    if target or prefix:
        env = scheme_for_target(env, target=Path(target) if target else None,
                                prefix=Path(prefix) if prefix else None)
    return env


def recovered(env: Environment, out: Any) -> Environment:
    """*env* after finishing or undoing a transaction a killed run left behind.

    Planning from a half-applied transaction would mistake it for the installed state, so
    this runs before anything reads ``env.installed``; the answer is rescanned if it acted.
    """
    from installer._record import replace
    from installer.environment import scan_installed
    from installer.journal import recover_pending  # not txn: a no-op install needs no more

    messages = recover_pending(env, on_wait=out.info)
    for message in messages:
        out.warn(message)
    return replace(env, installed=scan_installed(env.paths)) if messages else env


@contextlib.contextmanager
def finder_session(settings: Any, warn: Callable[[str], None], cwd: Path | None = None,
                   *, extra: Mapping[str, Any] | None = None) -> Iterator[Finder]:
    """An index :class:`Finder` over a shared HTTP pool, closed (with the pool) afterwards.

    *extra* carries index options found in requirements files (``--index-url`` and friends),
    which apply like pip's: a file's ``--index-url`` replaces the setting, its
    ``--extra-index-url`` and ``--find-links`` add to it.
    """
    from installer.httpcache import HttpCache
    from installer.index import build_finder

    extra = extra or {}
    client = LazyHttpClient(lambda: build_http_client(settings, warn))
    cache = HttpCache(None if settings["no-cache"] else cache_root(settings),
                      refresh=bool(settings["refresh"]))
    finder = build_finder(
        http=client, cache=cache,
        index_url=extra.get("index_url") or settings["index-url"],
        extra_index_urls=[*settings["extra-index-url"], *extra.get("extra_index_urls", ())],
        indexes=settings["index"],
        find_links=[*settings["find-links"], *extra.get("find_links", ())],
        no_index=bool(settings["no-index"] or extra.get("no_index")),
        strategy=settings.get("index-strategy") or "first-index",
        concurrency=int(settings["concurrency"]), cwd=cwd or Path.cwd(), warn=warn)
    try:
        yield finder
    finally:
        finder.close()
        client.close()
